#!/bin/sh
# Installs, or upgrades, the P2C2R peer agent for a contributor on Debian 12
# (or a close relative) and runs it as a systemd service under its own
# unprivileged user. One script, two sources of the agent:
#   curl -fsSL https://SERVER/install.sh | sh
#       the server's copy: the gateway fills in its address below; the agent
#       binary (Debian 12 amd64) comes from SERVER/downloads/ and must match
#       the SHA-256 published beside it
#   sudo deploy/install-agent.sh --server wss://HOST[:PORT] [--api-key-file FILE]
#       from this source tree: the agent is built here
# Settings, in the environment or as flags (curl ... | sh -s -- --flag ...):
#   P2C2R_API_KEY=KEY    --api-key-file FILE  the key from the operator
#                                             (p2c2r-ctl account create peer NAME)
#   P2C2R_NAME=NAME      --name NAME          this peer's name (default: host name)
#   P2C2R_SERVER=URL     --server URL         wss://HOST[:PORT] (default: the
#                                             server this script came from)
#   P2C2R_CA=FILE        --ca FILE            the server's CA certificate, for a
#                                             private or self-signed server
#   P2C2R_ALLOW_INSECURE_WS=1 --allow-insecure-ws  send the key over plain ws://
#                                             to another machine (a trusted private
#                                             network only; refused otherwise)
#   P2C2R_DRY_RUN=1      --dry-run            say what would change, change nothing
# Running it again upgrades: binary and unit replaced, the service restarted;
# a key, name or CA not given again is kept from /etc/p2c2r/agent.env (root
# only); the preferences file /etc/p2c2r/agent.conf is made once and kept.
# Nothing changes before everything is fetched and checked.
set -eu

# The gateway fills this line in with its own address when it serves the
# script (gateway/gw_install.c); empty here: install from the source tree
P2C2R_FROM=

say () { echo "p2c2r-install: $*"; }
die () { echo "p2c2r-install: $*" >&2; exit 1; }

# All in one function called on the last line: a script cut short in
# transit (curl | sh) defines it at most, and runs nothing
main () {
API_KEY=${P2C2R_API_KEY:-} PEER_NAME=${P2C2R_NAME:-} SERVER=${P2C2R_SERVER:-} CA=${P2C2R_CA:-}
DRY=${P2C2R_DRY_RUN:-} INSECURE_WS=${P2C2R_ALLOW_INSECURE_WS:-}
while [ $# -gt 0 ]; do
  case $1 in
    --server) [ $# -ge 2 ] || die "$1 wants a value"; SERVER=$2; shift 2 ;;
    --api-key-file) [ $# -ge 2 ] || die "$1 wants a value"
                    [ -r "$2" ] || die "cannot read $2"
                    API_KEY=$(head -n 1 "$2"); shift 2 ;;
    --name) [ $# -ge 2 ] || die "$1 wants a value"; PEER_NAME=$2; shift 2 ;;
    --ca) [ $# -ge 2 ] || die "$1 wants a value"; CA=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --allow-insecure-ws) INSECURE_WS=1; shift ;;
    -h|--help) sed -n '2,26p' "$0" 2>/dev/null || echo "see docs/deploy.md"; exit 0 ;;
    *) die "unknown argument $1 (--help)" ;;
  esac
done
case $DRY in ""|0) DRY="" ;; esac
case $INSECURE_WS in ""|0|false) INSECURE_WS="" ;; *) INSECURE_WS=1 ;; esac

ETC=/etc/p2c2r
BIN=/usr/local/bin/p2c2r-agent
UNIT=/etc/systemd/system/p2c2r-agent.service
AGENT=p2c2r-agent-linux-amd64
# What the agent links (ldd bin/p2c2r-agent), by Debian 12's package names
RUNTIME="libprotobuf-c1 libwebsockets17 libjansson4 libssl3 zlib1g libpng16-16 libseccomp2 ca-certificates"

if [ -n "$P2C2R_FROM" ]; then
  FROM=download
  case $P2C2R_FROM in
    https://*) DEFAULT_SERVER=wss://${P2C2R_FROM#https://} ;;
    *) DEFAULT_SERVER=ws://${P2C2R_FROM#http://} ;;
  esac
else
  FROM=source
  TREE=$(cd "$(dirname "$0")/.." 2>/dev/null && pwd) || TREE=""
  [ -n "$TREE" ] && [ -f "$TREE/Makefile" ] && [ -d "$TREE/agent" ] \
    || die "no server address and no source tree: fetch this script from a server (curl -fsSL https://SERVER/install.sh | sh)"
  DEFAULT_SERVER=""
fi

# Root, or again through sudo with the settings kept (in its environment)
if [ "$(id -u)" != 0 ] && [ -z "$DRY" ]; then
  command -v sudo >/dev/null || die "run as root"
  say "root is needed: running again through sudo"
  keep=P2C2R_API_KEY,P2C2R_NAME,P2C2R_SERVER,P2C2R_CA,P2C2R_DRY_RUN,P2C2R_ALLOW_INSECURE_WS
  export P2C2R_API_KEY="$API_KEY" P2C2R_NAME="$PEER_NAME" P2C2R_SERVER="$SERVER" P2C2R_CA="$CA"
  export P2C2R_ALLOW_INSECURE_WS="$INSECURE_WS"
  if [ $FROM = download ]; then
    curl -fsSL ${CA:+--cacert "$CA"} "$P2C2R_FROM/install.sh" | sudo --preserve-env=$keep sh
    exit $?
  fi
  exec sudo --preserve-env=$keep sh "$0"
fi

for c in apt-get dpkg-query systemctl; do
  command -v $c >/dev/null || die "$c not found: this installer is for Debian 12 with systemd"
done
if [ $FROM = download ]; then
  arch=$(dpkg --print-architecture)
  [ "$arch" = amd64 ] || die "the server's agent is for amd64, this machine is $arch: build it from the source tree"
  command -v curl >/dev/null || die "curl not found (apt-get install curl)"
  command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
fi
os=$(. /etc/os-release 2>/dev/null; echo "${ID:-} ${VERSION_ID:-} ${PRETTY_NAME:-an unknown system}")
case $os in
  "debian 12 "*) ;;
  *) say "warning: made for Debian 12, this is ${os#* * }" ;;
esac

# What was there: a key, name or CA not given again is kept (an upgrade)
old () { [ -r $ETC/agent.env ] && sed -n "s/^$1=//p" $ETC/agent.env | head -n 1 || true; }
[ -n "$API_KEY" ] || API_KEY=$(old P2C2R_API_KEY)
[ -n "$PEER_NAME" ] || PEER_NAME=$(old P2C2R_PEER_ID)
[ -n "$SERVER" ] || SERVER=$(old P2C2R_SERVER)
[ -n "$SERVER" ] || SERVER=$DEFAULT_SERVER
OLD_CA=$(old P2C2R_CA)
[ -n "$INSECURE_WS" ] || case $(old P2C2R_ALLOW_INSECURE_WS) in true|1) INSECURE_WS=1 ;; esac

# Checked strictly: these go into a systemd environment file
[ -n "$SERVER" ] || die "--server wss://HOST[:PORT] is required"
printf '%s' "$SERVER" | grep -q '[^][A-Za-z0-9.:/_-]' \
  && die "the server address '$SERVER' has characters it cannot have"
case $SERVER in
  wss://?*) ;;
  ws://?*) say "warning: $SERVER is not encrypted (use wss:// on the internet)" ;;
  *) die "the server address must start with wss:// or ws://" ;;
esac
# The agent refuses to send its key in clear text to another machine
# (docs/trust.md): said here, before anything changes
case $SERVER in
  ws://*)
    host=${SERVER#ws://}
    host=${host%%/*}
    case $host in \[*) host=${host%%]*}] ;; *) host=${host%%:*} ;; esac
    loopback=""
    case $host in localhost|"[::1]") loopback=1 ;; esac
    printf '%s' "$host" | grep -Eqx '127(\.[0-9]{1,3}){3}' && loopback=1
    [ -z "$API_KEY" ] || [ -n "$INSECURE_WS" ] || [ -n "$loopback" ] \
      || die "refusing to send the API key in clear text to $SERVER: use a wss:// address (TLS), or --allow-insecure-ws (P2C2R_ALLOW_INSECURE_WS=1) on a network you trust" ;;
esac
case $API_KEY in *[!A-Za-z0-9._-]*) die "the API key has characters a key does not have" ;; esac
case $PEER_NAME in *[!A-Za-z0-9._-]*) die "the name may hold letters, digits, '.', '_' and '-'" ;; esac
[ ${#PEER_NAME} -le 64 ] || die "the name is longer than 64 characters"
[ -z "$CA" ] || [ -r "$CA" ] || die "cannot read the CA file $CA"

# The packages missing
if [ $FROM = download ]; then
  want=$RUNTIME
else
  want=$(sed 's/#.*//' "$TREE/deploy/docker/packages-build.txt")
fi
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done

# Fetched and checked before anything changes
TMP=$(mktemp -d /tmp/p2c2r-install.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
if [ $FROM = download ]; then
  fetch () { curl -fsSL ${CA:+--cacert "$CA"} -o "$TMP/$2" "$P2C2R_FROM/downloads/$1" \
               || die "cannot fetch $P2C2R_FROM/downloads/$1: nothing was changed"; }
  say "fetching the agent from $P2C2R_FROM"
  fetch $AGENT agent
  fetch $AGENT.sha256 agent.sha256
  fetch p2c2r-agent.service agent.service
  want_sum=$(cut -d ' ' -f 1 "$TMP/agent.sha256" | head -n 1)
  got_sum=$(sha256sum "$TMP/agent" | cut -d ' ' -f 1)
  if [ "$want_sum" != "$got_sum" ]; then
    echo "p2c2r-install: CHECKSUM MISMATCH: the agent fetched from $P2C2R_FROM/downloads/$AGENT" >&2
    echo "p2c2r-install:   has SHA-256 $got_sum" >&2
    echo "p2c2r-install:   the server publishes ${want_sum:-nothing}" >&2
    die "refusing to install it; nothing was changed (tell the server's operator)"
  fi
  say "the agent's SHA-256 matches the published one: $got_sum"
  SRC_DESC="fetched from $P2C2R_FROM (SHA-256 checked)"
else
  cp "$TREE/deploy/systemd/p2c2r-agent.service" "$TMP/agent.service"
  SRC_DESC="built from $TREE"
fi

verb=install
[ -x $BIN ] && verb=upgrade
echo "p2c2r-install: this will:"
if [ -n "$missing" ]; then
  echo "  - install with apt-get:$missing"
else
  echo "  - install no packages (all there)"
fi
echo "  - $verb $BIN ($SRC_DESC)"
id p2c2r-agent >/dev/null 2>&1 || echo "  - create the system user p2c2r-agent"
echo "  - write $ETC/agent.env (server $SERVER${PEER_NAME:+, name $PEER_NAME}${API_KEY:+, API key}; root only)"
[ -n "$CA" ] && echo "  - install the CA certificate as $ETC/server-ca.pem"
if [ -e $ETC/agent.conf ]; then
  echo "  - keep the preferences in $ETC/agent.conf"
else
  echo "  - create the preferences file $ETC/agent.conf"
fi
echo "  - install $UNIT, enable it and (re)start the p2c2r-agent service"
if [ -n "$DRY" ]; then
  say "dry run: nothing was changed"
  exit 0
fi

if [ -n "$missing" ]; then
  say "installing packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086  # a list of package names
  apt-get install -y -q --no-install-recommends $missing
fi
if [ $FROM = source ]; then
  say "building"
  make -C "$TREE" -j"$(nproc)" bin/p2c2r-agent
  cp "$TREE/bin/p2c2r-agent" "$TMP/agent"
fi
# Replaced whole (a rename), never written over while it runs
install -m 0755 "$TMP/agent" $BIN.new
mv -f $BIN.new $BIN

id p2c2r-agent >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin p2c2r-agent
install -d -m 0755 $ETC
if [ -n "$CA" ]; then
  install -m 0644 "$CA" $ETC/server-ca.pem
  CA=$ETC/server-ca.pem
else
  CA=$OLD_CA
fi
umask 077
{
  echo "P2C2R_SERVER=$SERVER"
  [ -z "$API_KEY" ] || echo "P2C2R_API_KEY=$API_KEY"
  [ -z "$PEER_NAME" ] || echo "P2C2R_PEER_ID=$PEER_NAME"
  [ -z "$CA" ] || echo "P2C2R_CA=$CA"
  [ -z "$INSECURE_WS" ] || echo "P2C2R_ALLOW_INSECURE_WS=true"
} >$ETC/agent.env.new
chmod 0600 $ETC/agent.env.new
mv -f $ETC/agent.env.new $ETC/agent.env

# The owner's preferences: made once, kept on every later run (an upgrade)
if [ ! -e $ETC/agent.conf ]; then
  umask 022
  cat >$ETC/agent.conf <<'CONF'
# P2C2R peer preferences (BOINC's names), one "name = value" a line; remove
# the "# " of a line to set it. `sudo systemctl reload p2c2r-agent` applies a change.
# Pause while any of these programs runs:
# exclusive-apps = steam, hl2_linux
# false: run only after idle-time-to-run minutes without keyboard or mouse:
# run-if-user-active = true
# idle-time-to-run = 3
# Percent of each second the workers may run; percent of the cores to use:
# cpu-usage-limit = 100
# max-ncpus-pct = 100
# run-on-batteries = false
# Pause while other programs use more than this percent of the CPU (0: never):
# suspend-cpu-usage = 0
# When to run:
# run-hours = mon-fri 18:00-23:30, sat-sun 0-24
CONF
fi
install -m 0644 "$TMP/agent.service" $UNIT
systemctl daemon-reload
systemctl enable p2c2r-agent.service >/dev/null 2>&1
systemctl restart p2c2r-agent.service
[ $verb = upgrade ] && say "upgraded and restarted" || say "installed and started"
say "logs:                 journalctl -u p2c2r-agent -f"
say "status and earnings:  sudo p2c2r-agent status"
say "preferences:          $ETC/agent.conf (then: sudo systemctl reload p2c2r-agent)"
}

main "$@"
