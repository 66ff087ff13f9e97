#!/usr/bin/env bash
# A known mix of traffic crosses the lab; ringcap-dump captures with a filter; tshark checks
# exactly which packets are in the file, and every datagram still reached its receiver.
source "$(dirname "$0")/lib.sh"
require_lab
lab_up 71

OUT=$LAB_TMP/filter.pcapng
# Receivers in the capture namespace count what arrives (XDP must pass everything on).
in_cap $TRAFFIC recv --bind "$ADDR_CAP" --port 5353 --count 40 --max-seconds 20 >"$LAB_TMP/r1" 2>"$LAB_TMP/r1.err" &
R1=$!
in_cap $TRAFFIC recv --bind "$ADDR_CAP" --port 9000 --count 25 --max-seconds 20 >"$LAB_TMP/r2" 2>"$LAB_TMP/r2.err" &
R2=$!
in_cap $TRAFFIC recv --bind "$ADDR6_CAP" --port 5353 --count 15 --max-seconds 20 >"$LAB_TMP/r3" 2>"$LAB_TMP/r3.err" &
R3=$!
LAB_PIDS="$LAB_PIDS $R1 $R2 $R3"
for f in r1 r2 r3; do
  deadline=$((SECONDS + 10))
  until grep -q ready "$LAB_TMP/$f.err"; do [ $SECONDS -lt $deadline ] || fail "receiver $f not ready"; sleep 0.05; done
done

# Filter: UDP from the generator to port 5353 over IPv4, source port 4444.
start_dump -i "$IF_CAP" -w "$OUT" --source-address "$ADDR_GEN" --destination-port 5353 \
  --protocol 17 --source-port 4444 --time-limit 60 --json

expect_eq "$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5353 --sport 4444 --count 30 --size 300)" 30 "sent 30 matching"
expect_eq "$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5353 --sport 4445 --count 10 --size 300)" 10 "sent 10 with another source port"
expect_eq "$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 9000 --sport 4444 --count 25 --size 100)" 25 "sent 25 to another port"
expect_eq "$(in_gen $TRAFFIC send --dst "$ADDR6_CAP" --dport 5353 --sport 4444 --count 15 --size 300)" 15 "sent 15 over IPv6"
in_gen ping -c 3 -i 0.01 -q "$ADDR_CAP" >/dev/null

wait "$R1" "$R2" "$R3"
expect_eq "$(cat "$LAB_TMP/r1")" 40 "datagrams received on port 5353 (IPv4)"
expect_eq "$(cat "$LAB_TMP/r2")" 25 "datagrams received on port 9000"
expect_eq "$(cat "$LAB_TMP/r3")" 15 "datagrams received on port 5353 (IPv6)"

# Every packet the kernel captured was already drained by the time receivers are done? Not
# necessarily: stop with SIGINT, which drains the ring before closing the file.
stop_dump
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
expect_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets_written"])' "$LAB_TMP/dump.out")" 30 "packets_written in --json"

expect_eq "$(capinfos -c -M "$OUT" | awk '/Number of packets/ {print $NF}')" 30 "capinfos packet count"
expect_eq "$(tshark_fields "$OUT" ip.src ip.dst udp.srcport udp.dstport frame.len frame.cap_len | sort | uniq -c | sed 's/^ *//')" \
  "30 $ADDR_GEN $ADDR_CAP 4444 5353 342 342" "tshark: every packet is the matching flow, whole"
expect_eq "$(tcpdump -r "$OUT" -nn 2>/dev/null | wc -l)" 30 "tcpdump -r line count"
expect_eq "$(tshark_fields "$OUT" frame.interface_name | sort -u)" "$IF_CAP" "interface name in the file"
expect_detached
echo "PASS"
