#!/usr/bin/env bash
# Issue 6, stale results through the real stack: a test peer (sched_peer.py
# --mode late) answers correctly but only after its attempt timed out and the
# task went to another peer. Its late results are ignored: never settled (the
# tasks table names the other peer) and never paid (its balance stays 0).
. "$(dirname "$0")/lib.sh"
export P2C2R_ATTEMPT_TIMEOUT_MS=1000
start_stack || { t_report; exit 1; }
KV=$("$BIN/p2c2r-agent" peer --list-kernels | awk '$1 == "encryption" {print $2}')
spawn_out late /usr/bin/python3 "$(dirname "$0")/sched_peer.py" --server "$SERVER" \
    --peer-id late --mode late --delay-s 2.5 --slots 4 --kernel-version "$KV"
wait_for 30 grep -q "peer up.*peer_id=late" "$T_DIR/scheduler.log"
# the late peer is alone at first, so it gets the first tasks for sure
spawn_out gamer "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"s{i}","iterations":500}' --count 40 --concurrency 4 --json --timeout-s 120
wait_for 30 grep -q "late=1" "$T_DIR/late.out"
peer honest --slots 2
wait "$PID_gamer"
check "the gamer got an answer for every task" test $? = 0
# the late answers still in the air land within the delay
all_late_sent () { [ "$(grep -c '^late id=' "$T_DIR/late.out")" -ge "$(grep -c 'late=1' "$T_DIR/late.out")" ]; }
wait_for 10 all_late_sent
sleep_until_stale () { grep -q "stale_results=[1-9]" "$T_DIR/scheduler.log" || python3 - "$GW_ADMIN" <<'PY'
import os, re, sys, urllib.request
s = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/stats", headers={"Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()}), timeout=2).read().decode()
m = re.search(r'"stale_results"\s*:\s*(\d+)', s)
sys.exit(0 if m and int(m.group(1)) > 0 else 1)
PY
}
wait_for 10 sleep_until_stale
check "the scheduler counted the late answers as stale" sleep_until_stale

check "late results are neither settled nor paid; the other peer's are" \
    python3 - "$T_DIR" <<'PY'
import json, os, re, subprocess, sys
d = sys.argv[1]
def sql(q):
    return subprocess.run(["psql", os.environ["T_DB"], "-qAt", "-F", " ", "-c", q],
                          capture_output=True, text=True, check=True).stdout.splitlines()
late = re.findall(r"^late id=(\S+) attempt", open(f"{d}/late.out").read(), re.M)
gamer_tasks = [t for t in late if "#" not in t]
ok_tasks = {r["task_id"] for r in map(json.loads, open(f"{d}/gamer.out")) if r["ok"]}
rows = dict(l.split() for l in sql("SELECT t.task_id, a.name FROM tasks t JOIN accounts a"
                                   " ON a.id = t.peer_account"))
late_balance = sql("SELECT COALESCE (SUM (balance_pico), 0) FROM accounts WHERE kind = 'peer'"
                   " AND name = 'late'")
settled_by = [rows.get(t) for t in gamer_tasks]
print(f"late peer answered {len(late)} runs late ({len(gamer_tasks)} gamer tasks); settled to:"
      f" {sorted(set(map(str, settled_by)))}; late peer's balance {late_balance}")
ok = len(gamer_tasks) >= 1 and all(t in ok_tasks for t in gamer_tasks)
ok = ok and all(p == "honest" for p in settled_by)
ok = ok and "late" not in rows.values() and late_balance == ["0"]
sys.exit(0 if ok else 1)
PY
check "the books pass the audit (p2c2r-ctl audit)" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
t_report
