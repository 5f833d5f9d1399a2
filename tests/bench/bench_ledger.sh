#!/usr/bin/env bash
# Settlement throughput of the real ledger: a private PostgreSQL cluster
# (deploy/local/pg.sh: fsync and synchronous_commit on), a broker and one
# p2c2r-ledger on free ports, and build/bench/ledger_load standing in for
# the scheduler. Each run settles 100,000 new tasks (every ack checked
# against p2c_money_split); then one run at concurrency 1 (window 1: one
# task per batch, the latency a lone task pays for its settlement). The last
# two lines are the median of the 3 runs and the median latency at c1:
#   ledger_settlements_per_s N
#   ledger_single_settle_p50_ms L
# Each run also prints the CPU time (user+system, /proc) that PostgreSQL
# (all of the cluster's processes) and the ledger spent per task, which the
# other processes on the machine disturb less than the rates:
#   cpu_us_per_task postgres=P backends=B ledger=L
# (B: the ledger's own connections, P: the whole cluster)
# Options through the environment: TASKS (100000), RUNS (3), C1_TASKS (2000),
# LEDGER_ARGS (extra p2c2r-ledger flags, e.g. "--db-workers 1").
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TASKS=${TASKS:-100000}
RUNS=${RUNS:-3}
C1_TASKS=${C1_TASKS:-2000}
[ -x build/bench/ledger_load ] || make --no-print-directory build/bench/ledger_load >/dev/null
[ -x bin/p2c2r-ledger ] && [ -x bin/p2c2r-broker ] || make --no-print-directory bin/p2c2r-ledger bin/p2c2r-broker >/dev/null

free_port () {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
DIR=$(mktemp -d /tmp/p2c2r-bench-ledger.XXXXXX)
chmod 0755 "$DIR"       # the cluster may belong to another user (pg.sh as root)
PIDS=()
cleanup () {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  deploy/local/pg.sh stop "$DIR/pg" >/dev/null 2>&1
  rm -rf "$DIR"
}
trap cleanup EXIT

PGPORT=$(free_port)
deploy/local/pg.sh start "$DIR/pg" "$PGPORT" || { echo "bench_ledger: PostgreSQL did not start"; exit 1; }
export P2C2R_DB
P2C2R_DB=$(deploy/local/pg.sh conninfo "$DIR/pg" "$PGPORT")
BROKER=tcp://127.0.0.1:$(free_port)
bin/p2c2r-broker --bind "$BROKER" >"$DIR/broker.log" 2>&1 &
PIDS+=($!)
# shellcheck disable=SC2086
bin/p2c2r-ledger --broker "$BROKER" --sql-dir "$ROOT/ledger/sql" ${LEDGER_ARGS:-} >"$DIR/ledger.log" 2>&1 &
PIDS+=($!)
# CPU ticks of pids and all their descendants (with ONLY=text: only the
# processes whose command line holds text, e.g. PostgreSQL's client backends)
ticks () {
  ONLY=${ONLY:-} python3 - "$@" <<'PY'
import os, sys
roots = {int(p) for p in sys.argv[1:]}
only = os.environ.get("ONLY", "")
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
    if only:
        try:
            if only not in open(f"/proc/{pid}/cmdline").read():
                continue
        except OSError:
            continue
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
PGPID=$(head -1 "$DIR/pg/data/postmaster.pid")
LEDPID=${PIDS[1]}
# The ledger's connections (the backends that run the settlements) and the
# whole cluster (with the WAL writer, checkpointer, autovacuum)
snap () {
  echo "$(ticks "$PGPID") $(ONLY=local ticks "$PGPID") $(ticks "$LEDPID")"
}
# Prints the CPU per task since the snapshot in $1, of $2 tasks
cpu_per_task () {
  python3 -c "import sys
a = [int(x) for x in sys.argv[1].split()]; b = [int(x) for x in sys.argv[2].split()]
f = 1e6 / int(sys.argv[3]) / int(sys.argv[4])
print('cpu_us_per_task postgres=%.1f backends=%.1f ledger=%.1f' % tuple((y - x) * f for x, y in zip(a, b)))" \
    "$1" "$(snap)" "$(getconf CLK_TCK)" "$2"
}
echo "bench_ledger: synchronous_commit=$(psql "$P2C2R_DB" -qAtc 'SHOW synchronous_commit') fsync=$(psql "$P2C2R_DB" -qAtc 'SHOW fsync') tasks=$TASKS runs=$RUNS"

rates=()
for run in $(seq "$RUNS"); do
  s0=$(snap)
  out=$(build/bench/ledger_load --broker "$BROKER" --tasks "$TASKS" --prefix "run$run" \
        --gamers 100 --peers 100 --window 20000 --retry-ms 30000 2>"$DIR/load-$run.log")
  rc=$?
  echo "$out"
  if [ $rc != 0 ]; then
    echo "bench_ledger: run $run failed (exit $rc)"; tail -5 "$DIR/load-$run.log"; tail -5 "$DIR/ledger.log"
    exit 1
  fi
  cpu_per_task "$s0" "$TASKS"
  rates+=("$(sed -n 's/.*settlements_per_s=\([0-9]*\).*/\1/p' <<<"$out")")
done
s0=$(snap)
out=$(build/bench/ledger_load --broker "$BROKER" --tasks "$C1_TASKS" --prefix c1 \
      --gamers 10 --peers 10 --window 1 --retry-ms 30000 2>"$DIR/load-c1.log")
rc=$?
echo "$out"
if [ $rc != 0 ]; then
  echo "bench_ledger: c1 run failed (exit $rc)"; tail -5 "$DIR/load-c1.log"; tail -5 "$DIR/ledger.log"
  exit 1
fi
cpu_per_task "$s0" "$C1_TASKS"
c1=$(sed -n 's/.*latency_p50_ms=\([0-9.]*\).*/\1/p' <<<"$out")
settled=$(psql "$P2C2R_DB" -qAtc "SELECT COUNT(*) FROM tasks")
want=$((TASKS * RUNS + C1_TASKS))
[ "$settled" = "$want" ] || { echo "bench_ledger: $settled tasks in the database, want $want"; exit 1; }
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "ledger_settlements_per_s $median"
echo "ledger_single_settle_p50_ms $c1"
