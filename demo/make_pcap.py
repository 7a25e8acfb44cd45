#!/usr/bin/env python3
"""Generate the demo capture demo/sample.pcap and the firewall rules demo/rules.json.

Deterministic (fixed seed, fixed timestamps): running it again gives the
same bytes, so the committed files can be checked with
`python3 demo/make_pcap.py --check`.

Traffic (3000 packets, classic pcap, Ethernet): IPv4 and IPv6; TCP (ssh,
http, https, telnet), UDP (dns, ntp, high ports), ICMP / ICMPv6 echo; ARP
and LLDP frames (non-IP); and malformed frames: runts shorter than an
Ethernet header, truncated IPv4 / IPv6 headers, IPv4 with IHL < 5, TCP and
UDP headers cut short. Some sources match the rules in rules.json, most do
not.
"""
import json
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261121
COUNT = 3000

XDP_DROP, XDP_PASS = 1, 2

# (family, source, proto (0 = any), dport (0 = any), action, comment)
RULES = [
    (4, "10.0.0.66", 0, 0, XDP_DROP, "block every packet from 10.0.0.66"),
    (4, "198.51.100.23", 6, 23, XDP_DROP, "block telnet (tcp/23) from 198.51.100.23"),
    (4, "192.0.2.99", 17, 0, XDP_DROP, "block all UDP from 192.0.2.99"),
    (6, "2001:db8::bad", 0, 0, XDP_DROP, "block every packet from 2001:db8::bad"),
    (4, "10.0.0.1", 6, 22, XDP_PASS, "explicitly allow ssh from 10.0.0.1 (a PASS rule)"),
]

GOOD_V4 = ["10.0.0.1", "10.0.0.2", "10.0.0.7", "172.16.4.20", "192.168.1.10", "203.0.113.5",
           "198.51.100.23", "192.0.2.99"]
BAD_V4 = ["10.0.0.66"]
GOOD_V6 = ["2001:db8::1", "2001:db8::2", "fe80::1"]
BAD_V6 = ["2001:db8::bad"]
DST_V4 = "10.0.0.254"
DST_V6 = "2001:db8::fe"


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def ip6(s):
    head, _, tail = s.partition("::")
    h = [int(x, 16) for x in head.split(":") if x]
    t = [int(x, 16) for x in tail.split(":") if x]
    words = h + [0] * (8 - len(h) - len(t)) + t
    return struct.pack("!8H", *words)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(ethertype, rng):
    dst = bytes([0x02, 0, 0, 0, 0, 0xFE])
    src = bytes([0x02, 0, 0, 0, rng.randrange(256), rng.randrange(256)])
    return dst + src + struct.pack("!H", ethertype)


def tcp(sport, dport, payload, rng):
    flags = rng.choice([0x02, 0x10, 0x18, 0x11])
    return struct.pack("!HHIIBBHHH", sport, dport, rng.getrandbits(32), rng.getrandbits(32),
                       5 << 4, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp_echo(rng, v6=False):
    body = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, rng.randrange(65536), rng.randrange(100))
    body += bytes(rng.randrange(256) for _ in range(32))
    if not v6:
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return body


def ipv4(src, proto, l4, rng, ihl=5):
    options = b"\x01" * (4 * (ihl - 5)) if ihl > 5 else b""
    total = 4 * max(ihl, 5) + len(l4)
    hdr = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total, rng.randrange(65536), 0x4000,
                      64, proto, 0, ip4(src), ip4(DST_V4)) + options
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + l4


def ipv6(src, nh, l4):
    return struct.pack("!IHBB16s16s", 6 << 28, len(l4), nh, 64, ip6(src), ip6(DST_V6)) + l4


def payload(rng, lo=0, hi=200):
    return bytes(rng.randrange(256) for _ in range(rng.randrange(lo, hi)))


def l4_for(rng):
    """A random transport segment: (proto, bytes)."""
    kind = rng.choices(["tcp", "udp", "icmp"], weights=[6, 3, 1])[0]
    if kind == "tcp":
        dport = rng.choice([22, 80, 443, 443, 443, 23, 8080])
        return 6, tcp(rng.randrange(1024, 65536), dport, payload(rng), rng)
    if kind == "udp":
        dport = rng.choice([53, 53, 123, 5353, 40000 + rng.randrange(1000)])
        return 17, udp(rng.randrange(1024, 65536), dport, payload(rng, 8, 120))
    return 1, icmp_echo(rng)


def packet(rng):
    r = rng.random()
    if r < 0.60:  # IPv4
        src = rng.choice(BAD_V4) if rng.random() < 0.08 else rng.choice(GOOD_V4)
        proto, l4 = l4_for(rng)
        return eth(0x0800, rng) + ipv4(src, proto, l4, rng)
    if r < 0.82:  # IPv6
        src = rng.choice(BAD_V6) if rng.random() < 0.1 else rng.choice(GOOD_V6)
        proto, l4 = l4_for(rng)
        if proto == 1:
            proto, l4 = 58, icmp_echo(rng, v6=True)
        return eth(0x86DD, rng) + ipv6(src, proto, l4)
    if r < 0.90:  # non-IP: ARP request or LLDP
        if rng.random() < 0.7:
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, bytes(6), ip4("10.0.0.7"),
                              bytes(6), ip4(DST_V4))
            return eth(0x0806, rng) + arp + bytes(18)
        return eth(0x88CC, rng) + payload(rng, 30, 60)
    # Malformed.
    m = rng.randrange(6)
    if m == 0:  # runt: shorter than an Ethernet header
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 14)))
    if m == 1:  # IPv4 header cut short
        return eth(0x0800, rng) + ipv4(rng.choice(GOOD_V4), 6, b"", rng)[:rng.randrange(0, 20)]
    if m == 2:  # IPv4 with IHL < 5
        bad = bytearray(ipv4(rng.choice(GOOD_V4), 17, udp(1, 53, b"x" * 8), rng))
        bad[0] = (4 << 4) | rng.randrange(0, 5)
        return eth(0x0800, rng) + bytes(bad)
    if m == 3:  # TCP header cut short
        full = ipv4(rng.choice(GOOD_V4 + BAD_V4), 6, tcp(1234, 80, b"", rng), rng)
        return eth(0x0800, rng) + full[:20 + rng.randrange(0, 20)]
    if m == 4:  # UDP header cut short (IPv6)
        full = ipv6(rng.choice(GOOD_V6), 17, udp(1234, 53, b""))
        return eth(0x86DD, rng) + full[:40 + rng.randrange(0, 8)]
    # IPv6 header cut short
    return eth(0x86DD, rng) + ipv6(rng.choice(GOOD_V6), 6, b"")[:rng.randrange(0, 40)]


def pcap(packets):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    t = 1_763_700_000  # fixed start time
    for i, p in enumerate(packets):
        usec = i * 1371 % 1_000_000
        out.append(struct.pack("<IIII", t + i // 700, usec, len(p), len(p)) + p)
    return b"".join(out)


def rules_json():
    entries = []
    for family, src, proto, port, action, comment in RULES:
        addr = ip4(src) + bytes(12) if family == 4 else ip6(src)
        key = addr + struct.pack("<HBB", port, proto, family)
        value = struct.pack("<IIQ", action, 0, 0)
        entries.append({"key": key.hex(), "value": value.hex(), "comment": comment})
    doc = {
        "comment": "fw_rules entries for tests/bpf/xdp_firewall.c: key = struct fw_key "
                   "{addr[4] (network order), port (host order, 0 = any), proto (0 = any), family}, "
                   "value = struct fw_rule {action (1 = XDP_DROP, 2 = XDP_PASS), pad, hits}",
        "maps": {"fw_rules": entries},
    }
    return json.dumps(doc, indent=2) + "\n"


def main():
    rng = random.Random(SEED)
    packets = [packet(rng) for _ in range(COUNT)]
    outputs = {
        os.path.join(HERE, "sample.pcap"): pcap(packets),
        os.path.join(HERE, "rules.json"): rules_json().encode(),
    }
    if "--check" in sys.argv[1:]:
        stale = [p for p, data in outputs.items()
                 if not os.path.exists(p) or open(p, "rb").read() != data]
        for p in stale:
            print(f"{p}: differs from a fresh generation", file=sys.stderr)
        sys.exit(1 if stale else 0)
    for p, data in outputs.items():
        with open(p, "wb") as f:
            f.write(data)
        print(f"wrote {p} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
