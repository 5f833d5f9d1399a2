#!/usr/bin/env bash
# `make run`: the whole P2C2R stack on this machine. A private PostgreSQL
# under var/pg (its own socket directory, no system service touched), then
# broker, ledger, scheduler, gateway and one peer; a short gamer demo with
# the ledger's totals; then a live status line until Ctrl-C, which stops
# everything this script started.
#   LISTEN=0.0.0.0:8765 make run     accept agents from other machines
#   RUN_SECONDS=N make run           stop by itself after N seconds
#   ADMIN_LISTEN=127.0.0.1:8767 make run   the gateway's admin listener elsewhere
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VAR=$ROOT/var
BIN=$ROOT/bin
LISTEN=${LISTEN:-127.0.0.1:8765}
GW_PORT=${LISTEN##*:}
BROKER=${BROKER:-tcp://127.0.0.1:5555}
ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:8766}
PGPORT=${PGPORT:-5433}
mkdir -p "$VAR/log"

port_free () {
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
PY
}
bhost=${BROKER#tcp://}
if ! port_free "${LISTEN%:*}" "$GW_PORT" || ! port_free "${bhost%:*}" "${bhost##*:}" \
   || ! port_free "${ADMIN_LISTEN%:*}" "${ADMIN_LISTEN##*:}"; then
  echo "run: port $GW_PORT, ${ADMIN_LISTEN##*:} or ${bhost##*:} is in use (another 'make run'?). Stop it, or choose others:"
  echo "     LISTEN=127.0.0.1:8775 ADMIN_LISTEN=127.0.0.1:8776 BROKER=tcp://127.0.0.1:5556 make run"
  exit 1
fi

PIDS=()
stopping=0
stop_all () {
  [ $stopping = 1 ] && return
  stopping=1
  echo
  echo "run: stopping"
  local i
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  deploy/local/pg.sh stop "$VAR/pg" >/dev/null 2>&1
  echo "run: stopped (data kept in var/pg, logs in var/log)"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

start () {
  local name=$1; shift
  "$@" >>"$VAR/log/$name.log" 2>&1 &
  PIDS+=($!)
}

echo "run: PostgreSQL in var/pg"
deploy/local/pg.sh start "$VAR/pg" "$PGPORT" || { echo "run: PostgreSQL did not start (see var/pg/log)"; exit 1; }
# Database roles (ledger/sql/008_roles.sql, docs/trust.md): the cluster's
# user owns the tables and runs the migrations; the ledger then works as
# p2c2r_ledger, p2c2r-ctl reads as p2c2r_reader (the socket is trusted, so
# no passwords)
OWNER_DB=$(deploy/local/pg.sh conninfo "$VAR/pg" "$PGPORT")
# the same server and database without the owner's user=, for the roles
AS_ROLE_DB=$(printf '%s' "$OWNER_DB" | sed -E 's/(^| )user=[^ ]*//g')
export P2C2R_DB="$AS_ROLE_DB user=p2c2r_reader"
# The bus's CURVE keys (docs/trust.md): made on the first start, reused
# after; every process below (and p2c2r-ctl) finds them through P2C2R_KEYS
export P2C2R_KEYS=$VAR/keys
"$BIN/p2c2r-ctl" keys init >/dev/null || { echo "run: cannot make the bus keys in var/keys"; exit 1; }
echo "run: broker $BROKER, ledger, scheduler, gateway ws://$LISTEN, one peer (logs in var/log/)"
start broker "$BIN/p2c2r-broker" --bind "$BROKER"
# Open registration: every new gamer gets $1 of credit to play with
start ledger env P2C2R_DB="$AS_ROLE_DB user=p2c2r_ledger" P2C2R_OWNER_DB="$OWNER_DB" \
    "$BIN/p2c2r-ledger" --broker "$BROKER" --sql-dir "$ROOT/ledger/sql" \
    --starting-credit-pico "${STARTING_CREDIT_PICO:-1000000000000}"
start scheduler "$BIN/p2c2r-scheduler" --broker "$BROKER"
# The operator's token for the gateway's admin listener (/metrics,
# /api/stats, the operator's page), made on the first start, owner-only
if [ ! -s "$VAR/admin-token" ]; then
  (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$VAR/admin-token")
fi
start gateway "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "$LISTEN" \
    --admin-listen "$ADMIN_LISTEN" --admin-token-file "$VAR/admin-token"
start peer "$BIN/p2c2r-agent" peer --server "ws://127.0.0.1:$GW_PORT" --peer-id local-peer --slots 2

for _ in $(seq 200); do
  curl -fsS "http://127.0.0.1:$GW_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$GW_PORT/healthz" >/dev/null 2>&1 || { echo "run: the gateway did not come up (var/log/gateway.log)"; exit 1; }
# The peer is ready once the scheduler knows it: wait for its registration
for _ in $(seq 100); do grep -q -i 'registered' "$VAR/log/peer.log" 2>/dev/null && break; sleep 0.1; done

echo
echo "== demo: a gamer sends 8 encryption and 4 compression tasks"
"$BIN/p2c2r-agent" gamer --server "ws://127.0.0.1:$GW_PORT" --gamer-id demo-gamer --task encryption \
    --params '{"data":"demo-{i}","iterations":20000}' --count 8 --concurrency 4 --timeout-s 60
"$BIN/p2c2r-agent" gamer --server "ws://127.0.0.1:$GW_PORT" --gamer-id demo-gamer --task compression \
    --params '{"data":"the quick brown fox jumps over the lazy dog {i} the quick brown fox","level":9}' \
    --count 4 --concurrency 2 --timeout-s 60
echo
echo "== ledger totals (p2c2r-ctl totals)"
"$BIN/p2c2r-ctl" totals
host=$(hostname -I 2>/dev/null | awk '{print $1}')
cat <<EOT

== connect
  this machine:     bin/p2c2r-agent gamer --server ws://127.0.0.1:$GW_PORT --task hash --params '{"data":"hi","iterations":1000}'
  another machine:  restart with LISTEN=0.0.0.0:$GW_PORT make run, then
                    p2c2r-agent peer  --server ws://${host:-THIS-HOST}:$GW_PORT
                    p2c2r-agent gamer --server ws://${host:-THIS-HOST}:$GW_PORT --task hash --params '{"data":"hi"}'
                    (or the original demo's --cloud-ip ${host:-THIS-HOST} --cloud-port $GW_PORT)
  pages:            contributors and gamers http://127.0.0.1:$GW_PORT/
                    operator http://$ADMIN_LISTEN/ (token: var/admin-token)
  operator:         P2C2R_DB='$P2C2R_DB' bin/p2c2r-ctl account list | audit | revenue
  bus keys:         P2C2R_KEYS=var/keys bin/p2c2r-ctl keys list | add NAME SERVICE | revoke NAME

Serving; Ctrl-C stops everything.
EOT

end=$(( ${RUN_SECONDS:-0} > 0 ? SECONDS + RUN_SECONDS : 0 ))
while [ "$end" = 0 ] || [ $SECONDS -lt "$end" ]; do
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo; echo "run: a process exited (pid $pid); see var/log/"; exit 1; }
  done
  line=$("$BIN/p2c2r-ctl" totals --oneline 2>/dev/null || echo "ledger unreachable")
  # one line redrawn in place on a terminal, a line per update elsewhere
  if [ -t 1 ]; then printf '\r%s %s   ' "$(date +%H:%M:%S)" "$line"
  else printf '%s %s\n' "$(date +%H:%M:%S)" "$line"; fi
  sleep 2
done
echo
