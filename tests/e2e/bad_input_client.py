#!/usr/bin/python3
"""Drives a gateway with bad input over a real WebSocket (python3-websockets)
and checks each documented answer. Prints ok/FAIL per case."""
import asyncio
import hashlib
import json
import sys

import websockets

sys.path.insert(0, __import__("os").path.dirname(__file__))
import pb  # noqa: E402

PORT = int(sys.argv[1])
failures = 0
passes = 0


def check(what, ok, detail=""):
    global failures, passes
    passes += 1 if ok else 0
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f" ({detail})"))
    failures += 0 if ok else 1


async def reply(ws, timeout=10):
    while True:
        msg = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(msg, str):
            return "json", json.loads(msg)
        return pb.server_message(msg)


async def main():
    async with websockets.connect(f"ws://127.0.0.1:{PORT}/", max_size=None) as ws:
        await ws.send(b"\xff\xff\xff\xff")
        kind, m = await reply(ws)
        check("malformed frame -> error bad_request", kind == "error" and m.get(1) == "bad_request", (kind, m))

        await ws.send(pb.field(15, 1))
        kind, m = await reply(ws)
        check("unknown message -> error bad_request", kind == "error" and m.get(1) == "bad_request", (kind, m))

        await ws.send(pb.submit("encryption", '{"data":"x"}', "early"))
        kind, m = await reply(ws)
        check("submit before registration -> error", kind in ("error", "task_result") and (m.get(1) or m.get(4)),
              (kind, m))

        await ws.send(pb.register_gamer("bad-input-gamer"))
        kind, m = await reply(ws)
        check("registration still works after bad frames", kind == "registered", (kind, m))

        await ws.send(pb.submit("mining", "{}", "r1"))
        kind, m = await reply(ws)
        check("unknown task type -> unknown_task_type, client_ref echoed",
              kind == "task_result" and m.get(4) == "unknown_task_type" and m.get(2) == "r1", (kind, m))

        await ws.send(pb.submit("encryption", "{not json", "r2"))
        kind, m = await reply(ws)
        check("params not JSON -> invalid_params", kind == "task_result" and m.get(4) == "invalid_params", (kind, m))

        await ws.send(pb.submit("encryption", '[1,2]', "r3"))
        kind, m = await reply(ws)
        check("params not an object -> invalid_params", kind == "task_result" and m.get(4) == "invalid_params",
              (kind, m))

        await ws.send(pb.submit("encryption", '{"data":"x","iterations":-5}', "r4"))
        kind, m = await reply(ws)
        check("out-of-bound parameter -> invalid_params naming the field",
              kind == "task_result" and m.get(4) == "invalid_params" and "iterations" in m.get(5, ""), (kind, m))

        await ws.send(pb.submit("hash", '{"data":"x","iterations":"many"}', "r5"))
        kind, m = await reply(ws)
        check("wrongly typed parameter (through an alias) -> invalid_params",
              kind == "task_result" and m.get(4) == "invalid_params" and "iterations" in m.get(5, ""), (kind, m))

        await ws.send(pb.peer_result("nope"))
        kind, m = await reply(ws)
        check("a peer's message from a gamer -> error bad_request", kind == "error" and m.get(1) == "bad_request",
              (kind, m))

        await ws.send(b"\x1a" + pb.varint(9 * 1024 * 1024) + b"\x00" * (9 * 1024 * 1024))
        kind, m = await reply(ws)
        check("oversize frame -> too_large", m.get(1) == "too_large" or m.get(4) == "too_large", (kind, m))

        await ws.send(pb.submit("encryption", '{"data":"abc","iterations":3}', "good"))
        kind, m = await reply(ws)
        # the original demo's formula: each round hashes the raw digest
        cur = b"abc"
        for i in range(3):
            cur = hashlib.sha256(cur + str(i).encode()).digest()
        want = cur.hex()
        ok = kind == "task_result" and m.get(3) == 1 and json.loads(m.get(6, "{}")).get("hash") == want
        check("a valid task on the same connection still gets the right result", ok, (kind, m))

    print(f"bad_input_client: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


asyncio.run(main())
