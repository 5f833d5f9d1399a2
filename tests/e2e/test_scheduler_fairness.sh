#!/usr/bin/env bash
# Issue 6, fairness through the real stack: gamer A floods (2000 tasks, 256
# outstanding), gamer B starts after A with 50 tasks, 4 outstanding. B's tasks
# are served between A's (fair queueing across gamers), so B's latencies stay
# near those of a quiet system, far below A's, and B finishes long before A.
# Nobody starves: A also gets every answer.
. "$(dirname "$0")/lib.sh"
start_stack || { t_report; exit 1; }
peer p1 --slots 2
peer p2 --slots 2
wait_peers p1 p2
# 20000 rounds of encryption 2.0.0 are the work 2000 of 1.0.0 were (a round
# is ten times cheaper): enough that A's flood keeps the peers busy
PARAMS='{"data":"%s-{i}","iterations":20000}'

# B on a quiet system, for the baseline
spawn_out quiet "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id quiet --task encryption \
    --params "$(printf "$PARAMS" q)" --count 50 --concurrency 4 --json --timeout-s 120
wait "$PID_quiet"
check "the quiet run answered every task" test $? = 0

spawn_out a "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id gamer-a --task encryption \
    --params "$(printf "$PARAMS" a)" --count 2000 --concurrency 256 --json --timeout-s 400 \
    --deadline-ms 300000
# B starts once A's flood is queued up (A has answers coming in)
wait_for 30 test -s "$T_DIR/a.out"
spawn_out b "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id gamer-b --task encryption \
    --params "$(printf "$PARAMS" b)" --count 50 --concurrency 4 --json --timeout-s 120
wait "$PID_b"
check "gamer B got an answer for every task" test $? = 0
a_running_when_b_done=0
kill -0 "$PID_a" 2>/dev/null && a_running_when_b_done=1
a_done_at_b_end=$(wc -l < "$T_DIR/a.out")
wait "$PID_a"
check "gamer A (the flood) got an answer for every task" test $? = 0
check "B finished while A was still running" test $a_running_when_b_done = 1

check "B's latencies are near a quiet system's and far below A's" \
    python3 - "$T_DIR" "$a_done_at_b_end" <<'PY'
import json, statistics, sys
d, a_at_b_end = sys.argv[1], int(sys.argv[2])
def load(name):
    rows = [json.loads(l) for l in open(f"{d}/{name}.out") if l.startswith("{")]
    return rows, sorted(r["latency_ms"] for r in rows if r["ok"])
q_rows, q = load("quiet"); a_rows, a = load("a"); b_rows, b = load("b")
p50 = lambda v: statistics.median(v) if v else float("inf")
p90 = lambda v: v[int(0.9 * (len(v) - 1))] if v else float("inf")
print(f"quiet p50 {p50(q):.1f} ms p90 {p90(q):.1f}; B p50 {p50(b):.1f} ms p90 {p90(b):.1f}; "
      f"A p50 {p50(a):.1f} ms p90 {p90(a):.1f}; A had {a_at_b_end}/2000 answers when B ended")
ok = len(b) == 50 and len(a) == 2000 and len(q) == 50
ok = ok and p50(b) * 5 <= p50(a)                    # far below the flood's
ok = ok and p50(b) <= 3 * p50(q) + 50               # near a quiet system's
ok = ok and a_at_b_end <= 1500                      # B done long before A
sys.exit(0 if ok else 1)
PY
t_report
