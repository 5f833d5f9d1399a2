#!/usr/bin/env bash
# The peer's one event loop through the real stack: a peer with one worker
# process and --worker-queue 2 advertises two slots and answers every task
# of a concurrent run exactly once, all settled to it; its worker killed
# from outside while idle is replaced without failing a task, and the peer
# serves on; a peer with the default advertises one slot per worker at
# first, and under load as many as keep its worker busy through the round
# trip (agent/agt_depth.h), which the scheduler hears.
. "$(dirname "$0")/lib.sh"
start_stack || { t_report; exit 1; }
peer q2 --slots 1 --worker-queue 2 --no-bench
peer q1 --slots 1 --no-bench
wait_peers q2 q1 || { t_report; exit 1; }
check "the queued peer advertises two slots on one worker" \
    grep -q 'peer: registered id=q2 slots=2 workers=1' "$T_DIR/q2.log"
check "the default is one slot per worker" \
    grep -q 'peer: registered id=q1 slots=1 workers=1' "$T_DIR/q1.log"

"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"loop-{i}","iterations":50}' --count 300 --concurrency 8 --quiet \
    --timeout-s 120 >"$T_DIR/g1.out" 2>&1
check "every task of a concurrent run is answered ok" \
    grep -q 'summary: tasks=300 ok=300 errors=0 missing=0 protocol_errors=0' "$T_DIR/g1.out"
# (spot-check runs, id TASK#cN, come on top)
done_ids () { grep -h -o 'peer: task done id=[^ #]* ' "$T_DIR/q2.log" "$T_DIR/q1.log"; }
check "the peers logged 300 tasks done, each once" \
    test "$(done_ids | sort -u | wc -l)" = 300 -a "$(done_ids | wc -l)" = 300
check "the default peer adapted its queue to the round trip" \
    grep -Eq 'peer: queue per worker ([2-9]|1[0-6]) slots=([2-9]|1[0-6]) ' "$T_DIR/q1.log"
check "and the scheduler heard the new slots" \
    grep -Eq 'peer refreshed .* peer_id=q1 .*slots=([2-9]|1[0-6]) ' "$T_DIR/scheduler.log"
check "the fixed peer kept its two" bash -c "! grep -q 'queue per worker' '$T_DIR/q2.log'"
check "both peers worked" test "$(grep -c 'task done' "$T_DIR/q2.log")" -gt 0 -a "$(grep -c 'task done' "$T_DIR/q1.log")" -gt 0
settled () { sql "SELECT count(*) FROM tasks t JOIN accounts a ON a.id = t.gamer_account WHERE a.name = 'g1'"; }
all_300 () { test "$(settled)" = 300; }
wait_for 10 all_300
check "all 300 settled" test "$(settled)" = 300

# Kill q2's idle worker from outside: the loop sees its socket end
worker=$(pgrep -P "$PID_q2" | head -1)
check "the peer has a worker process" test -n "$worker"
kill -9 "$worker" 2>/dev/null
wait_for 5 grep -q 'worker died while idle' "$T_DIR/q2.log"
check "the peer noticed its idle worker died" grep -q "worker died while idle pid=$worker" "$T_DIR/q2.log"
new_worker () { w=$(pgrep -P "$PID_q2" | head -1); [ -n "$w" ] && [ "$w" != "$worker" ]; }
check "and started a fresh one" wait_for 5 new_worker
# q1 leaves: every task now goes to q2
kill "$PID_q1"
gone () { ! kill -0 "$PID_q1" 2>/dev/null; }
wait_for 10 gone
wait_for 10 grep -q 'peer down.*q1' "$T_DIR/scheduler.log"
"$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g2 --task encryption \
    --params '{"data":"after-{i}","iterations":50}' --count 40 --concurrency 2 --quiet \
    --deadline-ms 20000 --timeout-s 60 >"$T_DIR/g2.out" 2>&1
check "the peer serves on, no task failed" \
    grep -q 'summary: tasks=40 ok=40 errors=0 missing=0' "$T_DIR/g2.out"
check "no task failed on the peer" bash -c "! grep -q 'task failed' '$T_DIR/q2.log'"
check "the peer process is still alive" kill -0 "$PID_q2"
t_report
