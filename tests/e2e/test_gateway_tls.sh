#!/usr/bin/env bash
# wss:// with a self-signed certificate made here (openssl req): a JSON peer
# and a JSON gamer verify it with Python's ssl module (the certificate as the
# CA file) and run tasks; https /healthz works; a client that does not trust
# the certificate is refused; plain ws:// on the TLS port gets nowhere.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
CL="$(dirname "$0")/gw_clients.py"

start_stack --starting-credit-pico 1000000000000 || { t_report; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$T_DIR/key.pem" -out "$T_DIR/cert.pem" >"$T_DIR/openssl.log" 2>&1
check "a self-signed certificate was made" test -s "$T_DIR/cert.pem"
GWT=$(free_port)
spawn gw-tls "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWT" \
    --tls-cert "$T_DIR/cert.pem" --tls-key "$T_DIR/key.pem"
check "https /healthz answers with the certificate trusted" \
    wait_for 20 curl -fsS --cacert "$T_DIR/cert.pem" "https://127.0.0.1:$GWT/healthz"
check "https /healthz is refused without trusting the certificate" \
    bash -c "! curl -fsS https://127.0.0.1:$GWT/healthz"
# What the gateway's TLS accepts (openssl s_client, the client side opened
# to old protocols and ciphers with SECLEVEL=0 so that the refusal is the
# gateway's): TLS 1.2 or newer, forward-secret AEAD ciphers only
tls_try () {   # tls_try NAME s_client-options...: NAME.out holds the handshake
  local name=$1; shift
  timeout 10 openssl s_client -connect "127.0.0.1:$GWT" -servername localhost "$@" \
      </dev/null >"$T_DIR/$name.out" 2>&1
}
# A handshake that agreed on a cipher prints "Cipher is NAME" (s_client),
# a refused one "Cipher is (NONE)" or nothing
tls_cipher () { sed -n 's/.*Cipher is \([A-Za-z0-9_-]*\).*/\1/p' "$T_DIR/$1.out" | head -1; }
tls_refused () { [ -z "$(tls_cipher "$1")" ] || [ "$(tls_cipher "$1")" = NONE ]; }
tls_try tls11 -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check "TLS 1.1 is refused" tls_refused tls11
tls_try static -tls1_2 -cipher 'AES128-SHA:@SECLEVEL=0'
check "static-RSA AES128-SHA on TLS 1.2 is refused" tls_refused static
tls_try gcm -tls1_2 -cipher 'ECDHE-RSA-AES128-GCM-SHA256'
check "ECDHE-RSA-AES128-GCM-SHA256 on TLS 1.2 is accepted" \
    test "$(tls_cipher gcm)" = ECDHE-RSA-AES128-GCM-SHA256
tls_try tls13 -tls1_3
check "TLS 1.3 is accepted" bash -c "grep -q 'TLSv1.3' '$T_DIR/tls13.out' && grep -Eq 'Cipher is TLS_' '$T_DIR/tls13.out'"
URL=wss://127.0.0.1:$GWT/
spawn tpeer $PY "$CL" peer "$URL" tls-peer --cafile "$T_DIR/cert.pem"
wait_for 20 grep -q 'tls-peer: registered' "$T_DIR/tpeer.log"
check "a JSON peer registers over wss://" grep -q 'tls-peer: registered' "$T_DIR/tpeer.log"
$PY "$CL" gamer "$URL" tls-gamer 20 --cafile "$T_DIR/cert.pem" >"$T_DIR/tgamer.out" 2>&1
rc=$?
tail -1 "$T_DIR/tgamer.out" | cut -c1-200
check "a JSON gamer gets 20 correct results over wss://" test $rc = 0
$PY - "$URL" <<'PY' >"$T_DIR/untrusted.out" 2>&1
import asyncio, ssl, sys, websockets
async def main():
    try:
        async with websockets.connect(sys.argv[1], ssl=ssl.create_default_context()):
            print("connected")
    except ssl.SSLCertVerificationError:
        print("refused: certificate not trusted")
asyncio.run(main())
PY
check "a client that does not trust the certificate does not connect" grep -q 'refused' "$T_DIR/untrusted.out"
$PY - "ws://127.0.0.1:$GWT/" <<'PY' >"$T_DIR/plain.out" 2>&1
import asyncio, sys, websockets
async def main():
    try:
        async with websockets.connect(sys.argv[1], open_timeout=5) as ws:
            await ws.send('{"type":"register_gamer","gamer_id":"plain"}')
            print("got", await asyncio.wait_for(ws.recv(), 5))
    except Exception as e:
        print("refused", type(e).__name__)
asyncio.run(main())
PY
check "plain ws:// on the TLS port is refused" grep -q '^refused' "$T_DIR/plain.out"
# Under load the gateway writes a connection's queued frames in one go
# (several WebSocket frames per TLS write): protobuf agents at concurrency
# 128 over wss:// get every result, each exactly once
spawn apeer-a "$BIN/p2c2r-agent" peer --server "$URL" --ca "$T_DIR/cert.pem" --peer-id tls-load-a
spawn apeer-b "$BIN/p2c2r-agent" peer --server "$URL" --ca "$T_DIR/cert.pem" --peer-id tls-load-b
wait_for 20 grep -q 'peer: registered' "$T_DIR/apeer-b.log"
"$BIN/p2c2r-agent" gamer --server "$URL" --ca "$T_DIR/cert.pem" --gamer-id tls-load \
    --task encryption --params '{"data":"tls-{i}","iterations":1}' --count 3000 \
    --concurrency 128 --quiet --timeout-s 120 >"$T_DIR/tload.out" 2>&1
grep summary "$T_DIR/tload.out" | head -1
check "3000 tasks at concurrency 128 over wss:// all answered once" \
    grep -q 'summary: tasks=3000 ok=3000 errors=0 missing=0 protocol_errors=0' "$T_DIR/tload.out"
check "the gateway kept running" kill -0 "$PID_gw_tls"
t_report
