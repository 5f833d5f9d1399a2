#!/usr/bin/env bash
# The gateway's side of the one-line install (`curl -fsSL URL/install.sh |
# sh`), checked with curl as a contributor's machine fetches it:
# /install.sh is deploy/install-agent.sh with the address the request was
# sent to filled in (or --public-url; https from a trusted proxy's
# X-Forwarded-Proto only); a Host header a shell would read more into is
# refused; the agent binary under /downloads/ is bin/p2c2r-agent byte for
# byte and its .sha256 matches it; nothing else is served from there, and
# nothing outside the directory. The script as served fetches the agent and
# checks its SHA-256 (--dry-run: it changes nothing on this machine), and
# refuses a binary that does not match the published checksum. After make
# install, a gateway serves PREFIX/share/p2c2r/downloads by default. The
# install in a clean Debian container is tests/deploy/install_oneline.sh.
# Needs no PostgreSQL: a broker and gateways are enough.
. "$(dirname "$0")/lib.sh"

BPORT=$(free_port)
BROKER=tcp://127.0.0.1:$BPORT
spawn broker "$BIN/p2c2r-broker" --bind "$BROKER"

# What make install puts in PREFIX/share/p2c2r/downloads, and a prefix with
# the whole install (a make of its own: not the jobserver of a `make test`)
P=$T_DIR/prefix
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$ROOT" install PREFIX="$P" \
    >"$T_DIR/install.log" 2>&1
D=$P/share/p2c2r/downloads
A=p2c2r-agent-linux-amd64
check "make install puts the script, the agent, its .sha256 and unit in share/p2c2r/downloads" \
    test -s "$D/install.sh" -a -x "$D/$A" -a -s "$D/$A.sha256" -a -s "$D/p2c2r-agent.service"

# get PORT PATH [curl args]: prints the status and keeps the body in $T_DIR/body
get () {
  local port=$1 path=$2; shift 2
  curl -s --path-as-is -o "$T_DIR/body" -w '%{http_code}' "$@" "http://127.0.0.1:$port$path"
}

GP=$(free_port)
spawn gw "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GP" --downloads-dir "$D"
check "the gateway starts with --downloads-dir" wait_for 20 healthz "$GP"

# The script as served is the source's with only its P2C2R_FROM= line filled in
filled_with () {
  [ "$(get "$GP" /install.sh "${@:2}")" = 200 ] &&
  grep -qxF "P2C2R_FROM='$1'" "$T_DIR/body" &&
  diff <(grep -vxF "P2C2R_FROM='$1'" "$T_DIR/body") \
       <(grep -vxF 'P2C2R_FROM=' "$ROOT/deploy/install-agent.sh") >/dev/null
}
check "/install.sh holds the address it was fetched from (http://127.0.0.1:$GP)" \
    filled_with "http://127.0.0.1:$GP"
check "/install.sh is a shell script" \
    test "$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$GP/install.sh")" \
         = "text/x-shellscript; charset=utf-8"
check "the served script parses with sh -n" sh -n "$T_DIR/body"
# A key never leaves in clear text for another machine: refused before any
# change (a dry run here), unless the contributor says the network is trusted
cp "$T_DIR/body" "$T_DIR/served.sh"
clear_key () {
  ! P2C2R_API_KEY=k1 sh "$T_DIR/served.sh" --dry-run --server ws://192.0.2.1:8765 \
      >"$T_DIR/clear.out" 2>&1 && grep -q "refusing to send the API key in clear text" "$T_DIR/clear.out"
}
check "the script refuses to send a key over plain ws:// to another machine" clear_key
check "a DNS name and port in the Host header" filled_with "http://p2c2r.example.org:8443" \
    -H "Host: p2c2r.example.org:8443"
check "an [IPv6] Host" filled_with "http://[::1]:$GP" -H "Host: [::1]:$GP"
check "X-Forwarded-Proto from a client that is no trusted proxy is ignored" \
    filled_with "http://127.0.0.1:$GP" -H "X-Forwarded-Proto: https"

# Host headers a shell would read more into: 400, and no script
refused () {
  [ "$(get "$GP" /install.sh -H "Host: $1")" = 400 ] && ! grep -q P2C2R_FROM "$T_DIR/body"
}
for h in 'x$(touch /tmp/p2c2r-pwned)' 'x`id`' "x';id;'" 'x;id' 'x|id' 'x&&id' 'x"y' 'x y' \
         'x/../y' 'x:0' 'x:99999' 'x\y' '{x}' 'x>y'; do
  check "Host: $h is refused (400)" refused "$h"
done
check "the pages still answer: /healthz" test "$(get "$GP" /healthz)" = 200

# The agent and its checksum
check "/downloads/$A is bin/p2c2r-agent byte for byte" \
    bash -c "[ \"\$(curl -s -o '$T_DIR/agent' -w '%{http_code}' http://127.0.0.1:$GP/downloads/$A)\" = 200 ] \
             && cmp -s '$T_DIR/agent' '$BIN/p2c2r-agent'"
sum_ok () {
  [ "$(get "$GP" "/downloads/$A.sha256")" = 200 ] &&
  [ "$(cut -d' ' -f1 "$T_DIR/body")" = "$(sha256sum "$T_DIR/agent" | cut -d' ' -f1)" ] &&
  (mkdir -p "$T_DIR/chk" && cp "$T_DIR/agent" "$T_DIR/chk/$A" && cp "$T_DIR/body" "$T_DIR/chk/$A.sha256" &&
   cd "$T_DIR/chk" && sha256sum -c --quiet "$A.sha256")
}
check "/downloads/$A.sha256 matches the binary (sha256sum -c)" sum_ok
check "/downloads/p2c2r-agent.service is the unit of deploy/systemd" \
    bash -c "curl -fs http://127.0.0.1:$GP/downloads/p2c2r-agent.service \
             | cmp -s - '$ROOT/deploy/systemd/p2c2r-agent.service'"

# Nothing else from the directory, nothing from outside it
printf 'top secret\n' >"$T_DIR/secret"
ln -sf "$T_DIR/secret" "$D/secret"
ln -sf /etc/passwd "$D/passwd"
nothing () {
  local got; got=$(get "$GP" "$1")
  [ "$got" != 200 ] || [ "$1" = /downloads/../install.sh ] || return 1
  ! grep -q -e 'root:' -e 'top secret' "$T_DIR/body"
}
for path in /downloads/secret /downloads/passwd /downloads/install.sh /downloads/ /downloads \
            /downloads/../../etc/passwd /downloads/%2e%2e/%2e%2e/etc/passwd \
            /downloads/..%2f..%2fetc%2fpasswd "/downloads/$A/../../../etc/passwd" \
            /downloads//etc/passwd /downloads/%2fetc%2fpasswd '/downloads/..\..\etc\passwd' \
            /downloads/../install.sh "/downloads/$A%00.sha256"; do
  check "nothing from outside the served set for $path" nothing "$path"
done

# The script as a contributor runs it, in its dry run: it fetches the agent
# and checks the SHA-256, then says what it would change and changes nothing
dry_ok () {
  curl -fsSL "http://127.0.0.1:$GP/install.sh" \
    | P2C2R_DRY_RUN=1 P2C2R_API_KEY=k1 P2C2R_NAME=n1 sh >"$T_DIR/dry.out" 2>&1 &&
  grep -q "SHA-256 matches" "$T_DIR/dry.out" && grep -q "this will:" "$T_DIR/dry.out" &&
  grep -q "nothing was changed" "$T_DIR/dry.out"
}
check "curl .../install.sh | P2C2R_DRY_RUN=1 sh: agent fetched, SHA-256 checked, plan shown" dry_ok

# A script cut short in transit runs nothing (all of it is one function
# called on its last line)
cut_short () {
  local n; n=$(curl -fsS "http://127.0.0.1:$GP/install.sh" | wc -c)
  curl -fsS "http://127.0.0.1:$GP/install.sh" | head -c $((n - 20)) \
    | P2C2R_DRY_RUN=1 sh >"$T_DIR/cut.out" 2>&1
  ! grep -q "p2c2r-install" "$T_DIR/cut.out"
}
check "the script cut short (curl | sh over a broken connection) does nothing" cut_short

# A binary that does not match the published checksum
T=$T_DIR/tampered
mkdir -p "$T"
cp "$D/install.sh" "$D/p2c2r-agent.service" "$D/$A.sha256" "$T/"
cp "$D/$A" "$T/$A"
printf 'x' >>"$T/$A"
GT=$(free_port)
spawn gwt "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GT" --downloads-dir "$T"
wait_for 20 healthz "$GT"
check "the gateway logs that the published .sha256 does not match the binary" \
    grep -q "does not match the binary" "$T_DIR/gwt.log"
tamper_refused () {
  ! curl -fsSL "http://127.0.0.1:$GT/install.sh" | P2C2R_DRY_RUN=1 sh >"$T_DIR/tamper.out" 2>&1 &&
  grep -q "CHECKSUM MISMATCH" "$T_DIR/tamper.out" && grep -q "nothing was changed" "$T_DIR/tamper.out" &&
  ! grep -q "this will:" "$T_DIR/tamper.out"
}
check "the script refuses a binary that does not match (exit non-zero, nothing changed)" \
    tamper_refused

# --public-url, and a trusted proxy's X-Forwarded-Proto
GU=$(free_port)
spawn gwu "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GU" --downloads-dir "$D" \
    --public-url https://p2c2r.example.org/
GX=$(free_port)
spawn gwx "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GX" --downloads-dir "$D" \
    --trusted-proxies 127.0.0.1
wait_for 20 healthz "$GU"
wait_for 20 healthz "$GX"
GP=$GU
check "--public-url wins over any Host header" filled_with "https://p2c2r.example.org" \
    -H 'Host: x$(id)'
GP=$GX
check "behind a trusted proxy, X-Forwarded-Proto: https makes it https://" \
    filled_with "https://p2c2r.example.org" -H "Host: p2c2r.example.org" -H "X-Forwarded-Proto: https"
check "a --public-url a shell would read more into is refused at start" \
    bash -c "! '$BIN/p2c2r-gateway' --public-url 'https://x\$(id)' --listen 127.0.0.1:1 2>/dev/null"

# A gateway serving TLS itself: https://, and the script fetches over it
# with the server's CA (P2C2R_CA, as curl --cacert)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" \
    -keyout "$T_DIR/key.pem" -out "$T_DIR/cert.pem" >"$T_DIR/openssl.log" 2>&1
GS=$(free_port)
spawn gws "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GS" --downloads-dir "$D" \
    --tls-cert "$T_DIR/cert.pem" --tls-key "$T_DIR/key.pem"
wait_for 20 curl -fsk "https://127.0.0.1:$GS/healthz"
tls_ok () {
  curl -fsS --cacert "$T_DIR/cert.pem" --resolve "localhost:$GS:127.0.0.1" \
    "https://localhost:$GS/install.sh" >"$T_DIR/tls.sh" &&
  grep -qxF "P2C2R_FROM='https://localhost:$GS'" "$T_DIR/tls.sh"
}
check "a gateway with --tls-cert fills in https://" tls_ok

# The installed gateway's default: PREFIX/share/p2c2r/downloads
GI=$(free_port)
spawn gwi "$P/bin/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GI"
wait_for 20 healthz "$GI"
GP=$GI
check "an installed gateway serves PREFIX/share/p2c2r/downloads by default" \
    filled_with "http://127.0.0.1:$GI"
# No directory: nothing served, the rest answers
GN=$(free_port)
spawn gwn "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GN" \
    --downloads-dir "$T_DIR/nonexistent"
wait_for 20 healthz "$GN"
check "without a downloads directory /install.sh is 404" test "$(get "$GN" /install.sh)" = 404
check "every gateway kept running" kill -0 "$PID_gw" "$PID_gwt" "$PID_gwu" "$PID_gwx" "$PID_gws" "$PID_gwi" "$PID_gwn"
t_report
