# Shared helpers of the end-to-end tests: start the real processes on free
# loopback ports against the test PostgreSQL, assert, and clean up every
# process we started (by PID) and the database we made.
# Needs P2C2R_TEST_PGDIR/P2C2R_TEST_PGPORT (tests/run.sh sets them), or
# starts its own cluster when run alone.

set -uo pipefail
ROOT=${P2C2R_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=$ROOT/bin
T_PASS=0
T_FAIL=0
T_PIDS=()
T_DIR=$(mktemp -d /tmp/p2c2r-e2e.XXXXXX)
chmod 755 "$T_DIR"      # a private PostgreSQL may run as another user below it
# Peers cache their kernel timings here, not in the user's home
export XDG_CACHE_HOME=$T_DIR/cache
T_OWN_PG=""
T_DBNAME=""
# The bus's CURVE keys (docs/trust.md), made once per test in its temp dir:
# every process a test starts finds them through P2C2R_KEYS (each its own
# service's pair, the broker its own and the allow-list), so every test
# runs with the bus closed, as a deployment does
export P2C2R_KEYS=$T_DIR/keys
"$BIN/p2c2r-ctl" keys init >/dev/null || { echo "cannot make the bus keys"; exit 1; }

# The operator's token of the gateways' admin listeners (/metrics,
# /api/stats: docs/gateway.md), one per test. A gateway a test starts has
# its admin listener off (no two gateways race for its default port)
# unless the test gives it one, as start_stack does (GW_ADMIN)
export ADMIN_TOKEN_FILE=$T_DIR/admin-token
( umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ADMIN_TOKEN_FILE" )
export P2C2R_ADMIN_TOKEN_FILE=$ADMIN_TOKEN_FILE
export P2C2R_ADMIN_LISTEN=""

# admin_get PORT PATH: what the admin listener on PORT answers the operator
admin_get () {
  curl -fsS -H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")" "http://127.0.0.1:$1$2"
}

check () {     # check "what a user would check" COMMAND...
  local what=$1; shift
  if "$@"; then T_PASS=$((T_PASS + 1)); echo "ok   $what"
  else T_FAIL=$((T_FAIL + 1)); echo "FAIL $what"; fi
}

# A free port below the kernel's ephemeral range, so that no outgoing
# connection of another process can take it between here and its use
free_port () {
  python3 - <<'PY'
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randint(10000, max(10001, lo - 1))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
PY
}

t_cleanup () {
  local pid
  for pid in "${T_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${T_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  if [ -n "$T_DBNAME" ]; then
    psql "$T_ADMIN_DB" -qAt -c "DROP DATABASE IF EXISTS $T_DBNAME" >/dev/null 2>&1
    # and the roles its migrations made (cluster-wide: 008_roles.sql)
    psql "$T_ADMIN_DB" -qAt -c "DROP ROLE IF EXISTS ${T_DBNAME}_ledger, ${T_DBNAME}_reader" >/dev/null 2>&1
  fi
  [ -n "$T_OWN_PG" ] && "$ROOT/deploy/local/pg.sh" stop "$T_OWN_PG" >/dev/null 2>&1
  if [ "$T_FAIL" = 0 ]; then rm -rf "$T_DIR"; else echo "logs kept in $T_DIR"; fi
}
trap t_cleanup EXIT
# A test stopped by tests/run.sh's timeout (SIGTERM) or Ctrl-C still cleans up
trap 'exit 143' TERM
trap 'exit 130' INT

# A fresh database on the test cluster for this test
t_db () {
  if [ -z "${P2C2R_TEST_PGDIR:-}" ]; then
    T_OWN_PG=$T_DIR/pg
    P2C2R_TEST_PGDIR=$T_OWN_PG
    P2C2R_TEST_PGPORT=$(free_port)
    "$ROOT/deploy/local/pg.sh" start "$T_OWN_PG" "$P2C2R_TEST_PGPORT" || { echo "cannot start PostgreSQL"; exit 1; }
  fi
  T_ADMIN_DB=$("$ROOT/deploy/local/pg.sh" conninfo "$P2C2R_TEST_PGDIR" "$P2C2R_TEST_PGPORT")
  T_DBNAME=e2e_$(date +%s)_$$
  psql "$T_ADMIN_DB" -qAt -c "CREATE DATABASE $T_DBNAME" >/dev/null || { echo "cannot create database"; exit 1; }
  T_DB=${T_ADMIN_DB/dbname=p2c2r/dbname=$T_DBNAME}
  # The roles the migrations make (ledger/sql/008_roles.sql), each process
  # with its own: the ledger runs as DB_ledger (T_DB, the owner's, only for
  # the migrations: --owner-db), p2c2r-ctl reads as DB_reader; the tests'
  # own checks (sql) stay the owner's. The cluster trusts local sockets, so
  # no passwords.
  T_LEDGER_DB="$T_DB user=${T_DBNAME}_ledger"
  T_READER_DB="$T_DB user=${T_DBNAME}_reader"
  export T_DB T_LEDGER_DB T_READER_DB
}

sql () { psql "$T_DB" -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# spawn NAME COMMAND... : starts a process in the background, logs to $T_DIR/NAME.log
spawn () {
  local name=$1; shift
  "$@" >"$T_DIR/$name.log" 2>&1 &
  local pid=$!
  T_PIDS+=("$pid")
  eval "PID_${name//-/_}=$pid"
}

# spawn_out NAME COMMAND... : like spawn, stdout to $T_DIR/NAME.out
spawn_out () {
  local name=$1; shift
  "$@" >"$T_DIR/$name.out" 2>"$T_DIR/$name.log" &
  local pid=$!
  T_PIDS+=("$pid")
  eval "PID_${name//-/_}=$pid"
}

# wait_for SECONDS COMMAND... : until the command succeeds, bounded
wait_for () {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

healthz () { curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 || python3 - "$1" <<'PY'
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1).read()
PY
}

# start_stack: broker, ledger, scheduler, one gateway; sets BROKER, GW_PORT, SERVER,
# GW_ADMIN (the gateway's admin listener), and SCHED_METRICS_PORT, LED_METRICS_PORT
# (their /metrics listeners, on free ports rather than the defaults, which tests
# running at once would share)
start_stack () {
  t_db
  local bport; bport=$(free_port)
  BROKER=tcp://127.0.0.1:$bport
  GW_PORT=$(free_port)
  GW_ADMIN=$(free_port)
  SERVER=ws://127.0.0.1:$GW_PORT
  SCHED_METRICS_PORT=$(free_port)
  LED_METRICS_PORT=$(free_port)
  spawn broker "$BIN/p2c2r-broker" --bind "$BROKER"
  # New gamers get $1 to spend, so tests run under the funds check
  spawn ledger env P2C2R_DB="$T_LEDGER_DB" P2C2R_OWNER_DB="$T_DB" "$BIN/p2c2r-ledger" --broker "$BROKER" --sql-dir "$ROOT/ledger/sql" \
      --metrics-listen "127.0.0.1:$LED_METRICS_PORT" \
      --starting-credit-pico "${STARTING_CREDIT_PICO:-1000000000000}" "$@"
  # SCHED_ARGS and GW_ARGS add settings for one test (word-split)
  spawn scheduler "$BIN/p2c2r-scheduler" --broker "$BROKER" \
      --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" ${SCHED_ARGS:-}
  spawn gateway "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GW_PORT" \
      --admin-listen "127.0.0.1:$GW_ADMIN" ${GW_ARGS:-}
  wait_for 20 healthz "$GW_PORT" || { echo "FAIL gateway never became healthy"; T_FAIL=$((T_FAIL+1)); return 1; }
  # Ready when a gamer can register and a submit gets an answer (no_peers is one)
  wait_for 30 "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id probe --task encryption \
      --params '{"data":"x","iterations":1}' --count 1 --quiet --timeout-s 5
  return 0
}

# wait_peers NAME...: until each named peer has registered
wait_peers () {
  local name
  for name in "$@"; do
    wait_for 30 grep -q 'peer: registered' "$T_DIR/$name.log" || { echo "FAIL peer $name never registered"; return 1; }
  done
}

# peer NAME [ARGS...]: a peer agent that logs every task it completes
peer () {
  local name=$1; shift
  spawn "$name" "$BIN/p2c2r-agent" peer --server "$SERVER" --peer-id "$name" --log-tasks "$@"
}

t_report () {
  echo "$(basename "$0" | sed 's/\.\(sh\|py\)$//'): $T_PASS passed, $T_FAIL failed"
  [ "$T_FAIL" = 0 ]
}
