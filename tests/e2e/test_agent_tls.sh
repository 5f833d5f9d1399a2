#!/usr/bin/env bash
# The agent over wss:// against a gateway with a self-signed certificate made
# here: a peer and a gamer that trust it (--ca) run tasks whose results are
# checked against hashlib; a gamer that does not trust it is refused with a
# certificate error (exit 3), and a peer in the same case keeps retrying and
# says why; --insecure connects and warns. Then the gateway's close codes: a
# gateway that stops (1001) sees its peer come back at once to the restarted
# one; a refused API key is retried only after minutes, not in a loop.
# lib.sh's start_stack probes its gateway over plain http/ws, so the stack
# runs plain and the TLS gateway is a second one on the same broker.
. "$(dirname "$0")/lib.sh"
AGENT=$BIN/p2c2r-agent

start_stack || { t_report; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$T_DIR/key.pem" -out "$T_DIR/cert.pem" >"$T_DIR/openssl.log" 2>&1
check "a self-signed certificate was made" test -s "$T_DIR/cert.pem"
GWT=$(free_port)
TLS_GW=("$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWT"
        --tls-cert "$T_DIR/cert.pem" --tls-key "$T_DIR/key.pem")
spawn gw-tls "${TLS_GW[@]}"
check "the TLS gateway answers https /healthz" \
    wait_for 20 curl -fsS --cacert "$T_DIR/cert.pem" "https://127.0.0.1:$GWT/healthz"
URL=wss://127.0.0.1:$GWT/

# hashes.py FILE N ITER PREFIX: every line of the gamer's --json output is
# the iterated SHA-256 of docs/protocol.md, computed here, for indexes 0..N-1
cat >"$T_DIR/hashes.py" <<'PY'
import hashlib, json, sys
path, n, iters, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
seen = {}
for line in open(path):
    r = json.loads(line)
    cur = f"{prefix}-{r['index']}".encode()
    for i in range(iters):
        cur = hashlib.sha256(cur + str(i).encode()).digest()
    seen[r["index"]] = r["ok"] and r["result"]["hash"] == cur.hex()
bad = [i for i in range(n) if not seen.get(i)]
print("all correct" if not bad else f"wrong or missing: {bad[:10]}")
sys.exit(1 if bad else 0)
PY

# The only peer of the network, on wss://: every task below runs on it
spawn tpeer "$AGENT" peer --server "$URL" --ca "$T_DIR/cert.pem" --peer-id tls-peer --slots 2 \
    --log-tasks --no-bench
check "a peer with --ca registers over wss://" wait_for 20 grep -q 'peer: registered' "$T_DIR/tpeer.log"

N=20
"$AGENT" gamer --server "$URL" --ca "$T_DIR/cert.pem" --gamer-id tls-gamer --task encryption \
    --params '{"data":"ca-{i}","iterations":500}' --count $N --concurrency 4 --json --timeout-s 60 \
    >"$T_DIR/ca.out" 2>"$T_DIR/ca.err"
rc=$?
check "a gamer with --ca gets its $N tasks answered over wss:// (exit 0)" test $rc = 0
check "their results are the iterated SHA-256 (checked with hashlib)" \
    python3 "$T_DIR/hashes.py" "$T_DIR/ca.out" $N 500 ca
check "the wss:// peer ran them" \
    test "$(grep -c 'task done .*ok=1' "$T_DIR/tpeer.log")" -ge $N

"$AGENT" gamer --server "$URL" --gamer-id untrusting --task encryption \
    --params '{"data":"no","iterations":1}' --timeout-s 20 >"$T_DIR/noca.out" 2>"$T_DIR/noca.err"
rc=$?
grep -m1 'certificate' "$T_DIR/noca.err"
check "a gamer without --ca is refused: exit 3" test $rc = 3
check "...saying the certificate is not trusted and why" \
    grep -q 'certificate not trusted: self-signed certificate' "$T_DIR/noca.err"

"$AGENT" gamer --server "$URL" --insecure --gamer-id insecure-gamer --task encryption \
    --params '{"data":"in-{i}","iterations":300}' --count 5 --json --timeout-s 60 \
    >"$T_DIR/insecure.out" 2>"$T_DIR/insecure.err"
rc=$?
check "a gamer with --insecure gets its tasks answered (exit 0)" test $rc = 0
check "...with correct results" python3 "$T_DIR/hashes.py" "$T_DIR/insecure.out" 5 300 in
check "...and warns once that the certificate is not verified" \
    test "$(grep -c 'WARN gamer: insecure mode' "$T_DIR/insecure.err")" = 1

"$AGENT" gamer --server "$URL" --ca "$T_DIR/missing.pem" --task encryption \
    --params '{}' >/dev/null 2>"$T_DIR/missing.err"
rc=$?
check "a --ca file that cannot be read is a settings error (exit 1, named)" \
    bash -c "test $rc = 1 && grep -q 'cannot read --ca' '$T_DIR/missing.err'"

# A peer that does not trust the server keeps trying, with growing delays
spawn badpeer "$AGENT" peer --server "$URL" --peer-id untrusting-peer --no-bench --slots 1
two_refusals () { [ "$(grep -c 'certificate not trusted' "$T_DIR/badpeer.log")" -ge 2 ]; }
check "a peer without --ca says the certificate is not trusted, and retries" wait_for 15 two_refusals
check "...with a longer delay each time (backoff)" python3 - "$T_DIR/badpeer.log" <<'PY'
import re, sys
d = [int(m) for m in re.findall(r"certificate not trusted.*retry_ms=(\d+)", open(sys.argv[1]).read())]
sys.exit(0 if len(d) >= 2 and d[1] > d[0] else 1)
PY
check "...and is still running" kill -0 "$PID_badpeer"
check "...and never registered" bash -c "! grep -q 'peer: registered' '$T_DIR/badpeer.log'"

# 1001: the TLS gateway stops (SIGTERM drains, closes with going away); one
# restarted on the same port gets the peer back at once
kill -TERM "$PID_gw_tls"
gw_gone () { ! kill -0 "$PID_gw_tls" 2>/dev/null; }
check "the TLS gateway stops on SIGTERM" wait_for 20 gw_gone
spawn gw-tls2 "${TLS_GW[@]}"
check "the peer heard 1001 and chose to come back at once" \
    wait_for 10 grep -q 'close_code=1001 retry=soon' "$T_DIR/tpeer.log"
check "...within a second" python3 - "$T_DIR/tpeer.log" <<'PY'
import re, sys
m = re.search(r"close_code=1001 retry=soon retry_ms=(\d+)", open(sys.argv[1]).read())
sys.exit(0 if m and 100 <= int(m.group(1)) <= 1000 else 1)
PY
registered_twice () { [ "$(grep -c 'peer: registered' "$T_DIR/tpeer.log")" -ge 2 ]; }
check "the peer registered again with the restarted gateway" wait_for 15 registered_twice
"$AGENT" gamer --server "$URL" --ca "$T_DIR/cert.pem" --gamer-id tls-gamer-2 --task encryption \
    --params '{"data":"re-{i}","iterations":200}' --count 5 --json --timeout-s 60 \
    >"$T_DIR/re.out" 2>"$T_DIR/re.err"
check "tasks run on it again, correctly" python3 "$T_DIR/hashes.py" "$T_DIR/re.out" 5 200 re

# A refused API key: one clear line and a wait of minutes, not a fast loop
GWK=$(free_port)
spawn gw-key "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWK" --auth apikey
wait_for 20 healthz "$GWK"
spawn keypeer "$AGENT" peer --server "ws://127.0.0.1:$GWK" --peer-id keyless --no-bench --slots 1
check "a peer whose key is refused says so" \
    wait_for 15 grep -q 'api key refused by the server' "$T_DIR/keypeer.log"
check "...and waits about 5 minutes before asking again" python3 - "$T_DIR/keypeer.log" <<'PY'
import re, sys
m = re.search(r"api key refused.*retry_ms=(\d+)", open(sys.argv[1]).read())
sys.exit(0 if m and 270000 <= int(m.group(1)) <= 330000 else 1)
PY
sleep 3    # a fast loop would show more refusals by now
check "...with no second attempt meanwhile, and is still running" \
    bash -c "test \$(grep -c 'registration refused' '$T_DIR/keypeer.log') = 1 && kill -0 $PID_keypeer"
t_report
