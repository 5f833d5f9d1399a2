#!/usr/bin/env bash
# Issue 14, item 5: a bounded treasury subsidy. At the default rates peers
# earn 15x what gamers pay and the treasury pays the difference; the
# operator sets a subsidy budget per UTC day with the rates (p2c2r-ctl rates
# set ... SUBSIDY_USD_PER_DAY). Once the day's budget is spent, further tasks
# pay their peer at most the gamer's charge less the fee; the day's subsidy
# is exactly the budget; `p2c2r-ctl revenue` shows it used and none left;
# the books pass the audit before and after.
. "$(dirname "$0")/lib.sh"
SCHED_ARGS="--validation none"
start_stack || { t_report; exit 1; }
peer honest-1 --slots 2
wait_peers honest-1
CTL=$BIN/p2c2r-ctl
ctl () { env P2C2R_BROKER="$BROKER" P2C2R_DB="$T_DB" "$CTL" "$@" 2>>"$T_DIR/ctl.err"; }

run_gamer () {
    "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id "$1" --task encryption \
        --params "{\"data\":\"$1-{i}\",\"iterations\":20000}" --count "$2" --concurrency 2 \
        --json --timeout-s 120 > "$T_DIR/$1.out"
}
run_gamer g1 10
check "before a budget: the gamer got every answer" test $? = 0
check "the books pass the audit before a budget" ctl audit
used=$(ctl --json revenue | jq -r .subsidy_used_today_usd)
check "revenue shows the subsidy used today, no budget" \
    python3 -c "import sys; sys.exit(0 if float('$used') > 0 else 1)"
# A budget that leaves room for about one more task's subsidy: one and a
# half times the mean of g1's ten (whatever the cost model bills them)
budget=$(python3 -c "from decimal import Decimal as D; u = D('$used'); print((u + u / 10 * D('1.5')).quantize(D('0.000000000001')))")
check "rates set with a subsidy budget per day" ctl rates set 0.01 0.15 1000 "$budget"
run_gamer g2 10
check "past the budget: the gamer got every answer" test $? = 0

check "past the budget peers earn at most the gamer's charge less the fee; the day's subsidy is the budget" \
    python3 - "$T_DB" "$budget" <<'PY'
import decimal, subprocess, sys
db, budget = sys.argv[1], decimal.Decimal(sys.argv[2])
def sql(q):
    return subprocess.run(["psql", db, "-qAt", "-F", " ", "-c", q], capture_output=True,
                          text=True, check=True).stdout.split("\n")
rid = sql("SELECT max(id) FROM rates")[0]
rows = [tuple(map(int, l.split())) for l in sql(
    "SELECT gamer_charge_pico, peer_earning_pico, fee_pico, subsidy_cut_pico FROM tasks "
    f"WHERE rate_id = {rid} ORDER BY settled_at, task_id") if l.strip()]
used = int(sql("SELECT used_pico FROM subsidy_days")[0])
over = [r for r in rows if r[1] > r[0] - r[2]]          # subsidised: earned beyond charge - fee
cut = [r for r in rows if r[3] > 0]
full = [r for r in rows[len(over) + 1:] if r[1] != r[0] - r[2]]
print(f"subsidy: budget {budget} USD = {int(budget * 10**12)} pico, used {used} pico; after the "
      f"budget was set {len(rows)} tasks: {len(over)} subsidised, {len(cut)} cut, "
      f"earnings past the budget {[r[1] for r in rows[-3:]]} vs charge - fee "
      f"{[r[0] - r[2] for r in rows[-3:]]}")
ok = len(rows) == 10 and used == int(budget * 10**12) and len(over) <= 2 and len(cut) >= 8
ok = ok and not full
sys.exit(0 if ok else 1)
PY
rev=$(ctl --json revenue)
check "revenue shows the budget used and nothing left" \
    python3 -c "
import json, sys; r = json.loads('''$rev''')
from decimal import Decimal as D
print('revenue:', {k: v for k, v in r.items() if k.startswith('subsidy')})
sys.exit(0 if D(r['subsidy_used_today_usd']) == D('$budget') and D(r['subsidy_left_today_usd']) == 0
         and D(r['subsidy_budget_today_usd']) == D('$budget') and D(r['subsidy_cut_today_usd']) > 0 else 1)"
check "the books pass the audit (p2c2r-ctl audit)" ctl audit
t_report
