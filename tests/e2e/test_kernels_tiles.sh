#!/usr/bin/env bash
# Full-HD frames across peers (issue 12): a ray-tracing frame above the
# scheduler's --tile-px runs as tiles on several peers and comes back as one
# reply whose PNG is byte-identical to a single-peer render of the same
# frame (here 320x240, which one peer can do: asked with a tile covering the
# whole frame, which the scheduler does not split), with the tiles' cost
# summed; each tile is settled on its own; the frame is cached as a whole;
# a frame whose tiles cannot finish gets one error and costs nothing.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_CACHE_HOME=$T_DIR/cache

SCHED_ARGS="--tile-px 20000"            # 320x240 = 76800 pixels: 4 tiles
start_stack || { t_report; exit 1; }
peer tile-a --slots 2 --no-bench
peer tile-b --slots 2 --no-bench
wait_peers tile-a tile-b

submit () {     # submit NAME TYPE PARAMS [GAMER]: one task, its --json line in NAME.json
  "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id "${4:-tiler}" --task "$2" --params "$3" \
      --count 1 --json --timeout-s 60 >"$T_DIR/$1.json" 2>"$T_DIR/$1.err"
}
same () {       # same SPLIT WHOLE: equal PNG bytes; equal result JSON but for "tile"
  python3 - "$T_DIR/$1.json" "$T_DIR/$2.json" <<'PY'
import hashlib, json, sys
a, b = (json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[1:3])
whole = dict(b["result"]); whole.pop("tile", None)
text = json.dumps(whole, sort_keys=True, separators=(",", ":"))
ok = (a["ok"] and b["ok"] and a["blob_sha256"] == b["blob_sha256"] and a["blob_bytes"] > 0
      and a["result"] == whole and a["result_sha256"] == hashlib.sha256(text.encode()).hexdigest())
print(a.get("blob_sha256"), b.get("blob_sha256"), a.get("result"), whole)
sys.exit(0 if ok else 1)
PY
}
field () { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' "$T_DIR/$1.json" "$2"; }

for t in rt_reflections rt_shadows rt_global_illumination; do
  case $t in
    rt_reflections) p='"resolution":[320,240],"bounces":2,"lights":2' ;;
    rt_shadows) p='"resolution":[320,240],"lights":3,"samples_per_pixel":2' ;;
    rt_global_illumination) p='"resolution":[320,240],"bounces":2,"samples_per_pixel":4' ;;
  esac
  submit "$t-split" $t "{$p}"
  submit "$t-whole" $t "{$p,\"tile\":[0,0,320,240]}"
  check "$t 320x240 split into tiles equals the single-peer render, byte for byte" same "$t-split" "$t-whole"
done
check "the scheduler split each frame into 4 tiles" \
    test "$(grep -c 'frame split id=.* tiles=4 size=320x240' "$T_DIR/scheduler.log")" = 3
check "and delivered each as one frame" test "$(grep -c 'frame done id=.* tiles=4' "$T_DIR/scheduler.log")" = 3
check "the tiles ran on both peers" bash -c "grep -q '#t' '$T_DIR/tile-a.log' && grep -q '#t' '$T_DIR/tile-b.log'"
id=$(field rt_reflections-split task_id)
check "each tile was settled on its own (4 task rows id#t0..3)" \
    test "$(sql "SELECT count(*) FROM tasks WHERE task_id IN ('$id#t0','$id#t1','$id#t2','$id#t3')")" = 4
check "each tile was checked on its own (new peers: every tile; agreeing checks paid by the treasury)" \
    test "$(sql "SELECT count(*) FROM tasks WHERE task_id LIKE '$id#t_#c_'")" -ge 1
charged=$(sql "SELECT sum(gamer_charge_pico) FROM tasks WHERE task_id IN ('$id#t0','$id#t1','$id#t2','$id#t3')")
cost=$(field rt_reflections-split cost_pico)
check "the reply's cost is the sum of the tiles' charges" test "$charged" = "$cost"
check "and not nothing" test "${cost:-0}" -gt 0

submit again rt_reflections '{"lights":2,"bounces":2,"resolution":[320,240]}'
check "the same frame again is answered from the cache as a whole, free" \
    test "$(field again cached) $(field again cost_pico) $(field again blob_sha256)" = "True 0 $(field rt_reflections-split blob_sha256)"
submit other rt_reflections '{"lights":2,"bounces":2,"resolution":[320,240]}' other-gamer
check "... but not to another gamer while its tiles' checks (spot) may still run: rendered again" \
    test "$(field other ok) $(field other cached) $(field other blob_sha256)" = "True False $(field rt_reflections-split blob_sha256)"

before=$(sql "SELECT count(*) FROM tasks")
submit toomuch rt_reflections '{"resolution":[1920,1080],"bounces":4}'
check "a frame beyond the work budget gets one invalid_params naming the field" \
    test "$(field toomuch code) $(field toomuch error | cut -c1-18)" = "invalid_params samples_per_pixel:"
check "and charges nothing" test "$(sql "SELECT count(*) FROM tasks")" = "$before"
t_report
