#!/usr/bin/env bash
# Bad input from clients: each case gets its error reply with its code, the
# connection and the server keep working, and nothing is recorded.
. "$(dirname "$0")/lib.sh"

start_stack || { t_report; exit 1; }
peer peer-a --slots 2
wait_for 20 grep -q 'registered\|Registered' "$T_DIR/peer-a.log"
/usr/bin/python3 "$(dirname "$0")/bad_input_client.py" "$GW_PORT"
check "bad-input client cases" test $? = 0
check "only the one valid task was settled" test "$(sql 'SELECT COUNT(*) FROM tasks')" = 1
kill -0 "$PID_gateway" 2>/dev/null
check "the gateway is still running" test $? = 0
t_report
