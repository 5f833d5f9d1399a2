#!/usr/bin/python3
"""A test-only peer for the scheduler's end-to-end tests (never shipped):
speaks the binary protocol to a gateway with tests/e2e/pb.py and runs the
encryption kernel in Python (the formula of docs/protocol.md, result encoded
like the agent: sorted keys, compact).
  --mode corrupt --share 0.5 : forges that share of its results (the same
                               forgery for the same input: two such peers agree)
  --bind 127.0.5.1           : connects from that address (another block)
  --claim-us N --hold-s S    : claims N us of compute and holds each result S s
  --mode silent              : accepts tasks and never answers
  --mode late --delay-s 3    : answers correctly, but only after the delay
                               (after its attempt timed out)
Logs one line per task on stdout: "task id=... attempt=... forged=0|1"
(late: "late id=... attempt=..." when the answer is sent)."""
import argparse
import asyncio
import hashlib
import json
import random
import sys
import time

import websockets

sys.path.insert(0, __import__("os").path.dirname(__file__))
import pb  # noqa: E402


def peer_result(task_id, attempt, result_json, compute_us, version):
    body = (pb.field(1, task_id) + pb.field(2, True) + pb.field(3, result_json)
            + pb.field(5, compute_us) + pb.field(8, attempt) + pb.field(9, version))
    return pb.field(4, body)


def encryption(params):
    cur = str(params.get("data", "")).encode("utf-8")
    n = int(params.get("iterations", 1000))
    for i in range(n):
        cur = hashlib.sha256(cur + str(i).encode()).digest()
    return {"algorithm": "SHA-256", "hash": cur.hex(), "iterations": n}


async def answer_late(ws, f, task_id, attempt, delay_s, version):
    await asyncio.sleep(delay_s)
    result = encryption(json.loads(f.get(3, "{}") or "{}"))
    text = json.dumps(result, sort_keys=True, separators=(",", ":"))
    await ws.send(peer_result(task_id, attempt, text, 1000, version))
    print(f"late id={task_id} attempt={attempt}", flush=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--peer-id", required=True)
    ap.add_argument("--mode", choices=["corrupt", "silent", "late"], required=True)
    ap.add_argument("--share", type=float, default=0.5)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--delay-s", type=float, default=3.0)
    ap.add_argument("--run-s", type=float, default=300)
    ap.add_argument("--claim-us", type=int, default=0,
                    help="claim this compute time instead of the measured one")
    ap.add_argument("--hold-s", type=float, default=0,
                    help="hold each result this long before sending it")
    ap.add_argument("--bind", default=None,
                    help="local address to connect from (e.g. 127.0.5.1: another address block)")
    ap.add_argument("--kernel-version", default="2.0.0",
                    help="what the real agent reports (p2c2r-agent peer --list-kernels)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    end = time.monotonic() + a.run_s
    extra = {"local_addr": (a.bind, 0)} if a.bind else {}
    async with websockets.connect(a.server, max_size=2**24, **extra) as ws:
        await ws.send(pb.register_peer(a.peer_id, ["encryption"], a.slots))
        while time.monotonic() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1)
            except asyncio.TimeoutError:
                continue
            if isinstance(raw, str):
                continue
            kind, f = pb.server_message(raw)
            if kind == "registered":
                print("registered", flush=True)
            if kind != "assign":
                continue
            task_id, attempt = f.get(1, ""), int(f.get(6, 0))
            if a.mode == "silent":
                print(f"task id={task_id} attempt={attempt} silent=1", flush=True)
                continue
            if a.mode == "late":
                asyncio.get_running_loop().create_task(
                    answer_late(ws, f, task_id, attempt, a.delay_s, a.kernel_version))
                print(f"task id={task_id} attempt={attempt} late=1", flush=True)
                continue
            t0 = time.monotonic()
            result = encryption(json.loads(f.get(3, "{}") or "{}"))
            forged = rng.random() < a.share
            if forged:
                result["hash"] = hashlib.sha256(result["hash"].encode()).hexdigest()
            us = a.claim_us or int((time.monotonic() - t0) * 1e6) + 1
            if a.hold_s:
                await asyncio.sleep(a.hold_s)
            text = json.dumps(result, sort_keys=True, separators=(",", ":"))
            await ws.send(peer_result(task_id, attempt, text, us, a.kernel_version))
            print(f"task id={task_id} attempt={attempt} forged={int(forged)}", flush=True)


asyncio.run(main())
