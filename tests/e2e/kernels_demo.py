#!/usr/bin/python3
"""The original demo's JSON gamer against the real stack (text frames, the
JSON dialect, python3-websockets as the demo used):

  kernels_demo.py menu URL      the nine tasks of the original gamer's menu,
                                exactly as it sends them; each must come
                                back completed with the result a user would
                                look at
  kernels_demo.py hash URL      encryption at 1, 2, 1000 and 100000
                                iterations, each equal to Python's hashlib
                                with the original's formula (raw digest)

Prints "ok   ..." / "FAIL ..." per check; exits 0 when all pass. Every
wait is bounded."""
import asyncio
import base64
import hashlib
import json
import struct
import sys

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
        print("FAIL " + what + (f" ({str(detail)[:300]})" if detail != "" else ""), flush=True)


# The original gamer's menu, verbatim (issue 12)
MENU = [
    ("ai_npc_dialogue", {"character": "Shopkeeper", "context": "greeting", "personality": "friendly"}),
    ("ai_pathfinding", {"start": [0, 0], "end": [5, 5], "obstacles": [[2, 2]]}),
    ("ai_procedural", {"type": "dungeon", "size": [8, 8], "seed": 42}),
    ("rt_reflections", {"resolution": [1920, 1080], "bounces": 2, "lights": 2}),
    ("rt_shadows", {"quality": "medium", "lights": 3}),
    ("rt_global_illumination", {"bounces": 2, "samples_per_pixel": 100}),
    ("physics_rigid_body", {"num_objects": 20, "simulation_steps": 5}),
    ("physics_fluid", {"grid_size": [32, 32, 32], "iterations": 10}),
    ("physics_destruction", {"complexity": 100, "fracture_depth": 2}),
]


def demo_hash(data, iterations):
    """EncryptionExecutor.hash_data of the original demo."""
    current = data.encode("utf-8")
    for i in range(iterations):
        h = hashlib.sha256()
        h.update(current)
        h.update(str(i).encode())
        current = h.digest()
    return current.hex()


def png_size(data):
    """(width, height) from a PNG's signature and IHDR, or None."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


async def session(url, tasks, timeout):
    """Registers a JSON gamer, submits tasks [(ref, type, data)], returns {ref: reply}."""
    replies = {}
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "register_gamer", "gamer_id": "demo-gamer"}))
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        check("the JSON gamer registers", m.get("type") == "registered", m)
        for ref, ttype, data in tasks:
            await ws.send(json.dumps({"type": "submit_task", "client_ref": ref,
                                      "task": {"type": ttype, "data": data}}))
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(replies) < len(tasks) and loop.time() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(0.1, end - loop.time()))
            except asyncio.TimeoutError:
                break
            if isinstance(raw, bytes):
                continue
            m = json.loads(raw)
            if m.get("type") == "task_result":
                if m.get("client_ref") in replies:
                    check("one reply per task", False, m.get("client_ref"))
                replies[m.get("client_ref")] = m
    return replies


def menu_checks(replies):
    check("nine replies to the nine menu tasks", len(replies) == 9, sorted(replies))
    done = {ref: r for ref, r in replies.items() if r.get("status") == "completed"}
    for ref, (ttype, _) in zip([f"menu-{i}" for i in range(9)], MENU):
        r = replies.get(ref, {})
        check(f"{ttype} completed", r.get("status") == "completed",
              {k: r.get(k) for k in ("status", "code", "error")})
    res = {ref: r.get("result", {}) for ref, r in done.items()}
    d = res.get("menu-0", {})
    check("the shopkeeper greets (the context drives the line)",
          d.get("category") == "greeting" and "Shopkeeper" in d.get("dialogue", "")
          and d.get("personality") == "friendly", d)
    p = res.get("menu-1", {})
    path = p.get("path") or []
    check("a path from [0,0] to [5,5] around [2,2]",
          p.get("found") is True and path[:1] == [[0, 0]] and path[-1:] == [[5, 5]]
          and [2, 2] not in path, p)
    g = res.get("menu-2", {})
    grid = g.get("grid") or []
    check("an 8x8 dungeon of seed 42",
          len(grid) == 8 and all(len(row) == 8 for row in grid) and g.get("seed") == 42, g)
    for ref, name, size in (("menu-3", "rt_reflections", (1920, 1080)),
                            ("menu-4", "rt_shadows", (256, 256)),
                            ("menu-5", "rt_global_illumination", (128, 128))):
        r = res.get(ref, {})
        try:
            png = base64.b64decode(r.get("image_b64", ""), validate=True)
        except ValueError:
            png = b""
        check(f"{name}: a {size[0]}x{size[1]} PNG in image_b64",
              png_size(png) == size and (r.get("width"), r.get("height")) == size,
              {k: v for k, v in r.items() if k != "image_b64"})
    b = res.get("menu-6", {})
    check("20 rigid bodies after 5 steps",
          b.get("num_objects") == 20 and b.get("simulation_steps") == 5, b.get("num_objects"))
    f = res.get("menu-7", {})
    check("a 32^3 fluid after 10 iterations",
          f.get("grid_size") == [32, 32, 32] and f.get("iterations") == 10,
          {k: f.get(k) for k in ("grid_size", "iterations")})
    x = res.get("menu-8", {})
    check("a fracture into more than 100 fragments conserving the volume",
          (x.get("fragments") or 0) > 100 and x.get("total_volume") == x.get("original_volume"),
          {k: x.get(k) for k in ("fragments", "total_volume", "original_volume")})
    check("every result is paid for (cost_usd present)",
          all("cost_usd" in r for r in done.values()), "")


async def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "menu":
        tasks = [(f"menu-{i}", t, d) for i, (t, d) in enumerate(MENU)]
        menu_checks(await session(url, tasks, 240))
    elif mode == "hash":
        counts = [1, 2, 1000, 100000]
        tasks = [(f"hash-{n}", "encryption", {"data": "original demo", "iterations": n})
                 for n in counts]
        replies = await session(url, tasks, 120)
        for n in counts:
            r = replies.get(f"hash-{n}", {})
            got = (r.get("result") or {}).get("hash")
            check(f"encryption, {n} iterations, equals Python's hashlib (raw digest chained)",
                  r.get("status") == "completed" and got == demo_hash("original demo", n),
                  {k: r.get(k) for k in ("status", "code", "error", "result")})
    else:
        print(__doc__)
        return 2
    print(f"kernels_demo {mode}: {passes} passed, {failures} failed", flush=True)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
