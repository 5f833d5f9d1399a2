#!/usr/bin/env bash
# Issue 14, item 5, by owner: one holder with a gamer account and a peer
# account under different names and keys (linked by the operator: p2c2r-ctl
# account create ... --owner, account link) never has its tasks run, nor
# checked, by its own peer; another gamer's tasks do run there. Every client
# logs in with an API key (only its hash crosses the bus, issue 13.3). The
# books pass the audit, and once the operator's subsidy budget is spent a
# contributor's `p2c2r-agent status` says so, with the rate in force.
. "$(dirname "$0")/lib.sh"
start_stack || { t_report; exit 1; }
ctl () { env P2C2R_BROKER="$BROKER" P2C2R_DB="$T_DB" "$BIN/p2c2r-ctl" "$@" 2>>"$T_DIR/ctl.err"; }
key () { awk '$1 == "api_key" {print $2}' "$T_DIR/$1.acct"; }

ctl account create gamer dana-plays --owner dana >"$T_DIR/g-dana.acct"
check "a gamer account made with an owner" grep -q 'created: gamer dana-plays, owner dana' "$T_DIR/g-dana.acct"
ctl account create gamer walk-in >"$T_DIR/g-walk.acct"
ctl account create peer rig-7 >"$T_DIR/p-dana.acct"
linked () { ctl account link peer:rig-7 dana | grep -q 'owned by dana'; }
check "a peer account linked to the same owner afterwards" linked
ctl account create peer box-a >"$T_DIR/p-a.acct"
ctl account create peer box-b >"$T_DIR/p-b.acct"
shown () { ctl --json account show peer:rig-7 | grep -q '"owner": *"dana"'; }
check "p2c2r-ctl account show names the owner" shown
for a in g-dana g-walk p-dana p-a p-b; do
  [ -n "$(key $a)" ] || echo "no key for $a: $(cat "$T_DIR/ctl.err")"
done
# The operator's subsidy budget: 0 a day, spent from the start (peers are
# paid from what gamers pay only; the audit checks the cut)
check "rates set with a subsidy budget of 0 per day" ctl rates set 0.01 0.15 1000 0

CTLS=$T_DIR/run/control
mkdir -p "$T_DIR/run" "$T_DIR/state"
P2C2R_API_KEY=$(key p-dana) peer rig-7 --slots 2 --no-bench
P2C2R_API_KEY=$(key p-a) peer box-a --slots 2 --no-bench --control "$CTLS" --state-dir "$T_DIR/state"
P2C2R_API_KEY=$(key p-b) peer box-b --slots 2 --no-bench
wait_peers rig-7 box-a box-b || { t_report; exit 1; }
check "the scheduler knows rig-7's owner" grep -q 'peer up.*peer_id=rig-7 .*owner=dana' "$T_DIR/scheduler.log"

N=60
P2C2R_API_KEY=$(key g-dana) "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id dana-plays \
    --task encryption --params '{"data":"own-{i}","iterations":300}' --count $N --concurrency 6 \
    --quiet --timeout-s 120 >"$T_DIR/dana.out" 2>&1
check "dana's gamer, logged in with its key, got all $N answers" grep -q "summary: tasks=$N ok=$N" "$T_DIR/dana.out"
P2C2R_API_KEY=$(key g-walk) "$BIN/p2c2r-agent" gamer --server "$SERVER" --gamer-id walk-in \
    --task encryption --params '{"data":"walk-{i}","iterations":300}' --count $N --concurrency 6 \
    --quiet --timeout-s 120 >"$T_DIR/walk.out" 2>&1
check "another gamer got all $N answers" grep -q "summary: tasks=$N ok=$N" "$T_DIR/walk.out"
sched_idle () { admin_get "$GW_ADMIN" /api/stats 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin).get("scheduler") or {}
sys.exit(0 if all(s.get(k, 0) == 0 for k in ("running", "validating", "settling", "queue_depth",
                                              "validation_payouts_pending")) else 1)
'
}
check "the scheduler finished every validation" wait_for 60 sched_idle

# Whose tasks rig-7 ran, first runs and check runs alike (its own log, and
# the ledger's rows): none of dana's, some of the other gamer's
G_DANA=$(sql "SELECT id FROM accounts WHERE kind = 'gamer' AND name = 'dana-plays'")
G_WALK=$(sql "SELECT id FROM accounts WHERE kind = 'gamer' AND name = 'walk-in'")
P_DANA=$(sql "SELECT id FROM accounts WHERE kind = 'peer' AND name = 'rig-7'")
sql "SELECT task_id FROM tasks WHERE gamer_account = $G_DANA" | sort -u >"$T_DIR/dana.ids"
sql "SELECT task_id FROM tasks WHERE gamer_account = $G_WALK" | sort -u >"$T_DIR/walk.ids"
sed -n 's/.*peer: task done id=\([^ #]*\).*/\1/p' "$T_DIR/rig-7.log" | sort -u >"$T_DIR/rig7.ids"
echo "rig-7 ran $(wc -l <"$T_DIR/rig7.ids") distinct tasks; dana's: $(wc -l <"$T_DIR/dana.ids"), walk-in's: $(wc -l <"$T_DIR/walk.ids")"
check "the ledger settled all of dana's tasks" test "$(wc -l <"$T_DIR/dana.ids")" = $N
check "rig-7 never ran one of dana's tasks, nor a check of one" \
    test -z "$(comm -12 "$T_DIR/dana.ids" "$T_DIR/rig7.ids")"
check "no settlement pays rig-7 for a task of dana's (first runs and checks)" \
    test "$(sql "SELECT COUNT(*) FROM tasks WHERE peer_account = $P_DANA AND split_part (task_id, '#', 1) IN (SELECT task_id FROM tasks WHERE gamer_account = $G_DANA)")" = 0
check "rig-7 did run the other gamer's tasks" test -n "$(comm -12 "$T_DIR/walk.ids" "$T_DIR/rig7.ids")"
check "the books pass the audit (p2c2r-ctl audit)" ctl audit

# The subsidy: a contributor sees it spent, and the rate in force (the
# gamer's $0.01 an hour less the 10% fee)
status () { "$BIN/p2c2r-agent" status --control "$CTLS" "$@"; }
status >"$T_DIR/status.txt"
sed -n '/earnings/,$p' "$T_DIR/status.txt"
check "p2c2r-agent status shows the rate in force" \
    grep -q 'rate now *\$0.009000000000 per hour' "$T_DIR/status.txt"
check "p2c2r-agent status shows the subsidy spent for today" \
    grep -q 'subsidy *spent for today' "$T_DIR/status.txt"
check "the books pass the audit at the end" ctl audit
t_report
