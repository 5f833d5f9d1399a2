#!/usr/bin/env bash
# Runs every libFuzzer target under build/fuzz for S seconds each (default
# 3) from the seeds in tests/fuzz/seeds/NAME plus the corpus grown by
# earlier runs (build/fuzz/corpus/NAME, not in git). A target passes when
# it ends without a crash, leak or sanitizer report; a failing input is
# kept as build/fuzz/crashes/NAME-* and named in the output. Prints
# "fuzz: N passed, N failed" last.
set -uo pipefail
cd "$(dirname "$0")/../.."
S=${1:-3}
pass=0
fail=0
mkdir -p build/fuzz/crashes
targets=(build/fuzz/fuzz_*)
if [ ! -x "${targets[0]}" ]; then
  echo "FAIL no fuzz targets in build/fuzz (make fuzz-build)"
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi
for t in "${targets[@]}"; do
  name=$(basename "$t" | sed 's/^fuzz_//')
  corpus=build/fuzz/corpus/$name
  mkdir -p "$corpus"
  log=build/fuzz/$name.log
  # -rss_limit_mb and -malloc_limit_mb: an input that makes a decoder
  # reserve what it announces fails the target
  "$t" -max_total_time="$S" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=256 \
       -print_final_stats=1 -artifact_prefix="build/fuzz/crashes/$name-" \
       "$corpus" "tests/fuzz/seeds/$name" >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$')
  if [ $rc = 0 ]; then
    pass=$((pass + 1)); echo "ok   $name: ${runs:-?} runs in ${S}s, corpus $(ls "$corpus" | wc -l)"
  else
    fail=$((fail + 1)); echo "FAIL $name (rc=$rc, log $log):"
    grep -E 'ERROR|SUMMARY|artifact|runtime error' "$log" | head -8 | sed 's/^/    /'
  fi
done
echo "fuzz: $pass passed, $fail failed"
[ $fail = 0 ]
