#!/usr/bin/env bash
# Interoperation with the original Python demo (issue 12): its JSON gamer
# (text frames, the JSON dialect) sends the nine tasks of its menu exactly
# as it does, through gateway, broker, scheduler, a real peer and the
# ledger, and gets nine results; encryption results equal Python's hashlib
# with the original's formula (the raw digest chained) at 1, 2, 1000 and
# 100000 iterations.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3   # python3-websockets from Debian, as test_gateway_json.sh
export XDG_CACHE_HOME=$T_DIR/cache

start_stack || { t_report; exit 1; }
peer demo-peer --slots 2 --no-bench
wait_peers demo-peer

"$PY" "$HERE/kernels_demo.py" menu "$SERVER" >"$T_DIR/menu.out" 2>&1
check "the original menu's nine tasks each give a result (kernels_demo.py menu)" test $? = 0
"$PY" "$HERE/kernels_demo.py" hash "$SERVER" >"$T_DIR/hash.out" 2>&1
check "encryption equals Python's hashlib for 1, 2, 1000, 100000 iterations (kernels_demo.py hash)" test $? = 0
cat "$T_DIR/menu.out" "$T_DIR/hash.out"
t_report
