"""What the end-to-end verifiers share: a check counter that prints one line
per check, read-only SQL through psql, and the two formulas written again
here, independently of the code under test (hashlib for `encryption`, the
rounding rule of common/p2c_money.h for money)."""
import hashlib
import os
import subprocess
import sys

_counts = {"passed": 0, "failed": 0}


def check(what, ok, detail=""):
    _counts["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f" ({detail})"))


def finish(name):
    """Prints the closing count line and exits 1 on any failure."""
    print(f"{name}: {_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)


def sql(q, db=None):
    out = subprocess.run(["psql", db or os.environ["T_DB"], "-qAt", "-F", "\t",
                          "-v", "ON_ERROR_STOP=1", "-c", q],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def expected_hash(data, iterations):
    """The original demo's formula: each round hashes the raw 32-byte digest."""
    cur = data.encode("utf-8")
    for i in range(iterations):
        cur = hashlib.sha256(cur + str(i).encode()).digest()
    return cur.hex()


def split(billed_us):
    """The rounding rule of common/p2c_money.h: (charge, earning, fee)."""
    charge = (billed_us * 10_000_000_000 + 1_800_000_000) // 3_600_000_000
    earning = (billed_us * 150_000_000_000 + 1_800_000_000) // 3_600_000_000
    fee = (charge * 1000 + 5000) // 10000
    return charge, earning, fee
