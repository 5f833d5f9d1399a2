#!/usr/bin/env bash
# /api/stats under concurrent requests, as a dashboard with many open tabs
# would load it (issue 15): many GETs at once on a full stack each get the
# scheduler's and the ledger's figures; many GETs at once on a gateway whose
# broker has neither scheduler nor ledger all time out in the same tick, and
# each still gets its answer with both marked missing (this crashed the
# gateway: a use-after-free when two answers were due together). The
# gateway must be running after each burst. Run it on `make asan` binaries
# too: the sanitizer then reports any read of freed memory.
. "$(dirname "$0")/lib.sh"

# burst PORT N: N concurrent GETs of /api/stats; prints one summary line
# "answers=A ok=B ledger=C scheduler=D missing_both=E" and keeps the bodies
burst () {
  python3 - "$1" "$2" "$T_DIR" <<'PY'
import json, os, sys, threading, urllib.request
port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
res = [None] * n
start = threading.Barrier(n)
def get(i):
    start.wait()
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/stats", headers={
            "Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()})
        with urllib.request.urlopen(req, timeout=20) as r:
            res[i] = (r.status, r.read())
    except Exception as e:
        res[i] = (0, str(e).encode())
ts = [threading.Thread(target=get, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
ok = ledger = sched = both = 0
for status, body in res:
    if status != 200:
        continue
    try:
        s = json.loads(body)
    except ValueError:
        continue
    ok += 1
    ledger += isinstance(s.get("ledger"), dict) and "settled" in s["ledger"]
    sched += isinstance(s.get("scheduler"), dict)
    both += sorted(s.get("missing", [])) == ["ledger", "scheduler"]
open(f"{out}/stats-{port}.json", "wb").write(res[0][1])
print(f"answers={sum(1 for r in res if r[0])} ok={ok} ledger={ledger} scheduler={sched} "
      f"missing_both={both}")
PY
}

start_stack || { t_report; exit 1; }
N=64
R=$(burst "$GW_ADMIN" "$N")
echo "    full stack: $R"
check "$N concurrent /api/stats on a full stack: every one answered 200 JSON" \
    grep -q "answers=$N ok=$N " <<<"$R"
check "every answer has the ledger's figures (not null)" grep -q " ledger=$N " <<<"$R"
check "every answer has the scheduler's figures" grep -q " scheduler=$N " <<<"$R"
check "the ledger's settled count is a number" \
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert isinstance(s["ledger"]["settled"], int) and s["missing"] == []' \
    "$T_DIR/stats-$GW_ADMIN.json"
check "the gateway is still running" kill -0 "$PID_gateway"

# A gateway on a broker with no scheduler and no ledger: every request
# waits for its deadline, and they all fall due together
BPORT=$(free_port)
spawn lone-broker "$BIN/p2c2r-broker" --bind "tcp://127.0.0.1:$BPORT"
GL=$(free_port)
GLA=$(free_port)
spawn lone-gw "$BIN/p2c2r-gateway" --broker "tcp://127.0.0.1:$BPORT" --listen "127.0.0.1:$GL" \
    --admin-listen "127.0.0.1:$GLA" --stats-timeout-ms 300
check "a gateway without scheduler and ledger starts" wait_for 20 healthz "$GL"
for round in 1 2 3; do
  R=$(burst "$GLA" "$N")
  echo "    timeouts, round $round: $R"
  check "round $round: $N requests timing out together are each answered" \
      grep -q "answers=$N ok=$N ledger=0 scheduler=0 missing_both=$N" <<<"$R"
done
check "that gateway is still running" kill -0 "$PID_lone_gw"
check "its log has no sanitizer report" bash -c "! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' '$T_DIR/lone-gw.log' '$T_DIR/gateway.log'"
t_report
