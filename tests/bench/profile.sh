#!/usr/bin/env bash
# Where the CPU goes: runs the real stack at concurrency 256 and prints the
# CPU time each process spent per task (user+system from /proc), so the
# process that bounds throughput on this 2-core machine is plain to see.
#   tests/bench/profile.sh [TASKS]
set -uo pipefail
cd "$(dirname "$0")/../.."
export P2C2R_ROOT=$PWD
N=${1:-20000}
. tests/e2e/lib.sh
start_stack || exit 1
spawn peer-a "$BIN/p2c2r-agent" peer --server "$SERVER" --peer-id prof-a
spawn peer-b "$BIN/p2c2r-agent" peer --server "$SERVER" --peer-id prof-b
wait_for 20 grep -q 'peer: registered' "$T_DIR/peer-b.log"

# CPU ticks of a pid and all its descendants
ticks () {
  python3 - "$@" <<'PY'
import os, sys
roots = {int(p) for p in sys.argv[1:]}
procs = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            procs[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))
        except (OSError, IndexError):
            pass
tot = 0
for pid, (ppid, t) in procs.items():
    p, seen = pid, 0
    while p and seen < 64:
        if p in roots:
            tot += t
            break
        p = procs.get(p, (0, 0))[0]
        seen += 1
print(tot)
PY
}
PGPID=$(head -1 "$P2C2R_TEST_PGDIR/data/postmaster.pid" 2>/dev/null)
names=(broker gateway scheduler ledger peers postgres)
pids=("$PID_broker" "$PID_gateway" "$PID_scheduler" "$PID_ledger" "$PID_peer_a $PID_peer_b" "$PGPID")
declare -a before
for i in "${!names[@]}"; do before[$i]=$(ticks ${pids[$i]}); done
out=$("$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id prof --task encryption \
      --params '{"data":"prof-{i}","iterations":1}' --count "$N" --concurrency 256 --quiet --timeout-s 300 2>&1)
echo "$out" | grep summary
hz=$(getconf CLK_TCK)
echo "CPU per task (microseconds), $N tasks at concurrency 256:"
for i in "${!names[@]}"; do
  after=$(ticks ${pids[$i]})
  printf '  %-10s %8.1f\n' "${names[$i]}" "$(python3 -c "print(($after - ${before[$i]}) / $hz * 1e6 / $N)")"
done
