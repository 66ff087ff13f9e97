#!/usr/bin/env bash
# The ring overflows: a 1 MiB ring (about 4500 records of a simple capture) and a flood of
# 30000 matching datagrams sent while the consumer is stalled (SIGSTOP: a consumer that falls
# behind, made deterministic), then the consumer resumes and more packets complete the
# capture. Lost packets must be counted (packets_lost, and isb_ifdrop in the file), never
# counted as captured nor written: the file holds exactly packets_captured packets, and
# matched = captured + lost + over the limit. Done with ringcap-dump --ring-size 1 (JSON:
# packets_lost_ring_full) and with ringcapd ([capture] ring_size_mib = 1).
source "$(dirname "$0")/common.sh"
require_lab
lab_up 87

# isb_ifrecv and isb_ifdrop of the first Interface Statistics Block of a pcapng file.
isb_counts() {
  python3 - "$1" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
off, bo = 0, "<"
while off + 12 <= len(data):
    btype, blen = struct.unpack_from(bo + "II", data, off)
    if btype == 0x0A0D0D0A:
        bo = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(bo + "II", data, off)
    if btype == 5:
        opt = off + 20
        found = {}
        while opt + 4 <= off + blen - 4:
            code, olen = struct.unpack_from(bo + "HH", data, opt)
            if code == 0:
                break
            if code in (4, 5):
                found[code] = struct.unpack_from(bo + "Q", data, opt + 4)[0]
            opt += 4 + (olen + 3) // 4 * 4
        print(found.get(4, "none"), found.get(5, "none"))
        sys.exit(0)
    off += blen
print("none none")
EOF
}

# Datagrams the veth pair dropped before the capture interface's XDP program could see them
# (the generator side's tx drops and the capture side's rx drops).
veth_drops() {
  local g c
  g=$(ip -n "$NS_GEN" -s -j link show dev "$IF_GEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["dropped"])')
  c=$(ip -n "$NS_CAP" -s -j link show dev "$IF_CAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["dropped"])')
  echo $((g + c))
}

# expect_counted MATCHED CAPTURED LOST SENT1 SENT2 DROPS: what the capture counted against
# what was sent. The SENT1 datagrams sent while the consumer was stopped all matched (less
# what the veth dropped before XDP), none over the limit (the ring holds fewer than the
# limit), so each was captured or lost; and nothing is matched that was not sent.
expect_counted() {
  local matched=$1 captured=$2 lost=$3 sent1=$4 sent2=$5 drops=$6
  expect_eq "$sent1" 30000 "datagrams sent while the consumer was stopped"
  [ "$matched" -ge $((sent1 - drops)) ] ||
    fail "packets_matched $matched < the $sent1 datagrams sent while stopped (less $drops dropped by the veth)"
  [ "$matched" -le $((sent1 + sent2)) ] ||
    fail "packets_matched $matched > the $((sent1 + sent2)) datagrams sent"
  [ $((captured + lost)) -ge $((sent1 - drops)) ] ||
    fail "captured + lost = $((captured + lost)) < $sent1 sent while stopped (less $drops dropped by the veth)"
  echo "ok: matched $matched of $sent1 + $sent2 sent ($drops dropped by the veth); captured + lost = $((captured + lost))"
}

echo "== ringcap-dump --ring-size 1"
OUT=$LAB_TMP/dump.pcapng
start_dump -i "$IF_CAP" -w "$OUT" --type simple --destination-port 7540 --packet-limit 10000 \
  --time-limit 120 --ring-size 1 --json
kill -STOP "$DUMP_PID"
trap 'rc=$?; kill -CONT "$DUMP_PID" 2>/dev/null; lab_down "$rc"' EXIT
DROPS0=$(veth_drops)
SENT=$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7540 --count 30000 --size 200 --max-seconds 60)
kill -CONT "$DUMP_PID"
trap lab_down EXIT
SENT2=$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7540 --count 15000 --size 200 --max-seconds 60)
wait_dump 60
DROPS=$(($(veth_drops) - DROPS0))
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
J=$(cat "$LAB_TMP/dump.out")
echo "info: $J"
expect_eq "$(json_field "$J" stop_reason)" packet_limit "stop reason"
LOST=$(json_field "$J" packets_lost_ring_full)
[ "$LOST" -gt 0 ] || fail "a flood into a stalled 1 MiB ring lost nothing (packets_lost_ring_full = $LOST)"
echo "ok: packets_lost_ring_full = $LOST"
expect_eq "$(json_field "$J" packets_captured)" 10000 "packets_captured"
expect_eq "$(json_field "$J" packets_written)" 10000 "packets_written"
expect_eq "$(json_field "$J" packets_copy_failed)" 0 "packets_copy_failed"
expect_eq "$(json_field "$J" packets_lost)" "$LOST" "packets_lost (ring full + copy failed)"
expect_readable "$OUT" "ringcap-dump's file"
expect_eq "$(packets_in "$OUT")" 10000 "packets in the file"
expect_eq "$(( $(json_field "$J" packets_captured) + LOST + $(json_field "$J" packets_over_limit) + $(json_field "$J" packets_sampled_out) ))" \
  "$(json_field "$J" packets_matched)" "captured + lost + over the limit + sampled out = matched"
expect_eq "$(isb_counts "$OUT" | cut -d' ' -f2)" "$LOST" "isb_ifdrop in the file"
expect_counted "$(json_field "$J" packets_matched)" "$(json_field "$J" packets_captured)" "$LOST" \
  "$SENT" "$SENT2" "$DROPS"
expect_detached

echo "== ringcapd with ring_size_mib = 1"
start_bus
start_ringcapd "[capture]
ring_size_mib = 1
[rate_limits]
simple_interval_seconds = 0"
# pcapng (not the default classic PCAP): its statistics block carries the lost count.
ID=$(json_field "$(ctl --json create --type simple --time-limit 120 --packet-limit 10000 \
  --destination-port 7541 --output-format pcapng)" id)
kill -STOP "$RINGCAPD_PID"
trap 'rc=$?; kill -CONT "$RINGCAPD_PID" 2>/dev/null; lab_down "$rc"' EXIT
DROPS0=$(veth_drops)
SENT=$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7541 --count 30000 --size 200 --max-seconds 60)
kill -CONT "$RINGCAPD_PID"
trap lab_down EXIT
SENT2=$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7541 --count 15000 --size 200 --max-seconds 60)
REC=$(wait_finished "$ID" 60)
DROPS=$(($(veth_drops) - DROPS0))
echo "info: record: $REC"
expect_eq "$(json_field "$REC" status)" success "status"
expect_eq "$(json_field "$REC" stop_reason)" packet_limit "stop_reason"
LOST=$(json_field "$REC" packets_lost)
[ "$LOST" -gt 0 ] || fail "a flood into a stalled 1 MiB ring lost nothing (packets_lost = $LOST)"
echo "ok: packets_lost = $LOST"
expect_eq "$(json_field "$REC" packets_captured)" 10000 "packets_captured"
expect_eq "$(json_field "$REC" packets_lost_ring_full)" "$LOST" "packets_lost_ring_full"
expect_eq "$(json_field "$REC" packets_copy_failed)" 0 "packets_copy_failed"
SPOOL=$(spool_path "$ID")
expect_readable "$SPOOL" "ringcapd's file"
expect_eq "$(packets_in "$SPOOL")" 10000 "packets in the file"
expect_eq "$(( $(json_field "$REC" packets_captured) + LOST + $(json_field "$REC" packets_over_limit) + $(json_field "$REC" packets_sampled_out) ))" \
  "$(json_field "$REC" packets_matched)" "captured + lost + over the limit + sampled out = matched"
expect_eq "$(isb_counts "$SPOOL" | cut -d' ' -f2)" "$LOST" "isb_ifdrop in the file"
expect_eq "$(disk_field "$ID" counters.ring_lost)" "$LOST" "ring_lost in the on-disk record"
expect_eq "$(disk_field "$ID" counters.copy_failed)" 0 "copy_failed in the on-disk record"
expect_counted "$(json_field "$REC" packets_matched)" "$(json_field "$REC" packets_captured)" "$LOST" \
  "$SENT" "$SENT2" "$DROPS"
expect_serving "after the overflow"
echo "PASS"
