#!/usr/bin/env python3
"""Writes a synthetic pcapng for P5 (ci/bench-flows.sh): many short TCP flows of a device
(198.18.0.2) to many peers, speaking HTTP, TLS, MQTT and telnet, plus DNS and NTP over UDP.
Deterministic; prints the flow counts it wrote (the benchmark's validity check).

usage: make_capture.py OUT MEGABYTES
"""
import struct
import sys

out, megabytes = sys.argv[1], int(sys.argv[2])
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


def tcp(src, sport, dst, dport, flags, payload=b""):
    return ipv4(src, dst, 6, struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, flags, 65535, 0, 0) + payload)


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
        pkts = [
            tcp(DEV, sport, peer, port, 0x02),
            tcp(peer, port, DEV, sport, 0x12),
            tcp(DEV, sport, peer, port, 0x10),
            tcp(DEV, sport, peer, port, 0x18, client(n)),
            tcp(peer, port, DEV, sport, 0x18, server(n)),
            tcp(DEV, sport, peer, port, 0x18, bytes(range(64)) * 4),
            tcp(peer, port, DEV, sport, 0x18, bytes(range(64)) * 8),
            tcp(DEV, sport, peer, port, 0x10),
            tcp(DEV, sport, peer, port, 0x11),
            tcp(peer, port, DEV, sport, 0x11),
            tcp(DEV, sport, peer, port, 0x10),
        ]
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
