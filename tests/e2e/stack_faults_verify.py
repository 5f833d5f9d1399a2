#!/usr/bin/env python3
"""Checks the stack-faults run independently of the code under test: every
reply against hashlib, every ok reply against its settlement in PostgreSQL
(exactly one, with the cost the gamer saw), the validation runs the
treasury paid, the journal's balance, and each account's balance against the
rounding rule computed here. Prints one line
per check; exits 1 on any failure.

usage: stack_faults_verify.py TDIR N ITERATIONS STATS_JSON   (T_DB in the environment;
STATS_JSON: the gateway's /api/stats once the scheduler was idle)"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_lib import check, expected_hash, finish, split, sql  # noqa: E402

tdir, n, iters, stats_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


# 1. Every task got exactly one reply, and the right result
seen_ok = {}          # task id -> (gamer, reply) of every ok reply
for g in (1, 2):
    replies = []
    for line in open(f"{tdir}/gamer-{g}.out"):
        if line.strip():
            replies.append(json.loads(line))
    idx = [r["index"] for r in replies]
    check(f"gamer-{g}: {n} replies, one per task", sorted(idx) == list(range(n)),
          f"{len(replies)} replies, {len(set(idx))} distinct")
    bad = [(r["index"], r["code"]) for r in replies if not r["ok"]]
    check(f"gamer-{g}: every reply is a result (none lost to the outages)", not bad, bad[:3])
    wrong = [r["index"] for r in replies if r["ok"]
             and (r.get("result") or {}).get("hash") != expected_hash(f"sf{g}-{r['index']}", iters)]
    check(f"gamer-{g}: every hash matches hashlib", not wrong, f"wrong at {wrong[:5]}")
    for r in replies:
        if r["ok"]:
            seen_ok[r["task_id"]] = (g, r)
ok_count = sum(1 for _ in seen_ok)
check("task ids of the ok replies are unique across gamers", ok_count == 2 * n, ok_count)

# 2. Each answered task settled exactly once: nothing lost, nothing doubled.
# Ids with '#' are the scheduler's validation runs of a gamer's task
# (id#cN): paid to their peer by the treasury (ledger/sql/003), never
# charged to a gamer; they are checked apart.
rows = sql("SELECT task_id, billed_us, gamer_charge_pico, peer_earning_pico, fee_pico, "
           "(SELECT kind || ':' || name FROM accounts WHERE id = t.gamer_account), "
           "(SELECT name FROM accounts WHERE id = t.peer_account) FROM tasks t")
gamer_rows = [r for r in rows if "#" not in r[0]]
check_rows = [r for r in rows if "#" in r[0]]
settled = {}
for r in gamer_rows:
    settled.setdefault(r[0], []).append(r)
doubled = [t for t, rs in settled.items() if len(rs) > 1]
check("no task has two settlement rows", not doubled, doubled[:3])
check("as many settlements as ok replies", len(gamer_rows) == ok_count,
      f"{len(gamer_rows)} rows, {ok_count} ok")
lost = [t for t in seen_ok if t not in settled]
check("every task a gamer saw as ok is settled in the ledger (none lost)", not lost, lost[:3])
unseen = [t for t in settled if t not in seen_ok]
check("every settled task was answered ok to its gamer", not unseen, unseen[:3])
wrong_gamer = [t for t, (g, _) in seen_ok.items()
               if t in settled and settled[t][0][5] != f"gamer:gamer-{g}"]
check("each task is charged to the gamer that submitted it", not wrong_gamer, wrong_gamer[:3])
stray = [r[0] for r in check_rows
         if r[0].split("#")[0] not in seen_ok or r[5] != "treasury:treasury"]
check(f"the {len(check_rows)} validation runs paid are runs of answered tasks, paid by the treasury",
      not stray, stray[:3])
# The scheduler's count of validation runs it had the treasury pay (issue 6)
sched = (json.load(open(stats_path)).get("scheduler") or {}) if os.path.exists(stats_path) else {}
if "validation_check_payouts" in sched:
    check("every validation run the scheduler paid is settled once (none lost)",
          sched["validation_check_payouts"] == len(check_rows)
          and sched.get("validation_payouts_dropped", 0) == 0,
          f"scheduler paid {sched['validation_check_payouts']}, dropped "
          f"{sched.get('validation_payouts_dropped')}, ledger has {len(check_rows)}")
else:
    print("note: the scheduler's stats give no validation_check_payouts: not compared")
per_task_tx = sql("SELECT COUNT(*), COUNT(DISTINCT task_id) FROM journal_tx WHERE task_id IS NOT NULL")
check("one journal transaction per settlement",
      per_task_tx and per_task_tx[0][0] == per_task_tx[0][1] == str(len(rows)), per_task_tx)
unbalanced = sql("SELECT tx_id FROM journal_entries GROUP BY tx_id HAVING SUM(amount_pico) <> 0")
check("every journal transaction sums to zero", not unbalanced, unbalanced[:3])
total = sql("SELECT COALESCE(SUM(amount_pico), 0) FROM journal_entries")
check("the whole journal sums to zero", total == [["0"]], total)

# 3. Money: the rule, what the gamers saw, and every balance
bad_amounts = [r[0] for r in gamer_rows if split(int(r[1])) != (int(r[2]), int(r[3]), int(r[4]))]
check("each task's amounts follow the rounding rule", not bad_amounts, bad_amounts[:3])
bad_checks = [r[0] for r in check_rows if (int(r[2]), int(r[3]), int(r[4]))
              != (split(int(r[1]))[1], split(int(r[1]))[1], 0)]
check("each validation run is paid the peer's earning, with no fee", not bad_checks, bad_checks[:3])
bad_cost = [t for t, (g, r) in seen_ok.items() if t in settled
            and (int(r["cost_pico"]) != int(settled[t][0][2])
                 or int(r["billed_us"]) != int(settled[t][0][1]))]
check("the cost each gamer saw is what the ledger charged", not bad_cost, bad_cost[:3])
for g in (1, 2):
    seen = sum(int(r["cost_pico"]) for gg, r in seen_ok.values() if gg == g)
    charged = sum(int(r[2]) for r in gamer_rows if r[5] == f"gamer:gamer-{g}")
    check(f"gamer-{g}: the costs it saw sum to the ledger's charges", seen == charged and seen > 0,
          f"{seen} != {charged}")
balances = {name: int(total) for name, total in sql(
    "SELECT a.kind || ':' || a.name, COALESCE(SUM(e.amount_pico), 0) FROM accounts a "
    "LEFT JOIN journal_entries e ON e.account_id = a.id GROUP BY a.name, a.kind")}
# Both peers are honest: no earning may have been taken back
has_reversals = sql("SELECT to_regclass('reversals') IS NOT NULL") == [["t"]]
reversed_ = sql("SELECT task_id FROM reversals") if has_reversals else []
check("no honest peer's earning was reversed", not reversed_, reversed_[:3])
credit = int(os.environ.get("STARTING_CREDIT_PICO", "1000000000000"))
for g in (1, 2):
    want = credit - sum(split(int(r[1]))[0] for r in gamer_rows if r[5] == f"gamer:gamer-{g}")
    got = balances.get(f"gamer:gamer-{g}")
    check(f"gamer-{g}'s balance is its starting credit minus its charges", got == want,
          f"{got} != {want}")
for p in ("peer-a", "peer-b"):
    want = sum(split(int(r[1]))[1] for r in rows if r[6] == p)
    got = balances.get(f"peer:{p}")
    check(f"{p}'s balance is the sum of its earnings", got == want and want > 0, f"{got} != {want}")

finish("stack_faults_verify")
