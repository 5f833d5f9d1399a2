#!/usr/bin/env bash
# Issue 14, item 4: billing from the server's measure. An attacker peer
# (tests/e2e/sched_peer.py) computes honestly but claims 1e9 ms and holds
# each task 1.5 s; an honest agent runs the same params. The stretched
# claims are billed within 2x of the honest peer's billed time (the cost
# model's expected time, moved within 0.75x..1.5x by the measure), flagged,
# and counted against the attacker's reputation (banned after two); the
# books pass the audit.
. "$(dirname "$0")/lib.sh"
export P2C2R_ATTEMPT_TIMEOUT_MS=5000
start_stack || { t_report; exit 1; }
peer honest-1 --slots 2
spawn_out stretch /usr/bin/python3 "$(dirname "$0")/sched_peer.py" --server "$SERVER" \
    --peer-id stretch --mode corrupt --share 0 --slots 2 --claim-us 1000000000000 --hold-s 1.5
wait_peers honest-1
wait_for 30 grep -q "peer up.*peer_id=stretch" "$T_DIR/scheduler.log"

N=40
spawn_out gamer "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id g1 --task encryption \
    --params '{"data":"b{i}","iterations":20000}' --count $N --concurrency 4 --json --timeout-s 120
wait "$PID_gamer"
check "the gamer got an answer for every task" test $? = 0

check "stretched claims are billed within 2x of the honest peer's, flagged, never paid beyond" \
    python3 - "$T_DIR" <<'PY'
import os, re, statistics, subprocess, sys
d = sys.argv[1]
def rows(name):
    out = subprocess.run(["psql", os.environ["T_DB"], "-qAt", "-F", " ", "-c",
                          "SELECT t.billed_us, t.compute_us, t.observed_us, t.peer_earning_pico,"
                          " t.gamer_charge_pico FROM tasks t JOIN accounts a ON a.id = t.peer_account"
                          f" WHERE a.name = '{name}' AND t.task_id NOT LIKE '%#%'"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return [tuple(map(int, l.split())) for l in out if l.strip()]
honest, stretch = rows("honest-1"), rows("stretch")
log = open(f"{d}/scheduler.log").read()
flags = re.findall(r"billing: claim flagged task=\S+ account=\d+ claimed_us=(\d+)", log)
hb = statistics.median(r[0] for r in honest) if honest else 0
sb = max((r[0] for r in stretch), default=0)
print(f"billing: honest peer {len(honest)} tasks, median billed_us {hb:.0f}; stretched peer "
      f"{len(stretch)} tasks claimed {stretch[0][1] if stretch else 0} us, observed "
      f"{max((r[2] for r in stretch), default=0)} us, billed at most {sb} us "
      f"({sb / hb if hb else 0:.2f}x), earned at most {max((r[3] for r in stretch), default=0)} "
      f"pico; flagged {len(flags)}; banned {'peer banned' in log}")
ok = honest and stretch and sb <= 2 * hb and len(flags) >= len(stretch)
ok = ok and all(r[1] == 1000000000000 for r in stretch) and "peer banned" in log
sys.exit(0 if ok else 1)
PY
check "the books pass the audit (p2c2r-ctl audit)" env P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" audit
t_report
