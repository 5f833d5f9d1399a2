#!/usr/bin/env bash
# Issue 6, the detection rate of a cheat under spot (the default): a peer
# that forges 30% of its results (tests/e2e/sched_peer.py, test code) with
# bans held off, so that it keeps working for a large sample: a doubted peer
# is checked on every result, so nearly every forged result is caught, and
# every forged result the gamer was given and paid for has its earning
# reversed to the treasury. Prints the observed detection rate.
. "$(dirname "$0")/lib.sh"
export P2C2R_ATTEMPT_TIMEOUT_MS=3000
export P2C2R_PAY_CHECKS=true          # the treasury pays honest check runs
SCHED_ARGS="--ban-min-invalid 1000000"
start_stack || { t_report; exit 1; }
peer honest-1 --slots 2
peer honest-2 --slots 2
KV=$("$BIN/p2c2r-agent" peer --list-kernels | awk '$1 == "encryption" {print $2}')
spawn_out cheat /usr/bin/python3 "$(dirname "$0")/sched_peer.py" --server "$SERVER" \
    --peer-id cheat --mode corrupt --share 0.3 --slots 4 --kernel-version "$KV" --seed 11
wait_peers honest-1 honest-2
wait_for 30 grep -q "peer up.*peer_id=cheat" "$T_DIR/scheduler.log"

N=600
spawn_out gamer "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"d{i}","iterations":3000}' --count $N --concurrency 8 --json --timeout-s 300
wait "$PID_gamer"
check "the gamer got an answer for every task" test $? = 0
# Validation runs of the last tasks may still be going when the gamer has
# its answers: wait until the scheduler has nothing running, validating or
# waiting to be paid, so that every verdict is in the log
sched_idle () { python3 - "$GW_ADMIN" <<'PY'
import os, json, sys, urllib.request
s = json.loads(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/stats", headers={"Authorization": "Bearer " + open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()}), timeout=2).read())
s = s.get("scheduler") or {}
sys.exit(0 if all(s.get(k, 0) == 0 for k in ("running", "validating", "settling", "queue_depth",
                                              "validation_payouts_pending")) else 1)
PY
}
check "the scheduler finished every validation" wait_for 60 sched_idle

check "a large sample of forged results is caught, and none is paid for good" \
    python3 - "$T_DIR" <<'PY'
import os, re, subprocess, sys
d = sys.argv[1]
def sql(q):
    return subprocess.run(["psql", os.environ["T_DB"], "-qAt", "-c", q], capture_output=True,
                          text=True, check=True).stdout.split()
log = open(f"{d}/scheduler.log").read()
lines = open(f"{d}/cheat.out").read().splitlines()
runs = [re.match(r"task id=(\S+) attempt=\d+ forged=(\d)", l) for l in lines]
runs = [(m.group(1), m.group(2) == "1") for m in runs if m]
forged = [t for t, f in runs if f]
lost = set(re.findall(r"validation: (?:paid )?result lost task=(\S+) account", log))
caught = [t for t in forged if t.split("#")[0] in lost]
false_alarm = [t for t, f in runs if not f and t.split("#")[0] in lost
               and "#" not in t]          # an honest primary of the cheat that lost
cheat_paid = set(sql("SELECT task_id FROM tasks t JOIN accounts a ON a.id = t.peer_account "
                     "WHERE a.name = 'cheat'"))
reversed_ = set(sql("SELECT r.task_id FROM reversals r JOIN accounts a ON a.id = r.peer_account "
                    "WHERE a.name = 'cheat'"))
kept = [t for t in forged if t in cheat_paid and t not in reversed_]
forged_checks_paid = [t for t in forged if "#" in t and t in cheat_paid]
rate = len(caught) / max(1, len(forged))
print(f"detection: cheat ran {len(runs)} results, forged {len(forged)}, caught {len(caught)}"
      f" ({rate:.1%}); honest results of the cheat judged lost {len(false_alarm)};"
      f" forged and paid then reversed {len(reversed_ & set(forged))}, kept {len(kept)},"
      f" forged checks paid {len(forged_checks_paid)}")
ok = len(runs) >= 100 and len(forged) >= 20 and rate >= 0.95 and not kept
ok = ok and not forged_checks_paid and not false_alarm
sys.exit(0 if ok else 1)
PY
check "the books pass the audit (p2c2r-ctl audit)" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
t_report
