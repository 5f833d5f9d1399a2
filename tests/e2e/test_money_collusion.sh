#!/usr/bin/env bash
# Issue 14, item 3: a colluding pair from one address block (two attacker
# peers of tests/e2e/sched_peer.py connecting from 127.0.5.0/24, forging the
# same way so that they would agree with each other) never validates itself:
# with --block-v4-bits 24 no check run of a task goes to the block of a peer
# that ran it, so every forgery is checked by an honest peer and caught, the
# earning reversed, and the cache never serves a forgery to another gamer.
# Honest peers connect from two other blocks, the gamers from 127.0.0.1.
. "$(dirname "$0")/lib.sh"
export P2C2R_ATTEMPT_TIMEOUT_MS=3000
# bans held off so that the pair keeps working for a sample
SCHED_ARGS="--block-v4-bits 24 --ban-min-invalid 1000000"
start_stack || { t_report; exit 1; }
SP="$(dirname "$0")/sched_peer.py"
spawn_out honest1 /usr/bin/python3 "$SP" --server "$SERVER" --peer-id honest-1 --mode corrupt \
    --share 0 --slots 2 --bind 127.0.2.1
spawn_out honest2 /usr/bin/python3 "$SP" --server "$SERVER" --peer-id honest-2 --mode corrupt \
    --share 0 --slots 2 --bind 127.0.3.1
spawn_out evil1 /usr/bin/python3 "$SP" --server "$SERVER" --peer-id evil-1 --mode corrupt \
    --share 0.5 --slots 2 --bind 127.0.5.1 --seed 5
spawn_out evil2 /usr/bin/python3 "$SP" --server "$SERVER" --peer-id evil-2 --mode corrupt \
    --share 0.5 --slots 2 --bind 127.0.5.2 --seed 6
for p in honest-1 honest-2 evil-1 evil-2; do
    wait_for 30 grep -q "peer up.*peer_id=$p" "$T_DIR/scheduler.log"
done

N=200
spawn_out gamer "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"c{i}","iterations":500}' --count $N --concurrency 6 --json --timeout-s 120
wait "$PID_gamer"
check "the gamer got an answer for every task" test $? = 0
sched_idle () { python3 - "$GW_ADMIN" <<'PY'
import os, json, sys, urllib.request
s = json.loads(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/stats", headers={"Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()}), timeout=2).read())
s = s.get("scheduler") or {}
sys.exit(0 if all(s.get(k, 0) == 0 for k in ("running", "validating", "settling", "queue_depth",
                                              "validation_payouts_pending")) else 1)
PY
}
check "the scheduler finished every validation" wait_for 60 sched_idle
# another gamer asks the same: whatever the cache serves must be real
spawn_out gamer2 "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g2 --task encryption \
    --params '{"data":"c{i}","iterations":500}' --count $N --concurrency 6 --json --timeout-s 120
wait "$PID_gamer2"
check "the second gamer got an answer for every task" test $? = 0

check "the pair never checks itself; every forgery is caught and reversed; none is served" \
    python3 - "$T_DIR" <<'PY'
import hashlib, json, os, re, subprocess, sys
d = sys.argv[1]
def sql(q):
    return subprocess.run(["psql", os.environ["T_DB"], "-qAt", "-c", q], capture_output=True,
                          text=True, check=True).stdout.split()
def real(data, n):
    cur = data.encode()    # encryption 2.0.0: each round hashes the raw digest
    for i in range(n):
        cur = hashlib.sha256(cur + str(i).encode()).digest()
    return cur.hex()
def runs(name):
    out = open(f"{d}/{name}.out").read()
    return [(m.group(1), m.group(2) == "1")
            for m in re.finditer(r"task id=(\S+) attempt=\d+ forged=(\d)", out)]
evil = {n: runs(n) for n in ("evil1", "evil2")}
honest = runs("honest1") + runs("honest2")
base = lambda t: t.split("#")[0]
e1 = {base(t) for t, _ in evil["evil1"]}
e2 = {base(t) for t, _ in evil["evil2"]}
self_checked = e1 & e2                          # one task run by both: a pair validating itself
forged = [t for n in evil for t, f in evil[n] if f]
log = open(f"{d}/scheduler.log").read()
ids = dict(l.split("|") for l in subprocess.run(
    ["psql", os.environ["T_DB"], "-qAt", "-c", "SELECT name, id FROM accounts"],
    capture_output=True, text=True, check=True).stdout.split())
lost = set(re.findall(r"validation: (?:paid )?result lost task=(\S+) account=(\d+)", log))
caught = [t for n in evil for t, f in evil[n] if f and (base(t), ids[n.replace("evil", "evil-")]) in lost]
# a false accusation: a result that was not forged judged lost
false_acc = [t for n, p in (("honest1", "honest-1"), ("honest2", "honest-2"))
             for t, f in runs(n) if (base(t), ids[p]) in lost]
false_acc += [t for n in evil for t, f in evil[n]
              if not f and (base(t), ids[n.replace("evil", "evil-")]) in lost]
paid = set(sql("SELECT task_id FROM tasks t JOIN accounts a ON a.id = t.peer_account "
               "WHERE a.name LIKE 'evil-%'"))
rev = set(sql("SELECT r.task_id FROM reversals r JOIN accounts a ON a.id = r.peer_account "
              "WHERE a.name LIKE 'evil-%'"))
kept = [t for t in forged if t in paid and t not in rev]
wrong = [r["task_id"] for f in ("gamer.out", "gamer2.out") for r in map(json.loads, open(f"{d}/{f}"))
         if r["ok"] and r["result"]["hash"] != real(f"c{r['index']}", 500)]
served = [r["task_id"] for r in map(json.loads, open(f"{d}/gamer2.out"))
          if r["ok"] and r["cached"] and r["result"]["hash"] != real(f"c{r['index']}", 500)]
print(f"collusion: pair ran {sum(map(len, evil.values()))} results, forged {len(forged)}, "
      f"caught {len(caught)}, reversed {len(rev & set(forged))}, kept {len(kept)}; tasks run by "
      f"both of the pair {len(self_checked)}; false accusations {len(false_acc)}; forged answers "
      f"the gamers got {len(wrong)} (from the cache {len(served)})")
ok = len(forged) >= 10 and not self_checked and len(caught) == len(forged) and not kept
ok = ok and not false_acc and not served
sys.exit(0 if ok else 1)
PY
check "the books pass the audit (p2c2r-ctl audit)" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
t_report
