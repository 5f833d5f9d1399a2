#!/usr/bin/env bash
# Contributors and gamers read their own earnings from the server, through
# the real stack: a peer does tasks, then `p2c2r-agent status --json` shows
# the ledger's figures for its account (balance, earned today and in all,
# pending payout, payout threshold) once its last answer is older than a
# minute; a JSON client's get_earnings, as that peer and as the gamer that
# paid, equals the ledger's figures too; a second request at once is
# rate_limited; a client that has not registered gets an error and no
# account data.
. "$(dirname "$0")/lib.sh"
start_stack || { t_report; exit 1; }
CTL=$T_DIR/run/control
mkdir -p "$T_DIR/run" "$T_DIR/state"
peer earner --slots 1 --no-bench --control "$CTL" --state-dir "$T_DIR/state"
wait_peers earner || { t_report; exit 1; }
status () { "$BIN/p2c2r-agent" status --control "$CTL" "$@"; }
ctl () { P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" "$@" 2>>"$T_DIR/ctl.err"; }
# Picodollars as the exact decimal text with 12 decimals (p2c_money_format)
# jf FILE TYPE PATH: the value at the dotted PATH of the first JSON object
# in FILE (one a line, or the whole file) whose "type" is TYPE ("-": any);
# empty when there is none
jf () { /usr/bin/python3 - "$@" <<'PY'
import json, sys
path, kind = sys.argv[3].split("."), sys.argv[2]
text = open(sys.argv[1]).read()
try:
    objs = [json.loads(text)]
except ValueError:
    objs = [json.loads(l) for l in text.splitlines() if l.strip().startswith("{")]
for o in objs:
    if kind != "-" and o.get("type") != kind:
        continue
    for k in path:
        o = o.get(k) if isinstance(o, dict) else None
    if o is not None:
        print(o)
    break
PY
}
usd12 () { python3 -c 'import sys; v=int(sys.argv[1]); print(("-" if v<0 else "")+"%d.%012d" % divmod(abs(v), 10**12))' "$1"; }

check "the peer asked at registration and logged one line" \
    wait_for 10 grep -q 'peer: earnings id=earner earned_today=0.000000000000 earned_total=0.000000000000' "$T_DIR/earner.log"

"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id payer --task encryption \
    --params '{"data":"earn-{i}","iterations":500}' --count 5 --quiet --timeout-s 60 >"$T_DIR/payer.out" 2>&1
check "five tasks done" grep -q 'summary: tasks=5 ok=5' "$T_DIR/payer.out"

# The ledger's figures for the peer's account (results are released only
# after settlement, so these are final)
PEER_ID=$(sql "SELECT id FROM accounts WHERE kind = 'peer' AND name = 'earner'")
DAY0="date_trunc ('day', now () AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
ctl --json balance peer:earner >"$T_DIR/ctl-peer.json"
BAL=$(jf "$T_DIR/ctl-peer.json" - balance_pico)
TOTAL=$(sql "SELECT COALESCE (SUM (peer_earning_pico), 0) FROM tasks WHERE peer_account = $PEER_ID")
TODAY=$(sql "SELECT COALESCE (SUM (peer_earning_pico), 0) FROM tasks WHERE peer_account = $PEER_ID AND settled_at >= $DAY0")
PENDING=$(sql "SELECT COALESCE (SUM (amount_pico), 0) FROM payouts WHERE account_id = $PEER_ID AND paid_tx IS NULL")
echo "ledger: peer account $PEER_ID balance $BAL earned today $TODAY in all $TOTAL pending $PENDING (picodollars)"
check "the ledger paid the peer for five tasks" test "$(sql "SELECT COUNT(*) FROM tasks WHERE peer_account = $PEER_ID")" = 5 -a "$TOTAL" -gt 0

# status answers at once with what it knows; once the last answer is older
# than a minute, a status asks again and a later one shows the new figures
# (polled once a second, bounded)
status --json >"$T_DIR/status-now.json"
check "status answers at once, with the figures it has" test -n "$(jf "$T_DIR/status-now.json" - earnings.as_of)"
fresh () {
  status --json >"$T_DIR/status.json" 2>/dev/null &&
    test "$(jf "$T_DIR/status.json" - earnings.earned_total)" = "$(usd12 "$TOTAL")"
}
end=$((SECONDS + 150))
until fresh || [ $SECONDS -ge $end ]; do sleep 1; done
check "status --json: earned in all equals the ledger's ($(usd12 "$TOTAL"))" fresh
got () { jf "$T_DIR/status.json" - "earnings.$1"; }
check "status --json: balance equals p2c2r-ctl balance ($(usd12 "$BAL"))" test "$(got balance)" = "$(usd12 "$BAL")"
check "status --json: earned today equals the ledger's" test "$(got earned_today)" = "$(usd12 "$TODAY")"
check "status --json: pending payout equals the ledger's" test "$(got pending_payout)" = "$(usd12 "$PENDING")"
check "status --json: the payout threshold is the ledger's default, \$10" test "$(got payout_threshold)" = 10.000000000000
status >"$T_DIR/status.txt"
check "status shows the earnings to a person" \
    grep -Eq "^  in all +\\\$$(usd12 "$TOTAL")\$" "$T_DIR/status.txt"
check "the peer's log lines carry figures and no key" \
    test -z "$(grep 'peer: earnings' "$T_DIR/earner.log" | grep -vE '^[^ ]+ p2c2r-agent\[[0-9]+\] peer: earnings id=earner earned_today=[0-9.]+ earned_total=[0-9.]+ balance=[0-9.]+ pending_payout=[0-9.]+ payout_threshold=[0-9.]+ tasks_total=[0-9]+ as_of=[0-9TZ:-]+$')"

# A JSON client registered as that peer: its get_earnings equals the
# ledger's figures; the second request at once is rate_limited
"$ROOT/tests/e2e/earnings_client.py" "$SERVER" peer earner >"$T_DIR/json-peer.out" 2>&1
jpeer () { jf "$T_DIR/json-peer.out" earnings "$1"; }
check "JSON peer: get_earnings answers earnings for its own account" test "$(jpeer role)" = peer
check "JSON peer: balance_pico equals p2c2r-ctl balance" test "$(jpeer balance_pico)" = "$BAL"
check "JSON peer: balance as exact text" test "$(jpeer balance)" = "$(usd12 "$BAL")"
check "JSON peer: earned_total_pico and earned_today_pico equal the ledger's" \
    test "$(jpeer earned_total_pico)" = "$TOTAL" -a "$(jpeer earned_today_pico)" = "$TODAY"
check "JSON peer: pending payout and threshold" \
    test "$(jpeer pending_payout_pico)" = "$PENDING" -a "$(jpeer payout_threshold_pico)" = 10000000000000
RATES=$(sql "SELECT gamer_pico_per_hour || ' ' || peer_pico_per_hour || ' ' || fee_bp FROM rates WHERE effective_at <= now () ORDER BY effective_at DESC LIMIT 1")
check "JSON peer: the rates in force ($RATES)" \
    test "$(jpeer rates.gamer_per_hour_pico) $(jpeer rates.peer_per_hour_pico) $(jpeer rates.fee_bp)" = "$RATES"
check "JSON peer: five tasks in all" test "$(jpeer tasks_total)" = 5
check "JSON peer: a second request at once is rate_limited, with no figures" \
    test "$(jf "$T_DIR/json-peer.out" error code)" = rate_limited \
         -a -z "$(jf "$T_DIR/json-peer.out" error balance)"

# The gamer that paid reads what it spent; the account it names is ignored
SPENT=$(sql "SELECT COALESCE (SUM (gamer_charge_pico), 0) FROM tasks t JOIN accounts a ON a.id = t.gamer_account WHERE a.kind = 'gamer' AND a.name = 'payer'")
ctl --json balance gamer:payer >"$T_DIR/ctl-gamer.json"
GBAL=$(jf "$T_DIR/ctl-gamer.json" - balance_pico)
"$ROOT/tests/e2e/earnings_client.py" "$SERVER" gamer payer >"$T_DIR/json-gamer.out" 2>&1
jgamer () { jf "$T_DIR/json-gamer.out" earnings "$1"; }
check "JSON gamer: its own figures, not the account it named" test "$(jgamer role)" = gamer
check "JSON gamer: spent_total_pico equals what its tasks cost ($SPENT)" \
    test "$(jgamer spent_total_pico)" = "$SPENT" -a "$SPENT" -gt 0
check "JSON gamer: balance equals p2c2r-ctl balance" test "$(jgamer balance_pico)" = "$GBAL"
check "JSON gamer: earned nothing" test "$(jgamer earned_total_pico)" = 0

# Without registering: an error, and no account data
"$ROOT/tests/e2e/earnings_client.py" "$SERVER" none >"$T_DIR/json-none.out" 2>&1
check "unregistered: get_earnings gets an error" \
    test "$(jf "$T_DIR/json-none.out" - type)" = error -a "$(jf "$T_DIR/json-none.out" - code)" = bad_request
check "unregistered: no account data in the answer" \
    test -z "$(jf "$T_DIR/json-none.out" - balance)$(jf "$T_DIR/json-none.out" - balance_pico)$(jf "$T_DIR/json-none.out" - earned_total)"
# What a contributor sees (kept for the README's example)
mkdir -p "$ROOT/build" && status >"$ROOT/build/status-sample.txt" 2>&1
t_report
