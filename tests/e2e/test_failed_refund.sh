#!/usr/bin/env bash
# A task reported to its gamer as failed is never charged (issue 15), through
# the real processes: the ledger is paused (SIGSTOP) while a gamer's task
# runs, so its settlement waits; the gateway's deadline guard answers the
# gamer `timeout`; then the ledger resumes and the settlement commits after
# all. The ledger must refund it: the gamer sees `timeout`, its balance is as
# if the task never ran, the refund is recorded once, the peer keeps its
# earning, and `p2c2r-ctl audit` passes.
. "$(dirname "$0")/lib.sh"

LEDGER_PAUSED=0
resume_ledger () { [ "$LEDGER_PAUSED" = 1 ] && kill -CONT "$PID_ledger" 2>/dev/null; LEDGER_PAUSED=0; }
trap 'resume_ledger; t_cleanup' EXIT
trap 'exit 143' TERM INT

DEADLINE_MS=${FAILED_REFUND_DEADLINE_MS:-20000}
# Seconds of work (20 times the kernel's reference input, the most it
# takes): the pause comes well before the result
PARAMS='{"data":"slow","iterations":1000000}'
GW_ARGS="--guard-grace-ms 1000"
SCHED_ARGS="--attempt-timeout-ms $DEADLINE_MS --settle-retry-ms 500"
start_stack || { t_report; exit 1; }
peer peer-a --slots 1
wait_peers peer-a || { T_FAIL=$((T_FAIL + 1)); t_report; exit 1; }

# The gamer's account exists with its starting credit before the run
"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id late --task encryption \
    --params '{"data":"warm","iterations":1}' --count 1 --quiet --timeout-s 30 >/dev/null 2>&1
balance () { sql "SELECT balance_pico FROM accounts WHERE kind = 'gamer' AND name = '$1'"; }
before=$(balance late)
check "the gamer has an account and a balance ($before)" test -n "$before"

spawn_out gamer "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id late \
    --task encryption --params "$PARAMS" --count 1 --deadline-ms "$DEADLINE_MS" \
    --json --timeout-s 120
registered () { [ "$(grep -c 'registered conn=.*role=gamer id=late' "$T_DIR/gateway.log")" -ge 2 ]; }
check "the gamer registered" wait_for 30 registered
kill -STOP "$PID_ledger" && LEDGER_PAUSED=1
done_twice () { [ "$(grep -c 'task done' "$T_DIR/peer-a.log")" -ge 2 ]; }
check "the peer finished the task while the ledger was paused" wait_for 60 done_twice
wait "$PID_gamer"
check "the gamer's run ended" true
check "the gamer was told timeout" grep -q '"code": *"timeout"' "$T_DIR/gamer.out"
task=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["task_id"])' \
       "$T_DIR/gamer.out" 2>/dev/null)
check "the reply named the task ($task)" test -n "$task"
check "the gateway's guard answered it" grep -q "task timed out task=$task" "$T_DIR/gateway.log"
resume_ledger

settled () { [ "$(sql "SELECT count(*) FROM tasks WHERE task_id = '$task'")" = 1 ]; }
refunded () { [ "$(sql "SELECT count(*) FROM refunds WHERE task_id = '$task'")" = 1 ]; }
check "the settlement that raced the failure committed once the ledger resumed" wait_for 60 settled
check "... and was refunded" wait_for 30 refunded
check "the failure is recorded with its code" \
    test "$(sql "SELECT code FROM failed_tasks WHERE task_id = '$task'")" = timeout
charge=$(sql "SELECT gamer_charge_pico FROM tasks WHERE task_id = '$task'")
check "the task had a charge to refund ($charge)" test "${charge:-0}" -gt 0
check "the refund is the whole charge" \
    test "$(sql "SELECT amount_pico FROM refunds WHERE task_id = '$task'")" = "$charge"
check "the gamer's balance is as if the task never ran" test "$(balance late)" = "$before"
check "the peer kept its earning" \
    test "$(sql "SELECT count(*) FROM reversals WHERE task_id = '$task'")" = 0
gw_acked () { grep -q "failed task refunded task=$task" "$T_DIR/gateway.log"; }
check "the ledger acknowledged the failure to the gateway" wait_for 60 gw_acked
check "p2c2r-ctl audit passes" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
# a refund that no longer matches its task and its transaction (triggers
# bypassed on purpose): the audit names it
psql "$T_DB" -qAt -v ON_ERROR_STOP=1 -c "SET session_replication_role = replica;
    UPDATE refunds SET amount_pico = amount_pico - 1 WHERE task_id = '$task'" >/dev/null
refund_bad () {
    { env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" --json audit || true; } \
        | jq -e 'any(.problems[]; .check == "refunds")' >/dev/null
}
check "a refund that disagrees with its task: the audit names it (refunds)" refund_bad
t_report
