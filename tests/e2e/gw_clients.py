#!/usr/bin/python3
"""JSON-dialect clients for the gateway tests, written with python3-websockets
the way the original demo's clients were: register_peer / execute_task /
task_result and register_gamer / submit_task / task_result.

  gw_clients.py peer URL PEER_ID [--delay S] [--cafile F] [--key K]
        a JSON peer that runs the encryption kernel itself (the demo's
        formula) and reconnects forever; prints one line per task done
  gamer URL GAMER_ID N [--iterations I] [--concurrency C] [--cafile F]
        submits N encryption tasks, reconnects and re-runs tasks left
        unanswered by a lost connection; checks every hash; prints a JSON
        summary and exits 0 when every task got a correct result
  cases URL            the JSON protocol and bad-input table (needs a peer)
  keys URL GOOD_KEY    API key cases against an --auth apikey gateway
  revoked URL KEY      registers with KEY and waits for the revocation close
Every wait is bounded."""
import asyncio
import hashlib
import json
import re
import ssl
import sys
import time

import websockets

passes = 0
failures = 0


def check(what, ok, detail=""):
    global passes, failures
    if ok:
        passes += 1
        print("ok   " + what, flush=True)
    else:
        failures += 1
        print("FAIL " + what + f" ({detail})", flush=True)


def want_hash(data, iterations):
    """The original demo's formula: each round hashes the raw 32-byte digest."""
    cur = data.encode("utf-8")
    for i in range(iterations):
        h = hashlib.sha256()
        h.update(cur)
        h.update(str(i).encode())
        cur = h.digest()
    return cur.hex()


def ssl_ctx(args):
    if "--cafile" in args:
        ctx = ssl.create_default_context(cafile=args[args.index("--cafile") + 1])
        return ctx
    return None


def opt(args, name, default):
    return type(default)(args[args.index(name) + 1]) if name in args else default


async def recv_json(ws, timeout=10):
    msg = await asyncio.wait_for(ws.recv(), timeout)
    return json.loads(msg), msg


# ---------------------------------------------------------------------------
async def peer(url, peer_id, args):
    delay = opt(args, "--delay", 0.0)
    key = opt(args, "--key", "")
    ctx = ssl_ctx(args)
    backoff = 0.2
    while True:
        try:
            async with websockets.connect(url, ssl=ctx, max_size=None) as ws:
                reg = {"type": "register_peer", "peer_id": peer_id,
                       "capabilities": {"cpu_cores": 2, "ram_gb": 4, "gpu": False, "slots": 4}}
                if key:
                    reg["api_key"] = key
                await ws.send(json.dumps(reg))
                m, _ = await recv_json(ws)
                if m.get("type") != "registered":
                    print(f"peer {peer_id}: refused {m}", flush=True)
                    await asyncio.sleep(1)
                    continue
                print(f"peer {peer_id}: registered", flush=True)
                backoff = 0.2
                pending = set()
                async for raw in ws:
                    m = json.loads(raw)
                    if m.get("type") != "execute_task":
                        continue

                    async def run(m=m):
                        t0 = time.monotonic()
                        d = m["task_data"]
                        if delay:
                            await asyncio.sleep(delay)
                        its = d.get("iterations", 1000)
                        if m["task_type"] != "encryption":
                            out = {"type": "task_result", "task_id": m["task_id"],
                                   "error": "only encryption here"}
                        elif not isinstance(its, int) or its < 1:
                            out = {"type": "task_result", "task_id": m["task_id"], "code": "invalid_params",
                                   "error": "iterations must be a positive integer"}
                        else:
                            h = want_hash(str(d.get("data", "")), int(d.get("iterations", 1000)))
                            out = {"type": "task_result", "task_id": m["task_id"],
                                   "result": {"hash": h, "algorithm": "SHA-256",
                                              "iterations": int(d.get("iterations", 1000))},
                                   "processing_time_ms": (time.monotonic() - t0) * 1000}
                        try:
                            await ws.send(json.dumps(out))
                            print(f"peer {peer_id}: task done {m['task_id']}", flush=True)
                        except websockets.ConnectionClosed:
                            pass
                    task = asyncio.ensure_future(run())
                    pending.add(task)
                    task.add_done_callback(pending.discard)
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as e:
            print(f"peer {peer_id}: connection lost ({type(e).__name__}), reconnecting", flush=True)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 2.0)


# ---------------------------------------------------------------------------
async def gamer(url, gamer_id, n, args):
    iterations = opt(args, "--iterations", 100)
    conc = opt(args, "--concurrency", 8)
    deadline = time.monotonic() + opt(args, "--timeout-s", 120.0)
    ctx = ssl_ctx(args)
    todo = list(range(n))           # client refs not answered yet
    answers = {}                    # ref -> final reply
    replies = 0
    errors = {}
    reruns = 0
    connections = 0
    while todo and time.monotonic() < deadline:
        try:
            async with websockets.connect(url, ssl=ctx, max_size=None) as ws:
                connections += 1
                await ws.send(json.dumps({"type": "register_gamer", "gamer_id": gamer_id}))
                m, _ = await recv_json(ws)
                if m.get("type") != "registered":
                    await asyncio.sleep(0.5)
                    continue
                queue = list(todo)
                inflight = set()
                while (queue or inflight) and time.monotonic() < deadline:
                    while queue and len(inflight) < conc:
                        i = queue.pop(0)
                        inflight.add(i)
                        await ws.send(json.dumps({
                            "type": "submit_task", "client_ref": f"{gamer_id}-{i}",
                            "task": {"type": "hash" if i % 2 else "encryption",
                                     "data": {"data": f"{gamer_id}-{i}", "iterations": iterations}}}))
                    m, raw = await recv_json(ws, 30)
                    if m.get("type") != "task_result":
                        continue
                    replies += 1
                    i = int(m["client_ref"].rsplit("-", 1)[1])
                    inflight.discard(i)
                    if m["status"] == "completed":
                        answers[i] = m
                        todo.remove(i)
                        if not re.search(r'"cost_usd":-?[0-9]+(\.[0-9]+)?[,}]', raw):
                            errors["cost_usd_format"] = errors.get("cost_usd_format", 0) + 1
                    else:
                        errors[m.get("code")] = errors.get(m.get("code"), 0) + 1
                        # a retryable error: the task is run again
                        queue.append(i)
                        reruns += 1
                        await asyncio.sleep(0.05)
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as e:
            print(f"gamer {gamer_id}: connection lost ({type(e).__name__}), re-running "
                  f"{len(todo)} unanswered", flush=True)
            await asyncio.sleep(0.3)
    bad = [i for i, m in answers.items()
           if m["result"].get("hash") != want_hash(f"{gamer_id}-{i}", iterations)]
    summary = {"gamer": gamer_id, "completed": len(answers), "wanted": n, "wrong": len(bad),
               "replies": replies, "errors": errors, "reruns": reruns, "connections": connections,
               "task_ids": sorted(m["task_id"] for m in answers.values())}
    print(json.dumps(summary), flush=True)
    return 0 if len(answers) == n and not bad and "cost_usd_format" not in errors else 1


# ---------------------------------------------------------------------------
async def expect_error(ws, code, what, word=None):
    try:
        m, _ = await recv_json(ws)
    except Exception as e:      # noqa: BLE001
        check(what, False, repr(e))
        return
    ok = m.get("type") in ("error", "task_result") and m.get("code") == code
    if word:
        ok = ok and word in m.get("error", "")
    check(what, ok, m)


async def cases(url, args):
    ctx = ssl_ctx(args)
    # A well-behaved gamer, used between bad cases to show service goes on
    good = await websockets.connect(url, ssl=ctx, max_size=None)
    await good.send(json.dumps({"type": "register_gamer", "gamer_id": "json-good"}))
    m, _ = await recv_json(good)
    check("register_gamer -> registered", m.get("type") == "registered" and "json-good" in m.get("message", ""), m)
    seq = [0]

    async def good_task(label):
        seq[0] += 1
        ref = f"good-{seq[0]}"
        await good.send(json.dumps({"type": "submit_task", "client_ref": ref, "deadline_ms": 10000,
                                    "task": {"type": "hash", "data": {"data": "abc", "iterations": 3}}}))
        m, raw = await recv_json(good, 20)
        ok = (m.get("type") == "task_result" and m.get("status") == "completed"
              and m.get("client_ref") == ref and m["result"].get("hash") == want_hash("abc", 3)
              and isinstance(m.get("processing_time_ms"), (int, float)) and m.get("cached") in (True, False)
              and re.search(r'"cost_usd":[0-9]+(\.[0-9]+)?[,}]', raw) is not None
              and "e-" not in raw.split('"cost_usd":')[1][:30])
        check(f"a good client still gets its result ({label})", ok, raw)

    await good_task("first")

    async with websockets.connect(url, ssl=ctx, max_size=None) as ws:
        await ws.send("{not json")
        await expect_error(ws, "bad_request", "malformed JSON -> error bad_request", "malformed")
        await ws.send("[1,2,3]")
        await expect_error(ws, "bad_request", "a JSON array -> error bad_request")
        await ws.send(json.dumps({"peer_id": "x"}))
        await expect_error(ws, "bad_request", "missing type -> error naming it", "type")
        await ws.send(json.dumps({"type": "dance"}))
        await expect_error(ws, "bad_request", "unknown type -> error bad_request", "dance")
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "early",
                                  "task": {"type": "hash", "data": {}}}))
        await expect_error(ws, "bad_request", "submit before registration -> error", "regist")
        await ws.send(json.dumps({"type": "register_peer", "peer_id": 42}))
        await expect_error(ws, "bad_request", "peer_id of the wrong type -> error naming it", "peer_id")
        await ws.send(json.dumps({"type": "register_peer", "peer_id": "p", "capabilities": {"slots": "four"}}))
        await expect_error(ws, "bad_request", "capabilities.slots of the wrong type -> error", "slots")
        await ws.send(json.dumps({"type": "register_gamer"}))
        await expect_error(ws, "bad_request", "missing gamer_id -> error naming it", "gamer_id")
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "has space"}))
        await expect_error(ws, "bad_request", "invalid gamer_id -> error", "gamer_id")
        await good_task("after registration errors")
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "json-bad"}))
        m, _ = await recv_json(ws)
        check("registration still works after bad frames", m.get("type") == "registered", m)
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "again"}))
        await expect_error(ws, "bad_request", "second registration -> error", "already")
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "r1"}))
        await expect_error(ws, "bad_request", "submit without task -> error naming it", "task")
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "r2", "task": {"data": {}}}))
        await expect_error(ws, "bad_request", "task without type -> error naming it", "task.type")
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "r3", "deadline_ms": "soon",
                                  "task": {"type": "hash"}}))
        await expect_error(ws, "bad_request", "deadline_ms of the wrong type -> error naming it", "deadline_ms")
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "r4", "task": {"type": "mining"}}))
        m, _ = await recv_json(ws)
        check("unknown task type -> task_result error unknown_task_type, client_ref echoed",
              m.get("type") == "task_result" and m.get("status") == "error"
              and m.get("code") == "unknown_task_type" and m.get("client_ref") == "r4", m)
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "r5",
                                  "task": {"type": "hash", "data": [1, 2]}}))
        m, _ = await recv_json(ws)
        check("data not an object -> invalid_params", m.get("code") == "invalid_params"
              and m.get("client_ref") == "r5", m)
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "r6",
                                  "task": {"type": "hash", "data": {"data": "x", "iterations": "many"}}}))
        m, _ = await recv_json(ws, 20)
        check("wrongly typed parameter -> task_result invalid_params naming the field",
              m.get("type") == "task_result" and m.get("code") == "invalid_params"
              and "iterations" in m.get("error", ""), m)
        await ws.send(json.dumps({"type": "task_result", "task_id": "nope", "result": {}}))
        await expect_error(ws, "bad_request", "a peer's message from a gamer -> error (wrong role)", "peer")
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "big",
                                  "task": {"type": "hash", "data": {"data": "x" * (300 * 1024)}}}))
        await expect_error(ws, "too_large", "oversize frame -> too_large")
        await good_task("after bad submits")
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "fine",
                                  "task": {"type": "encryption", "data": {"data": "abc", "iterations": 3}}}))
        m, _ = await recv_json(ws, 20)
        check("the bad client's own valid task still completes", m.get("status") == "completed"
              and m.get("client_ref") == "fine" and m["result"]["hash"] == want_hash("abc", 3), m)

    # Flood: far over the per-connection rate -> rate_limited, then a close
    async with websockets.connect(url, ssl=ctx, max_size=None) as ws:
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "json-flood"}))
        await recv_json(ws)
        limited = 0
        code, reason = None, ""
        try:
            for i in range(120):   # the burst (100) and max-bad-frames (20) in a row
                await ws.send(json.dumps({"type": "submit_task", "client_ref": f"f{i}",
                                          "task": {"type": "mining"}}))
            for _ in range(400):
                m, _ = await recv_json(ws, 5)
                limited += m.get("code") == "rate_limited"
        except websockets.ConnectionClosed as e:
            if e.rcvd:
                code, reason = e.rcvd.code, e.rcvd.reason
        except asyncio.TimeoutError:
            pass
        # what arrived before the close, read from the metrics-free side: the
        # answers the client library buffered
        while True:
            try:
                m = json.loads(ws.messages.popleft())
                limited += m.get("code") == "rate_limited"
            except (IndexError, AttributeError):
                break
        check("a flood gets rate_limited answers", limited > 0, limited)
        check("a flood is closed with 1008 'rate limit exceeded'",
              code == 1008 and "rate" in reason, (code, reason))
    await good_task("after a flood")

    # Registration timeout: a connection that never registers is closed
    timeout_s = opt(args, "--register-timeout-s", 0.0)
    if timeout_s:
        async with websockets.connect(url, ssl=ctx) as ws:
            try:
                await asyncio.wait_for(ws.recv(), timeout_s + 5)
                code = None
                reason = ""
            except websockets.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                reason = e.rcvd.reason if e.rcvd else ""
            # Closed by the gateway's registration timer (its reason says so),
            # within the wait above; how fast is no business of a test
            check("a connection that does not register is closed (1008, registration timeout)",
                  code == 1008 and reason == "registration timeout", (code, reason))
    await good.close()


async def keys(url, good_key, args):
    ctx = ssl_ctx(args)
    async with websockets.connect(url, ssl=ctx) as ws:
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "nokey"}))
        await expect_error(ws, "auth_failed", "apikey mode: no api_key -> auth_failed")
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "badkey", "api_key": "p2c-wrong"}))
        await expect_error(ws, "auth_failed", "apikey mode: unknown key -> auth_failed")
        if good_key:
            await ws.send(json.dumps({"type": "register_peer", "peer_id": "wrong-role", "api_key": good_key}))
            await expect_error(ws, "auth_failed", "apikey mode: a gamer's key used by a peer -> auth_failed")
            await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "keyed", "api_key": good_key}))
            m, _ = await recv_json(ws)
            check("apikey mode: a valid key -> registered", m.get("type") == "registered", m)
    if good_key:
        # A second registration with the same key is answered from the cache
        async with websockets.connect(url, ssl=ctx) as ws:
            await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "keyed2", "api_key": good_key}))
            m, _ = await recv_json(ws)
            check("apikey mode: the same key again -> registered", m.get("type") == "registered", m)


async def revoked(url, key, args):
    ctx = ssl_ctx(args)
    async with websockets.connect(url, ssl=ctx) as ws:
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "soon-revoked", "api_key": key}))
        m, _ = await recv_json(ws)
        print("registered" if m.get("type") == "registered" else f"refused {m}", flush=True)
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(ws.recv(), 60)
            code, reason = None, ""
        except websockets.ConnectionClosed as e:
            code, reason = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")
        print(json.dumps({"code": code, "reason": reason, "after_s": round(time.monotonic() - t0, 1)}),
              flush=True)


async def drain(url, args):
    """Submits one slow task, then reports its reply and the close code."""
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "drain-gamer"}))
        await recv_json(ws)
        await ws.send(json.dumps({"type": "submit_task", "client_ref": "d1",
                                  "task": {"type": "encryption", "data": {"data": "d", "iterations": 5}}}))
        print("submitted", flush=True)
        out = {"status": None, "hash_ok": False, "close": None, "reason": ""}
        try:
            for _ in range(10):
                m, _ = await recv_json(ws, 30)
                if m.get("type") == "task_result":
                    out["status"] = m.get("status")
                    out["hash_ok"] = m.get("result", {}).get("hash") == want_hash("d", 5)
        except websockets.ConnectionClosed as e:
            out["close"], out["reason"] = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")
        except asyncio.TimeoutError:
            pass
        print(json.dumps(out), flush=True)


async def limits(url, args):
    """--max-conns-per-ip 3 and --ping-s 1 --pong-timeout-s 1 on the gateway."""
    import base64
    import os
    import socket
    conns = [await websockets.connect(url) for _ in range(3)]
    # Refused before the WebSocket handshake (issue 15): HTTP 429 with the
    # reason in the body
    try:
        fourth = await websockets.connect(url)
        await fourth.close()
        code = None
    except websockets.InvalidStatusCode as e:
        code = e.status_code
    check("a 4th connection from one address is refused before its handshake (HTTP 429)"
          " under --max-conns-per-ip 3", code == 429, code)
    for c in conns:
        await c.close()
    await asyncio.sleep(0.3)
    again = await websockets.connect(url)
    await again.send(json.dumps({"type": "register_gamer", "gamer_id": "lim-again"}))
    m, _ = await recv_json(again)
    check("after they close, the address may connect again", m.get("type") == "registered", m)
    await again.close()
    # A client that answers no ping: a raw socket that only reads
    host, port = url.split("//")[1].rstrip("/").split(":")
    s = socket.create_connection((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    s.settimeout(8)
    data = b""
    timed_out = False
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except socket.timeout:
        timed_out = True
    except OSError:
        pass
    body = data.split(b"\r\n\r\n", 1)[-1]
    # The socket's own 8 s timeout bounds the wait; a close by the gateway
    # ends the read with no data (not a timeout)
    check("an idle client is pinged, and dropped when it does not answer",
          body.startswith(b"\x89") and not timed_out, (body[:10], timed_out))


def main():
    cmd, url = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    if cmd == "peer":
        asyncio.run(peer(url, args[0], args[1:]))
    elif cmd == "gamer":
        sys.exit(asyncio.run(gamer(url, args[0], int(args[1]), args[2:])))
    elif cmd == "drain":
        asyncio.run(drain(url, args))
    elif cmd in ("cases", "keys", "revoked", "limits"):
        if cmd == "limits":
            asyncio.run(limits(url, args))
        elif cmd == "cases":
            asyncio.run(cases(url, args))
        elif cmd == "keys":
            asyncio.run(keys(url, args[0] if args else "", args[1:]))
        else:
            asyncio.run(revoked(url, args[0], args[1:]))
            return
        print(f"gw_clients {cmd}: {passes} passed, {failures} failed")
        sys.exit(1 if failures else 0)


main()
