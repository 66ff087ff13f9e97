#!/usr/bin/env bash
# Packet timestamps are the wall clock: ringcapd converts the kernel's boot-time stamps with
# an offset it reads again when a capture starts, every second while captures run and when
# the wall clock is set. Each of 4 datagrams, sent 1.2 s apart during one capture, carries a
# timestamp within 1 ms of the wall clock read just before and just after its send.
# (The clock is never set here: that would change the machine's time.)
source "$(dirname "$0")/lib.sh"
require_lab
lab_up 91
start_bus
start_ringcapd ""

ID=$(json_field "$(ctl --json create --type simple --time-limit 60 --packet-limit 4 \
  --destination-port 7570)" id)
# The sender prints, per datagram, the wall clock (ns) before and after sendto().
in_gen /usr/bin/python3 - "$ADDR_CAP" >"$LAB_TMP/sent" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(4):
    if i:
        time.sleep(1.2)  # pacing: the captures' periodic clock checks fall in between
    t0 = time.clock_gettime_ns(time.CLOCK_REALTIME)
    s.sendto(b"x" * 32, (sys.argv[1], 7570))
    t1 = time.clock_gettime_ns(time.CLOCK_REALTIME)
    print(t0, t1)
PY
expect_eq "$(wc -l <"$LAB_TMP/sent")" 4 "datagrams sent"
deadline=$((SECONDS + 30))
until [ "$(json_field "$(ctl --json get "$ID")" status)" = success ]; do
  [ $SECONDS -lt $deadline ] || fail "capture $ID did not finish in 30 s"
  sleep 0.1
done
ctl download "$ID" -o "$LAB_TMP/ts.pcap" >/dev/null
# tshark prints the epoch time with nanoseconds.
tshark -r "$LAB_TMP/ts.pcap" -T fields -e frame.time_epoch 2>/dev/null >"$LAB_TMP/stamps"
expect_eq "$(wc -l <"$LAB_TMP/stamps")" 4 "packets in the file"
/usr/bin/python3 - "$LAB_TMP/sent" "$LAB_TMP/stamps" <<'PY' || fail "a timestamp is more than 1 ms away from the wall clock at its send"
import sys
from decimal import Decimal
sent = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
stamps = [int(Decimal(l.strip()) * 1_000_000_000) for l in open(sys.argv[2])]
bad = 0
for (t0, t1), ts in zip(sent, stamps):
    early, late = (t0 - ts) / 1e6, (ts - t1) / 1e6
    ok = ts >= t0 - 1_000_000 and ts <= t1 + 1_000_000
    print(f"{'ok' if ok else 'FAIL'}: stamp {ts}, send window [{t0}, {t1}] "
          f"({max(early, late, 0):.3f} ms outside it)")
    bad += not ok
sys.exit(1 if bad else 0)
PY
echo "PASS"
