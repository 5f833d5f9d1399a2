#!/usr/bin/python3
"""A JSON-dialect client that reads its own account's figures from the
gateway (get_earnings), for tests/e2e/test_earnings.sh.

  earnings_client.py URL peer NAME   registers as a peer that runs no task
                                     type, then asks twice at once
  earnings_client.py URL gamer NAME  registers as a gamer, then asks twice at
                                     once, naming another account (ignored)
  earnings_client.py URL none        asks without registering, once

Prints each answer, one JSON object per line. Every wait is bounded."""
import asyncio
import json
import sys

import websockets


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def main(url, role, name):
    async with websockets.connect(url, max_size=None) as ws:
        if role == "peer":
            # No task types: the scheduler gives it nothing to run
            await ws.send(json.dumps({"type": "register_peer", "peer_id": name,
                                      "capabilities": {"task_types": []}}))
        elif role == "gamer":
            await ws.send(json.dumps({"type": "register_gamer", "gamer_id": name}))
        if role != "none":
            reg = await recv_json(ws)
            if reg.get("type") != "registered":
                print(json.dumps(reg), flush=True)
                return 1
        asks = 1 if role == "none" else 2
        for _ in range(asks):
            # An account named by the client is ignored: the answer is
            # always the session's own
            await ws.send(json.dumps({"type": "get_earnings", "account_id": 1}))
        for _ in range(asks):
            print(json.dumps(await recv_json(ws)), flush=True)
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(asyncio.run(main(a[0], a[1], a[2] if len(a) > 2 else "")))
