#!/usr/bin/env python3
"""Writes the input captures of the ringcap-merge tests (deterministic, seeded).

  gen_inputs.py OUTDIR

Every packet is an Ethernet frame (EtherType 0x88B5, local experimental) whose payload starts
with its file and packet number. The files overlap in time and share some timestamps exactly,
so that ties between inputs occur:
  a_usec.pcap         classic pcap, microseconds, little-endian, snaplen 65535
  b_nsec_be.pcap      classic pcap, nanoseconds, big-endian, snaplen 96 (long frames cut)
  c_two_ifaces.pcapng pcapng, eth0 (ns, snaplen 0) and eth1 (us, snaplen 262144), an ISB and a
                      (non-copyable) custom block between packets
  d_late_be.pcapng    pcapng, big-endian: eth0 (us), then eth9 (ns, snaplen 1500) and eth2
                      (10^-7 s units) declared after packets
  e_same.pcapng       pcapng with eth0/eth1 like c_two_ifaces.pcapng (interfaces to merge)
  h1_host.pcapng, h2_host.pcapng
                      one eth0 each (ns, snaplen 65535), like ringcap's per-host captures
  g_unsorted.pcap     classic pcap, us, some packets out of time order
  f_sections.pcapng   three sections (big-endian, then little-endian), each declaring eth0
                      again and an interface of its own (sec0, sec1, sec2)
"""
import os
import random
import struct
import sys

BASE = 1_700_000_000  # seconds
NS = 1_000_000_000


def frame(rng, tag, n, length):
    head = bytes.fromhex("020000000001020000000002") + struct.pack(">H", 0x88B5)
    body = f"{tag}:{n}:".encode()
    body += bytes(rng.getrandbits(8) for _ in range(max(0, length - 14 - len(body))))
    return (head + body)[:max(length, 14 + len(body))]


def pcap(path, packets, nano, big, snaplen):
    e = ">" if big else "<"
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
        unit = 1 if nano else 1000
        for ts, data in packets:
            cap = data[:snaplen] if snaplen else data
            f.write(struct.pack(e + "IIII", ts // NS, ts % NS // unit, len(cap), len(data)) + cap)


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def options(e, opts):
    out = b""
    for code, value in opts:
        out += struct.pack(e + "HH", code, len(value)) + pad4(value)
    return out + struct.pack(e + "HH", 0, 0) if opts else b""


def block(e, btype, body):
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e):
    return block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) +
                 options(e, [(4, b"gen_inputs.py")]))


def idb(e, name, snaplen, tsresol=None):
    opts = [(2, name.encode())] + ([(9, bytes([tsresol]))] if tsresol is not None else [])
    return block(e, 1, struct.pack(e + "HHI", 1, 0, snaplen) + options(e, opts))


def epb(e, iface, ts_units, data, snaplen):
    cap = data[:snaplen] if snaplen else data
    body = struct.pack(e + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(cap), len(data))
    return block(e, 6, body + pad4(cap) + options(e, [(1, b"comment")]))


def isb(e, iface, ts_units):
    return block(e, 5, struct.pack(e + "III", iface, ts_units >> 32, ts_units & 0xFFFFFFFF) +
                 options(e, [(4, struct.pack(e + "Q", 7)), (5, struct.pack(e + "Q", 1))]))


def times(rng, count, start_s, span_s, unit_ns, shared=(), shared_every=5):
    """Sorted timestamps (ns) on a unit_ns grid; every shared_every-th one taken from `shared`."""
    out = [BASE * NS + (int(start_s * NS) + rng.randrange(int(span_s * NS))) // unit_ns * unit_ns
           for _ in range(count)]
    usable = [t for t in shared if t % unit_ns == 0]
    for i in range(0, count, shared_every):
        if usable:
            out[i] = rng.choice(usable)
    return sorted(out)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20240611)
    size = lambda: rng.choice([60, 64, 90, 96, 97, 128, 300, 1000, 1514, rng.randrange(14, 1515)])

    ta = times(rng, 200, 0, 2.0, 1000)
    pcap(f"{out}/a_usec.pcap", [(t, frame(rng, "a", i, size())) for i, t in enumerate(ta)],
         nano=False, big=False, snaplen=65535)

    tb = times(rng, 200, 0.5, 2.0, 1, shared=ta)
    tb[10] = tb[11]  # equal timestamps inside one input keep their order
    pcap(f"{out}/b_nsec_be.pcap", [(t, frame(rng, "b", i, size())) for i, t in enumerate(tb)],
         nano=True, big=True, snaplen=96)

    e = "<"
    tc = times(rng, 300, 0.2, 1.6, 1000, shared=ta + tb, shared_every=4)
    blocks = [shb(e), idb(e, "eth0", 0, 9), idb(e, "eth1", 262144)]
    for i, t in enumerate(tc):
        iface = i % 2
        blocks.append(epb(e, iface, t if iface == 0 else t // 1000, frame(rng, "c", i, size()), 0))
        if i == 150:
            blocks.append(isb(e, 0, t))
            blocks.append(block(e, 0x40000BAD, struct.pack(e + "I", 32473) + b"custom data."))
    open(f"{out}/c_two_ifaces.pcapng", "wb").write(b"".join(blocks))

    td = times(rng, 160, 0.1, 2.6, 1000, shared=ta + tc)
    e = ">"
    blocks = [shb(e), idb(e, "eth0", 65535, 6)]
    for i, t in enumerate(td):
        if i == 20:
            blocks.append(idb(e, "eth9", 1500, 9))
        if i == 90:
            blocks.append(idb(e, "eth2", 0, 7))
        iface = 2 if i >= 90 and i % 4 == 1 else 1 if i >= 20 and i % 3 == 0 else 0
        units = [t // 1000, t, t // 100][iface]
        blocks.append(epb(e, iface, units, frame(rng, "d", i, size()), [65535, 1500, 0][iface]))
    open(f"{out}/d_late_be.pcapng", "wb").write(b"".join(blocks))

    te = times(rng, 100, 1.0, 1.5, 1000, shared=tc)
    blocks = [shb(e), idb(e, "eth0", 0, 9), idb(e, "eth1", 262144)]
    for i, t in enumerate(te):
        iface = i % 3 % 2
        blocks.append(epb(e, iface, t if iface == 0 else t // 1000, frame(rng, "e", i, size()), 0))
    open(f"{out}/e_same.pcapng", "wb").write(b"".join(blocks))

    tf = times(rng, 120, 0.0, 3.0, 1000, shared=ta)
    blocks = []
    for sec, e in enumerate([">", "<", "<"]):
        blocks += [shb(e), idb(e, "eth0", 65535, 6), idb(e, f"sec{sec}", 0, 9)]
        for i, t in enumerate(tf[sec * 40:sec * 40 + 40], sec * 40):
            iface = i % 2
            blocks.append(epb(e, iface, t // 1000 if iface == 0 else t, frame(rng, "f", i, size()), 0))
    open(f"{out}/f_sections.pcapng", "wb").write(b"".join(blocks))

    for host in (1, 2):  # like ringcap's own per-host captures: one eth0, ns, snaplen 65535
        th = times(rng, 150, 0.3 * host, 1.5, 1, shared=tb)
        blocks = [shb(e), idb(e, "eth0", 65535, 9)]
        blocks += [epb(e, 0, t, frame(rng, f"h{host}", i, size()), 65535) for i, t in enumerate(th)]
        open(f"{out}/h{host}_host.pcapng", "wb").write(b"".join(blocks))

    tg = times(rng, 100, 0.0, 2.0, 1000, shared=ta)
    for i in range(3, 100, 7):  # some packets out of order
        tg[i], tg[i + 2] = tg[i + 2], tg[i]
    pcap(f"{out}/g_unsorted.pcap", [(t, frame(rng, "g", i, size())) for i, t in enumerate(tg)],
         nano=False, big=False, snaplen=65535)


if __name__ == "__main__":
    main()
