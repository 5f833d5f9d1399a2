"""A one-shot fake gateway: accepts one WebSocket connection on 127.0.0.1,
reads the peer's first binary frame (its RegisterPeer), and prints the
advertised kernels as "task_type version reference_us" lines, decoded with
the tests' own protobuf reader (pb.py).
  kernels_fake_gateway.py PORTFILE    writes the port it listens on to PORTFILE
Bounded: gives up after 30 s."""
import base64
import hashlib
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pb  # noqa: E402


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def main():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(30)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    conn, _ = srv.accept()
    conn.settimeout(30)
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
           if l.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    while True:
        b0, b1 = read_exact(conn, 2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack(">H", read_exact(conn, 2))
        elif n == 127:
            (n,) = struct.unpack(">Q", read_exact(conn, 8))
        mask = read_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(read_exact(conn, n)))
        if b0 & 0x0F == 2:
            break
    reg = pb.decode(pb.decode(data)[1][0])
    caps = pb.decode(reg[3][0])
    for k in caps.get(9, []):
        info = pb.decode(k)
        print(info[1][0].decode(), info[2][0].decode(), info.get(3, [0])[0])
    conn.close()


if __name__ == "__main__":
    main()
