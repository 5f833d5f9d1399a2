#!/usr/bin/env bash
# Settlement survives faults with nothing lost and nothing doubled: kill -9
# of the ledger mid-load, a PostgreSQL restart mid-load, two ledger
# processes answering the same stream (every request sent twice), and a full
# replay. The load generator stands in for the scheduler: it resends every
# request left unacknowledged (as the scheduler's retries do) and exits 0
# only when each task was acked with p2c_money_split's amounts. After each
# fault the books must show each task exactly once and `p2c2r-ctl audit`
# must pass. Runs its own PostgreSQL cluster, since it restarts it.
. "$(dirname "$0")/lib.sh"

P2C2R_TEST_PGDIR=""             # t_db starts a private cluster we may restart
t_db
LOAD=$ROOT/build/bench/ledger_load
[ -x "$LOAD" ] || make -C "$ROOT" --no-print-directory build/bench/ledger_load >/dev/null
bport=$(free_port)
# the ledger as its role, the owner's conninfo for migrations; ctl reads as the reader
export P2C2R_BROKER=tcp://127.0.0.1:$bport P2C2R_DB=$T_READER_DB
LEDGER_ENV=(env P2C2R_DB="$T_LEDGER_DB" P2C2R_OWNER_DB="$T_DB")
spawn broker "$BIN/p2c2r-broker" --bind "$P2C2R_BROKER"
spawn ledger1 "${LEDGER_ENV[@]}" "$BIN/p2c2r-ledger" --sql-dir "$ROOT/ledger/sql"
wait_for 20 sql "SELECT 1 FROM rates" || { echo "FAIL the ledger never migrated"; T_FAIL=1; t_report; exit 1; }

settled () { sql "SELECT COUNT(*) FROM tasks WHERE task_id LIKE '$1-%'"; }
at_least () { [ "$(settled "$1")" -ge "$2" ]; }
audit_ok () { "$BIN/p2c2r-ctl" audit >"$T_DIR/audit-$1.out" 2>&1; }
# load NAME PREFIX TASKS [ARGS...]: in the background, summary in NAME.out
load () {
  local name=$1 prefix=$2 tasks=$3; shift 3
  spawn_out "$name" "$LOAD" --broker "$P2C2R_BROKER" --prefix "$prefix" --tasks "$tasks" \
      --gamers 20 --peers 20 --window 10000 --retry-ms 1500 --timeout-s 240 "$@"
}
finished () {   # finished NAME: waits for the load's exit, returns its status
  local pid_var=PID_${1//-/_}
  wait "${!pid_var}"
}

# --- kill -9 of the ledger mid-load; a new ledger takes over
N=100000
load load-kill k $N
wait_for 60 at_least k 10000
before=$(settled k)
check "the load was under way when the ledger was killed ($before settled)" test "$before" -ge 10000 -a "$before" -lt $N
kill -9 "$PID_ledger1"
# (two database workers here, so batches overlapping in the database are tested)
spawn ledger2 "${LEDGER_ENV[@]}" "$BIN/p2c2r-ledger" --sql-dir "$ROOT/ledger/sql" --db-workers 2
finished load-kill; rc=$?
check "every task acked with the right amounts after kill -9 ($(cat "$T_DIR/load-kill.out"))" test $rc = 0
check "each task settled exactly once" test "$(settled k)" = $N
check "one settle transaction per task" test "$(sql "SELECT COUNT(*) FROM journal_tx WHERE task_id LIKE 'k-%'")" = $N
check "audit passes after kill -9" audit_ok kill

# --- PostgreSQL restart mid-load
N=100000
load load-pg p $N
wait_for 60 at_least p 10000
before=$(settled p)
check "the load was under way when PostgreSQL stopped ($before settled)" test "$before" -ge 10000 -a "$before" -lt $N
"$ROOT/deploy/local/pg.sh" stop "$T_OWN_PG"
check "PostgreSQL is down" bash -c "! psql '$T_DB' -qAt -c 'SELECT 1' >/dev/null 2>&1"
sleep 1                          # the ledger's batches fail meanwhile: the outage
"$ROOT/deploy/local/pg.sh" start "$T_OWN_PG" "$P2C2R_TEST_PGPORT"
check "PostgreSQL is back" wait_for 10 sql "SELECT 1"
finished load-pg; rc=$?
check "every task acked after the restart ($(cat "$T_DIR/load-pg.out"))" test $rc = 0
check "the ledger reconnected by itself" grep -q 'store: connected' <(tail -n +5 "$T_DIR/ledger2.log")
check "each task settled exactly once" test "$(settled p)" = $N
check "audit passes after the restart" audit_ok pg

# --- two ledgers on the same stream: every request twice, round robin
spawn ledger3 "${LEDGER_ENV[@]}" "$BIN/p2c2r-ledger" --sql-dir "$ROOT/ledger/sql" --db-workers 3
wait_for 20 grep -q 'store: connected' "$T_DIR/ledger3.log"
N=40000
load load-two d $N --dup
finished load-two; rc=$?
out=$(cat "$T_DIR/load-two.out")
check "every task acked with two ledgers ($out)" test $rc = 0
dups=$(sed -n 's/.*dup_acks=\([0-9]*\).*/\1/p' <<<"$out")
check "both ledgers answered the duplicates (dup_acks=$dups)" test "${dups:-0}" -ge $((N / 2))
check "no task settled twice" test "$(settled d)" = $N
check "audit passes with two ledgers" audit_ok two

# --- replay everything: nothing changes
sum_before=$(sql "SELECT SUM(cost_usd) FROM tasks")
count_before=$(sql "SELECT COUNT(*) FROM journal_entries")
load load-replay k 100000
finished load-replay; rc=$?
check "a full replay is acked with the stored amounts" test $rc = 0
check "the replay wrote no entry" test "$(sql "SELECT COUNT(*) FROM journal_entries")" = "$count_before"
check "and changed no sum" test "$(sql "SELECT SUM(cost_usd) FROM tasks")" = "$sum_before"
check "the ledger sent the scheduler balance updates" test "$(sed -n 's/.*balance_updates=\([0-9]*\).*/\1/p' "$T_DIR/load-kill.out")" -gt 0
t_report
