#!/usr/bin/env bash
# One thousand tasks through every real process: 2 peers, 2 gamers, a real
# PostgreSQL. Every task gets exactly one reply with the right hash; the books
# balance; nothing is settled twice; and after kill -9 of a peer mid-run its
# tasks are reassigned, complete, and are paid to the peer that did them.
. "$(dirname "$0")/lib.sh"

SCHED_ARGS="--status-interval-ms 500"     # its status line shows reassignments
start_stack || { t_report; exit 1; }
peer peer-a --slots 2
peer peer-b --slots 2
wait_peers peer-a peer-b

N=500               # tasks per gamer
ITER=20000          # long enough that tasks are in flight when a peer dies
for g in 1 2; do
  spawn_out gamer-$g "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id "gamer-$g" \
      --task encryption --params "{\"data\":\"g$g-{i}\",\"iterations\":$ITER}" \
      --count $N --concurrency 16 --json --timeout-s 300
done

# Kill peer-a hard once it has done some work and gamers are still waiting
peer_a_did_50 () { [ "$(grep -c 'task done' "$T_DIR/peer-a.log" 2>/dev/null)" -ge 50 ]; }
gamers_running () { kill -0 "$PID_gamer_1" 2>/dev/null && kill -0 "$PID_gamer_2" 2>/dev/null; }
wait_for 120 peer_a_did_50
check "peer-a completed tasks before being killed" peer_a_did_50
check "the gamers were still running when peer-a was killed" gamers_running
kill -9 "$PID_peer_a"
killed_at=$(grep -c 'task done' "$T_DIR/peer-a.log")

for g in 1 2; do
  pid_var=PID_gamer_$g
  wait "${!pid_var}"
  check "gamer-$g exits 0 (every task answered once)" test $? = 0
done

reassigned () {
  grep -o 'reassigned=[0-9]*' "$T_DIR/scheduler.log" | tail -1 | grep -q 'reassigned=[1-9]'
}
wait_for 5 reassigned
check "the scheduler reassigned the tasks peer-a held when it died" reassigned
python3 "$(dirname "$0")/verify_skeleton.py" "$T_DIR" "$N" "$ITER" "$killed_at"
rc=$?
check "books, results and payments verified (verify_skeleton.py)" test $rc = 0

# The summary the gamer printed (tasks/s, p50/p99), for the record
grep -h -A3 -i 'summary' "$T_DIR"/gamer-*.log | sed 's/^/    /' || true
t_report
