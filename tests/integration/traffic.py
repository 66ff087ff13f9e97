#!/usr/bin/env python3
"""Bounded test traffic for ringcap's integration tests (run inside a lab namespace).

  traffic.py send --dst ADDR --dport P [--sport P] [--count N] [--size BYTES] [--max-seconds S]
      Sends N UDP datagrams of BYTES payload bytes; prints how many were sent.
  traffic.py recv --bind ADDR --port P --count N [--max-seconds S]
      Receives until N datagrams arrived or S seconds passed; prints how many arrived.
      Prints "ready" on stderr once the socket is bound.
"""
import argparse
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def send(a):
    s = socket.socket(family(a.dst), socket.SOCK_DGRAM)
    if a.sport:
        s.bind(("::" if ":" in a.dst else "0.0.0.0", a.sport))
    payload = bytes(i % 251 for i in range(a.size))
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
    pr = sub.add_parser("recv")
    pr.add_argument("--bind", required=True)
    pr.add_argument("--port", type=int, required=True)
    pr.add_argument("--count", type=int, required=True)
    pr.add_argument("--max-seconds", type=float, default=30)
    a = p.parse_args()
    send(a) if a.cmd == "send" else recv(a)


if __name__ == "__main__":
    main()
