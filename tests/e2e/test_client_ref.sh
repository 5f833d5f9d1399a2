#!/usr/bin/env bash
# Idempotent resubmission by client_ref (issue 15 item 2), through the real
# processes: broker, ledger, scheduler, two gateways behind HAProxy, two
# peers. A submit repeating a client_ref of its account gets the first
# one's outcome with no new run and no new charge: after it was answered
# (the same result, the same task, the balance unmoved), and while it runs
# (joined: one run, both submits answered). Then a gamer's gateway is killed
# with -9 mid-load: `p2c2r-agent gamer` reconnects through HAProxy to the
# other gateway, resubmits its unanswered tasks by client_ref and collects
# every result, each charged once: its net charge equals the cost of the
# results it received, nothing charged is undelivered, and `p2c2r-ctl
# audit` passes.
. "$(dirname "$0")/lib.sh"

t_db
BPORT=$(free_port)
BROKER=tcp://127.0.0.1:$BPORT
GW1=$(free_port)
GW2=$(free_port)
LB=$(free_port)
GWA1=$(free_port)
GWA2=$(free_port)
SERVER=ws://127.0.0.1:$LB
spawn broker "$BIN/p2c2r-broker" --bind "$BROKER"
spawn ledger env P2C2R_DB="$T_DB" "$BIN/p2c2r-ledger" --broker "$BROKER" \
    --sql-dir "$ROOT/ledger/sql" --starting-credit-pico 1000000000000
# Validation and bans off, attempts long: this test is about delivery, and a
# loaded machine's late results must not ban the only peers
spawn scheduler "$BIN/p2c2r-scheduler" --broker "$BROKER" --validation none \
    --ban-min-invalid 1000000 --attempt-timeout-ms 60000
for g in 1 2; do
  port=GW$g admin=GWA$g
  spawn "gw$g" "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:${!port}" \
      --admin-listen "127.0.0.1:${!admin}" --trusted-proxies 127.0.0.1 --guard-grace-ms 1000
done
wait_for 20 healthz "$GW1" && wait_for 20 healthz "$GW2" \
  || { echo "FAIL gateways"; T_FAIL=$((T_FAIL + 1)); t_report; exit 1; }
sed -e "s/^    bind :8765/    bind 127.0.0.1:$LB/" -e "s/^    maxconn .*/    maxconn 2000/" \
    -e "s/server gw1 gateway-1:8765/server gw1 127.0.0.1:$GW1/" \
    -e "s/server gw2 gateway-2:8765/server gw2 127.0.0.1:$GW2/" \
    -e "/server gw3 gateway-3:8765/d" \
    "$ROOT/deploy/haproxy.cfg" >"$T_DIR/haproxy.cfg"
spawn haproxy haproxy -db -f "$T_DIR/haproxy.cfg"
ready () { curl -fsS "http://127.0.0.1:$LB/readyz" >/dev/null 2>&1; }
check "the stack is ready behind HAProxy" wait_for 30 ready
# One peer on each gateway, directly: whichever gateway dies, a peer stays
spawn peer-a "$BIN/p2c2r-agent" peer --server "ws://127.0.0.1:$GW1" --peer-id peer-a --slots 2 --log-tasks
spawn peer-b "$BIN/p2c2r-agent" peer --server "ws://127.0.0.1:$GW2" --peer-id peer-b --slots 2 --log-tasks
wait_peers peer-a peer-b || { T_FAIL=$((T_FAIL + 1)); t_report; exit 1; }

balance () { sql "SELECT balance_pico FROM accounts WHERE kind = 'gamer' AND name = '$1'"; }
tasks_of () { sql "SELECT count(*) FROM tasks t JOIN accounts a ON a.id = t.gamer_account WHERE a.name = '$1'"; }
field () {  # field FILE LINE KEY: a key of the LINEth JSON reply
  python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[int(sys.argv[2])-1])[sys.argv[3]])' "$@" 2>/dev/null
}
gamer () {  # gamer NAME OUT ARGS...: a --json run of one encryption task
  local name=$1 out=$2; shift 2
  "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id "$name" --task encryption --json \
      --timeout-s 60 "$@" >"$T_DIR/$out.out" 2>"$T_DIR/$out.log"
}

# 1. The same client_ref twice, one after the other
gamer twice first --params '{"data":"once","iterations":2000}' --run-id fixed
after_first=$(balance twice)
check "the first submit ran and was charged" \
    test "$(field "$T_DIR/first.out" 1 ok)" = True -a "$(field "$T_DIR/first.out" 1 cost_pico)" -gt 0
gamer twice second --params '{"data":"once","iterations":2000}' --run-id fixed
check "the repeat was answered from the first's outcome (replayed)" \
    test "$(field "$T_DIR/second.out" 1 replayed)" = True
check "... with the same result" \
    test "$(field "$T_DIR/first.out" 1 result_sha256)" = "$(field "$T_DIR/second.out" 1 result_sha256)"
check "... naming the same task" \
    test "$(field "$T_DIR/first.out" 1 task_id)" = "$(field "$T_DIR/second.out" 1 task_id)"
check "one task in the ledger, charged once" test "$(tasks_of twice)" = 1
check "the repeat moved no money" test "$(balance twice)" = "$after_first"
gamer twice third --params '{"data":"once","iterations":2000}'
check "another run (its own run id) is not a repeat" \
    test "$(field "$T_DIR/third.out" 1 replayed)" = False \
         -a "$(field "$T_DIR/third.out" 1 task_id)" != "$(field "$T_DIR/first.out" 1 task_id)"

# 2. The same client_ref twice at once: the repeat joins the running task
SLOW='{"data":"join","iterations":100000}'
spawn_out join1 "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id joiner \
    --task encryption --params "$SLOW" --run-id j --json --timeout-s 60
gamer joiner join2 --params "$SLOW" --run-id j
wait "$PID_join1"
check "both submits got the result" \
    test "$(field "$T_DIR/join1.out" 1 ok)" = True -a "$(field "$T_DIR/join2.out" 1 ok)" = True
check "... the same result of the same task" \
    test "$(field "$T_DIR/join1.out" 1 task_id)" = "$(field "$T_DIR/join2.out" 1 task_id)" \
         -a "$(field "$T_DIR/join1.out" 1 result_sha256)" = "$(field "$T_DIR/join2.out" 1 result_sha256)"
check "one run, one charge" test "$(tasks_of joiner)" = 1

# 3. The gamer's gateway dies mid-load
N=${CLIENT_REF_TASKS:-300}
spawn_out loaded "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id loaded \
    --task encryption --params '{"data":"load-{i}","iterations":5000}' \
    --count "$N" --concurrency 8 --deadline-ms 30000 --json --timeout-s 240
on_gw () { grep -q "registered conn=.*role=gamer id=loaded" "$T_DIR/$1.log"; }
check "the gamer registered" wait_for 30 eval 'on_gw gw1 || on_gw gw2'
if on_gw gw1; then victim=gw1; else victim=gw2; fi
quarter () { [ "$(grep -c '^{' "$T_DIR/loaded.out")" -ge $((N / 4)) ]; }
check "a quarter of the tasks answered" wait_for 120 quarter
pv=PID_$victim
kill -9 "${!pv}"
wait "${!pv}" 2>/dev/null
wait "$PID_loaded"
rc=$?
check "the gamer's run finished (exit $rc)" test "$rc" = 0
check "it reconnected after its gateway ($victim) died" grep -q "reconnecting" "$T_DIR/loaded.log"
check "every task answered ok, none missing" \
    grep -q "summary: tasks=$N ok=$N errors=0 missing=0" "$T_DIR/loaded.log"
check "each task answered once" \
    test "$(python3 -c 'import json,sys; print(len({json.loads(l)["index"] for l in open(sys.argv[1]) if l.startswith("{")}))' "$T_DIR/loaded.out")" = "$N" \
         -a "$(grep -c '^{' "$T_DIR/loaded.out")" = "$N"
# The scheduler's figures through whichever gateway's admin listener is up
sched_idle () {
  { admin_get "$GWA1" /api/stats || admin_get "$GWA2" /api/stats; } 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)["scheduler"] or {}
sys.exit(0 if s and all(s.get(k, 0) == 0 for k in ("running", "validating", "settling", "queue_depth")) else 1)
'
}
books () { sql "SELECT (SELECT count(*) FROM tasks) || '/' || (SELECT count(*) FROM refunds)"; }
books_still () { local a; a=$(books); sleep 2; [ "$(books)" = "$a" ]; }
wait_for 60 sched_idle
wait_for 60 books_still
# the row of `make chaos` (its gamer named by the file name)
python3 "$ROOT/tests/chaos/chaos_row.py" "$T_DB" gateway "$T_DIR/loaded.out" >"$T_DIR/row.txt"
row=$?
cat "$T_DIR/row.txt"
check "nothing charged is undelivered; the net charge is the cost of the results received" \
    test "$row" = 0
check "p2c2r-ctl audit passes" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
t_report
