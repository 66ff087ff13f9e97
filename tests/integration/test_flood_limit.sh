#!/usr/bin/env bash
# A flood of matching packets, far more than packet_limit: the file holds exactly the limit,
# and ringcap-dump stops by itself because the limit was reached. A second run checks that a
# byte_limit is never exceeded.
source "$(dirname "$0")/lib.sh"
require_lab
lab_up 72

OUT=$LAB_TMP/flood.pcapng
start_dump -i "$IF_CAP" -w "$OUT" --destination-port 7000 --packet-limit 1000 --time-limit 60 --json
# Two senders at once, 20000 datagrams each.
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7000 --count 20000 --size 64 --max-seconds 30 >"$LAB_TMP/s1" &
S1=$!
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7000 --count 20000 --size 64 --max-seconds 30 >"$LAB_TMP/s2" &
S2=$!
LAB_PIDS="$LAB_PIDS $S1 $S2"
# (wait with two pids returns the status of the last one only: each is waited for.)
rc=0
wait "$S1" || rc=$?
expect_eq "$rc" 0 "exit code of the first sender"
rc=0
wait "$S2" || rc=$?
expect_eq "$rc" 0 "exit code of the second sender"
SENT=$(($(cat "$LAB_TMP/s1") + $(cat "$LAB_TMP/s2")))
wait_dump 30
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
json=$LAB_TMP/dump.out
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$json" "$1"; }
expect_eq "$(field stop_reason)" packet_limit "stop reason"
expect_eq "$(field packets_captured)" 1000 "packets captured in the kernel"
expect_eq "$(field packets_written)" 1000 "packets written"
expect_eq "$(capinfos -c -M "$OUT" | awk '/Number of packets/ {print $NF}')" 1000 "capinfos packet count"
over=$(field packets_over_limit)
[ "$over" -gt 0 ] || fail "the flood should have met the limit (packets_over_limit = $over)"
echo "ok: $over packets refused by the exhausted budget"
expect_eq "$(field packets_copy_failed)" 0 "packets_copy_failed"
expect_eq "$(field packets_lost)" "$(( $(field packets_lost_ring_full) + $(field packets_copy_failed) ))" \
  "packets_lost = packets_lost_ring_full + packets_copy_failed"
expect_eq "$(( $(field packets_captured) + $(field packets_lost) + over + $(field packets_sampled_out) ))" \
  "$(field packets_matched)" "captured + lost + over the limit + sampled out = matched"
# Every packet the program matched was sent by the two senders (nothing counted twice).
[ $((1000 + over)) -le "$SENT" ] || fail "captured + over the limit = $((1000 + over)), more than the $SENT datagrams sent"
echo "ok: captured + over the limit = $((1000 + over)) <= $SENT datagrams sent"
expect_detached

# byte_limit: 100 datagrams of 500 bytes (542-byte frames) against a limit of 10000 bytes:
# 18 frames fit (9756 bytes), the 19th would not.
OUT2=$LAB_TMP/bytes.pcapng
start_dump -i "$IF_CAP" -w "$OUT2" --destination-port 7001 --byte-limit 10000 --time-limit 60 --json
expect_eq "$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7001 --count 100 --size 500)" 100 "datagrams sent"
wait_dump 30
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code (byte_limit)"
expect_eq "$(field stop_reason)" byte_limit "stop reason"
expect_eq "$(field packets_written)" 18 "packets written under the byte limit"
expect_eq "$(field bytes_captured)" 9756 "bytes captured"
total=$(tshark_fields "$OUT2" frame.cap_len | awk '{s+=$1} END {print s}')
expect_eq "$total" 9756 "sum of captured lengths in the file (<= 10000)"
echo "PASS"
