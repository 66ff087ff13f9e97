#!/usr/bin/env bash
# --type simple keeps 160 bytes of each packet (frame.len stays the original length);
# --time-limit stops the capture on time; 802.1Q and QinQ frames match on the inner addresses.
source "$(dirname "$0")/lib.sh"
require_lab
lab_up 73

MAC_CAP=$(in_cap cat "/sys/class/net/$IF_CAP/address")
raw() { in_gen $TRAFFIC raw --iface "$IF_GEN" --dst-mac "$MAC_CAP" --src 10.173.0.2 "$@"; }

OUT=$LAB_TMP/simple.pcapng
start_dump -i "$IF_CAP" -w "$OUT" --type simple --destination-address 10.173.0.1 --time-limit 8 --json
started=$SECONDS
# Frames the capture side's stack drops (no VLAN devices there); XDP sees them first.
expect_eq "$(raw --dst 10.173.0.1 --dport 7100 --vlan 100 --count 20 --size 1000)" 20 "sent 802.1Q-tagged"
expect_eq "$(raw --dst 10.173.0.1 --dport 7100 --vlan 200 --vlan 300 --count 7 --size 1000)" 7 "sent QinQ-tagged"
expect_eq "$(raw --dst 10.173.0.1 --dport 7100 --count 5 --size 1000)" 5 "sent untagged"
expect_eq "$(raw --dst 10.173.0.9 --dport 7100 --vlan 100 --count 9 --size 1000)" 9 "sent to another address"
wait_dump 20
elapsed=$((SECONDS - started))
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
expect_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stop_reason"])' "$LAB_TMP/dump.out")" time_limit "stop reason"
# The traffic above takes well under 8 s; the capture must end by itself at 8 s.
[ $elapsed -ge 7 ] && [ $elapsed -le 12 ] || fail "an 8 s time limit ended after ${elapsed} s"
# Columns: count, 802.1ad outer id, 802.1Q id, destination, original length, captured length.
expect_eq "$(tshark_fields "$OUT" ieee8021ad.id vlan.id ip.dst frame.len frame.cap_len | sort | uniq -c | sed 's/^ *//' | sort)" \
  "$(printf '%s\n' "20  100 10.173.0.1 1046 160" "5   10.173.0.1 1042 160" "7 200 300 10.173.0.1 1050 160" | sort)" \
  "packets per tagging, each truncated to 160 bytes"
expect_detached
echo "PASS"
