#!/usr/bin/env bash
# The contributor's one-line install (docs/deploy.md), as a contributor runs
# it: a clean Debian 12 container with systemd as init, on a Docker network
# of its own, fetches `curl -fsSL http://GATEWAY/install.sh | sh` from a
# real stack (PostgreSQL, broker, ledger, scheduler and a gateway with
# --auth apikey) that runs on this host, its gateway listening on that
# network's host address only.
#   - a binary that does not match its published .sha256 (a second gateway
#     serving a tampered downloads directory) is refused, and the machine
#     is as it was: no package, file, user or unit added
#   - the install: the plan is said before any change; the service runs as
#     p2c2r-agent with the key and name given in the environment; the agent
#     is the one the server published; it alone serves a gamer's tasks,
#     every hash right; `p2c2r-agent status` answers
#   - run again by a user who may sudo (the script goes through sudo)
#     against a new agent (the gateway restarted with another build):
#     upgraded in place, the key and the owner's preferences kept,
#     the service restarted, tasks served again
# Run by tests/deploy/run.sh, or alone; prints "install_oneline: N passed,
# N failed". Everything it makes (container, network, processes, database)
# is removed at the end; the Debian base image is kept.
. "$(cd "$(dirname "$0")/.." && pwd)/e2e/lib.sh"

NAME=p2c2roneline$$
H=$NAME-host
o_finish () {
  docker rm -f "$H" >/dev/null 2>&1
  docker network rm "$NAME" >/dev/null 2>&1
}
trap 'o_finish; t_cleanup' EXIT

if ! eval "$("$ROOT/tests/deploy/base_images.sh" systemd)"; then
  check "a clean Debian image with systemd (debootstrap)" false
  echo "install_oneline: $T_PASS passed, $T_FAIL failed"
  exit 1
fi

# The network, and this host's address on it: the gateways listen there only
docker network create --label "org.p2c2r.test=$NAME" "$NAME" >/dev/null
HOSTIP=$(docker network inspect "$NAME" -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
check "a Docker network of its own, this host at $HOSTIP" test -n "$HOSTIP"

# The stack, as in tests/e2e (start_stack), the gateway on $HOSTIP
t_db
BROKER=tcp://127.0.0.1:$(free_port)
CTL=(env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" --broker "$BROKER")
spawn broker "$BIN/p2c2r-broker" --bind "$BROKER"
spawn ledger env P2C2R_DB="$T_DB" "$BIN/p2c2r-ledger" --broker "$BROKER" --sql-dir "$ROOT/ledger/sql"
spawn scheduler "$BIN/p2c2r-scheduler" --broker "$BROKER"
# What make install puts in PREFIX/share/p2c2r/downloads
DL=$T_DIR/dl
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$ROOT" install-downloads \
    DESTDIR="$DL" PREFIX=/ >"$T_DIR/make.log" 2>&1
DL=$DL/share/p2c2r/downloads
A=p2c2r-agent-linux-amd64
GP=$(free_port)
gateway () { spawn "gw$1" "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "$HOSTIP:$GP" --auth apikey \
               --downloads-dir "$2"; }
gateway 1 "$DL"
up () { curl -fsS "http://$HOSTIP:$1/healthz" >/dev/null 2>&1; }
check "the stack is up, the gateway on $HOSTIP:$GP" wait_for 30 up "$GP"
PEER_KEY=$("${CTL[@]}" account create peer contrib1 2>/dev/null | awk '$1 == "api_key" {print $2}')
GAMER_KEY=$("${CTL[@]}" account create gamer alice 2>/dev/null | awk '$1 == "api_key" {print $2}')
check "p2c2r-ctl account create: a peer key and a gamer key" test -n "$PEER_KEY" -a -n "$GAMER_KEY"
ctl_quiet () { "${CTL[@]}" "$@" >/dev/null 2>&1; }
check "p2c2r-ctl credit alice 50" ctl_quiet credit alice 50

# A tampered copy: the binary changed after its .sha256 was published
TD=$T_DIR/tampered
mkdir -p "$TD"
cp "$DL"/* "$TD/"
printf 'tampered' >>"$TD/$A"
GT=$(free_port)
spawn gwt "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "$HOSTIP:$GT" --auth apikey --downloads-dir "$TD"
wait_for 30 up "$GT"

# The contributor's machine
host_ready () {
  local s; s=$(docker exec "$H" systemctl is-system-running 2>/dev/null)
  [ "$s" = running ] || [ "$s" = degraded ]
}
docker run -d --name "$H" --hostname contrib --label "org.p2c2r.test=$NAME" --network "$NAME" \
  --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
  "$P2C2R_SYSTEMD_IMAGE" /sbin/init >/dev/null
wait_for 60 host_ready
check "a clean Debian 12 container with systemd as init" host_ready
# curl is what a contributor runs the one-liner with
# sudo, for the owner's account that runs the upgrade below
curl_in () {
  docker exec "$H" sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends curl sudo &&
    useradd -m owner && echo "owner ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/owner' \
    >"$T_DIR/curl-apt.log" 2>&1
}
check "curl and sudo in the container (apt-get), a user 'owner' who may sudo" curl_in
oneline () {    # oneline PORT ENV... : the one-liner in the container, its output in $T_DIR/run.out
  local port=$1; shift
  docker exec ${AS:+-u "$AS"} "$H" env "$@" sh -c "curl -fsSL http://$HOSTIP:$port/install.sh | sh" \
    >"$T_DIR/run.out" 2>&1
}
state () {      # what the install changes, in one text
  docker exec "$H" sh -c 'ls -la /usr/local/bin /etc/systemd/system; ls -laR /etc/p2c2r 2>&1;
    getent passwd p2c2r-agent; dpkg-query -W -f "\${Package} \${Status}\n" | sort' 2>&1
}

echo "== a tampered binary"
state >"$T_DIR/state.before"
tampered_refused () {
  ! oneline "$GT" P2C2R_API_KEY="$PEER_KEY" P2C2R_ALLOW_INSECURE_WS=1 && cp "$T_DIR/run.out" "$T_DIR/tampered.out" &&
  grep -q "CHECKSUM MISMATCH" "$T_DIR/run.out" && grep -q "nothing was changed" "$T_DIR/run.out"
}
check "curl .../install.sh | sh from a server whose binary does not match: refused" tampered_refused
state >"$T_DIR/state.after"
check "... and nothing changed (packages, files, users, units)" \
  cmp -s "$T_DIR/state.before" "$T_DIR/state.after"

echo "== the install"
t=$SECONDS
install_ok () { oneline "$GP" P2C2R_API_KEY="$PEER_KEY" P2C2R_NAME=contrib1 P2C2R_ALLOW_INSECURE_WS=1 \
                  || { tail -20 "$T_DIR/run.out"; return 1; }; cp "$T_DIR/run.out" "$T_DIR/install.out"; }
check "curl -fsSL http://$HOSTIP:$GP/install.sh | sh (P2C2R_API_KEY, P2C2R_NAME)" install_ok
echo "     the install took $((SECONDS - t)) s"
plan_first () {
  local plan apt
  plan=$(grep -n "this will:" "$T_DIR/install.out" | head -1 | cut -d: -f1)
  apt=$(grep -n "installing packages" "$T_DIR/install.out" | head -1 | cut -d: -f1)
  [ -n "$plan" ] && [ -n "$apt" ] && [ "$plan" -lt "$apt" ] &&
  grep -q "install with apt-get:.*libwebsockets17" "$T_DIR/install.out"
}
check "it said what it would change before changing it (the packages named)" plan_first
check "it printed how to see status and earnings" grep -q "p2c2r-agent status" "$T_DIR/install.out"
check "the p2c2r-agent service is active" docker exec "$H" systemctl is-active --quiet p2c2r-agent
served_sum () { cut -d' ' -f1 "$1/$A.sha256"; }
installed_sum () { docker exec "$H" sha256sum /usr/local/bin/p2c2r-agent | cut -d' ' -f1; }
check "the installed agent is the one the server published" test "$(installed_sum)" = "$(served_sum "$DL")"
env_ok () {
  [ "$(docker exec "$H" stat -c '%a %U' /etc/p2c2r/agent.env)" = "600 root" ] &&
  docker exec "$H" grep -qx "P2C2R_PEER_ID=contrib1" /etc/p2c2r/agent.env &&
  docker exec "$H" grep -qx "P2C2R_SERVER=ws://$HOSTIP:$GP" /etc/p2c2r/agent.env
}
check "agent.env (root only) names the server it came from and the peer" env_ok
registered () { docker exec "$H" journalctl -u p2c2r-agent --no-pager 2>/dev/null | grep -q 'peer: registered'; }
check "the agent registered with its key" wait_for 60 registered
runs_as_user () {
  test "$(docker exec "$H" sh -c 'stat -c %U /proc/$(systemctl show -p MainPID --value p2c2r-agent)')" \
    = p2c2r-agent
}
check "it runs as the user p2c2r-agent" runs_as_user

# A gamer on this host; the installed agent is the one peer there is
ITERS=20000
gamer_ok () {   # gamer_ok OUT COUNT: every reply right (the hash as agent/kernels/k_encryption.c)
  local out=$T_DIR/$1 count=$2
  # (a private Docker network: the key may go over plain ws://)
  "$BIN/p2c2r-agent" gamer --server "ws://$HOSTIP:$GP" --api-key "$GAMER_KEY" --allow-insecure-ws=true \
    --task hash \
    --params "{\"data\":\"$1-$$-{i}\",\"iterations\":$ITERS}" --count "$count" --concurrency 2 \
    --timeout-s 120 --json </dev/null >"$out.json" 2>"$out.sum" || return 1
  python3 - "$out.json" "$count" "$ITERS" "$1-$$-" <<'PY'
import hashlib, json, sys
path, count, iters, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
seen = set()
for line in open(path):
    r = json.loads(line)
    cur = ("%s%d" % (data, r["index"])).encode()
    for k in range(iters):
        h = hashlib.sha256(); h.update(cur); h.update(str(k).encode()); cur = h.digest()
    if not r["ok"] or r["result"]["hash"] != cur.hex() or r.get("cached"):
        sys.exit("reply %d: %s" % (r["index"], line.strip()[:200]))
    seen.add(r["index"])
sys.exit(0 if len(seen) == count else "%d replies of %d" % (len(seen), count))
PY
}
check "the installed agent serves a gamer's tasks, every hash right" gamer_ok g1 10
status_ok () {
  docker exec "$H" p2c2r-agent status >"$T_DIR/status.txt" 2>&1 &&
  grep -Eq '^state: +running' "$T_DIR/status.txt" && grep -q connected "$T_DIR/status.txt" &&
  grep -q '^earnings' "$T_DIR/status.txt"
}
check "p2c2r-agent status: running, connected, earnings shown" wait_for 30 status_ok

echo "== run again: an upgrade"
# A new build published: the same agent with bytes appended (an ELF runs
# the same), its checksum made again; the gateway restarted to serve it
NEW=$T_DIR/dl2
mkdir -p "$NEW"
cp "$DL"/* "$NEW/"
printf 'new build %s\n' "$$" >>"$NEW/$A"
(cd "$NEW" && sha256sum "$A" >"$A.sha256")
kill "$PID_gw1"
wait "$PID_gw1" 2>/dev/null
gateway 2 "$NEW"
wait_for 30 up "$GP"
# the owner sets a preference as the file says: a line's "# " removed
docker exec "$H" sed -i 's/^# max-ncpus-pct = 100$/max-ncpus-pct = 50/' /etc/p2c2r/agent.conf
pid1=$(docker exec "$H" systemctl show -p MainPID --value p2c2r-agent)
upgrade_ok () { AS=owner oneline "$GP" || { tail -20 "$T_DIR/run.out"; return 1; }
                cp "$T_DIR/run.out" "$T_DIR/upgrade.out"; grep -q "through sudo" "$T_DIR/upgrade.out" &&
                grep -q "upgraded" "$T_DIR/upgrade.out"; }
check "the same one-liner again by a user (it runs through sudo), no key given: upgraded" upgrade_ok
check "the installed agent is the new one" test "$(installed_sum)" = "$(served_sum "$NEW")"
check "the owner's preferences were kept" \
  docker exec "$H" grep -qx "max-ncpus-pct = 50" /etc/p2c2r/agent.conf
check "the key and the name were kept" \
  docker exec "$H" sh -c "grep -qx 'P2C2R_API_KEY=$PEER_KEY' /etc/p2c2r/agent.env &&
                          grep -qx P2C2R_PEER_ID=contrib1 /etc/p2c2r/agent.env"
pid2=$(docker exec "$H" systemctl show -p MainPID --value p2c2r-agent)
check "the service was restarted (pid $pid1 -> $pid2) and is active" \
  bash -c "[ '$pid2' != '$pid1' ] && [ '$pid2' != 0 ] && docker exec '$H' systemctl is-active --quiet p2c2r-agent"
registered_again () {
  docker exec "$H" journalctl "_PID=$pid2" --no-pager 2>/dev/null | grep -q 'peer: registered'
}
check "the upgraded agent registered" wait_for 90 registered_again
check "the upgraded agent serves a gamer's tasks" gamer_ok g2 6
check "p2c2r-ctl audit: the books balance" ctl_quiet audit
docker exec "$H" journalctl -u p2c2r-agent --no-pager >"$T_DIR/agent-journal.log" 2>&1
echo "install_oneline: $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" = 0 ]
