#!/usr/bin/env bash
# Every kernel reached end to end through the real stack (broker, ledger,
# scheduler, gateway, peer, gamer): each of the 13 task types and each of
# the demo's aliases once, with small params; an ok result with the
# expected keys and values; images saved with --out that decode to the
# right size; frame_upscale fed a PNG with --payload-file. Also: the peer
# times its kernels at start, the next start reads them from the cache,
# and registration advertises them (seen by a fake gateway);
# and a worker killed mid-task costs that task only (kernel_error), the
# agent keeps serving.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_CACHE_HOME=$T_DIR/cache      # never the user's own cache

start_stack --starting-credit-pico 1000000000000 || { t_report; exit 1; }   # $1 of credit per gamer
peer peer-k --slots 2
wait_for 30 grep -q 'peer: registered' "$T_DIR/peer-k.log"
wait_for 30 grep -q 'kernel speeds measured' "$T_DIR/peer-k.log"
check "peer timed its kernels at start" grep -q 'kernel speeds measured kernels=13 of=13' "$T_DIR/peer-k.log"
check "and cached the figures" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
k = d["kernels"]
sys.exit(not (len(k) == 13 and all(v["reference_us"] > 0 for v in k.values())))' "$XDG_CACHE_HOME/p2c2r/bench.json"

for name in $(python3 "$HERE/kernels_check.py" list); do
  check "$name through the stack: ok, expected result" \
      python3 "$HERE/kernels_check.py" run "$name" "$BIN/p2c2r-agent" "$SERVER" "$T_DIR/out"
done

# Text mode says where it saved the image too
"$BIN/p2c2r-agent" gamer --server "$SERVER" --task rt_shadows --params '{"resolution":[20,10]}' \
    --out "$T_DIR/text" >"$T_DIR/text.out" 2>&1
check "text output names the saved file" grep -q "saved=$T_DIR/text/0-rt_shadows.png" "$T_DIR/text.out"
check "and that file is a 20x10 PNG" test "$(python3 "$HERE/kernels_check.py" pnginfo "$T_DIR/text/0-rt_shadows.png")" = "20 10"

# A second peer starts from the cache, without timing anything
peer peer-k2 --slots 1
wait_for 30 grep -q 'peer: registered' "$T_DIR/peer-k2.log"
check "a restarted peer reads its speeds from the cache" grep -q 'kernel speeds from cache kernels=13' "$T_DIR/peer-k2.log"
check "and measures nothing" bash -c "! grep -q 'kernel speeds measured' '$T_DIR/peer-k2.log'"
kill "$PID_peer_k2"

# What a peer advertises at registration, read by a fake gateway of the test's own
spawn_out fakegw python3 "$HERE/kernels_fake_gateway.py" "$T_DIR/fakegw.port"
wait_for 10 test -s "$T_DIR/fakegw.port"
spawn peer-adv "$BIN/p2c2r-agent" peer --server "ws://127.0.0.1:$(cat "$T_DIR/fakegw.port")" --peer-id adv
wait "$PID_fakegw"
kill "$PID_peer_adv"
check "the peer advertises 13 kernels with version and reference time" \
    test "$(awk 'NF == 3 && $3 > 0' "$T_DIR/fakegw.out" | wc -l)" = 13
check "the advertised times are the cached figures" python3 -c '
import json, sys
cache = json.load(open(sys.argv[1]))["kernels"]
adv = {l.split()[0]: (l.split()[1], int(l.split()[2])) for l in open(sys.argv[2]) if l.strip()}
sys.exit(not (len(adv) == 13 and all(adv[k] == (v["version"], v["reference_us"]) for k, v in cache.items())))' \
    "$XDG_CACHE_HOME/p2c2r/bench.json" "$T_DIR/fakegw.out"

# Crash isolation through the stack: kill the worker running a long task
spawn_out long "$BIN/p2c2r-agent" gamer --server "$SERVER" --task encryption \
    --params '{"data":"long","iterations":10000000}' --json --timeout-s 60
busy_worker () {     # the worker process of peer-k whose CPU time grows now
  local c t0=() kids
  kids=$(cat /proc/"$PID_peer_k"/task/*/children 2>/dev/null)
  for c in $kids; do t0+=("$(awk '{print $14}' /proc/"$c"/stat 2>/dev/null || echo 0)"); done
  sleep 0.3
  local i=0
  for c in $kids; do
    [ "$(awk '{print $14}' /proc/"$c"/stat 2>/dev/null || echo 0)" -gt "${t0[$i]}" ] && { echo "$c"; return 0; }
    i=$((i + 1))
  done
  return 1
}
wait_for 20 busy_worker
victim=$(busy_worker)
check "a worker is busy with the long task" test -n "$victim"
[ -n "$victim" ] && kill -SEGV "$victim"
wait "$PID_long"
check "the gamer gets kernel_error for the task whose worker crashed" \
    grep -q '"code":"kernel_error"' "$T_DIR/long.out"
check "the peer says the worker crashed" grep -q 'reason="worker crashed: signal 11"' "$T_DIR/peer-k.log"
check "the peer process is still alive" kill -0 "$PID_peer_k"
check "and serves the next task" python3 "$HERE/kernels_check.py" run encryption "$BIN/p2c2r-agent" "$SERVER" "$T_DIR/after"
t_report
