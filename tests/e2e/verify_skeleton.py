#!/usr/bin/env python3
"""Checks the walking-skeleton run independently of the code under test:
results against hashlib, money against the rounding rule computed here,
journal balance and settlement uniqueness from PostgreSQL, and who was paid
against what each peer logged. Prints one line per check; exits 1 on any
failure."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_lib import check, expected_hash, finish, split, sql  # noqa: E402

tdir, n, iters, killed_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


# 1. Every task got exactly one reply, and the right result
task_ids = {}
for g in (1, 2):
    replies = [json.loads(line) for line in open(f"{tdir}/gamer-{g}.out") if line.strip()]
    idx = [r["index"] for r in replies]
    check(f"gamer-{g}: {n} replies, one per task", sorted(idx) == list(range(n)),
          f"{len(replies)} replies, {len(set(idx))} distinct")
    bad = [r for r in replies if not r["ok"]]
    check(f"gamer-{g}: every reply is a result", not bad, bad[:1])
    wrong = [r["index"] for r in replies if r["ok"]
             and r["result"].get("hash") != expected_hash(f"g{g}-{r['index']}", iters)]
    check(f"gamer-{g}: every hash matches hashlib", not wrong, f"wrong at {wrong[:5]}")
    for r in replies:
        task_ids[r["task_id"]] = (g, r)
check("task ids are unique across gamers", len(task_ids) == 2 * n, len(task_ids))

# 2. The ledger: each task settled once, each transaction sums to zero
rows = sql("SELECT task_id, billed_us, gamer_charge_pico, peer_earning_pico, fee_pico, "
           "(SELECT name FROM accounts WHERE id = t.gamer_account), "
           "(SELECT name FROM accounts WHERE id = t.peer_account) FROM tasks t")
# Rows whose id has a '#' are spot-check runs paid by the treasury: they are
# in the books (and in the peers' balances) but are not gamers' tasks
check_rows = [r for r in rows if "#" in r[0]]
rows = [r for r in rows if "#" not in r[0]]
settled = {r[0]: r for r in rows}
check("every answered task is settled exactly once", len(rows) == len(settled) == 2 * n
      and set(settled) == set(task_ids), f"{len(rows)} rows, {len(settled)} distinct")
unbalanced = sql("SELECT tx_id FROM journal_entries GROUP BY tx_id HAVING SUM(amount_pico) <> 0")
check("every journal transaction sums to zero", not unbalanced, unbalanced[:3])
per_task_tx = sql("SELECT COUNT(*), COUNT(DISTINCT task_id) FROM journal_tx "
                  "WHERE task_id IS NOT NULL AND position('#' in task_id) = 0")
check("one journal transaction per settled task",
      per_task_tx and per_task_tx[0][0] == per_task_tx[0][1] == str(2 * n), per_task_tx)

# 3. Amounts follow the formula; reply costs equal what was charged
bad_amounts = [r[0] for r in rows if split(int(r[1])) != (int(r[2]), int(r[3]), int(r[4]))]
check("each task's amounts follow the rounding rule", not bad_amounts, bad_amounts[:3])
bad_cost = [t for t, (g, r) in task_ids.items() if t in settled
            and (int(r["cost_pico"]) != int(settled[t][2]) or int(r["billed_us"]) != int(settled[t][1]))]
check("the cost each gamer saw is what it was charged", not bad_cost, bad_cost[:3])
balances = {name: int(total) for name, total in sql(
    "SELECT a.name, COALESCE(SUM(e.amount_pico), 0) FROM accounts a "
    "LEFT JOIN journal_entries e ON e.account_id = a.id GROUP BY a.name, a.kind")}
credit = int(os.environ.get("STARTING_CREDIT_PICO", "1000000000000"))
for g in (1, 2):
    want = credit - sum(split(int(r[1]))[0] for r in rows if r[5] == f"gamer-{g}")
    check(f"gamer-{g}'s balance is its starting credit minus its charges", balances.get(f"gamer-{g}") == want,
          f"{balances.get(f'gamer-{g}')} != {want}")
for p in ("peer-a", "peer-b"):
    want = sum(split(int(r[1]))[1] for r in rows if r[6] == p) \
        + sum(int(r[3]) for r in check_rows if r[6] == p)
    check(f"{p}'s balance is the sum of its earnings", balances.get(p) == want,
          f"{balances.get(p)} != {want}")

# 4. Paid to the peer that did the work
done = {}
for p in ("peer-a", "peer-b"):
    # ids with '#' are the scheduler's spot-check runs of a task: they are
    # compared, never paid, so they are not the gamers' tasks checked here
    done[p] = {t for t in re.findall(r"task done id=(\S+)", open(f"{tdir}/{p}.log").read())
               if "#" not in t}
paid_b = {r[0] for r in rows if r[6] == "peer-b"}
paid_a = {r[0] for r in rows if r[6] == "peer-a"}
lines_a = len(re.findall(r"task done id=", open(f"{tdir}/peer-a.log").read()))
check("peer-a did work before it was killed", lines_a >= killed_at > 0 and done["peer-a"],
      (lines_a, killed_at))
check("peer-b did the rest after peer-a died", len(paid_b) > 0 and len(paid_a) + len(paid_b) == 2 * n,
      f"{len(paid_a)} + {len(paid_b)}")
check("every task paid to peer-b was done by peer-b", paid_b <= done["peer-b"],
      list(paid_b - done["peer-b"])[:3])
check("no task done by peer-b was paid to peer-a", not (paid_a & done["peer-b"]),
      list(paid_a & done["peer-b"])[:3])
check("every task peer-a logged as done was paid to peer-a", done["peer-a"] <= paid_a,
      list(done["peer-a"] - paid_a)[:3])

finish("verify_skeleton")
