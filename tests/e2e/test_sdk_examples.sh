#!/usr/bin/env bash
# The SDK's examples (examples/, built by `make unit`) against the real
# stack: the game loop offloads path finding every frame at 60 fps and its
# unit walks the routes that come back; the ray tracer saves a real PNG
# of the size it asked for; a gateway restart in the middle of the loop
# is ridden out by the library's reconnect.
. "$(dirname "$0")/lib.sh"
EX=$ROOT/build/examples
for x in pathfind_loop raytrace_png; do
  [ -x "$EX/$x" ] || { echo "FAIL $EX/$x is not built (make examples)"; T_FAIL=1; t_report; exit 1; }
done
start_stack || { t_report; exit 1; }
peer pa --slots 2 --no-bench
peer pb --slots 2 --no-bench
wait_peers pa pb || { t_report; exit 1; }

"$EX/pathfind_loop" --server "$SERVER" --frames 300 >"$T_DIR/loop.out" 2>"$T_DIR/loop.err"
rc=$?
cat "$T_DIR/loop.out"
fig () { grep -oE "(^| )$1=[0-9.]*" "${2:-$T_DIR/loop.out}" | head -1 | cut -d= -f2; }
check "the game loop ran its 300 frames and exited 0" test $rc = 0 -a "$(fig frames)" = 300
check "it asked for a path on (nearly) every frame" test "$(fig submitted)" -ge 250
check "every request was answered" test "$(fig results)" = "$(fig submitted)" -a "$(fig unanswered)" = 0
check "no request failed" test "$(fig errors)" = 0
check "routes from the network were used" test "$(fig used)" -gt 10
check "the unit walked them" test "$(fig moves)" -gt 10
# The server saw the same: every request not answered from its cache was
# run and settled for the example's account
settled () { sql "SELECT count(*) FROM tasks t JOIN accounts a ON a.id = t.gamer_account WHERE a.name = '$1'"; }
ran=$(( $(fig submitted) - $(fig cached) ))
all_settled () { test "$(settled pathfind-example)" = "$ran"; }
wait_for 10 all_settled
check "the server settled each request it ran ($ran)" test "$(settled pathfind-example)" = "$ran"

"$EX/raytrace_png" --server "$SERVER" --out "$T_DIR/frame.png" --width 200 --height 150 \
    >"$T_DIR/rt.out" 2>"$T_DIR/rt.err"
rc=$?
cat "$T_DIR/rt.out" "$T_DIR/rt.err"
check "the ray tracer saved its frame (exit 0)" test $rc = 0 -a -s "$T_DIR/frame.png"
check "the file is a 200x150 PNG" python3 - "$T_DIR/frame.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (200, 150), (w, h)
# Every chunk's CRC is right and the image data inflates
pos, idat = 8, b""
while pos < len(data):
    n, = struct.unpack(">I", data[pos:pos + 4]); kind = data[pos + 4:pos + 8]
    body = data[pos + 8:pos + 8 + n]
    assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body) & 0xffffffff
    if kind == b"IDAT": idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
assert len(raw) >= 150 * (1 + 200 * 3), len(raw)
PY

# The library reconnects: the gateway goes away mid-loop and comes back on
# the same port; the loop keeps its frames, and routes flow again after.
# (30 s of frames: the old gateway drains for up to 10 s on SIGTERM, and a
# busy machine is slow to settle the first 20, so the loop must outlast both)
"$EX/pathfind_loop" --server "$SERVER" --frames 1800 --gamer-id restart-example \
    >"$T_DIR/loop2.out" 2>"$T_DIR/loop2.err" &
LOOP=$!
T_PIDS+=("$LOOP")
over_20 () { test "$(settled restart-example)" -gt 20; }
wait_for 30 over_20
kill "$PID_gateway"
wait "$PID_gateway" 2>/dev/null
spawn gateway2 "$BIN/p2c2r-gateway" --broker "$BROKER" --listen "127.0.0.1:$GW_PORT"
before=$(settled restart-example)
wait "$LOOP"
rc=$?
cat "$T_DIR/loop2.out"
after=$(settled restart-example)
check "the loop survived the gateway's restart (1800 frames, exit 0)" \
    test $rc = 0 -a "$(fig frames "$T_DIR/loop2.out")" = 1800
check "tasks ran again through the restarted gateway" test "$after" -gt "$before"
L2=$T_DIR/loop2.out
check "the loop was told it was disconnected" test "$(fig disconnects "$L2")" -ge 1
# What may fail in between, and only that: requests the stopping gateway
# answered (unavailable) or that were cut off with the connection
# (connection_lost), sent before the peer was back (no_peers), or that
# waited past their deadline for the new connection (timeout)
restart_errors=0
for c in unavailable connection_lost no_peers timeout; do
  restart_errors=$((restart_errors + $(fig $c "$L2" || true) + 0))
done
check "every failed request failed for the restart" test "$(fig errors "$L2")" = $restart_errors
check "every request was answered" test "$(fig results "$L2")" = "$(fig submitted "$L2")"
t_report
