#!/usr/bin/env python3
"""Writes the binary seed corpora of the fuzz targets (deterministic):

  make_seeds.py [RINGCAP_MERGE]

  corpus/request_dbus/  programs of fuzz_request_dbus (see RequestDbusFuzz.cpp): valid simple
                        and full requests, wrong and unsupported D-Bus types, repeated keys,
                        variants in variants, an aa{sv}, a value that is no a{sv}
  corpus/ring_record/   ring records (struct ringcap_record + slot entries + bytes): valid, cut
                        by snaplen, three and eight slots, bad or empty slot mask, cap_len past
                        the end or above pkt_len, slot entries past the end, short header
  corpus/pcap_reader/   classic pcap (us/LE, ns/BE), pcapng (two interfaces, options, ISB,
                        custom block, a second big-endian section, SPB), a truncated one, and
                        - when RINGCAP_MERGE (a built ringcap-merge) is given - the pcapng that
                        the project's own writer makes of the first pcap

The text seeds (request_json, filter_v1, destination_uri, daemon_config) are kept as written.
"""
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


# --- request_dbus: the program format of RequestDbusFuzz.cpp ---

def s(text):
    b = text.encode() if isinstance(text, str) else text
    return bytes([len(b)]) + b


def string(text): return b"s" + s(text)
def y(v): return b"y" + struct.pack("<B", v)
def q(v): return b"q" + struct.pack("<H", v)
def u(v): return b"u" + struct.pack("<I", v)
def x(v): return b"x" + struct.pack("<q", v)
def t(v): return b"t" + struct.pack("<Q", v)
def d(v): return b"d" + struct.pack("<d", v)


def D(*entries):
    return b"D" + bytes([len(entries)]) + b"".join(s(k) + v for k, v in entries)


def dict_body(*entries):  # an a{sv} as an array element (no tag)
    return D(*entries)[1:]


def request_dbus():
    simple = D(("system", string("magic-transit")), ("type", string("simple")),
               ("time_limit", u(60)), ("packet_limit", u(100)),
               ("filter_v1", D(("destination_address", string("203.0.113.7")),
                               ("destination_port", q(53)), ("protocol", y(17)))))
    write("request_dbus", "simple_valid.bin", simple)
    write("request_dbus", "full_valid.bin", D(
        ("system", string("magic-transit")), ("type", string("full")), ("time_limit", u(300)),
        ("packet_limit", u(10000)), ("byte_limit", t(1000000000)), ("colo_name", string("ord02")),
        ("destination_conf", string("s3://bucket/dir?region=us-east-1")),
        ("offset_time", string("2024-05-01T10:00:00Z")),
        ("filter_v1", D(("source_address", string("2001:db8::1")), ("source_port", q(1024))))))
    write("request_dbus", "wrong_types.bin", D(
        ("system", b"o\x01"), ("type", string("simple")), ("time_limit", x(-5)),
        ("packet_limit", d(1.5)), ("filter_v1", string("{}")), ("byte_limit", t(2**64 - 1))))
    # filter_v1.source_port as a struct (qq); time_limit given twice
    write("request_dbus", "unsupported_and_repeated.bin", D(
        ("system", string("magic-transit")), ("type", string("simple")), ("time_limit", u(10)),
        ("time_limit", u(20)), ("filter_v1", D(("source_port", b"R\x01" + q(1) + q(2))))))
    # a variant holding a variant; av and aau arrays; a{ss}
    write("request_dbus", "nested.bin", D(
        ("time_limit", b"V" + u(10)),
        ("list", b"Av\x03" + string("a") + u(1) + D(("k", y(1)))),
        ("matrix", b"Aau\x02\x02" + struct.pack("<II", 1, 2) + b"\x01" + struct.pack("<I", 3)),
        ("labels", b"S\x01" + s("k") + s("v"))))
    write("request_dbus", "dict_array.bin", b"AD\x02" + dict_body(*[
        ("system", string("magic-transit")), ("type", string("simple")), ("time_limit", u(1)),
        ("packet_limit", u(1))]) + dict_body(("status", string("done"))))
    write("request_dbus", "not_a_dict.bin", string("magic-transit"))


# --- ring_record: struct ringcap_record + ringcap_record_slot entries (bpf/capture_abi.h) ---

def record(pkt_len, slots, data_len=None, extra_mask=0, flags=0):
    """slots: [(slot, cookie, cap_len)], lowest slot first."""
    mask = extra_mask
    for slot, _, _ in slots:
        mask |= 1 << slot
    cap = max([c for _, _, c in slots], default=0)
    data_len = cap if data_len is None else data_len
    out = struct.pack("<QIIIHH", 123456789, 2, 0, pkt_len, mask & 0xFFFF, flags)
    for _, cookie, cap_len in slots:
        out += struct.pack("<II", cookie, cap_len)
    return out + bytes(i & 0xFF for i in range(data_len))


def ring_record():
    write("ring_record", "valid.bin", record(60, [(0, 7, 60)]))
    write("ring_record", "snaplen_cut.bin", record(1500, [(7, 7, 96)]))
    write("ring_record", "empty_payload.bin", record(0, [(0, 7, 0)]))
    write("ring_record", "three_slots.bin", record(1500, [(1, 1, 96), (4, 4, 1500), (7, 7, 64)]))
    write("ring_record", "all_slots.bin", record(100, [(s, s, 10 + s) for s in range(8)]))
    write("ring_record", "bad_slot.bin", record(60, [(0, 7, 60)], extra_mask=1 << 8))
    write("ring_record", "empty_mask.bin", record(60, [], data_len=60))
    write("ring_record", "cap_past_end.bin", record(100, [(0, 7, 100)], data_len=40))
    write("ring_record", "cap_above_pkt.bin", record(40, [(0, 7, 60)]))
    write("ring_record", "short_header.bin", record(60, [(0, 7, 60)])[:23])
    write("ring_record", "entries_past_end.bin", record(60, [(0, 7, 0)], extra_mask=0x6))


# --- pcap_reader ---

def frame(n, length):
    head = bytes.fromhex("020000000001020000000002") + struct.pack(">H", 0x88B5)
    body = f"seed:{n}:".encode()
    return (head + body + bytes(range(256)) * 8)[:length]


def pcap(packets, nano, big, snaplen):
    e = ">" if big else "<"
    out = struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)
    for ts_ns, data in packets:
        cap = data[:snaplen]
        sub = ts_ns % 10**9 if nano else ts_ns % 10**9 // 1000
        out += struct.pack(e + "IIII", ts_ns // 10**9, sub, len(cap), len(data)) + cap
    return out


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def options(e, opts):
    if not opts:
        return b""
    return b"".join(struct.pack(e + "HH", c, len(v)) + pad4(v) for c, v in opts) + b"\0\0\0\0"


def block(e, btype, body):
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e):
    return block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) +
                 options(e, [(4, b"make_seeds.py")]))


def idb(e, name, snaplen, tsresol=None, tsoffset=None):
    opts = [(2, name.encode())]
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    if tsoffset is not None:
        opts.append((14, struct.pack(e + "q", tsoffset)))
    return block(e, 1, struct.pack(e + "HHI", 1, 0, snaplen) + options(e, opts))


def epb(e, iface, units, data, snaplen=0):
    cap = data[:snaplen] if snaplen else data
    body = struct.pack(e + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(cap), len(data))
    return block(e, 6, body + pad4(cap) + options(e, [(1, b"comment")]))


def spb(e, data):
    return block(e, 3, struct.pack(e + "I", len(data)) + pad4(data))


def isb(e, iface, units):
    return block(e, 5, struct.pack(e + "III", iface, units >> 32, units & 0xFFFFFFFF) +
                 options(e, [(1, b"stats"), (4, struct.pack(e + "Q", 7)), (5, struct.pack(e + "Q", 1)),
                             (6, struct.pack(e + "Q", 5))]))


def pcap_reader(merge):
    ts = 1_700_000_000 * 10**9
    usec = pcap([(ts + i * 1000, frame(i, 60 + 4 * i)) for i in range(3)], nano=False, big=False,
                snaplen=65535)
    write("pcap_reader", "usec_le.pcap", usec)
    write("pcap_reader", "nsec_be_snaplen.pcap",
          pcap([(ts + 1, frame(0, 100)), (ts + 2, frame(1, 20))], nano=True, big=True, snaplen=32))
    e = "<"
    two = b"".join([shb(e), idb(e, "eth0", 0, 9), idb(e, "eth1", 262144, 6, tsoffset=-3),
                    epb(e, 0, ts, frame(0, 64)), epb(e, 1, ts // 1000, frame(1, 70), 32),
                    isb(e, 0, ts), block(e, 0x40000BAD, struct.pack(e + "I", 32473) + b"custom data."),
                    spb(e, frame(2, 61))])
    e = ">"
    second = b"".join([shb(e), idb(e, "sec1", 65535, 0x80 | 10), epb(e, 0, ts // 1024, frame(3, 60))])
    write("pcap_reader", "two_sections.pcapng", two + second)
    write("pcap_reader", "truncated.pcapng", two[:len(two) - 40])
    write("pcap_reader", "bad_magic.pcap", b"\xd4\xc3\xb2\xa0" + usec[4:40])
    if merge:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "in.pcap"), os.path.join(tmp, "out.pcapng")
            with open(src, "wb") as f:
                f.write(usec)
            subprocess.run([merge, "-w", dst, src], check=True)
            with open(dst, "rb") as f:
                write("pcap_reader", "project_writer.pcapng", f.read())


def main():
    request_dbus()
    ring_record()
    pcap_reader(sys.argv[1] if len(sys.argv) > 1 else None)


if __name__ == "__main__":
    main()
