#!/usr/bin/env python3
"""A bounded UDP flood for the reliability tests (run inside a lab namespace).

  flood.py --dst ADDR --other-port P [--match-port Q --match-rate R --match-count M]
           [--size BYTES] [--max-packets N] [--max-seconds S]

Sends datagrams to ADDR:P as fast as it can and, interleaved, datagrams to ADDR:Q at R per
second (paced by the clock, not by the flood's speed) until M of those went out. Stops after
N datagrams in all, after S seconds, or on SIGTERM/SIGINT; then prints
{"other": sent to P, "matching": sent to Q, "seconds": ...} on stdout.
"""
import argparse
import json
import signal
import socket
import time

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dst", required=True)
    p.add_argument("--other-port", type=int, required=True)
    p.add_argument("--match-port", type=int, default=0)
    p.add_argument("--match-rate", type=float, default=0)
    p.add_argument("--match-count", type=int, default=0)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--max-packets", type=int, default=5_000_000)
    p.add_argument("--max-seconds", type=float, default=60)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    s = socket.socket(socket.AF_INET6 if ":" in a.dst else socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    payload = bytes(i % 251 for i in range(a.size))
    other = (a.dst, a.other_port)
    match = (a.dst, a.match_port)
    start = time.monotonic()
    deadline = start + a.max_seconds
    interval = 1.0 / a.match_rate if a.match_rate > 0 else None
    next_match = start
    sent_other = sent_match = 0
    while not stop and sent_other + sent_match < a.max_packets:
        now = time.monotonic()
        if now >= deadline:
            break
        dest = other
        if interval and sent_match < a.match_count and now >= next_match:
            dest = match
            next_match += interval
        try:
            s.sendto(payload, dest)
        except (BlockingIOError, ConnectionRefusedError):
            # A full socket buffer, or an ICMP error of an earlier datagram: try again.
            if dest is match:
                next_match -= interval
            continue
        if dest is match:
            sent_match += 1
        else:
            sent_other += 1
    print(json.dumps({"other": sent_other, "matching": sent_match,
                      "seconds": round(time.monotonic() - start, 3)}), flush=True)


if __name__ == "__main__":
    main()
