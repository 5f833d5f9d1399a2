#!/usr/bin/env python3
"""Raw WebSocket clients for tests/e2e/test_gateway_budgets.sh: they send
frame headers and partial payloads that no library client would, and print
one JSON line of what they saw.

  held PORT N ANNOUNCE SEND  N connections, each announcing a binary frame
                             of ANNOUNCE bytes and sending SEND of them;
                             then holds them until stdin closes, printing
                             {"open": .., "closed": .., "busy": ..} first
  huge PORT                  one frame announcing 2^62 bytes, 1000 sent:
                             {"answer": "...", "seconds": ..}
"""
import base64
import json
import os
import select
import socket
import struct
import sys
import time


def handshake(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed during the handshake")
        head += d
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode())
    return s


def header(opcode, length, final=True):
    """A client frame header (masked, mask 0 so the payload goes as is)."""
    b0 = (0x80 if final else 0) | opcode
    if length < 126:
        h = struct.pack("!BB", b0, 0x80 | length)
    elif length < 65536:
        h = struct.pack("!BBH", b0, 0x80 | 126, length)
    else:
        h = struct.pack("!BBQ", b0, 0x80 | 127, length)
    return h + b"\0\0\0\0"


def read_frames(s, secs, first=False):
    """Server frames within secs (until a close, or the first frame when
    first): a list of (opcode, payload)."""
    s.setblocking(False)
    buf, frames, end = b"", [], time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.time()))
        if not r:
            break
        try:
            d = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            break
        if not d:
            break
        buf += d
        while len(buf) >= 2:
            n, off = buf[1] & 0x7f, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            frames.append((buf[0] & 0x0f, buf[off:off + n]))
            buf = buf[off + n:]
        if any(op == 8 for op, _ in frames) or (first and frames):
            break
    return frames


def held(port, n, announce, send):
    conns, closed, busy = [], 0, 0
    chunk = b"x" * 65536
    for _ in range(n):
        try:
            s = handshake(port)
            s.sendall(header(2, announce, final=True))
            left = send
            while left > 0:
                k = min(left, len(chunk))
                s.sendall(chunk[:k])
                left -= k
            conns.append(s)
        except OSError:
            closed += 1
    # Which of them the gateway closed, and why
    for s in list(conns):
        frames = read_frames(s, 0.3)
        for op, payload in frames:
            if op == 8 and len(payload) >= 2 and struct.unpack("!H", payload[:2])[0] == 1013:
                busy += 1
        if any(op == 8 for op, _ in frames):
            closed += 1
            conns.remove(s)
    print(json.dumps({"open": len(conns), "closed": closed, "busy": busy}), flush=True)
    sys.stdin.read()        # held until the test has measured
    for s in conns:
        s.close()


def huge(port):
    s = handshake(port)
    t0 = time.time()
    s.sendall(header(1, 1 << 62, final=True) + b"y" * 1000)
    frames = read_frames(s, 5, first=True)
    text = b"".join(p for op, p in frames if op in (1, 2)).decode("utf-8", "replace")
    print(json.dumps({"answer": text[:300], "seconds": round(time.time() - t0, 2)}), flush=True)
    s.close()


if __name__ == "__main__":
    if sys.argv[1] == "held":
        held(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "huge":
        huge(int(sys.argv[2]))
