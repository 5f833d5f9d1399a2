#!/usr/bin/env bash
# Three gateways behind a real HAProxy (Debian's), configured from the
# shipped deploy/haproxy.cfg with loopback addresses. Peers (two agents
# speaking protobuf, one JSON peer) and three JSON gamers connect through
# HAProxy only. Tasks cross gateways; then one gateway is killed with -9
# mid-run: its clients reconnect through HAProxy and go on, every task ends
# with a correct result, and nothing is settled twice.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
CL="$(dirname "$0")/gw_clients.py"

start_stack --starting-credit-pico 1000000000000 || { t_report; exit 1; }
LB=$(free_port)
GWS=()
for i in 1 2 3; do
  p=$(free_port)
  GWS+=("$p")
  spawn gw$i "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$p" --trusted-proxies 127.0.0.1
done
for p in "${GWS[@]}"; do wait_for 20 healthz "$p"; done
# maxconn within this machine's descriptor limit (HAProxy needs two per connection)
sed -e "s/^    bind :8765/    bind 127.0.0.1:$LB/" -e "s/^    maxconn .*/    maxconn 4000/" \
    -e "s/server gw1 gateway-1:8765/server gw1 127.0.0.1:${GWS[0]}/" \
    -e "s/server gw2 gateway-2:8765/server gw2 127.0.0.1:${GWS[1]}/" \
    -e "s/server gw3 gateway-3:8765/server gw3 127.0.0.1:${GWS[2]}/" \
    "$ROOT/deploy/haproxy.cfg" >"$T_DIR/haproxy.cfg"
check "the generated HAProxy config is valid" haproxy -c -q -f "$T_DIR/haproxy.cfg"
spawn haproxy haproxy -db -f "$T_DIR/haproxy.cfg"
check "HAProxy passes /readyz through" wait_for 20 curl -fsS "http://127.0.0.1:$LB/readyz"
sleep 2     # every backend's health check has passed (rise 2, inter 1 s)

SERVER=ws://127.0.0.1:$LB
peer peer-a --slots 2
peer peer-b --slots 2
spawn jpeer-1 $PY "$CL" peer "$SERVER/" jpeer-1
wait_for 20 grep -q 'jpeer-1: registered' "$T_DIR/jpeer-1.log"
wait_for 20 grep -q 'registered' "$T_DIR/peer-b.log"
N=150
for g in 1 2 3; do
  spawn_out gamer-$g $PY "$CL" gamer "$SERVER/" "lb-gamer-$g" $N --iterations 20000 --concurrency 4 --timeout-s 200
done

# Mid-run: kill -9 the gateway that holds a gamer (and so in-flight tasks)
wait_for 60 bash -c "[ \$(cat $T_DIR/peer-*.log $T_DIR/jpeer-*.log | grep -c 'task done') -ge 60 ]"
victim=""
for i in 1 2 3; do
  if grep -q 'role=gamer id=lb-gamer' "$T_DIR/gw$i.log"; then victim=$i; break; fi
done
check "a gateway holding a gamer was found" test -n "$victim"
[ -n "$victim" ] || { t_report; exit 1; }
done_before=$(cat "$T_DIR"/peer-*.log "$T_DIR"/jpeer-*.log | grep -c 'task done')
echo "    killing gw$victim after $done_before tasks"
pid_var=PID_gw$victim
kill -9 "${!pid_var}"

for g in 1 2 3; do
  pid_var=PID_gamer_$g
  wait "${!pid_var}"
  rc=$?
  tail -1 "$T_DIR/gamer-$g.out" | cut -c1-220
  check "lb-gamer-$g: all $N tasks answered with correct results" test $rc = 0
done
reconnected=$(cat "$T_DIR"/gamer-*.out | $PY -c 'import sys,json; print(sum(json.loads(l)["connections"]>1 for l in sys.stdin if l.startswith("{")))')
echo "    gamers that reconnected: $reconnected"

R=$($PY "$(dirname "$0")/gw_haproxy_check.py" "$T_DIR" "$T_DIR"/gw1.log "$T_DIR"/gw2.log "$T_DIR"/gw3.log)
echo "    $R"
check "clients were spread over the three gateways" \
    $PY -c 'import json,sys; r=json.loads(sys.argv[1]); gws=set(g for v in list(r["peers"].values())+list(r["gamers"].values()) for g in v); assert len(gws)==3, gws' "$R"
check "tasks crossed gateways (made on one, run by a peer on another)" \
    $PY -c 'import json,sys; assert json.loads(sys.argv[1])["crossed"] > 0' "$R"
check "clients of the killed gateway reconnected through HAProxy" \
    $PY -c 'import json,sys; r=json.loads(sys.argv[1]); v="gw'"$victim"'.log"; assert any(v in s and len(s)>1 for s in list(r["peers"].values())+list(r["gamers"].values())), r' "$R"
check "peers registered again after the kill (agents reconnect by themselves)" \
    bash -c "[ \$(cat $T_DIR/peer-a.log $T_DIR/peer-b.log $T_DIR/jpeer-1.log | grep -ci 'registered') -ge 4 ]"
check "nothing settled twice (one row per task id)" \
    test "$(sql 'SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM tasks')" = 0
check "every settled task is in the journal once, and it balances" \
    test "$(sql 'SELECT COALESCE(SUM(amount_pico),0) FROM journal_entries')" = 0
check "at least the completed tasks were settled" \
    test "$(sql 'SELECT COUNT(*) FROM tasks')" -ge $((3 * N - 50))
for i in 1 2 3; do
  [ "$i" = "$victim" ] && continue
  check "gw$i is still running" kill -0 "$(eval echo \$PID_gw$i)"
done
t_report
