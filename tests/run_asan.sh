#!/usr/bin/env bash
# The end-to-end suite on the ASan/UBSan binaries that `make asan` put in
# bin/ (make test-asan builds them, runs this, then builds the normal ones
# again). Every process writes its sanitizer reports to build/asan/NAME.PID
# (ASAN_OPTIONS log_path), LeakSanitizer included: a report is a failure
# even when the test around it passed, since a daemon's leaks show only at
# its exit. Prints the e2e lines, one line per report, and the total last.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REPORTS=$ROOT/build/asan
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
if ! nm -C bin/p2c2r-gateway 2>/dev/null | grep -q __asan_init; then
  echo "bin/ is not an ASan build (make asan)"
  echo "0 passed, 1 failed"
  exit 1
fi
# handle_segv=0: a process killed by SIGSEGV (test_kernels_stack kills a
# worker so on purpose) dies of the signal as in the normal build, rather
# than exiting 1 after a report; a real crash still fails its test
export ASAN_OPTIONS="detect_leaks=1:handle_segv=0:log_path=$REPORTS/asan:log_exe_name=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$REPORTS/ubsan:log_exe_name=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
start=$SECONDS
P2C2R_E2E_ONLY=1 tests/run.sh | tee "$REPORTS/suite.out"
rc=${PIPESTATUS[0]}
echo "== sanitizer reports"
reports=0
for f in "$REPORTS"/asan.* "$REPORTS"/ubsan.*; do
  [ -s "$f" ] || continue
  grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f" || continue
  reports=$((reports + 1))
  echo "FAIL $(basename "$f"): $(grep -m1 -E 'ERROR: |runtime error:' "$f" | cut -c1-200)"
  grep -m3 -E '^ +#[0-9]+ .* in (s_|gw_|sch_|led_|agt_|p2c_|brk_|ctl_)' "$f" | sed 's/^/    /'
done
suite=$(tail -1 "$REPORTS/suite.out")
p=$(grep -Eo '^[0-9]+ passed' <<<"$suite" | grep -Eo '[0-9]+')
f=$(grep -Eo '[0-9]+ failed' <<<"$suite" | grep -Eo '[0-9]+')
echo "sanitizers: $((reports == 0 ? 1 : 0)) passed, $reports failed (reports in build/asan)"
echo "took $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
echo "$(( ${p:-0} + (reports == 0 ? 1 : 0) )) passed, $(( ${f:-1} + reports )) failed"
[ "$rc" = 0 ] && [ "$reports" = 0 ]
