#!/usr/bin/env bash
# The dashboard pages (web/: docs/dashboard.md) in headless Chromium against
# the real stack, as their users would use them (tests/e2e/dashboard_check.py):
# every page loads with no console error; the operator's page (admin
# listener, operator token) shows numbers and charts that move while a load
# runs; a contributor signed in with its API key sees its agents (one named
# <img/src='x'/onerror=alert(1)>, shown as text, nothing run; with spaces
# the name is refused at registration) and earnings
# equal to the ledger's (p2c2r-ctl); the gamer's "try a task" returns an
# image; a wrong key or token shows an error and no data; the pages'
# WebSocket has the limits of any client. Screenshots: build/screenshots/.
. "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null && command -v chromedriver >/dev/null \
  && /usr/bin/python3 -c 'import selenium' 2>/dev/null \
  && [ -f /usr/share/javascript/chart.js/chart.min.js ] \
  || { echo "FAIL chromium, chromedriver, python3-selenium and libjs-chart.js are needed (deploy/deps.sh)"; T_FAIL=1; t_report; exit 1; }
# Chromium shares the machine with the peers: a task that stalls behind it
# is no sign of a cheating peer (billing flags off; test_money_billing.sh
# tests them)
SCHED_ARGS="--bill-flag-permille 0" GW_ARGS="--max-frame 1048576 --max-subscriptions 4" start_stack || { t_report; exit 1; }
ctl () { P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" --broker "$BROKER" "$@" 2>>"$T_DIR/ctl.err"; }

# The contributor: an account with an API key, two agents on it
export CONTRIB_KEY
CONTRIB_KEY=$(ctl account create peer contrib | awk '/api_key/ {print $2}')
check "p2c2r-ctl made the contributor's account and key" test -n "$CONTRIB_KEY"
# Names are 1 to 64 visible ASCII characters: the issue's name, with its
# spaces, is refused at registration; the same attack without spaces is a
# valid name, and must show as text
spawn evil-spaces env P2C2R_API_KEY="$CONTRIB_KEY" "$BIN/p2c2r-agent" peer --server "$SERVER" \
    --peer-id '<img src=x onerror=alert(1)>' --slots 1 --no-bench
check "a peer named <img src=x onerror=alert(1)> is refused (not a visible-ASCII name)" \
    wait_for 20 grep -q 'registration refused code=bad_request' "$T_DIR/evil-spaces.log"
kill "$PID_evil_spaces"
export EVIL_NAME="<img/src='x'/onerror=alert(1)>"
P2C2R_API_KEY=$CONTRIB_KEY peer contrib-a --slots 1 --no-bench
spawn evil env P2C2R_API_KEY="$CONTRIB_KEY" "$BIN/p2c2r-agent" peer --server "$SERVER" \
    --peer-id "$EVIL_NAME" --slots 1 --no-bench --log-tasks
# A peer of another account: spot checks compare peers of different
# accounts (two of one account cannot check each other)
peer checker --slots 1 --no-bench
wait_peers contrib-a evil checker || { T_FAIL=$((T_FAIL + 1)); t_report; exit 1; }

# The ledger's figures of the contributor's account, as JSON
export LEDGER_CMD="P2C2R_DB='$T_DB' '$BIN/p2c2r-ctl' --json balance peer:contrib 2>/dev/null | python3 -c '
import json, subprocess, sys
b = json.loads(sys.stdin.read())[\"balance_pico\"]
e = subprocess.run([\"psql\", \"$T_DB\", \"-qAt\", \"-c\", \"SELECT COALESCE (SUM (peer_earning_pico), 0) FROM tasks t JOIN accounts a ON a.id = t.peer_account WHERE a.kind = '\"'\"'peer'\"'\"' AND a.name = '\"'\"'contrib'\"'\"'\"], capture_output=True, text=True).stdout.strip()
print(json.dumps({\"balance_pico\": int(b), \"earned_total_pico\": int(e)}))'"
check "the ledger's figures of the contributor can be read" bash -c "$LEDGER_CMD | grep -q earned_total_pico"

# A load while the pages look: batches of tasks until the driver says stop
# (bounded: 4 minutes)
export LOAD_STOP=$T_DIR/load.stop LOAD_DONE=$T_DIR/load.done
load () {
  local i=0 end=$((SECONDS + 240))
  while [ ! -e "$LOAD_STOP" ] && [ $SECONDS -lt $end ]; do
    i=$((i + 1))
    "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id loader --task encryption \
        --params "{\"data\":\"load-$i-{i}\",\"iterations\":2000}" --count 20 --concurrency 2 \
        --quiet --timeout-s 60 >>"$T_DIR/load.out" 2>&1
  done
  touch "$LOAD_DONE"
}
load &
T_PIDS+=("$!")

SHOTS=$ROOT/build/screenshots
timeout 400 /usr/bin/python3 "$ROOT/tests/e2e/dashboard_check.py" "http://127.0.0.1:$GW_PORT" \
    "http://127.0.0.1:$GW_ADMIN" "$SHOTS" >"$T_DIR/dash.out" 2>&1
rc=$?
touch "$LOAD_STOP"
cat "$T_DIR/dash.out"
T_PASS=$((T_PASS + $(grep -c '^ok ' "$T_DIR/dash.out")))
T_FAIL=$((T_FAIL + $(grep -c '^FAIL ' "$T_DIR/dash.out")))
check "the browser checks ran to the end" test $rc = 0
for p in index operator contributor gamer; do
  check "a screenshot of the $p page: build/screenshots/$p.png" test -s "$SHOTS/$p.png"
done
wait_for 120 test -e "$LOAD_DONE"
check "p2c2r-ctl audit is clean" bash -c "P2C2R_DB='$T_DB' '$BIN/p2c2r-ctl' audit >'$T_DIR/audit.out' 2>&1"
t_report
