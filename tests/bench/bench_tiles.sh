#!/usr/bin/env bash
# Latency of one full-HD frame: the original menu's rt_reflections
# {"resolution":[1920,1080],"bounces":2,"lights":2} through the real stack
# (private PostgreSQL, broker, ledger, scheduler, gateway), rendered whole by
# one peer (a tile covering the frame, which the scheduler does not split),
# then split by the scheduler into tiles (--tile-px default: 4 tiles) across
# 1, 2 and 4 peers of one worker each. Each figure is the median latency
# (submit to reply, as the gamer measures it) of RUNS frames, each with a
# new seed so that no cache answers. On a 2-core machine more than two
# workers cannot render faster than two: the figures say what is measured.
# Validation is off (--validation none): new peers are doubted, so under
# spot every tile would also be run again by another peer, doubling the
# work of the split frames and of no single-peer render (no second peer).
# The last lines:
#   tiles_whole_1_peer_ms X
#   tiles_peers_1_ms X
#   tiles_peers_2_ms X
#   tiles_peers_4_ms X
set -uo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
. tests/e2e/lib.sh
SCHED_ARGS="--validation none"
start_stack || { echo "bench_tiles: the stack did not start" >&2; exit 1; }

median () { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(round(statistics.median(v), 1) if v else "null")' "$@"; }

# frame EXTRA: the latency in ms of one frame (EXTRA: more params), or nothing
frame () {
  "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id tiles-bench --task rt_reflections \
      --params "{\"resolution\":[1920,1080],\"bounces\":2,\"lights\":2,\"seed\":$((RANDOM * 32768 + RANDOM))$1}" \
      --count 1 --json --timeout-s 120 2>/dev/null \
    | python3 -c 'import json,sys
r = json.loads(sys.stdin.read().splitlines()[-1])
if r["ok"] and not r["cached"]: print(r["latency_ms"])'
}

# measure NAME PEERS EXTRA: starts PEERS one-worker peers, times RUNS frames
# (the median in RESULT), stops them
measure () {
  local name=$1 n=$2 extra=$3 k lat=() v
  for k in $(seq "$n"); do
    spawn "tp-$name-$k" "$BIN/p2c2r-agent" peer --server "$SERVER" --peer-id "tp-$name-$k" --slots 1 --no-bench
  done
  for k in $(seq "$n"); do wait_peers "tp-$name-$k" >&2; done
  frame "$extra" >/dev/null       # one to warm up (workers started, pages touched)
  for k in $(seq "$RUNS"); do
    v=$(frame "$extra")
    [ -n "$v" ] && lat+=("$v")
  done
  for k in $(seq "$n"); do
    local pid_var="PID_tp_${name}_$k"
    kill "${!pid_var}" 2>/dev/null; wait "${!pid_var}" 2>/dev/null
  done
  echo "bench_tiles: $name: ${lat[*]}" >&2
  RESULT=$(median "${lat[@]}")
}

measure whole 1 ',"tile":[0,0,1920,1080]'; WHOLE=$RESULT
measure p1 1 ''; P1=$RESULT
measure p2 2 ''; P2=$RESULT
measure p4 4 ''; P4=$RESULT
echo "tiles_whole_1_peer_ms $WHOLE"
echo "tiles_peers_1_ms $P1"
echo "tiles_peers_2_ms $P2"
echo "tiles_peers_4_ms $P4"
