"""Helpers of the kernel end-to-end tests (tests/e2e/test_kernels_*.sh),
written without any of the agent's code: a PNG encoder and decoder (zlib
and struct only), the cases every kernel and alias is submitted with, and
what a user would check of each result.

  kernels_check.py png W H FILE           writes a W x H RGB gradient PNG
  kernels_check.py pnginfo FILE           prints "W H" of a PNG it decodes fully
  kernels_check.py list                   prints the names of the cases
  kernels_check.py params NAME NONCE      prints a case's params with "nonce":NONCE
  kernels_check.py run NAME BIN SERVER DIR   submits the case through the real
                                          stack with p2c2r-agent gamer --json
                                          --out DIR/NAME and checks the reply
  kernels_check.py digests JSONL          prints "index result_sha256
                                          blob_sha256" per ok reply, sorted
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib


def png_encode(width, height):
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes((x * 255 // (width - 1), y * 255 // (height - 1), 255 if x == y else 0))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


def png_decode(data):
    """Returns (width, height, rows) of an 8-bit RGB/RGBA PNG after checking
    every chunk's CRC, inflating the image data and undoing the filters;
    raises ValueError on anything wrong."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    i, idat, ihdr, ended = 8, b"", None, False
    while i < len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + length]
        (crc,) = struct.unpack(">I", data[i + 8 + length:i + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError("bad CRC in " + kind.decode(errors="replace"))
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            ended = True
            break
        i += 12 + length
    if not ihdr or not ended:
        raise ValueError("missing IHDR or IEND")
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("unexpected format depth=%d colour=%d" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise ValueError("image data is %d bytes, want %d" % (len(raw), height * (stride + 1)))
    prev, rows = bytearray(stride), []
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif f != 0:
                raise ValueError("bad filter %d" % f)
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def sha_chain(data, iterations):
    """The original demo's formula: each round hashes the raw 32-byte digest."""
    cur = data.encode("utf-8")
    for i in range(iterations):
        h = hashlib.sha256()
        h.update(cur)
        h.update(str(i).encode())
        cur = h.digest()
    return cur.hex()


RT_KEYS = ["rays_traced", "intersections", "width", "height"]

# name submitted -> (params, payload PNG size or None, expected keys, extra check, image size)
CASES = {
    "encryption": ({"data": "e2e", "iterations": 500}, None, ["hash", "algorithm", "iterations"],
                   lambda r: r["hash"] == sha_chain("e2e", 500), None),
    "hash": ({"data": "alias", "iterations": 3}, None, ["hash", "algorithm", "iterations"],
             lambda r: r["hash"] == sha_chain("alias", 3), None),
    "compression": ({"data": "p2c2r ", "repeat": 1000, "level": 9}, None,
                    ["original_size", "compressed_size", "compression_ratio", "verified", "algorithm"],
                    lambda r: r["verified"] is True and r["original_size"] == 6000
                    and r["compressed_size"] == len(zlib.compress(b"p2c2r " * 1000, 9)), None),
    "ai_dialogue": ({"player_input": "Hello, any quest for me?", "npc_name": "Aldric"}, None,
                    ["dialogue", "category", "confidence", "emotion", "animation"],
                    lambda r: isinstance(r["dialogue"], str) and r["dialogue"] != "", None),
    "ai_npc_dialogue": ({"player_input": "I want to trade gold", "character": "Mira",
                         "personality": "grumpy"}, None,
                        ["dialogue", "category", "confidence", "emotion", "animation"],
                        lambda r: r["category"] == "trade", None),
    "ai_pathfinding": ({"grid_size": [16, 16], "start": [0, 0], "goal": [15, 15],
                        "obstacles": [[5, y] for y in range(15)]}, None,
                       ["path", "distance", "nodes_explored", "algorithm"],
                       lambda r: r["path"][0] == [0, 0] and r["path"][-1] == [15, 15]
                       and [5, 15] in r["path"], None),
    "ai_procedural": ({"size": [32, 20], "type": "dungeon", "seed": 5}, None,
                      ["grid", "rooms", "connections", "seed"],
                      lambda r: len(r["grid"]) == 20 and all(len(row) == 32 for row in r["grid"]),
                      None),
    "rt_reflections": ({"resolution": [64, 48], "bounces": 2, "lights": 2, "samples_per_pixel": 1},
                       None, RT_KEYS, lambda r: r["width"] == 64 and r["height"] == 48, (64, 48)),
    "raytracing_reflections": ({"resolution": [40, 30], "bounces": 1}, None, RT_KEYS,
                               lambda r: r["width"] == 40, (40, 30)),
    "rt_shadows": ({"resolution": [48, 32], "lights": 2, "samples_per_pixel": 2}, None, RT_KEYS,
                   lambda r: r["rays_traced"] > 0, (48, 32)),
    "rt_global_illumination": ({"resolution": [32, 24], "bounces": 2, "samples_per_pixel": 2}, None,
                               RT_KEYS, lambda r: r["intersections"] > 0, (32, 24)),
    "physics_rigid_body": ({"num_objects": 10, "simulation_steps": 100, "seed": 3}, None,
                           ["num_objects", "simulation_steps", "collisions", "objects"],
                           lambda r: r["num_objects"] == 10 and len(r["objects"]) == 10, None),
    "physics_cloth": ({"grid_size": [8, 8], "timesteps": 20}, None,
                      ["grid_size", "timesteps", "springs", "positions_sha256"],
                      lambda r: r["timesteps"] == 20, None),
    "physics_fluid": ({"grid_size": [8, 8, 8], "iterations": 4}, None,
                      ["grid_size", "iterations", "total_density", "density_sha256"],
                      lambda r: r["total_density"] > 0, None),
    "physics_destruction": ({"complexity": 4, "fracture_depth": 2, "resolution": 16, "seed": 2}, None,
                            ["fragments", "fracture_depth", "total_volume", "fragment_list"],
                            lambda r: r["fragments"] >= 4
                            and abs(r["total_volume"] - r["original_volume"]) < 1e-6, None),
    "frame_upscale": ({"output_res": [96, 54], "method": "lanczos"}, (48, 27),
                      ["width", "height", "method"],
                      lambda r: r["input_width"] == 48 and r["method"] == "lanczos", (96, 54)),
    "upscale": ({"scale": 2, "method": "bilinear"}, (30, 20), ["width", "height", "method"],
                lambda r: r["width"] == 60 and r["height"] == 40, (60, 40)),
}


def run_case(name, binary, server, base):
    params, payload, keys, extra, image = CASES[name]
    out = os.path.join(base, name)
    cmd = [binary, "gamer", "--server", server, "--gamer-id", "kernels-e2e", "--task", name,
           "--params", json.dumps(params), "--json", "--out", out, "--timeout-s", "60"]
    if payload:
        os.makedirs(base, exist_ok=True)
        path = os.path.join(base, name + "-in.png")
        with open(path, "wb") as f:
            f.write(png_encode(*payload))
        cmd += ["--payload-file", path]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or len(lines) != 1:
        print("%s: gamer exit %d, %d replies\n%s" % (name, p.returncode, len(lines), p.stderr[-800:]))
        return False
    reply = json.loads(lines[0])
    if not reply["ok"]:
        print("%s: error %s %s" % (name, reply["code"], reply["error"]))
        return False
    result = reply["result"]
    missing = [k for k in keys if k not in result]
    if missing:
        print("%s: result lacks %s: %s" % (name, missing, json.dumps(result)[:300]))
        return False
    if not extra(result):
        print("%s: result is wrong: %s" % (name, json.dumps(result)[:300]))
        return False
    if "image_b64" in result:
        print("%s: the image travels inside the result JSON" % name)
        return False
    if image:
        saved = reply.get("saved")
        if not saved or not os.path.exists(saved) or not saved.endswith(".png"):
            print("%s: no image saved (saved=%s)" % (name, saved))
            return False
        with open(saved, "rb") as f:
            data = f.read()
        try:
            w, h, _ = png_decode(data)
        except (ValueError, zlib.error, struct.error) as e:
            print("%s: %s does not decode: %s" % (name, saved, e))
            return False
        if (w, h) != image or hashlib.sha256(data).hexdigest() != reply.get("blob_sha256"):
            print("%s: image %dx%d, want %dx%d (or the saved bytes differ)" % ((name, w, h) + image))
            return False
        if "saved " + saved not in p.stdout + p.stderr and saved not in lines[0]:
            print("%s: the gamer did not say where it saved the image" % name)
            return False
    elif reply.get("blob_bytes"):
        print("%s: unexpected binary output" % name)
        return False
    return True


def main():
    cmd = sys.argv[1]
    if cmd == "png":
        with open(sys.argv[4], "wb") as f:
            f.write(png_encode(int(sys.argv[2]), int(sys.argv[3])))
    elif cmd == "pnginfo":
        with open(sys.argv[2], "rb") as f:
            w, h, _ = png_decode(f.read())
        print(w, h)
    elif cmd == "list":
        print("\n".join(CASES))
    elif cmd == "params":
        # a case's params plus a field no kernel reads, which makes every
        # submit distinct for a result cache while the result must not change
        params = dict(CASES[sys.argv[2]][0], nonce=sys.argv[3])
        print(json.dumps(params))
    elif cmd == "run":
        sys.exit(0 if run_case(*sys.argv[2:6]) else 1)
    elif cmd == "digests":
        out = []
        with open(sys.argv[2]) as f:
            for line in f:
                if line.startswith("{"):
                    r = json.loads(line)
                    if r["ok"]:
                        out.append("%s %s %s" % (r["index"], r["result_sha256"],
                                                 r.get("blob_sha256", "-")))
        print("\n".join(sorted(out, key=lambda l: int(l.split()[0]))))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
