#!/usr/bin/env python3
"""Writes a synthetic pcapng for P5 (ci/bench-flows.sh): many short TCP flows of a device
(198.18.0.2) to many peers, speaking HTTP, TLS, MQTT and telnet, plus DNS and NTP over UDP.
Deterministic; prints the flow counts it wrote (the benchmark's validity check).

With VALUE (for the canary benchmark, ci/bench-canaries.sh), every 100th HTTP request
carries it in clear in its body and every 100th MQTT CONNECT base64-encoded, each in one
frame; it then also prints how many of each it wrote.

usage: make_capture.py OUT MEGABYTES [VALUE]
"""
import base64
import struct
import sys

out, megabytes = sys.argv[1], int(sys.argv[2])
VALUE = sys.argv[3].encode() if len(sys.argv) > 3 else None
DEV = bytes([198, 18, 0, 2])


def shb():
    return struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)


def idb():
    name = b"bench0"
    opts = struct.pack("<HH", 2, len(name)) + name + b"\0" * (-len(name) % 4) + b"\0\0\0\0"
    total = 20 + len(opts)
    return struct.pack("<IIHHI", 1, total, 1, 0, 65535) + opts + struct.pack("<I", total)


def epb(ts, frame):
    pad = b"\0" * (-len(frame) % 4)
    total = 32 + len(frame) + len(pad)
    return struct.pack("<IIIIIII", 6, total, 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame + pad + struct.pack("<I", total)


def ipv4(src, dst, proto, l4):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0, src, dst)
    return b"\0" * 12 + b"\x08\x00" + h + l4


def tcp(src, sport, dst, dport, flags, payload=b"", seq=1):
    return ipv4(src, dst, 6, struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 0x50, flags, 65535, 0, 0) + payload)


def conversation(sport, peer, port, client, server):
    """A TCP connection with sequence numbers as a real stack writes them."""
    c, s = 1000, 5000  # initial sequence numbers; SYN and FIN each take one
    out = []
    for side, flags, data in [("c", 0x02, b""), ("s", 0x12, b""), ("c", 0x10, b""), ("c", 0x18, client),
                              ("s", 0x18, server), ("c", 0x18, bytes(range(64)) * 4), ("s", 0x18, bytes(range(64)) * 8),
                              ("c", 0x10, b""), ("c", 0x11, b""), ("s", 0x11, b""), ("c", 0x10, b"")]:
        if side == "c":
            out.append(tcp(DEV, sport, peer, port, flags, data, c))
            c += len(data) + (1 if flags & 0x03 else 0)
        else:
            out.append(tcp(peer, port, DEV, sport, flags, data, s))
            s += len(data) + (1 if flags & 0x03 else 0)
    return out


def udp(src, sport, dst, dport, payload):
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def hello(n):
    sni = b"cloud%d.example" % (n % 97)
    ext = struct.pack("!HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    ext += bytes([0, 43, 0, 3, 2, 3, 4])
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + struct.pack("!H", len(ext)) + ext
    hs = b"\x01\x00" + struct.pack("!H", len(body)) + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


KINDS = [
    ("tls", 443, lambda n: hello(n), lambda n: b"\x16\x03\x03\x00\x7a" + bytes(122)),
    ("http", 80, lambda n: b"POST /t HTTP/1.1\r\nHost: api\r\nContent-Length: 9\r\n\r\ntemp=%03d" % (n % 1000), lambda n: b"HTTP/1.1 204 No Content\r\n\r\n"),
    ("mqtt", 1883, lambda n: b"\x10\x16\x00\x04MQTT\x04\x02\x00\x3c\x00\x0adevice-%03d" % (n % 1000), lambda n: b"\x20\x02\x00\x00"),
    ("telnet", 23, lambda n: b"\xff\xfd\x18", lambda n: b"\xff\xfb\x01\xff\xfb\x03login: "),
]

counts = {k[0]: 0 for k in KINDS}
counts.update(dns=0, ntp=0)
limit = megabytes << 20
with open(out, "wb") as f:
    written = f.write(shb()) + f.write(idb())
    n = 0
    ts = 1_700_000_000_000_000
    while written < limit:
        name, port, client, server = KINDS[n % len(KINDS)]
        peer = bytes([203, 0, (n >> 8) & 0xFF, n & 0xFF])
        sport = 1024 + n % 60000
        # distinct 5-tuples: the peer's address and the source port vary together
        request = client(n)
        if VALUE and name == "http" and n % 400 == 1:
            body = b'{"owner":"' + VALUE + b'"}'
            request = b"POST /t HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            counts["value_raw"] = counts.get("value_raw", 0) + 1
        if VALUE and name == "mqtt" and n % 400 == 2:
            request += b"\x00" + base64.b64encode(b"p" + VALUE)
            counts["value_base64"] = counts.get("value_base64", 0) + 1
        pkts = conversation(sport, peer, port, request, server(n))
        if n % 50 == 0:
            q = struct.pack("!HHHHHH", n & 0xFFFF, 0x0100, 1, 0, 0, 0) + b"\x05cloud\x07example\x00\x00\x01\x00\x01"
            pkts.append(udp(DEV, 1024 + (n // 50) % 64000, bytes([198, 18, 0, 1]), 53, q))
            counts["dns"] += 1
        if n % 200 == 0:
            pkts.append(udp(DEV, 1024 + (n // 200) % 64000, bytes([198, 18, 0, 3]), 123, b"\x23" + bytes(47)))
            counts["ntp"] += 1
        for p in pkts:
            ts += 10
            written += f.write(epb(ts, p))
        counts[name] += 1
        n += 1
print(" ".join("%s=%d" % kv for kv in sorted(counts.items())))
print("tcp=%d" % sum(counts[k[0]] for k in KINDS))
