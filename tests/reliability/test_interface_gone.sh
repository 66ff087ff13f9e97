#!/usr/bin/env bash
# The capture interface is deleted during a capture (ip link del inside the namespace): the
# capture ends `failed` with a message naming the interface (stop_reason fault) and keeps the
# packets captured before; ringcapd keeps its bus name and answers; a new capture on the
# system whose interface is gone is refused, naming the interface and saying it is missing.
# Then the interface is created again under the same name (a new veth pair, a new ifindex):
# ringcapd attaches to it (logged: "interface X reappeared (ifindex N), attached", and in
# attachments.json), and a capture on it succeeds with the packets sent. ringcapd stops
# cleanly afterwards (exit code 0) and removes attachments.json.
source "$(dirname "$0")/common.sh"
require_lab
lab_up 83
start_bus
start_ringcapd "[rate_limits]
simple_interval_seconds = 0"

ID=$(json_field "$(ctl --json create --type simple --time-limit 300 --packet-limit 10000 \
  --destination-port 7520)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7520 --count 100 --size 200 >/dev/null
deadline=$((SECONDS + 20))
until [ "$(live_field "$ID" packets_captured)" = 100 ]; do
  [ $SECONDS -lt $deadline ] || fail "the capture did not count 100 packets"
  sleep 0.05
done
T0=$(date +%s.%N)
ip -n "$NS_CAP" link del "$IF_CAP"
echo "ok: $IF_CAP deleted during the capture"
REC=$(wait_finished "$ID" 20)
echo "figure: the capture was finished $(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 2))" "$T0") s after the link was deleted (allowed: 20 s)"
echo "info: record: $REC"
expect_eq "$(json_field "$REC" status)" failed "status"
MSG=$(json_field "$REC" error_message)
echo "$MSG" | grep -q "interface $IF_CAP disappeared during the capture" ||
  fail "error_message does not name the interface: $MSG"
echo "ok: error_message: $MSG"
expect_eq "$(json_field "$REC" stop_reason)" fault "stop_reason"
expect_eq "$(json_field "$REC" packets_captured)" 100 "packets_captured"
expect_readable "$(spool_path "$ID")" "the file"
expect_eq "$(packets_in "$(spool_path "$ID")")" 100 "packets in the file"
expect_eq "$(disk_field "$ID" status)" failed "on-disk status"
expect_serving "interface deleted"
ctl download "$ID" -o "$LAB_TMP/dl.pcapng" >/dev/null
cmp "$(spool_path "$ID")" "$LAB_TMP/dl.pcapng" || fail "the download differs from the file"

echo "== a new capture on the system whose interface is gone"
rc=0
ctl --json create --type simple --time-limit 60 --packet-limit 10 >"$LAB_TMP/out" 2>"$LAB_TMP/err" || rc=$?
[ "$rc" -ne 0 ] || fail "a capture was created while $IF_CAP is missing: $(cat "$LAB_TMP/out")"
expect_eq "$rc" 1 "exit code of the refused capture"
grep -q "interface $IF_CAP .*is missing" "$LAB_TMP/err" ||
  fail "refused without saying that $IF_CAP is missing: $(cat "$LAB_TMP/err")"
echo "ok: refused: $(cat "$LAB_TMP/err")"
expect_serving "after a capture on the vanished interface"

echo "== the interface is created again under the same name"
N_ATTACHED=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$LAB_TMP/state/attachments.json")
expect_eq "$N_ATTACHED" 0 "attachments in attachments.json while $IF_CAP is missing"
ip link add "$IF_CAP" netns "$NS_CAP" type veth peer name "$IF_GEN" netns "$NS_GEN"
ip -n "$NS_CAP" addr add "$ADDR_CAP/24" dev "$IF_CAP"
ip -n "$NS_GEN" addr add "$ADDR_GEN/24" dev "$IF_GEN"
ip -n "$NS_CAP" link set "$IF_CAP" up
ip -n "$NS_GEN" link set "$IF_GEN" up
mac_cap=$(in_cap cat "/sys/class/net/$IF_CAP/address")
mac_gen=$(in_gen cat "/sys/class/net/$IF_GEN/address")
ip -n "$NS_GEN" neigh replace "$ADDR_CAP" lladdr "$mac_cap" dev "$IF_GEN" nud permanent
ip -n "$NS_CAP" neigh replace "$ADDR_GEN" lladdr "$mac_gen" dev "$IF_CAP" nud permanent
NEW_IFINDEX=$(in_cap cat "/sys/class/net/$IF_CAP/ifindex")
wait_until 10 grep -q "interface $IF_CAP reappeared (ifindex $NEW_IFINDEX), attached" "$LAB_TMP/ringcapd.log"
echo "ok: logged: $(grep -o "interface $IF_CAP reappeared.*" "$LAB_TMP/ringcapd.log" | tail -n 1)"
expect_eq "$(python3 -c 'import json,sys; print(" ".join(a["ifname"] for a in json.load(open(sys.argv[1])) if a["program_id"] > 0))' "$LAB_TMP/state/attachments.json")" \
  "$IF_CAP" "interfaces in attachments.json"
[ "$(xdp_programs)" -ge 1 ] || fail "no XDP program on the new $IF_CAP"
# pcapng (not the default classic PCAP), whose interface blocks name the interface.
ID3=$(json_field "$(ctl --json create --type simple --time-limit 60 --packet-limit 20 \
  --destination-port 7521 --output-format pcapng)" id)
expect_eq "$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7521 --count 20 --size 200)" 20 "datagrams sent"
REC3=$(wait_finished "$ID3" 30)
expect_eq "$(json_field "$REC3" status)" success "a capture on the recreated interface"
expect_eq "$(json_field "$REC3" packets_captured)" 20 "packets_captured on the recreated interface"
expect_eq "$(packets_in "$(spool_path "$ID3")")" 20 "packets in the file"
expect_eq "$(tshark_fields "$(spool_path "$ID3")" frame.interface_name | sort -u)" "$IF_CAP" "the interface named in the file"
expect_serving "after the interface came back"

echo "== clean stop"
stop_ringcapd # exit code 0, no sanitizer report
grep -Eq "critical|terminate called|Aborted|Segmentation" "$LAB_TMP/ringcapd.log" &&
  fail "ringcapd's log shows a crash"
[ ! -e "$LAB_TMP/state/attachments.json" ] || fail "attachments.json is still there: $(cat "$LAB_TMP/state/attachments.json")"
echo "ok: stopped cleanly, attachments.json removed"
echo "PASS"
