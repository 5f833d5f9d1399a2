#!/usr/bin/env bash
# Issue 14, item 1: a peer that reports an invented kernel version (the
# attacker of the issue, tests/e2e/sched_peer.py speaking protobuf) is judged
# invalid on every such result: never settled (so never paid and never
# reversed), never served from the cache, and the gamer still gets the real
# result from an honest peer. Bans are held off so that the attacker keeps
# getting work for a sample; a session that sent such a result gets no more
# tasks of the type, so the retry lands on an honest peer.
. "$(dirname "$0")/lib.sh"
export P2C2R_ATTEMPT_TIMEOUT_MS=3000
SCHED_ARGS="--ban-min-invalid 1000000"
start_stack || { t_report; exit 1; }
peer honest-1 --slots 2
# two attacker accounts: a session that sent such a result gets no more
# tasks of the type, so each brings what its slots held at that moment
for c in cheat cheat2; do
    spawn_out $c /usr/bin/python3 "$(dirname "$0")/sched_peer.py" --server "$SERVER" \
        --peer-id $c --mode corrupt --share 1.0 --slots 4 --kernel-version 9.9.9-forged --seed 3
done
wait_peers honest-1
wait_for 30 grep -q "peer up.*peer_id=cheat " "$T_DIR/scheduler.log"
wait_for 30 grep -q "peer up.*peer_id=cheat2 " "$T_DIR/scheduler.log"

N=80
spawn_out gamer "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"v{i}","iterations":2000}' --count $N --concurrency 6 --json --timeout-s 120
wait "$PID_gamer"
check "the gamer got an answer for every task" test $? = 0
# the same tasks again, from another gamer: whatever the cache serves must be real
spawn_out gamer2 "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g2 --task encryption \
    --params '{"data":"v{i}","iterations":2000}' --count $N --concurrency 6 --json --timeout-s 120
wait "$PID_gamer2"
check "the second gamer got an answer for every task" test $? = 0

check "forged results of an invented version are invalid, never paid, reversed or served" \
    python3 - "$T_DIR" "$GW_ADMIN" <<'PY'
import hashlib, json, os, re, subprocess, sys, urllib.request
d, port = sys.argv[1], sys.argv[2]
def sql(q):
    return subprocess.run(["psql", os.environ["T_DB"], "-qAt", "-c", q], capture_output=True,
                          text=True, check=True).stdout.split()
def real(data, n):         # as sched_peer.py's honest runs (equal to the agent's)
    cur = data.encode()    # encryption 2.0.0: each round hashes the raw digest
    for i in range(n):
        cur = hashlib.sha256(cur + str(i).encode()).digest()
    return cur.hex()
runs = [t for c in ("cheat", "cheat2")
        for t in re.findall(r"task id=(\S+) attempt=\d+ forged=1", open(f"{d}/{c}.out").read())]
log = open(f"{d}/scheduler.log").read()
lost = set(re.findall(r"validation: result lost task=(\S+) account=\d+ reason=unknown_version", log))
paid = sql("SELECT count(*) FROM tasks t JOIN accounts a ON a.id = t.peer_account "
           "WHERE a.name LIKE 'cheat%'")[0]
rev = sql("SELECT count(*) FROM reversals r JOIN accounts a ON a.id = r.peer_account "
          "WHERE a.name LIKE 'cheat%'")[0]
bad = []
for f in ("gamer.out", "gamer2.out"):
    for r in map(json.loads, open(f"{d}/{f}")):
        if not r["ok"] or r["result"]["hash"] != real(f"v{r['index']}", 2000):
            bad.append(r["task_id"])
s = json.loads(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/stats", headers={"Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()}), timeout=2).read())
s = s.get("scheduler") or {}
print(f"versions: cheat sent {len(runs)} results of an invented version, judged invalid "
      f"{len(lost)} (stats validation_unknown_version={s.get('validation_unknown_version')}, "
      f"incomparable={s.get('validation_incomparable')}); paid {paid}, reversed {rev}; "
      f"gamer answers wrong or failed {len(bad)}")
# every forged run was judged (a session that sent one gets no more tasks of
# the type, so the sample is its slots' worth)
ok = len(runs) >= 2 and {t.split("#")[0] for t in runs} <= lost
ok = ok and s.get("validation_unknown_version") == len(runs)
ok = ok and paid == "0" and rev == "0" and not bad
ok = ok and s.get("validation_incomparable", 1) == 0
sys.exit(0 if ok else 1)
PY
check "the books pass the audit (p2c2r-ctl audit)" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
t_report
