#!/usr/bin/env bash
# Runs every test: the unit self-tests of each module, then the end-to-end
# tests against a private PostgreSQL cluster and the real processes.
# Prints one "SUITE: N passed, N failed" line per suite and the total last.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export P2C2R_ROOT=$ROOT

total_pass=0
total_fail=0
failed_suites=()

# Adds the counts of every "NAME: N passed, M failed" line in a file
count () {
  local out=$1 name=$2 rc=$3 p f
  p=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$out" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$out" | awk '{s+=$3} END {print s+0}')
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi      # a crash counts as a failure
  if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; fi        # so does a suite that tested nothing
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  [ "$f" != 0 ] && failed_suites+=("$name")
  printf '%-28s %4d passed, %d failed\n' "$name" "$p" "$f"
}

LOGDIR=$ROOT/build/test-logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

# A private PostgreSQL for every test that needs one
PGDIR=$(mktemp -d /tmp/p2c2r-test-pg.XXXXXX)
chmod 755 "$PGDIR"
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup () { deploy/local/pg.sh stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"; }
trap cleanup EXIT
if ! deploy/local/pg.sh start "$PGDIR" "$PGPORT" >"$LOGDIR/pg.log" 2>&1; then
  cat "$LOGDIR/pg.log"
  echo "tests: cannot start PostgreSQL"
  echo "0 passed, 1 failed"
  exit 1
fi
export P2C2R_TEST_PGDIR=$PGDIR P2C2R_TEST_PGPORT=$PGPORT
export P2C2R_TEST_DB=$(deploy/local/pg.sh conninfo "$PGDIR" "$PGPORT")

# P2C2R_E2E_ONLY=1 (make test-asan): the end-to-end tests alone
echo "== unit tests"
for t in build/test/test_*; do
  [ -n "${P2C2R_E2E_ONLY:-}" ] && break
  name=unit/$(basename "$t" | sed 's/^test_//')
  out=$LOGDIR/$(basename "$t").log
  timeout 300 "$t" >"$out" 2>&1
  rc=$?
  count "$out" "$name" $rc
  [ $rc != 0 ] && tail -20 "$out" | sed 's/^/    /'
done

echo "== fuzzing (a few seconds per libFuzzer target; make fuzz FUZZ_S=N for longer)"
out=$LOGDIR/fuzz.log
if [ -z "${P2C2R_E2E_ONLY:-}" ]; then
  timeout 300 tests/fuzz/run.sh "${FUZZ_S:-3}" >"$out" 2>&1
  rc=$?
  count "$out" "fuzz" $rc
  [ $rc != 0 ] && grep -A8 FAIL "$out" | head -20 | sed 's/^/    /'
fi

echo "== end-to-end tests"
for t in tests/e2e/test_*.sh tests/e2e/test_*.py; do
  [ -e "$t" ] || continue
  name=e2e/$(basename "$t" | sed 's/^test_//; s/\.\(sh\|py\)$//')
  out=$LOGDIR/$(basename "$t").log
  timeout 900 "$t" >"$out" 2>&1
  rc=$?
  count "$out" "$name" $rc
  [ $rc != 0 ] && grep -E 'FAIL|Error|error' "$out" | tail -20 | sed 's/^/    /'
done

echo "== deploy tests"
# compose.yaml on a real Docker engine (tests/deploy/run.sh), where one answers
# and Compose is there (v2's `docker compose` or v1's `docker-compose`)
if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1 \
   && { docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1; }; then
  out=$LOGDIR/deploy.log
  timeout 2400 tests/deploy/run.sh >"$out" 2>&1
  rc=$?
  count "$out" deploy $rc
  [ $rc != 0 ] && grep -E '^FAIL|not healthy' "$out" | tail -20 | sed 's/^/    /'
else
  echo "deploy: skipped (no Docker engine with Compose)"
fi

if [ ${#failed_suites[@]} -gt 0 ]; then
  echo "failed suites: ${failed_suites[*]} (logs in build/test-logs/)"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ "$total_pass" -gt 0 ]
