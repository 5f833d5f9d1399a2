#!/usr/bin/env bash
# Settlement survives faults through the real processes: two peers and two
# gamers run a few hundred tasks each through broker, gateway, scheduler and
# ledger; mid-run the ledger is killed with -9 and a new one started, later
# PostgreSQL is restarted. Afterwards every task got exactly one reply with
# the right hash, every answered task is settled exactly once with the cost
# the gamer saw, the journal balances, `p2c2r-ctl audit` passes, and the
# scheduler's status line shows that its settle retries carried the tasks
# through each outage. Restarts the test cluster (tests/run.sh runs the e2e
# tests one at a time; alone, lib.sh gives us a private cluster).
. "$(dirname "$0")/lib.sh"

# The cluster must never stay stopped, whatever ends this script
PG_STOPPED=0
pg_up_again () {
  if [ "$PG_STOPPED" = 1 ]; then
    "$ROOT/deploy/local/pg.sh" start "$P2C2R_TEST_PGDIR" "$P2C2R_TEST_PGPORT" >/dev/null 2>&1 \
      && PG_STOPPED=0
  fi
}
trap 'pg_up_again; t_cleanup' EXIT
trap 'exit 143' TERM INT

SCHED_ARGS="--status-interval-ms 500"     # its status line shows settle_retries
start_stack || { t_report; exit 1; }
LEDGER_CMD=(env P2C2R_DB="$T_DB" "$BIN/p2c2r-ledger" --broker "$BROKER" --sql-dir "$ROOT/ledger/sql"
            --starting-credit-pico "${STARTING_CREDIT_PICO:-1000000000000}")
peer peer-a --slots 2
peer peer-b --slots 2
wait_peers peer-a peer-b || { T_FAIL=$((T_FAIL + 1)); t_report; exit 1; }

N=${STACK_FAULTS_N:-300}     # tasks per gamer
ITER=${STACK_FAULTS_ITER:-14000}   # about 20 s of work on two 2-slot peers
# Results are released only after settlement, so tasks wait out each outage:
# deadlines and the gamers' bound leave room for that
for g in 1 2; do
  spawn_out gamer-$g "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id "gamer-$g" \
      --task encryption --params "{\"data\":\"sf$g-{i}\",\"iterations\":$ITER}" \
      --count "$N" --concurrency 12 --deadline-ms 180000 --json --timeout-s 600
done

# gamers' tasks settled so far (ids with '#' are validation runs, paid apart)
settled () { sql "SELECT COUNT(*) FROM tasks WHERE task_id NOT LIKE '%#%'" 2>/dev/null || echo -1; }
settled_at_least () { [ "$(settled)" -ge "$1" ]; }
gamers_running () { kill -0 "$PID_gamer_1" 2>/dev/null && kill -0 "$PID_gamer_2" 2>/dev/null; }
retries () {     # settle_retries of the scheduler's last status line
  grep -o 'settle_retries=[0-9]*' "$T_DIR/scheduler.log" | tail -1 | cut -d= -f2 | grep . || echo 0
}
retries_above () { [ "$(retries)" -gt "$1" ]; }
pg_answers () { psql "$T_DB" -qAt -c 'SELECT 1' >/dev/null 2>&1; }
TOTAL=$((2 * N))

# --- (1) kill -9 of the ledger once a quarter of the tasks are settled
wait_for 180 settled_at_least $((TOTAL / 4))
before=$(settled)
check "a quarter of the tasks were settled before the ledger was killed ($before)" \
    test "$before" -ge $((TOTAL / 4))
check "the gamers were still running when the ledger was killed" gamers_running
retries_before_kill=$(retries)
kill -9 "$PID_ledger"
wait "$PID_ledger" 2>/dev/null
check "the ledger is gone" bash -c "! kill -0 $PID_ledger 2>/dev/null"
sleep 3                          # the outage: settlements go unacknowledged meanwhile
spawn ledger2 "${LEDGER_CMD[@]}"
check "a new ledger connected to the database" wait_for 20 grep -q 'store: connected' "$T_DIR/ledger2.log"
check "settlements resumed with the new ledger" wait_for 60 settled_at_least $((before + 1))
check "the scheduler resent the settlements the dead ledger never acknowledged" \
    wait_for 10 retries_above "$retries_before_kill"

# --- (2) PostgreSQL restart once 60% of the tasks are settled
wait_for 180 settled_at_least $((TOTAL * 6 / 10))
before=$(settled)
check "60% of the tasks were settled before PostgreSQL was stopped ($before)" \
    test "$before" -ge $((TOTAL * 6 / 10))
check "the gamers were still running when PostgreSQL was stopped" gamers_running
retries_before_pg=$(retries)
PG_STOPPED=1
"$ROOT/deploy/local/pg.sh" stop "$P2C2R_TEST_PGDIR"
check "PostgreSQL is down" bash -c "! psql '$T_DB' -qAt -c 'SELECT 1' >/dev/null 2>&1"
sleep 3                          # the outage: the ledger's batches fail meanwhile
"$ROOT/deploy/local/pg.sh" start "$P2C2R_TEST_PGDIR" "$P2C2R_TEST_PGPORT" && PG_STOPPED=0
check "PostgreSQL is back" wait_for 20 pg_answers
db_down_seen () { grep -q -E 'store: connection lost|database down|batch not committed' "$T_DIR/ledger2.log"; }
check "the ledger saw the database go away" db_down_seen
reconnected () { [ "$(grep -c 'store: connected' "$T_DIR/ledger2.log")" -ge 2 ]; }
check "the ledger reconnected by itself" wait_for 60 reconnected
check "settlements resumed after the restart" wait_for 60 settled_at_least $((before + 1))
check "the scheduler resent the settlements lost in the outage" \
    wait_for 30 retries_above "$retries_before_pg"

for g in 1 2; do
  pid_var=PID_gamer_$g
  wait "${!pid_var}"
  check "gamer-$g exits 0 (every task answered once)" test $? = 0
done
check "the ledger stayed up through the database restart" kill -0 "$PID_ledger2"

# The scheduler's own figures (/api/stats): every task delivered, and no
# settlement, validation run or treasury payout still in flight, so the
# books below are final
sched_idle () {
  python3 - "$GW_ADMIN" "$T_DIR/stats.json" "$TOTAL" <<'PY'
import os, json, sys, urllib.request
text = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/stats", headers={"Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()}), timeout=5).read()
open(sys.argv[2], "wb").write(text)
s = json.loads(text)["scheduler"] or {}
idle = all(s.get(k, 0) == 0 for k in ("running", "validating", "settling", "queue_depth",
                                       "slots_busy", "validation_payouts_pending"))
sys.exit(0 if idle and s.get("completed") == int(sys.argv[3]) else 1)
PY
}
check "the scheduler delivered all $TOTAL tasks and has nothing left to settle" wait_for 60 sched_idle
echo "    scheduler: $(grep -o 'completed=[0-9]*.*settle_retries=[0-9]*' "$T_DIR/scheduler.log" | tail -1)"

python3 "$(dirname "$0")/stack_faults_verify.py" "$T_DIR" "$N" "$ITER" "$T_DIR/stats.json"
rc=$?
check "results, settlements and books verified (stack_faults_verify.py)" test $rc = 0
check "p2c2r-ctl audit passes" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
t_report
