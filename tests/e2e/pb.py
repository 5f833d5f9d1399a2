"""A tiny protobuf wire codec for the tests, so that they speak to the
gateway byte for byte without sharing any code with it. Field numbers come
from proto/p2c2r.proto."""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    """A length-delimited field (str/bytes) or a varint field (int/bool)."""
    if isinstance(value, (bool, int)):
        return varint(num << 3) + varint(int(value))
    if isinstance(value, str):
        value = value.encode()
    return varint((num << 3) | 2) + varint(len(value)) + value


def decode(buf):
    """Returns {field number: [values]} with bytes for length-delimited fields."""
    out, i = {}, 0

    def read_varint():
        nonlocal i
        shift = n = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(buf):
        key = read_varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = read_varint()
        elif wt == 2:
            ln = read_varint()
            val = bytes(buf[i:i + ln])
            i += ln
        elif wt == 5:
            val = bytes(buf[i:i + 4])
            i += 4
        elif wt == 1:
            val = bytes(buf[i:i + 8])
            i += 8
        else:
            raise ValueError("bad wire type")
        out.setdefault(num, []).append(val)
    return out


def register_gamer(gamer_id):
    return field(2, field(1, gamer_id))


def register_peer(peer_id, task_types=(), slots=1):
    caps = field(5, slots) + b"".join(field(6, t) for t in task_types)
    return field(1, field(1, peer_id) + field(3, caps))


def submit(task_type, params_json, client_ref="", deadline_ms=0):
    body = field(1, task_type) + field(2, params_json)
    if client_ref:
        body += field(4, client_ref)
    if deadline_ms:
        body += field(5, deadline_ms)
    return field(3, body)


def peer_result(task_id, ok=True, result_json="{}"):
    return field(4, field(1, task_id) + field(2, ok) + field(3, result_json))


def server_message(buf):
    """('registered'|'assign'|'task_result'|'error', {field: value}) with
    strings decoded."""
    names = {1: "registered", 2: "assign", 3: "task_result", 4: "error"}
    top = decode(buf)
    (num, vals), = top.items()
    inner = decode(vals[0])
    flat = {}
    for k, v in inner.items():
        x = v[0]
        if isinstance(x, bytes):
            try:
                x = x.decode()
            except UnicodeDecodeError:
                pass
        flat[k] = x
    return names[num], flat
