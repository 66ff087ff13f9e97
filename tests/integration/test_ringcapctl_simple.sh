#!/usr/bin/env bash
# End to end through the product: ringcapd on a veth lab (private bus, shipped policy),
# `ringcapctl create` of a filtered simple capture, traffic from the generator namespace,
# `ringcapctl watch` until it ends, `ringcapctl download`, and tshark on the file.
source "$(dirname "$0")/lib.sh"
require_lab
lab_up 78
start_bus
start_ringcapd ""

REC=$(ctl --json create --type simple --time-limit 30 --packet-limit 40 \
  --source-address "$ADDR_GEN" --destination-port 5300 --protocol 17)
ID=$(json_field "$REC" id)
expect_eq "$(json_field "$REC" status)" running "status after create"
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5301 --count 30 --size 400 >/dev/null  # other port
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5300 --sport 6000 --count 60 --size 400 >/dev/null
ctl watch "$ID" >"$LAB_TMP/watch.out"
cat "$LAB_TMP/watch.out"
REC=$(ctl --json get "$ID")
expect_eq "$(json_field "$REC" status)" success "status"
expect_eq "$(json_field "$REC" stop_reason)" packet_limit "stop reason"
expect_eq "$(json_field "$REC" packets_captured)" 40 "packets captured"
ctl download "$ID" -o "$LAB_TMP/simple.pcap"
expect_nanosecond_pcap "$LAB_TMP/simple.pcap" "the download"
expect_eq "$(tshark_fields "$LAB_TMP/simple.pcap" ip.src ip.dst udp.srcport udp.dstport frame.len frame.cap_len | sort | uniq -c | sed 's/^ *//')" \
  "40 $ADDR_GEN $ADDR_CAP 6000 5300 442 160" "tshark: the filtered flow, truncated to 160 bytes"
expect_eq "$(json_field "$REC" output_format)" pcap "output_format"
expect_eq "$(json_field "$REC" file_name)" "pcap_$ID.pcap" "file_name"
(cd "$LAB_TMP" && ctl download "$ID" >/dev/null)
cmp "$LAB_TMP/simple.pcap" "$LAB_TMP/pcap_$ID.pcap" || fail "download without -o did not write pcap_$ID.pcap"
echo "ok: download without -o wrote pcap_$ID.pcap"
expect_eq "$(ctl --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 "captures listed"

# A second simple capture inside the default 60 s interval is refused with RateLimited.
rc=0
ctl create --type simple --time-limit 5 --packet-limit 5 2>"$LAB_TMP/e" || rc=$?
expect_eq "$rc" 1 "exit code of a rate-limited request"
grep -q "RateLimited" "$LAB_TMP/e" || fail "expected RateLimited: $(cat "$LAB_TMP/e")"
stop_ringcapd
expect_detached
echo "PASS"
