#!/usr/bin/env bash
# make chaos [ROUNDS=N]: nothing lost across faults (issue 15). The real
# processes on a private PostgreSQL: broker, ledger, scheduler, two gateways
# behind HAProxy, two peers and the gamers connecting through HAProxy. Under
# load, each of broker, scheduler, ledger, a gateway, a peer is killed with
# -9 and restarted with the same flags, as a supervisor would, and
# PostgreSQL is restarted, one after another; ROUNDS times. After each a
# row: process, accepted, replies, settled, delivered, reversed (refunded),
# lost (charged, not delivered: must be 0); `p2c2r-ctl audit` must pass and
# the gamers' net charge must equal the cost of the results they received.
# CHAOS_TASKS (per gamer and row), CHAOS_GAMERS, CHAOS_ITER, CHAOS_ONLY (a
# list of processes) shape the load.
. "$(dirname "$0")/../e2e/lib.sh"

ROUNDS=${ROUNDS:-1}
TASKS=${CHAOS_TASKS:-150}
GAMERS=${CHAOS_GAMERS:-2}
ITER=${CHAOS_ITER:-20000}
ONLY=${CHAOS_ONLY:-broker scheduler ledger gateway peer postgres}

PG_STOPPED=0
pg_up_again () {
  if [ "$PG_STOPPED" = 1 ]; then
    "$ROOT/deploy/local/pg.sh" start "$P2C2R_TEST_PGDIR" "$P2C2R_TEST_PGPORT" >/dev/null 2>&1 \
      && PG_STOPPED=0
  fi
}
trap 'pg_up_again; t_cleanup' EXIT
trap 'exit 143' TERM INT

t_db
BPORT=$(free_port)
BROKER=tcp://127.0.0.1:$BPORT
GW1=$(free_port)
GW2=$(free_port)
GW2_ADMIN=$(free_port)
LB=$(free_port)
SERVER=ws://127.0.0.1:$LB
# Each process's command line, the same at every restart
BROKER_CMD=("$BIN/p2c2r-broker" --bind "$BROKER")
LEDGER_CMD=(env P2C2R_DB="$T_DB" "$BIN/p2c2r-ledger" --broker "$BROKER" --sql-dir "$ROOT/ledger/sql"
            --starting-credit-pico 1000000000000)
SCHED_CMD=("$BIN/p2c2r-scheduler" --broker "$BROKER" --status-interval-ms 1000)
gw_cmd () { echo "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$1" \
                 --trusted-proxies 127.0.0.1 --guard-grace-ms 1000; }
peer_cmd () { echo "$BIN/p2c2r-agent" peer --server "$SERVER" --peer-id "$1" --slots 2 --log-tasks; }

N=0         # restarts so far, for log names
start () {  # start NAME COMMAND...: spawned as NAME-<n>, PID in PID_NAME
  local name=$1; shift
  N=$((N + 1))
  spawn "$name-$N" "$@"
  local pv=PID_${name//-/_}_$N
  eval "PID_${name//-/_}=${!pv}"
  eval "LOG_${name//-/_}=$T_DIR/$name-$N.log"
}
start broker "${BROKER_CMD[@]}"
start ledger "${LEDGER_CMD[@]}"
start scheduler "${SCHED_CMD[@]}"
# shellcheck disable=SC2046
start gw1 $(gw_cmd "$GW1")
# shellcheck disable=SC2046
start gw2 $(gw_cmd "$GW2") --admin-listen "127.0.0.1:$GW2_ADMIN"
wait_for 20 healthz "$GW1" && wait_for 20 healthz "$GW2" || { echo "FAIL gateways"; exit 1; }
sed -e "s/^    bind :8765/    bind 127.0.0.1:$LB/" -e "s/^    maxconn .*/    maxconn 2000/" \
    -e "s/server gw1 gateway-1:8765/server gw1 127.0.0.1:$GW1/" \
    -e "s/server gw2 gateway-2:8765/server gw2 127.0.0.1:$GW2/" \
    -e "/server gw3 gateway-3:8765/d" \
    "$ROOT/deploy/haproxy.cfg" >"$T_DIR/haproxy.cfg"
check "the HAProxy config is valid" haproxy -c -q -f "$T_DIR/haproxy.cfg"
spawn haproxy haproxy -db -f "$T_DIR/haproxy.cfg"
ready () { curl -fsS "http://127.0.0.1:$LB/readyz" >/dev/null 2>&1; }
check "the stack is ready behind HAProxy" wait_for 30 ready
# shellcheck disable=SC2046
start peer-a $(peer_cmd peer-a)
# shellcheck disable=SC2046
start peer-b $(peer_cmd peer-b)
registered () { grep -q 'peer: registered' "$1"; }
wait_for 30 registered "$LOG_peer_a" && wait_for 30 registered "$LOG_peer_b" \
  || { echo "FAIL peers never registered"; T_FAIL=$((T_FAIL + 1)); t_report; exit 1; }

# kill -9 of one process and its restart, as a supervisor would
fault () {
  local what=$1 pid
  case $what in
    broker)    pid=$PID_broker;;
    scheduler) pid=$PID_scheduler;;
    ledger)    pid=$PID_ledger;;
    gateway)   pid=$PID_gw1;;
    peer)      pid=$PID_peer_a;;
    postgres)
      PG_STOPPED=1
      "$ROOT/deploy/local/pg.sh" stop "$P2C2R_TEST_PGDIR" >/dev/null 2>&1
      "$ROOT/deploy/local/pg.sh" start "$P2C2R_TEST_PGDIR" "$P2C2R_TEST_PGPORT" >/dev/null 2>&1 \
        && PG_STOPPED=0
      return;;
  esac
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  case $what in
    broker)    start broker "${BROKER_CMD[@]}";;
    scheduler) start scheduler "${SCHED_CMD[@]}";;
    ledger)    start ledger "${LEDGER_CMD[@]}";;
    # shellcheck disable=SC2046
    gateway)   start gw1 $(gw_cmd "$GW1");;
    # shellcheck disable=SC2046
    peer)      start peer-a $(peer_cmd peer-a);;
  esac
}

# The scheduler has nothing in flight, and the row's books stopped moving
sched_idle () {
  python3 - "$GW2_ADMIN" <<'PY'
import json, os, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/stats", headers={
    "Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()})
s = json.loads(urllib.request.urlopen(req, timeout=5).read())["scheduler"] or {}
sys.exit(0 if s and all(s.get(k, 0) == 0 for k in ("running", "validating", "settling", "queue_depth")) else 1)
PY
}
books () { psql "$T_DB" -qAt -c "SELECT (SELECT count(*) FROM tasks) || '/' || (SELECT count(*) FROM refunds) || '/' || (SELECT count(*) FROM failed_tasks)" 2>/dev/null; }
books_still () {  # the same figures over 3 seconds (failures are resent each second)
  local a b
  a=$(books); sleep 1; b=$(books); [ -n "$a" ] && [ "$a" = "$b" ] || return 1
  sleep 2; [ "$(books)" = "$a" ]
}

printf '%-10s %9s %8s %8s %10s %9s %5s\n' process accepted replies settled delivered reversed lost
for round in $(seq "$ROUNDS"); do
  for what in $ONLY; do
    outs=()
    pids=()
    for g in $(seq "$GAMERS"); do
      name=chaos-$round-$what-$g
      spawn_out "$name" "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id "$name" \
          --task encryption --params "{\"data\":\"$name-{i}\",\"iterations\":$ITER}" \
          --count "$TASKS" --concurrency 8 --deadline-ms 10000 --json --timeout-s 120
      pv=PID_${name//-/_}
      pids+=("${!pv}")
      outs+=("$T_DIR/$name.out")
    done
    quarter=$((GAMERS * TASKS / 4))
    answered () { [ "$(cat "${outs[@]}" 2>/dev/null | grep -c '^{')" -ge "$quarter" ]; }
    wait_for 120 answered
    fault "$what"
    for pid in "${pids[@]}"; do wait "$pid"; done
    wait_for 60 ready
    wait_for 60 sched_idle
    wait_for 60 books_still
    python3 "$(dirname "$0")/chaos_row.py" "$T_DB" "$what" "${outs[@]}"
    row=$?
    check "round $round $what: nothing lost, the net charge is what was delivered" test "$row" = 0
    check "round $round $what: p2c2r-ctl audit passes" \
        env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
  done
done
t_report
