#!/usr/bin/env bash
# /api/stats under concurrent requests, as a dashboard with many open tabs
# would load it (issue 15): many GETs at once on a full stack each get the
# scheduler's and the ledger's figures; many GETs at once on a gateway whose
# broker has neither scheduler nor ledger all time out in the same tick, and
# each still gets its answer with both marked missing (this crashed the
# gateway: a use-after-free when two answers were due together). The
# gateway must be running after each burst. Run it on `make asan` binaries
# too: the sanitizer then reports any read of freed memory. The ledger's
# money figures in the stats equal p2c2r-ctl's books.
. "$(dirname "$0")/lib.sh"

# burst PORT N: N concurrent GETs of /api/stats; prints one summary line
# "answers=A ok=B ledger=C scheduler=D missing_both=E" and keeps the bodies
burst () {
  python3 - "$1" "$2" "$T_DIR" <<'PY'
import json, os, sys, threading, urllib.request
port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
res = [None] * n
start = threading.Barrier(n)
def get(i):
    start.wait()
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/stats", headers={
            "Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()})
        with urllib.request.urlopen(req, timeout=20) as r:
            res[i] = (r.status, r.read())
    except Exception as e:
        res[i] = (0, str(e).encode())
ts = [threading.Thread(target=get, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
ok = ledger = sched = both = 0
for status, body in res:
    if status != 200:
        continue
    try:
        s = json.loads(body)
    except ValueError:
        continue
    ok += 1
    ledger += isinstance(s.get("ledger"), dict) and "settled" in s["ledger"]
    sched += isinstance(s.get("scheduler"), dict)
    both += sorted(s.get("missing", [])) == ["ledger", "scheduler"]
open(f"{out}/stats-{port}.json", "wb").write(res[0][1])
print(f"answers={sum(1 for r in res if r[0])} ok={ok} ledger={ledger} scheduler={sched} "
      f"missing_both={both}")
PY
}

start_stack || { t_report; exit 1; }
N=64
R=$(burst "$GW_ADMIN" "$N")
echo "    full stack: $R"
check "$N concurrent /api/stats on a full stack: every one answered 200 JSON" \
    grep -q "answers=$N ok=$N " <<<"$R"
check "every answer has the ledger's figures (not null)" grep -q " ledger=$N " <<<"$R"
check "every answer has the scheduler's figures" grep -q " scheduler=$N " <<<"$R"
check "the ledger's settled count is a number" \
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert isinstance(s["ledger"]["settled"], int) and s["missing"] == []' \
    "$T_DIR/stats-$GW_ADMIN.json"
check "the gateway is still running" kill -0 "$PID_gateway"

# Money (issue 19): after tasks settle, the ledger's stats (what the
# operator's page shows) equal the books, p2c2r-ctl totals and revenue (all
# time and since UTC midnight), to the character. Read when the books hold
# still (totals the same before and after, and the ledger's summary counts
# the same tasks), since spot checks may still be settling.
peer money-a --slots 2 --no-bench
peer money-b --slots 2 --no-bench
wait_peers money-a money-b || { T_FAIL=$((T_FAIL + 1)); t_report; exit 1; }
"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id money-g --task encryption \
    --params '{"data":"money-{i}","iterations":50}' --count 30 --concurrency 4 --quiet \
    --timeout-s 60 >"$T_DIR/money-load.out" 2>&1
check "30 tasks ran" test "$(sql "SELECT count (*) >= 30 FROM tasks t JOIN accounts a ON a.id = t.gamer_account WHERE a.name = 'money-g'")" = t
export CTL="$BIN/p2c2r-ctl" P2C2R_DB="$T_DB" GW_ADMIN
money_check () {
  python3 - <<'PY'
import json, os, subprocess, sys, time, urllib.request
def ctl(*args):
    return json.loads(subprocess.run([os.environ["CTL"], "--json", *args], check=True,
                                     capture_output=True, text=True).stdout)
def stats():
    req = urllib.request.Request(f"http://127.0.0.1:{os.environ['GW_ADMIN']}/api/stats", headers={
        "Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["ledger"]
for _ in range(120):     # bounded: about 60 s
    t1 = ctl("totals")
    led = stats()
    day = led.get("money_day")
    if day:
        rev = ctl("revenue")
        today = ctl("revenue", "--since", day + " 00:00:00+00")
        t2 = ctl("totals")
        if t1 == t2 and led.get("money_tasks_total") == t1["tasks_settled"]:
            break
    time.sleep(0.5)
else:
    sys.exit("the ledger's money summary never matched the books: %r" % (led,))
want = {
    "spent_total": t1["gamers_spent_usd"], "earned_total": t1["peers_earned_usd"],
    "fee_total": rev["platform_fee_usd"], "treasury_total": rev["treasury_net_usd"],
    "spent_today": today["gamers_paid_usd"], "earned_today": today["peers_earned_usd"],
    "fee_today": today["platform_fee_usd"], "treasury_today": today["treasury_net_usd"],
    "subsidy_today": today["subsidy_used_today_usd"],
}
bad = {k: (led.get(k), v) for k, v in want.items() if led.get(k) != v}
print("    ledger: tasks=%s spent=$%s earned=$%s fee=$%s treasury=$%s subsidy=$%s" % (
    led["money_tasks_total"], led["spent_total"], led["earned_total"], led["fee_total"],
    led["treasury_total"], led["subsidy_total"]))
if bad or float(led["spent_total"]) <= 0:
    sys.exit("differ (ledger, books): %r" % (bad,))
PY
}
check "the ledger's money in /api/stats equals p2c2r-ctl totals and revenue (today and in all)" \
    money_check
check "the ledger's /metrics has the money" bash -c \
    "curl -fsS http://127.0.0.1:$LED_METRICS_PORT/metrics | grep -E '^p2c2r_ledger_gamers_spent_usd_total 0\.[0-9]{12}$' >/dev/null"
check "p2c2r-ctl audit is clean" bash -c "'$BIN/p2c2r-ctl' audit >'$T_DIR/audit.out' 2>&1"

# A gateway on a broker with no scheduler and no ledger: every request
# waits for its deadline, and they all fall due together
BPORT=$(free_port)
spawn lone-broker "$BIN/p2c2r-broker" --bind "tcp://127.0.0.1:$BPORT"
GL=$(free_port)
GLA=$(free_port)
spawn lone-gw "$BIN/p2c2r-gateway" --broker "tcp://127.0.0.1:$BPORT" --listen "127.0.0.1:$GL" \
    --admin-listen "127.0.0.1:$GLA" --stats-timeout-ms 300
check "a gateway without scheduler and ledger starts" wait_for 20 healthz "$GL"
for round in 1 2 3; do
  R=$(burst "$GLA" "$N")
  echo "    timeouts, round $round: $R"
  check "round $round: $N requests timing out together are each answered" \
      grep -q "answers=$N ok=$N ledger=0 scheduler=0 missing_both=$N" <<<"$R"
done
check "that gateway is still running" kill -0 "$PID_lone_gw"
check "its log has no sanitizer report" bash -c "! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' '$T_DIR/lone-gw.log' '$T_DIR/gateway.log'"
t_report
