#!/usr/bin/env python3
"""Bounded test traffic for ringcap's integration tests (run inside a lab namespace).

  traffic.py send --dst ADDR --dport P [--sport P] [--count N] [--size BYTES] [--max-seconds S]
                  [--dns-query NAME]
      Sends N UDP datagrams of BYTES payload bytes (or DNS queries); prints how many were sent.
  traffic.py recv --bind ADDR --port P --count N [--max-seconds S]
      Receives until N datagrams arrived or S seconds passed; prints how many arrived.
      Prints "ready" on stderr once the socket is bound.
  traffic.py raw --iface IF --dst-mac MAC --src ADDR --dst ADDR --dport P [--vlan ID ...]
                 [--count N] [--size BYTES]
      Sends N Ethernet frames carrying IPv4/UDP through an AF_PACKET socket, with one
      802.1Q tag per --vlan (the first given is the outer one, sent as 802.1ad when there
      are two); prints how many were sent.
"""
import argparse
import socket
import struct
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def send(a):
    s = socket.socket(family(a.dst), socket.SOCK_DGRAM)
    if a.sport:
        s.bind(("::" if ":" in a.dst else "0.0.0.0", a.sport))
    payload = bytes(i % 251 for i in range(a.size))
    if a.dns_query:
        # A DNS query for A records of the name (id 0x1234, recursion desired).
        qname = b"".join(bytes([len(p)]) + p.encode() for p in a.dns_query.split(".")) + b"\0"
        payload = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    deadline = time.monotonic() + a.max_seconds
    sent = 0
    while sent < a.count and time.monotonic() < deadline:
        try:
            s.sendto(payload, (a.dst, a.dport))
            sent += 1
        except (BlockingIOError, ConnectionRefusedError):
            pass  # ICMP port unreachable from an earlier datagram; keep going
    print(sent)


def recv(a):
    s = socket.socket(family(a.bind), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((a.bind, a.port))
    print("ready", file=sys.stderr, flush=True)
    deadline = time.monotonic() + a.max_seconds
    got = 0
    while got < a.count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            s.recv(65536)
            got += 1
        except socket.timeout:
            break
    print(got)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def raw(a):
    payload = bytes(i % 251 for i in range(a.size))
    udp = struct.pack("!HHHH", 4000, a.dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(a.src), socket.inet_aton(a.dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    src_mac = open("/sys/class/net/%s/address" % a.iface).read().strip()
    mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
    frame = mac(a.dst_mac) + mac(src_mac)
    for i, vid in enumerate(a.vlan):
        tpid = 0x88A8 if (i == 0 and len(a.vlan) == 2) else 0x8100
        frame += struct.pack("!HH", tpid, vid)
    frame += struct.pack("!H", 0x0800) + ip + udp
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    sent = 0
    for _ in range(a.count):
        s.send(frame)
        sent += 1
    print(sent)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("send")
    ps.add_argument("--dst", required=True)
    ps.add_argument("--dport", type=int, required=True)
    ps.add_argument("--sport", type=int, default=0)
    ps.add_argument("--count", type=int, default=1)
    ps.add_argument("--size", type=int, default=64)
    ps.add_argument("--max-seconds", type=float, default=30)
    ps.add_argument("--dns-query", help="send a DNS query for this name instead of --size bytes")
    pr = sub.add_parser("recv")
    pr.add_argument("--bind", required=True)
    pr.add_argument("--port", type=int, required=True)
    pr.add_argument("--count", type=int, required=True)
    pr.add_argument("--max-seconds", type=float, default=30)
    pw = sub.add_parser("raw")
    pw.add_argument("--iface", required=True)
    pw.add_argument("--dst-mac", required=True)
    pw.add_argument("--src", required=True)
    pw.add_argument("--dst", required=True)
    pw.add_argument("--dport", type=int, required=True)
    pw.add_argument("--vlan", type=int, action="append", default=[])
    pw.add_argument("--count", type=int, default=1)
    pw.add_argument("--size", type=int, default=64)
    a = p.parse_args()
    {"send": send, "recv": recv, "raw": raw}[a.cmd](a)


if __name__ == "__main__":
    main()
