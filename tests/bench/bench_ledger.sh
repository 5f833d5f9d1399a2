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
[ -x bin/p2c2r-ledger ] && [ -x bin/p2c2r-broker ] && [ -x bin/p2c2r-ctl ] \
  || make --no-print-directory bin/p2c2r-ledger bin/p2c2r-broker bin/p2c2r-ctl >/dev/null

free_port () {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
DIR=$(mktemp -d /tmp/p2c2r-bench-ledger.XXXXXX)
chmod 0755 "$DIR"       # the cluster may belong to another user (pg.sh as root)
# The bus's keys (docs/trust.md): the caller's (make bench's), or made here
export P2C2R_KEYS=${P2C2R_KEYS:-$DIR/keys}
[ -d "$P2C2R_KEYS/allow" ] || bin/p2c2r-ctl keys init >/dev/null || { echo "bench_ledger: no bus keys"; exit 1; }
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
. tests/bench/cpu.sh
PGPID=$(head -1 "$DIR/pg/data/postmaster.pid")
LEDPID=${PIDS[1]}
# The ledger's connections (the backends that run the settlements) and the
# whole cluster (with the WAL writer, checkpointer, autovacuum)
snap () {
  s_cpu_groups "postgres=$PGPID" "backends=$PGPID@local" "ledger=$LEDPID" | awk '{printf "%s ", $2}'
}
# Prints the CPU per task since the snapshot in $1, of $2 tasks
cpu_per_task () {
  python3 -c "import sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
f = 1e6 / int(sys.argv[3])
print('cpu_us_per_task postgres=%.1f backends=%.1f ledger=%.1f' % tuple((y - x) * f for x, y in zip(a, b)))" \
    "$1" "$(snap)" "$2"
}
# One load: NAME TASKS GAMERS WINDOW; prints its summary and the CPU per
# task, and exits the bench if it failed (saying why on stderr)
load_run () {
  local s0 out rc
  s0=$(snap)
  out=$(build/bench/ledger_load --broker "$BROKER" --tasks "$2" --prefix "$1" \
        --gamers "$3" --peers "$3" --window "$4" --retry-ms 30000 2>"$DIR/load-$1.log")
  rc=$?
  echo "$out"
  if [ $rc != 0 ]; then
    { echo "bench_ledger: run $1 failed (exit $rc)"; tail -5 "$DIR/load-$1.log"; tail -5 "$DIR/ledger.log"; } >&2
    exit 1
  fi
  cpu_per_task "$s0" "$2"
}
echo "bench_ledger: synchronous_commit=$(psql "$P2C2R_DB" -qAtc 'SHOW synchronous_commit') fsync=$(psql "$P2C2R_DB" -qAtc 'SHOW fsync') tasks=$TASKS runs=$RUNS"

rates=()
for run in $(seq "$RUNS"); do
  load_run "run$run" "$TASKS" 100 20000 > "$DIR/run.out"
  cat "$DIR/run.out"
  rates+=("$(sed -n 's/.*settlements_per_s=\([0-9]*\).*/\1/p' "$DIR/run.out")")
done
load_run c1 "$C1_TASKS" 10 1 > "$DIR/run.out"
cat "$DIR/run.out"
c1=$(sed -n 's/.*latency_p50_ms=\([0-9.]*\).*/\1/p' "$DIR/run.out")
settled=$(psql "$P2C2R_DB" -qAtc "SELECT COUNT(*) FROM tasks")
want=$((TASKS * RUNS + C1_TASKS))
[ "$settled" = "$want" ] || { echo "bench_ledger: $settled tasks in the database, want $want"; exit 1; }
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "ledger_settlements_per_s $median"
echo "ledger_single_settle_p50_ms $c1"
