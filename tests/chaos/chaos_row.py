#!/usr/bin/env python3
"""One row of `make chaos`: what the gamers of a round got, against what
the ledger recorded for them.

usage: chaos_row.py DB PROCESS OUT...   (OUT: a gamer's --json output; its
gamer id is the file name without .out)

Prints: process accepted replies settled delivered reversed lost, then a
line of notes. Exit 1 when a charged task was not delivered (lost), or the
gamers' net charge differs from the cost of the results they received.
accepted: the task ids seen anywhere (replies, settlements, failures
reported), since a task whose gateway died has no reply to name it."""
import json, os, subprocess, sys

db, process, outs = sys.argv[1], sys.argv[2], sys.argv[3:]
names = [os.path.basename(o)[:-len(".out")] for o in outs]
replies, delivered, delivered_cost = set(), set(), 0
for o in outs:
    for line in open(o, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if not r.get("task_id"):
            continue          # refused before it was accepted
        replies.add(r["task_id"])
        if r.get("ok"):
            delivered.add(r["task_id"])
            delivered_cost += int(r.get("cost_pico") or 0)

def query(sql):
    arr = "{" + ",".join('"%s"' % n for n in names) + "}"
    out = subprocess.run(["psql", db, "-qAt", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                          "-v", "names=" + arr, "-c", sql.replace(":names", "'" + arr + "'")],
                         check=True, capture_output=True, text=True).stdout
    return [l.split("\t") for l in out.splitlines() if l]

settled = {r[0]: (int(r[1]), int(r[2])) for r in query(
    "SELECT t.task_id, t.gamer_charge_pico, COALESCE (f.amount_pico, -1) FROM tasks t"
    " JOIN accounts a ON a.id = t.gamer_account AND a.kind = 'gamer'"
    " LEFT JOIN refunds f ON f.task_id = t.task_id"
    " WHERE a.name = ANY (:names::text[])")}
failed = {r[0] for r in query(
    "SELECT f.task_id FROM failed_tasks f JOIN accounts a ON a.id = f.gamer_account"
    " WHERE a.name = ANY (:names::text[])")}
reversed_ = {t for t, (_, refund) in settled.items() if refund >= 0}
lost = {t for t, (charge, refund) in settled.items()
        if refund < 0 and charge > 0 and t not in delivered}
net = sum(c for c, _ in settled.values()) - sum(r for _, r in settled.values() if r >= 0)
gifted = reversed_ & delivered
accepted = replies | set(settled) | failed
print("%-10s %9d %8d %8d %10d %9d %5d" % (process, len(accepted), len(replies), len(settled),
                                        len(delivered), len(reversed_), len(lost)))
notes = []
if lost:
    notes.append("LOST: " + " ".join(sorted(lost)[:10]))
if net != delivered_cost:
    notes.append("charge %d pico != delivered results' cost %d pico" % (net, delivered_cost))
if gifted:
    notes.append("refunded though delivered: " + " ".join(sorted(gifted)[:10]))
if notes:
    print("           " + "; ".join(notes))
sys.exit(1 if lost or net != delivered_cost else 0)
