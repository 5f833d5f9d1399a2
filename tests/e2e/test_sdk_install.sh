#!/usr/bin/env bash
# libp2c2r as a game developer gets it: `make install DESTDIR=...`, then a
# program written only against the installed header, built with
# `pkg-config --cflags --libs p2c2r` (shared and static), completes tasks
# against the real stack. The installed library exports p2c2r_* alone.
. "$(dirname "$0")/lib.sh"
DEST=$T_DIR/dest
PREFIX=/opt/p2c2r
make -C "$ROOT" --no-print-directory install DESTDIR="$DEST" PREFIX="$PREFIX" >"$T_DIR/install.log" 2>&1
check "make install DESTDIR=... PREFIX=... succeeds" test $? = 0
LIBDIR=$DEST$PREFIX/lib
for f in include/p2c2r.h lib/libp2c2r.so lib/libp2c2r.so.0 lib/libp2c2r.a lib/pkgconfig/p2c2r.pc; do
  check "installed: $PREFIX/$f" test -e "$DEST$PREFIX/$f"
done
check "the .pc file names the real prefix, not the staging directory" \
    grep -qx "prefix=$PREFIX" "$LIBDIR/pkgconfig/p2c2r.pc"
exported () { nm -D --defined-only "$LIBDIR/libp2c2r.so" | awk '{print $3}'; }
check "the shared library exports p2c2r_new and p2c2r_submit" \
    bash -c "nm -D --defined-only '$LIBDIR/libp2c2r.so' | grep -q ' p2c2r_new$' && nm -D --defined-only '$LIBDIR/libp2c2r.so' | grep -q ' p2c2r_submit$'"
check "...and nothing but p2c2r_* (nm -D)" test -z "$(exported | grep -v '^p2c2r_[a-z]')"
check "the static library defines nothing global but p2c2r_*" \
    test -z "$(nm -g --defined-only "$LIBDIR/libp2c2r.a" | awk 'NF==3 {print $3}' | grep -v '^p2c2r_[a-z]')"

# The program is built away from the source tree, with the installed files only
mkdir -p "$T_DIR/app"
cp "$ROOT/tests/e2e/sdk_install_client.c" "$T_DIR/app/client.c"
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEST
cflags=$(pkg-config --cflags p2c2r)
libs=$(pkg-config --libs p2c2r)
check "pkg-config finds p2c2r in the staging directory" test -n "$libs"
(cd "$T_DIR/app" && cc -std=c11 -Wall -Wextra -Werror client.c $cflags $libs -o client-shared) \
    >"$T_DIR/cc1.log" 2>&1
check "the program builds against the installed header and shared library" test $? = 0
(cd "$T_DIR/app" && cc -std=c11 -Wall -Wextra -Werror client.c $cflags \
    -Wl,-Bstatic $(pkg-config --libs-only-l p2c2r) -Wl,-Bdynamic \
    $(pkg-config --static --libs-only-L p2c2r) \
    $(pkg-config --static --libs p2c2r | sed 's/-lp2c2r//') -o client-static) >"$T_DIR/cc2.log" 2>&1
check "...and against the static library" test $? = 0
check "the static build does not need libp2c2r.so" \
    bash -c "! ldd '$T_DIR/app/client-static' | grep -q libp2c2r"

start_stack || { t_report; exit 1; }
peer pa --slots 2 --no-bench
wait_peers pa || { t_report; exit 1; }
hashes_ok () {   # FILE PREFIX N: every result is the kernel's iterated SHA-256 (hashlib)
  python3 - "$@" <<'PY'
import hashlib, sys
path, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
got = {}
for line in open(path):
    p = line.split()
    if p[:1] == ["result"] and p[2] == "ok":
        got[p[1]] = p[3]
for i in range(n):
    # encryption 2.0.0, the original demo's hash_data: the raw digest is chained
    cur = f"inst-{i}".encode()
    for k in range(100):
        cur = hashlib.sha256(cur + str(k).encode()).digest()
    assert got.get(f"{prefix}-{i}") == cur.hex(), i
PY
}
LD_LIBRARY_PATH=$LIBDIR "$T_DIR/app/client-shared" "$SERVER" 20 >"$T_DIR/loop.out" 2>"$T_DIR/loop.err"
check "the shared build completes its 20 tasks in loop mode" \
    test $? = 0 -a "$(tail -1 "$T_DIR/loop.out")" = "done ok=20 errors=1"
check "...with the right results" hashes_ok "$T_DIR/loop.out" l 20
check "...and an unknown task type answered with the protocol's code" \
    grep -qx "result bad error unknown_task_type" "$T_DIR/loop.out"
"$T_DIR/app/client-static" "$SERVER" 20 threaded >"$T_DIR/thr.out" 2>"$T_DIR/thr.err"
check "the static build completes its 20 tasks in thread mode" \
    test $? = 0 -a "$(tail -1 "$T_DIR/thr.out")" = "done ok=20 errors=1"
check "...with the right results" hashes_ok "$T_DIR/thr.out" t 20

# A gateway that dies (kill -9: no goodbye) under tasks in flight, with
# resubmission switched off: each of them gets its own clear error,
# connection_lost, and nothing hangs
LD_LIBRARY_PATH=$LIBDIR "$T_DIR/app/client-shared" "$SERVER" 8 lost >"$T_DIR/lost.out" 2>"$T_DIR/lost.err" &
LOST=$!
T_PIDS+=("$LOST")
wait_for 20 grep -q '^in_flight 8' "$T_DIR/lost.out"
kill -9 "$PID_gateway"
wait "$LOST"
rc=$?
cat "$T_DIR/lost.out"
# (one that finished before the kill is ok; the machine may be slow)
lost=$(grep -c '^result x-[0-7] error connection_lost$' "$T_DIR/lost.out")
done_ok=$(grep -c '^result x-[0-7] ok ' "$T_DIR/lost.out")
check "every task in flight when the gateway died completed with connection_lost" \
    test $rc = 0 -a "$lost" -ge 1 -a $((lost + done_ok)) = 8
t_report
