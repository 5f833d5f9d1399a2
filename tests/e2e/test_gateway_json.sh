#!/usr/bin/env bash
# The gateway's JSON dialect with clients written like the original demo's
# (python3-websockets): a JSON peer and JSON gamers against the real stack,
# the bad-input table, limits, /metrics, /readyz, /api/stats, API keys with
# revocation, and a graceful stop (SIGTERM) with an in-flight task.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
CL="$(dirname "$0")/gw_clients.py"

# Gamers get a starting credit of $1 so that their tasks are paid for
start_stack --starting-credit-pico 1000000000000 || { t_report; exit 1; }
GWJ=$(free_port)
GWJA=$(free_port)
spawn gw-json "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWJ" \
    --admin-listen "127.0.0.1:$GWJA" --register-timeout-ms 2000 --max-frame 262144 --rate-msgs 2 --rate-burst 100
wait_for 20 healthz "$GWJ"
URL=ws://127.0.0.1:$GWJ/
spawn jpeer $PY "$CL" peer "$URL" json-peer-1
wait_for 20 grep -q 'json-peer-1: registered' "$T_DIR/jpeer.log"
check "a JSON peer (no task_types) registers" grep -q 'json-peer-1: registered' "$T_DIR/jpeer.log"
check "/readyz says ready with broker, scheduler and ledger up" \
    wait_for 10 curl -fsS "http://127.0.0.1:$GWJ/readyz"

$PY "$CL" cases "$URL" --register-timeout-s 2 >"$T_DIR/cases.out" 2>&1
rc=$?
cat "$T_DIR/cases.out"
check "JSON protocol and bad-input cases" test $rc = 0

$PY "$CL" gamer "$URL" json-gamer-1 40 --iterations 200 >"$T_DIR/gamer1.out" 2>&1
rc=$?
tail -1 "$T_DIR/gamer1.out" | cut -c1-300
check "a JSON gamer gets 40 correct results (aliases, cost_usd exact)" test $rc = 0
check "the JSON peer did the work" test "$(grep -c 'task done' "$T_DIR/jpeer.log")" -ge 40
check "the gateway kept running" kill -0 "$PID_gw_json"

code () { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "the public listener has no /metrics (404)" test "$(code "http://127.0.0.1:$GWJ/metrics")" = 404
check "the public listener has no /api/stats (404)" test "$(code "http://127.0.0.1:$GWJ/api/stats")" = 404
check "the admin listener refuses /metrics without the operator's token (401)" \
    test "$(code "http://127.0.0.1:$GWJA/metrics")" = 401
check "the admin listener refuses /api/stats with a wrong token (401)" \
    test "$(code -H 'Authorization: Bearer not-the-operator-token' "http://127.0.0.1:$GWJA/api/stats")" = 401
M=$(admin_get "$GWJA" /metrics)
check "/metrics counts messages by type" grep -q 'p2c2r_gateway_messages_in_total{type="submit_task"} [1-9]' <<<"$M"
check "/metrics counts errors by code" grep -q 'p2c2r_gateway_errors_total{code="bad_request"} [1-9]' <<<"$M"
for lim in rate_limited frame_too_large register_timeout; do
  check "/metrics counts the limit $lim when hit" grep -q "p2c2r_gateway_limits_hit_total{limit=\"$lim\"} [1-9]" <<<"$M"
done
check "/metrics shows connections by role" grep -q 'p2c2r_gateway_connections{role="peer"} 1' <<<"$M"
check "/metrics has the latency histogram" grep -qE 'p2c2r_gateway_task_latency_ms_count ([4-9][0-9]|[1-9][0-9]{2,})' <<<"$M"
S=$(admin_get "$GWJA" /api/stats)
echo "    /api/stats: $(cut -c1-400 <<<"$S")"
check "/api/stats is JSON with the gateway's figures" \
    $PY -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["gateway"]["connections"]["peer"]==1 and "missing" in d' "$S"
check "a task's row is settled once" test "$(sql 'SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM tasks')" = 0
check "the journal balances" test "$(sql 'SELECT COALESCE(SUM(amount_pico),0) FROM journal_entries')" = 0

# Per-address connections and the idle ping/pong timeout
GWL=$(free_port)
GWLA=$(free_port)
spawn gw-lim "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWL" --admin-listen "127.0.0.1:$GWLA" \
    --max-conns-per-ip 3 --ping-s 1 --pong-timeout-s 1
wait_for 20 healthz "$GWL"
$PY "$CL" limits "ws://127.0.0.1:$GWL/" >"$T_DIR/limits.out" 2>&1
rc=$?
cat "$T_DIR/limits.out"
check "connection and idle limits" test $rc = 0
ML=$(admin_get "$GWLA" /metrics)
for lim in conns_per_ip idle_timeout; do
  check "/metrics counts the limit $lim when hit" grep -q "p2c2r_gateway_limits_hit_total{limit=\"$lim\"} [1-9]" <<<"$ML"
done

# API keys: an --auth apikey gateway on the same stack
GWK=$(free_port)
spawn gw-keys "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWK" --auth apikey \
    --auth-recheck-ms 1000 --auth-cache-ms 2000
wait_for 20 healthz "$GWK"
KEY=$(P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" --broker "$BROKER" account create gamer keyed-gamer 2>"$T_DIR/ctl.log" \
      | awk '/api_key/ {print $2}')
if [ -z "$KEY" ]; then
  echo "note: p2c2r-ctl could not create a key ($(head -1 "$T_DIR/ctl.log")); testing refusals only"
fi
$PY "$CL" keys "ws://127.0.0.1:$GWK/" "$KEY" >"$T_DIR/keys.out" 2>&1
rc=$?
cat "$T_DIR/keys.out"
check "API key cases" test $rc = 0
if [ -n "$KEY" ]; then
  spawn_out revoked $PY "$CL" revoked "ws://127.0.0.1:$GWK/" "$KEY"
  wait_for 10 grep -q registered "$T_DIR/revoked.out"
  P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" --broker "$BROKER" account disable gamer:keyed-gamer >>"$T_DIR/ctl.log" 2>&1
  wait_for 15 grep -q '"code"' "$T_DIR/revoked.out"
  cat "$T_DIR/revoked.out"
  check "a revoked key's live session is closed (1008 'api_key revoked') within seconds" \
      grep -q '"code": 1008, "reason": "api_key revoked"' "$T_DIR/revoked.out"
fi

# Graceful stop: a slow peer, a gamer on its own gateway, SIGTERM mid-task
kill "$PID_jpeer"
GWD=$(free_port)
spawn gw-drain "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWD" --drain-ms 8000
wait_for 20 healthz "$GWD"
spawn jslow $PY "$CL" peer "$URL" json-peer-slow --delay 2
wait_for 20 grep -q 'json-peer-slow: registered' "$T_DIR/jslow.log"
sleep 1   # the scheduler forgets the killed peer (PeerDown) before the submit
spawn_out drain $PY "$CL" drain "ws://127.0.0.1:$GWD/"
wait_for 10 grep -q submitted "$T_DIR/drain.out"
sleep 0.5
kill -TERM "$PID_gw_drain"
# The port is free again at once: a new gateway takes connections
sleep 0.3
spawn gw-drain2 "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GWD"
check "a restarted gateway serves the port while the old one drains" wait_for 5 healthz "$GWD"
wait_for 20 grep -q '"close"' "$T_DIR/drain.out"
cat "$T_DIR/drain.out"
check "SIGTERM: the in-flight task still completes" grep -q '"status": "completed", "hash_ok": true' "$T_DIR/drain.out"
check "SIGTERM: then the client is closed with 1001 going away" grep -q '"close": 1001' "$T_DIR/drain.out"
wait_for 15 bash -c "! kill -0 $PID_gw_drain 2>/dev/null"
check "SIGTERM: the old gateway exits" bash -c "! kill -0 $PID_gw_drain 2>/dev/null"
t_report
