#!/usr/bin/env bash
# The deploy suite (`make test-deploy`): compose.yaml on a real Docker
# engine, as an operator runs it, and the other deployment files.
#   - haproxy -c on both HAProxy configs, systemd-analyze verify on the units
#   - build the images (a debootstrapped Debian base where none can be
#     pulled: base_images.sh), `up --wait` with three gateways
#   - peers as containers on their own network, a gamer on this host through
#     HAProxy's port; results, `p2c2r-ctl audit`, gateways found by DNS
#   - under load: a gateway container killed, PostgreSQL restarted, a peer
#     cut off with `docker network disconnect`: every task still answered
#   - `down` and `up`: the books unchanged; a pg_dump backup restored into a
#     cluster made from nothing (docs/deploy.md's procedure)
#   - deploy/install-agent.sh in a clean Debian container with systemd: the
#     agent it installs serves tasks
#   - the one-line install (install_oneline.sh): curl | sh from a gateway in
#     a clean container; a tampered binary refused, the install serves
#     tasks, running it again upgrades
# Prints "ok"/"FAIL" per check and "deploy: N passed, N failed" last. Every
# container, network, volume and image tag it makes is named after one
# unique project and removed at the end; the Debian base images and the
# debootstrap cache are kept. Loads go only to this machine (loopback and
# the Docker networks made here).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
D_PASS=0
D_FAIL=0
D_T0=$SECONDS
# shellcheck source=tests/deploy/lib.sh
. "$ROOT/tests/deploy/lib.sh"

PROJECT=p2c2rdeploy$$
export COMPOSE_PROJECT_NAME=$PROJECT
export P2C2R_TAG=test-$PROJECT
# A fixed free port on loopback: a random one (127.0.0.1::8765) is chosen
# again by Docker 20.10 whenever HAProxy joins another network
PORT=$(python3 - <<'PY'
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
)
export P2C2R_PUBLISH=127.0.0.1:$PORT
PEERNET=$PROJECT-peers
D_DIR=$(mktemp -d /tmp/p2c2r-deploy.XXXXXX)
export XDG_CACHE_HOME=$D_DIR/cache

finish () {
  local rc=$?
  trap - EXIT
  echo "== cleanup"
  docker ps -aq --filter "label=org.p2c2r.test=$PROJECT" | xargs -r docker rm -f >/dev/null 2>&1
  dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1
  docker network rm "$PEERNET" >/dev/null 2>&1
  docker rmi "p2c2r:$P2C2R_TAG" "p2c2r-postgres:$P2C2R_TAG" "p2c2r-haproxy:$P2C2R_TAG" \
    "p2c2r-agent-host:$P2C2R_TAG" >/dev/null 2>&1
  # the build stage stays behind untagged; it is labelled for this
  docker image prune -f --filter label=org.p2c2r.stage=build >/dev/null 2>&1
  if [ "$D_FAIL" = 0 ]; then rm -rf "$D_DIR"; else echo "     logs kept in $D_DIR"; fi
  echo "deploy: $D_PASS passed, $D_FAIL failed ($((SECONDS - D_T0)) s)"
  #  (inside a trap a bare `exit` returns the status from before the trap)
  if [ "$D_FAIL" = 0 ] && [ "$rc" = 0 ]; then exit 0; fi
  exit 1
}
trap finish EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Keeps the container logs of a failed run
save_logs () {
  local c
  for c in $(dc ps -aq) $(docker ps -aq --filter "label=org.p2c2r.test=$PROJECT"); do
    docker logs "$c" >"$D_DIR/$(docker inspect -f '{{.Name}}' "$c" | tr -d /).log" 2>&1
  done
}

# A subnet for HAProxy's network that no Docker network uses yet
pick_subnet () {
  local used x
  used=$(docker network inspect $(docker network ls -q) -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null)
  for _ in $(seq 50); do
    x=$((100 + RANDOM % 150))
    case " $used " in *" 172.16.$x."*) continue ;; esac
    echo "$x"
    return
  done
  echo 99
}
X=$(pick_subnet)
export P2C2R_FRONT_SUBNET=172.16.$X.0/25 P2C2R_FRONT_DYNAMIC=172.16.$X.0/26 P2C2R_PROXY_IP=172.16.$X.126

echo "== static checks"
check "deploy/haproxy.cfg is valid for haproxy -c" haproxy -c -q -f deploy/haproxy.cfg
check "deploy/docker/haproxy.cfg (compose) is valid for haproxy -c" \
  haproxy -c -q -f deploy/docker/haproxy.cfg
if command -v promtool >/dev/null; then
  promtool_ok () { promtool check config --syntax-only deploy/monitoring/prometheus.yml >/dev/null; }
  check "deploy/monitoring: promtool check config (and its alert rules)" promtool_ok
  check "deploy/prometheus/alerts.yml: promtool check rules" \
    promtool check rules deploy/prometheus/alerts.yml
fi
# systemd-analyze wants the binaries the units start: a staged install
mkdir -p "$D_DIR/root"
make -s install DESTDIR="$D_DIR/root" PREFIX=/usr/local >/dev/null 2>&1
mkdir -p "$D_DIR/root/etc/systemd/system" "$D_DIR/root/usr/lib/systemd"
cp deploy/systemd/*.service "$D_DIR/root/etc/systemd/system/"
# and the system's own units they name (network-online.target, ...), and
# the system's commands they run (ExecReload's kill)
cp -a /usr/lib/systemd/system "$D_DIR/root/usr/lib/systemd/"
install -D -m 0755 /bin/kill "$D_DIR/root/bin/kill"
verify_units () {
  local u out ok=0
  for u in deploy/systemd/*.service; do
    u=$(basename "$u")
    case $u in *@.service) u=${u/@.service/@8765.service} ;; esac
    out=$(systemd-analyze verify --man=no --root="$D_DIR/root" "$u" 2>&1) || ok=1
    [ -n "$out" ] && { echo "     $u: $out" | head -5; ok=1; }
  done
  return $ok
}
check "systemd-analyze verify: every unit in deploy/systemd" verify_units

echo "== images"
eval "$(tests/deploy/base_images.sh)" || { echo "FAIL no Debian base image"; D_FAIL=$((D_FAIL + 1)); exit 1; }
export P2C2R_BUILD_BASE P2C2R_RUNTIME_BASE
t=$SECONDS
build_images () { dc build >"$D_DIR/build.log" 2>&1 || { tail -30 "$D_DIR/build.log"; return 1; }; }
check "docker compose build (P2C2R, PostgreSQL, HAProxy images)" build_images
note "build took $((SECONDS - t)) s"
[ "$D_FAIL" = 0 ] || exit 1
check "the P2C2R image runs as the unprivileged user p2c2r" \
  test "$(docker run --rm --entrypoint id "p2c2r:$P2C2R_TAG" -un)" = p2c2r

echo "== up"
t=$SECONDS
check "docker compose up --wait --scale gateway=3: every service healthy" \
  dc_up_wait --scale gateway=3
note "up took $((SECONDS - t)) s"
if [ "$D_FAIL" != 0 ]; then save_logs; exit 1; fi
check "HAProxy published on 127.0.0.1:$PORT" test "$(dc port haproxy 8765)" = "127.0.0.1:$PORT"
check "three gateways behind HAProxy" test "$(cids gateway | wc -l)" = 3
check "HAProxy's /readyz answers on the published port" \
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz"
check "the database password was made into the secrets volume" \
  dc exec -T ledger test -s /var/lib/p2c2r/secrets/pg_password
no_secrets_in_tree () {
  ! find "$ROOT" -path "$ROOT/.git" -prune -o \( -name 'pg_password*' -o -name '*_db' \) -print | grep -q .
}
check "no secret written into the repository's tree" no_secrets_in_tree
check "the ledger's database user is not a superuser" \
  test "$(ctl psql -XqtA -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' 2>/dev/null)" = f
check "p2c2r-ctl psql reads as the read-only role" \
  test "$(ctl psql -XqtA -c 'SELECT current_user' 2>/dev/null)" = p2c2r_reader
reader_cannot_write () { ! ctl psql -Xq -c 'UPDATE accounts SET disabled = true' >/dev/null 2>&1; }
check "which may not write" reader_cannot_write

echo "== accounts, peers, a gamer"
GAMER_KEY=$(new_key gamer alice)
check "docker compose exec ledger p2c2r-ctl account create: a gamer key" test -n "$GAMER_KEY"
check "p2c2r-ctl credit through the ledger" ctl credit alice 50
docker network create --label "org.p2c2r.test=$PROJECT" "$PEERNET" >/dev/null
attach_haproxy () { docker network connect --alias p2c2r "$PEERNET" "$(cid haproxy)" 2>/dev/null || true; }
attach_haproxy
declare -A PEER_KEY
for p in p1 p2 p3; do
  PEER_KEY[$p]=$(new_key peer "$p")
  peer_start "$p" "${PEER_KEY[$p]}"
done
peers_registered () { local p; for p in p1 p2 p3; do [ "$(peer_registrations "$p")" -ge 1 ] || return 1; done; }
for _ in $(seq 60); do peers_registered && break; sleep 0.5; done
check "three peer containers registered through HAProxy" peers_registered
t=$SECONDS
gamer "$D_DIR/g1" 30 4 "$ITERS"
check "a gamer through HAProxy: 30 tasks, every hash right" results_ok "$D_DIR/g1" 30 "$ITERS"
check "p2c2r-ctl audit: the books balance" ctl audit
gw_conns () {
  local c n=0
  for c in $(cids gateway); do
    [ "$(gw_stat "$c" 's["gateway"]["connections"]["peer"]')" -ge 1 ] && n=$((n + 1))
  done
  [ "$n" -ge 2 ]
}
check "peers spread over the gateways (found by DNS, no stickiness)" gw_conns
# Calibrates the loads below to last ~20 s on this machine, however busy
rate=$(sed -n 's/.*tasks_per_s=\([0-9.]*\).*/\1/p' "$D_DIR/g1.sum")
LOAD=$(python3 -c "print(max(60, min(3000, int(float('${rate:-5}') * 20))))")
note "load: $LOAD tasks per run (30 tasks at ${rate:-?}/s)"

echo "== a gateway killed under load"
gamer "$D_DIR/g2" "$LOAD" 6 "$ITERS" &
gpid=$!
wait_replies "$D_DIR/g2" 5 $gpid
# the gamer's own gateway (it never reconnects: docs/architecture.md) stays
victim=""
for c in $(cids gateway); do
  [ "$(gw_stat "$c" 's["gateway"]["connections"]["gamer"]')" = 0 ] && \
    [ "$(gw_stat "$c" 's["gateway"]["connections"]["peer"]')" -ge 1 ] && { victim=$c; break; }
done
check "a gateway serving peers but not the gamer found" test -n "$victim"
before=$(replies "$D_DIR/g2")
[ -n "$victim" ] && docker kill "$victim" >/dev/null
wait $gpid
after=$(($(replies "$D_DIR/g2") - before))
check "every task answered, right, after the kill" results_ok "$D_DIR/g2" "$LOAD" "$ITERS"
check "tasks went on through the other gateways ($after replies after the kill)" test "$after" -ge 10
all_back () { local p n=0; for p in p1 p2 p3; do [ "$(peer_registrations "$p")" -ge 2 ] && n=$((n + 1)); done; [ "$n" -ge 1 ]; }
check "the killed gateway's peers registered again through HAProxy" all_back
dc up -d --scale gateway=3 >/dev/null 2>&1
check "the gateway is back: every service healthy" wait_healthy 120

echo "== PostgreSQL restarted under load"
gamer "$D_DIR/g3" "$LOAD" 6 "$ITERS" &
gpid=$!
wait_replies "$D_DIR/g3" 5 $gpid
before=$(replies "$D_DIR/g3")
docker restart -t 10 "$(cid postgres)" >/dev/null
wait $gpid
after=$(($(replies "$D_DIR/g3") - before))
check "every task answered, right, across the restart" results_ok "$D_DIR/g3" "$LOAD" "$ITERS"
check "replies went on after the restart began ($after)" test "$after" -ge 10
check "every service healthy again" wait_healthy 120
check "p2c2r-ctl audit after the restart" ctl audit

echo "== a peer cut off under load"
reassigned () { gw_stat "$(cid gateway)" 's["scheduler"]["reassigned"]'; }
r0=$(reassigned)
gamer "$D_DIR/g4" "$LOAD" 6 "$ITERS" &
gpid=$!
wait_replies "$D_DIR/g4" 5 $gpid
docker network disconnect "$PEERNET" "$PROJECT-p2"
wait $gpid
check "every task answered, right, with a peer cut off" results_ok "$D_DIR/g4" "$LOAD" "$ITERS"
r1=$(reassigned)
check "the cut-off peer's tasks were reassigned ($r0 -> $r1)" test "${r1:-0}" -gt "${r0:-0}"
docker rm -f "$PROJECT-p2" >/dev/null
peer_start p2 "${PEER_KEY[p2]}"
check "p2c2r-ctl audit after the cut" ctl audit

echo "== backup, down and up"
check "three peers online" wait_peers 3
balances >"$D_DIR/books.before"
dc exec -T -u postgres postgres pg_dump -Fc p2c2r >"$D_DIR/p2c2r.dump"
check "pg_dump of the database (docs/deploy.md)" test -s "$D_DIR/p2c2r.dump"
check "docker compose down" dc down --timeout 20
check "docker compose up --wait again" dc_up_wait --scale gateway=3
attach_haproxy
balances >"$D_DIR/books.after"
check "every balance intact after down and up" cmp -s "$D_DIR/books.before" "$D_DIR/books.after"
check "the peers came back" wait_peers 3
check "the same password, the same keys: a gamer's tasks run" gamer_ok "$D_DIR/g5" 10
balances >"$D_DIR/books.before2"

echo "== restore into a cluster made from nothing"
check "docker compose down -v (data and secrets gone)" dc down -v --timeout 20
check "docker compose up --wait on empty volumes" dc_up_wait --scale gateway=3
restore () {
  dc stop ledger scheduler gateway >/dev/null 2>&1 &&
  dc exec -T -u postgres postgres pg_restore --clean --if-exists --no-owner --role=p2c2r \
    -d p2c2r <"$D_DIR/p2c2r.dump" &&
  dc start ledger scheduler gateway >/dev/null 2>&1 &&
  wait_healthy 120
}
check "pg_restore of the backup (docs/deploy.md), services started again" restore
attach_haproxy
balances >"$D_DIR/books.restored"
check "every balance as at the backup" cmp -s "$D_DIR/books.before" "$D_DIR/books.restored"
check "p2c2r-ctl audit on the restored books" ctl audit
check "the peers came back with their restored keys" wait_peers 3
check "the restored keys work: a gamer's tasks run" gamer_ok "$D_DIR/g6" 10

echo "== deploy/install-agent.sh in a clean container"
. "$ROOT/tests/deploy/install_agent.sh"

# Its own stack on this host and its own container (it runs alone too)
echo "== the one-line install: curl -fsSL http://GATEWAY/install.sh | sh"
tests/deploy/install_oneline.sh >"$D_DIR/install_oneline.log" 2>&1
grep -E '^(ok|FAIL|==|     )' "$D_DIR/install_oneline.log"
o_sum=$(sed -n 's/^install_oneline: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' \
        "$D_DIR/install_oneline.log")
if [ -n "$o_sum" ]; then
  D_PASS=$((D_PASS + ${o_sum%% *}))
  D_FAIL=$((D_FAIL + ${o_sum##* }))
else
  echo "FAIL install_oneline.sh ended without its summary ($D_DIR/install_oneline.log)"
  D_FAIL=$((D_FAIL + 1))
fi

[ "$D_FAIL" = 0 ] || save_logs
