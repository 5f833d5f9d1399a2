#!/usr/bin/env bash
# Determinism between optimisation levels: the kernels, their unit test and
# the common objects are compiled at -O0 into a temporary directory with
# the Makefile's own flags (read from `make -n V=1 OPT=-O0`), never touching
# build/; the -O0 test_kernels must match every golden vector that the -O2
# build matches, and both builds must print the same digests.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
O0=$T_DIR/O0

# The Makefile's compile and link commands for test_kernels at -O0
cc_line=$(make -s -n -B V=1 OPT=-O0 build/obj/agent/kernels/k_cloth.o 2>/dev/null \
          | grep -E -- '-c -o build/obj/agent/kernels/k_cloth\.o agent/kernels/k_cloth\.c$' | head -1)
link_line=$(make -s -n -B V=1 OPT=-O0 build/test/test_kernels 2>/dev/null \
          | grep -E -- '-o build/test/test_kernels tests/unit/test_kernels\.c' | head -1)
check "the Makefile gives a compile and a link command" test -n "$cc_line" -a -n "$link_line"
cflags=${cc_line% -MMD -MP -c -o *}
check "the flags are the Makefile's strict ones at -O0" \
    bash -c "[[ ' $cflags ' == *' -O0 '* && ' $cflags ' == *' -ffp-contract=off '* && ' $cflags ' != *' -O2 '* && ' $cflags ' == *' -Werror '* ]]"

# Every object the link line names, compiled from its source at -O0
objs=$(grep -Eo 'build/obj/[^ ]+\.o' <<<"$link_line")
lib_srcs=$(ls common/*.c) 
lib_srcs="$lib_srcs build/gen/proto/p2c2r.pb-c.c"
compile () {    # compile SRC OBJ
  mkdir -p "$(dirname "$2")" && $cflags -c -o "$2" "$1"
}
export -f compile; export cflags
ok=1
{ for o in $objs; do src=${o#build/obj/}; echo "${src%.o}.c $O0/$o"; done
  for s in $lib_srcs; do echo "$s $O0/lib/$(basename "${s%.c}").o"; done
} | xargs -P "$(nproc)" -n 2 bash -c 'compile "$0" "$1"' >"$T_DIR/compile.log" 2>&1 || ok=0
check "kernels, test and common library compile at -O0" test $ok = 1
ar rcs "$O0/build/obj/libp2c2r-common.a" "$O0"/lib/*.o 2>>"$T_DIR/compile.log"
link=${link_line//build\/obj\//$O0/build/obj/}
link=${link/-o build\/test\/test_kernels /-o $O0/test_kernels }
check "test_kernels links at -O0 (outside build/)" bash -c "$link >>'$T_DIR/compile.log' 2>&1 && test -x '$O0/test_kernels'"

"$O0/test_kernels" >"$T_DIR/O0.out" 2>&1
rc=$?
check "the -O0 build passes every golden vector and check" test $rc = 0
check "and reports them" grep -Eq 'kernels: [0-9]{3,} passed, 0 failed' "$T_DIR/O0.out"
grep FAIL "$T_DIR/O0.out" | head -5
"$O0/test_kernels" -record 2>/dev/null | grep -v 'passed, ' >"$T_DIR/O0.rec"
"$ROOT/build/test/test_kernels" -record 2>/dev/null | grep -v 'passed, ' >"$T_DIR/O2.rec"
check "-O0 and -O2 print the same golden digests" \
    bash -c "test -s '$T_DIR/O2.rec' && cmp -s '$T_DIR/O0.rec' '$T_DIR/O2.rec'"
t_report
