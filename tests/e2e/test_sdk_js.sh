#!/usr/bin/env bash
# web/sdk/p2c2r.js in headless Chromium against the real stack: the page is
# served by a small local HTTP server (until the gateway serves web/
# itself), its WebSocket goes to the gateway. connect, submit (promises,
# results checked with hashlib), protocol error codes, cancel, reconnect
# across a gateway restart, close (tests/e2e/sdk_js_check.py).
. "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null && command -v chromedriver >/dev/null \
  && /usr/bin/python3 -c 'import selenium' 2>/dev/null \
  || { echo "FAIL chromium, chromedriver and python3-selenium are needed (deploy/deps.sh)"; T_FAIL=1; t_report; exit 1; }
start_stack || { t_report; exit 1; }
peer pa --slots 1 --no-bench
wait_peers pa || { t_report; exit 1; }

WWW=$T_DIR/www
mkdir -p "$WWW/sdk"
cp "$ROOT/web/sdk/p2c2r.js" "$WWW/sdk/"
cat >"$WWW/index.html" <<'HTML'
<!doctype html>
<meta charset="utf-8">
<title>p2c2r.js test</title>
<script type="module">
import * as P2C2R from "/sdk/p2c2r.js";
window.P2C2R = P2C2R;
</script>
HTML
HTTP_PORT=$(free_port)
spawn http /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$WWW" "$HTTP_PORT"
wait_for 10 curl -fsS "http://127.0.0.1:$HTTP_PORT/sdk/p2c2r.js" -o /dev/null
check "the module is served as a file, no build step" \
    curl -fsS "http://127.0.0.1:$HTTP_PORT/sdk/p2c2r.js" -o /dev/null

timeout 300 /usr/bin/python3 "$ROOT/tests/e2e/sdk_js_check.py" "http://127.0.0.1:$HTTP_PORT/" \
    "$SERVER" "$PID_gateway" "$T_DIR/gateway2.log" -- \
    "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GW_PORT" >"$T_DIR/js.out" 2>&1
rc=$?
cat "$T_DIR/js.out"
T_PASS=$((T_PASS + $(grep -c '^ok ' "$T_DIR/js.out")))
T_FAIL=$((T_FAIL + $(grep -c '^FAIL ' "$T_DIR/js.out")))
check "the browser checks ran to the end" test $rc = 0
t_report
