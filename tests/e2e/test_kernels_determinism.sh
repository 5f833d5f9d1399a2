#!/usr/bin/env bash
# Determinism through the real stack: every kernel, the same input, gives
# byte-equal results (result JSON and image) across runs, and across a peer
# with --slots 1 and one with --slots 4 (tasks run 4 at once). Each submit
# carries a "nonce" field no kernel reads, so that no result cache can
# answer in place of a peer.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_CACHE_HOME=$T_DIR/cache
N=4
python3 "$HERE/kernels_check.py" png 48 27 "$T_DIR/frame.png"
TYPES=$(python3 "$HERE/kernels_check.py" list | grep -vxE 'hash|ai_npc_dialogue|raytracing_reflections|upscale')

start_stack --starting-credit-pico 1000000000000 || { t_report; exit 1; }   # $1 of credit per gamer

run_phase () {      # run_phase TAG: N tasks of every type, N at once
  local tag=$1 t extra
  for t in $TYPES; do
    extra=()
    [ "$t" = frame_upscale ] && extra=(--payload-file "$T_DIR/frame.png")
    "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id det --task "$t" \
        --params "$(python3 "$HERE/kernels_check.py" params "$t" "$tag-{i}")" --count $N \
        --concurrency $N --json --timeout-s 120 "${extra[@]}" >"$T_DIR/$tag-$t.jsonl" 2>"$T_DIR/$tag-$t.log"
    python3 "$HERE/kernels_check.py" digests "$T_DIR/$tag-$t.jsonl" >"$T_DIR/$tag-$t.dig"
  done
}

peer det-1 --slots 1 --no-bench
wait_for 30 grep -q 'peer: registered' "$T_DIR/det-1.log"
run_phase s1
kill "$PID_det_1"
wait_for 10 bash -c "! kill -0 $PID_det_1"
peer det-4 --slots 4 --no-bench
wait_for 30 grep -q 'peer: registered' "$T_DIR/det-4.log"
run_phase s4

for t in $TYPES; do
  check "$t: $N ok results with --slots 1 and with --slots 4" \
      test "$(wc -l <"$T_DIR/s1-$t.dig")" = $N -a "$(wc -l <"$T_DIR/s4-$t.dig")" = $N
  check "$t: equal bytes across $N runs" \
      test "$(cut -d' ' -f2,3 "$T_DIR/s1-$t.dig" | sort -u | wc -l)" = 1
  check "$t: equal bytes with 1 slot and with 4" \
      test "$(cut -d' ' -f2,3 "$T_DIR/s1-$t.dig" "$T_DIR/s4-$t.dig" | sort -u | wc -l)" = 1
done
check "the 4-slot peer ran tasks at once" grep -q 'slots=4' "$T_DIR/det-4.log"
check "every task was done by a peer, none by a cache" \
    bash -c "! grep -h '\"cached\":true' $T_DIR/s1-*.jsonl $T_DIR/s4-*.jsonl"
t_report
