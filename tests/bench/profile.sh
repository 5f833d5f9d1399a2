#!/usr/bin/env bash
# Where the CPU goes: runs the real stack at concurrency 256 and prints the
# CPU time each process spent per task (user+system from /proc), so the
# process that bounds throughput on this 2-core machine is plain to see.
#   [PEER_ARGS="--worker-queue 4"] tests/bench/profile.sh [TASKS] [CONCURRENCY]
# The gamer (the load generator) is on this machine too: its CPU is shown,
# and counted in the total.
set -uo pipefail
cd "$(dirname "$0")/../.."
export P2C2R_ROOT=$PWD
N=${1:-20000}
C=${2:-256}
# PARAMS without {i} makes every task after the first a cache hit: the
# round trip without a peer or the ledger
DEFAULT_PARAMS='{"data":"prof-{i}","iterations":1}'
PARAMS=${PARAMS:-$DEFAULT_PARAMS}
. tests/e2e/lib.sh
start_stack || exit 1
spawn peer-a "$BIN/p2c2r-agent" peer --server "$SERVER" --peer-id prof-a ${PEER_ARGS:-}
spawn peer-b "$BIN/p2c2r-agent" peer --server "$SERVER" --peer-id prof-b ${PEER_ARGS:-}
wait_for 20 grep -q 'peer: registered' "$T_DIR/peer-b.log"
# the peers time their kernels at start (about a second of CPU each, unless
# cached): measured load must not include it
for p in peer-a peer-b; do
  wait_for 60 grep -q 'peer: kernel speeds' "$T_DIR/$p.log"
done

. tests/bench/cpu.sh
cpu_start "$PID_peer_a" "$PID_peer_b"
out=$("$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id prof --task encryption \
      --params "$PARAMS" --count "$N" --concurrency "$C" --quiet --timeout-s 300 2>&1)
cpu_stop "$N" > "$T_DIR/cpu"
echo "$out" | grep summary
echo "CPU per task (microseconds), $N tasks at concurrency $C:"
while read -r name us; do printf '  %-10s %8.1f\n' "$name" "$us"; done < "$T_DIR/cpu"
awk '$1 == "total" && $2 > 0 {printf "  (the 2 cores allow at most %.0f tasks/s at this cost)\n", 2e6 / $2}' "$T_DIR/cpu"
