#!/usr/bin/env bash
# Installs the P2C2R peer agent for a contributor on Debian 12 (or a close
# relative): builds it from this source tree, installs it under /usr/local,
# and runs it as a systemd service under its own unprivileged user.
#   sudo deploy/install-agent.sh --server wss://p2c2r.example.org --api-key-file KEYFILE [--ca CAFILE]
#        [--allow-insecure-ws]
# The API key comes from the operator (p2c2r-ctl account create peer NAME);
# it is stored in /etc/p2c2r/agent.env, readable by root only. --ca names
# the server's CA certificate for a private or self-signed server. The agent
# refuses to send its key over plain ws:// to another machine unless
# --allow-insecure-ws (a trusted private network only).
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER="" KEYFILE="" CA="" INSECURE_WS=""
while [ $# -gt 0 ]; do
  case $1 in
    --server) SERVER=$2; shift 2 ;;
    --api-key-file) KEYFILE=$2; shift 2 ;;
    --ca) CA=$2; shift 2 ;;
    --allow-insecure-ws) INSECURE_WS=true; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-agent: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$SERVER" ] || { echo "install-agent: --server wss://HOST[:PORT] is required" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "install-agent: run as root (sudo)" >&2; exit 1; }
case $SERVER in
  wss://*) ;;
  ws://*) echo "install-agent: warning: $SERVER is not encrypted (use wss:// on the internet)" >&2 ;;
  *) echo "install-agent: --server must start with wss:// or ws://" >&2; exit 2 ;;
esac

# Only what building the agent needs (the list the server image's build
# stage uses): a contributor's machine gets no PostgreSQL, HAProxy or test tools
echo "install-agent: installing build dependencies"
missing=()
for p in $(sed 's/#.*//' deploy/docker/packages-build.txt); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "install-agent: building"
make -j"$(nproc)" bin/p2c2r-agent
install -m 0755 bin/p2c2r-agent /usr/local/bin/p2c2r-agent

id p2c2r-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin p2c2r-agent
install -d -m 0755 /etc/p2c2r
umask 077
{
  echo "P2C2R_SERVER=$SERVER"
  [ -n "$KEYFILE" ] && echo "P2C2R_API_KEY=$(head -1 "$KEYFILE")"
  [ -n "$INSECURE_WS" ] && echo "P2C2R_ALLOW_INSECURE_WS=true"
  if [ -n "$CA" ]; then
    install -m 0644 "$CA" /etc/p2c2r/server-ca.pem
    echo "P2C2R_CA=/etc/p2c2r/server-ca.pem"
  fi
} >/etc/p2c2r/agent.env
chmod 0600 /etc/p2c2r/agent.env

# The owner's preferences: made once, kept on every later run (an upgrade)
if [ ! -e /etc/p2c2r/agent.conf ]; then
  umask 022
  cat >/etc/p2c2r/agent.conf <<'CONF'
# P2C2R peer preferences (BOINC's names); `systemctl reload p2c2r-agent` applies a change.
# exclusive-apps = steam, hl2_linux     # pause while any of these programs runs
# run-if-user-active = true             # false: run only after idle-time-to-run minutes
# idle-time-to-run = 3
# cpu-usage-limit = 100                 # percent of each second the workers may run
# max-ncpus-pct = 100                   # percent of the cores to use
# run-on-batteries = false
# suspend-cpu-usage = 0                 # pause while others use more than this % of the CPU
# run-hours = mon-fri 18:00-23:30, sat-sun 0-24
CONF
  umask 077
fi
install -m 0644 deploy/systemd/p2c2r-agent.service /etc/systemd/system/p2c2r-agent.service
systemctl daemon-reload
systemctl enable --now p2c2r-agent.service
echo "install-agent: running; logs: journalctl -u p2c2r-agent -f"
echo "install-agent: status and earnings: sudo p2c2r-agent status; preferences: /etc/p2c2r/agent.conf"
