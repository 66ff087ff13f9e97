#!/usr/bin/env bash
# The faults of issue 11 on the three-host lab (lib.sh), one lab, every capture created,
# followed and stopped through ringcap-gateway's REST API (fleet mode):
#  1. a host that registers after a capture was created does not join it (no part, nothing on
#     its ringcapd); each etcd member of three stopped in turn during that capture: it succeeds and
#     every packet sent is in the objects;
#  2. a host's ringcapd SIGKILLed mid-capture (and started again, as systemd does): its part
#     ends failed with ringcapd's message within the lease's time; the others deliver;
#  3. a host's agent SIGKILLed mid-capture: its part is failed in the fleet status (its
#     registration expired) within the lease's time, the others deliver; the restarted agent
#     does not run it again: it reports the part ringcapd went on with (success, kept as
#     reported_status while the fleet status keeps the host lost);
#  4. ringcap-gateway restarted mid-capture (a simple capture): the capture goes on, its
#     status and its merged download work after.
source "$(dirname "$0")/lib.sh"
fl_require
fl_up 62
for i in 1 2 3; do fl_host_up "$i"; done
fl_gateway_up
fl_api_own "$FL_DEST"
FILTER="{\"protocol\":17,\"destination_port\":$FL_PORT}"
FULL="{\"type\":\"full\",\"system\":\"magic-transit\",\"colo_name\":\"$FL_COLO\",\"destination_conf\":\"$FL_DEST\",\"time_limit\":60,\"packet_limit\":10000,\"filter_v1\":$FILTER}"
HOSTS3="sorted(hosts) == ['h1','h2','h3']"
ALL_RUNNING="all(p['status'] == 'running' for p in hosts.values())"

# expect_object ID I N: host I's object of capture ID holds N packets sent to host I, and
# nothing else.
expect_object() {
  local id=$1 i=$2 n=$3 loc=$4
  fl_aws s3 cp "$loc" "$FL_TMP/o.pcap" >/dev/null || fail "aws s3 cp $loc"
  expect_eq "$(fl_count "$FL_TMP/o.pcap" "$i")" "$n" "packets to h$i in h$i's object of $id"
  expect_eq "$(capinfos -c -M "$FL_TMP/o.pcap" | awk '/Number of packets/ {print $NF}')" "$n" "packets in h$i's object of $id"
}

fl_log "1. a late host, and an etcd member stopped during the capture"
ID=$(fl_json "$(fl_api POST /pcaps "$FULL")" result.id)
fl_api_wait "$ID" running 30 "$HOSTS3 and $ALL_RUNNING" >/dev/null
fl_host_up 4
fl_until 10 grep -q "capture $ID: host h4 is not among its targets" "$FL_AGENT_LOG"
echo "ok: h4's agent: capture $ID: host h4 is not among its targets"
expect_eq "$(fl_part "$ID" 4)" "" "h4's part of $ID in etcd"
expect_eq "$(fl_ctl 4 --json list | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0 "captures on h4's ringcapd"
# The agents start at a random member (spreadOverEndpoints) and the gateway at the first: each
# member is stopped in turn while packets arrive, so that every client loses the member it
# talks to during the capture and goes on through the others.
total=0
for m in 0 1 2; do
  fl_etcd_stop "$m"
  echo "ok: etcd member m$m stopped"
  for i in 1 2 3; do fl_send "$i" --count $((10 * i)) --size 200; done
  total=$((total + 60))
  fl_api_wait "$ID" running 30 "s['packets_captured'] == $total" >/dev/null
  fl_etcd_restart "$m"
  echo "ok: etcd member m$m back"
done
fl_api PUT "/pcaps/$ID/stop" >/dev/null
S=$(fl_api_wait "$ID" success 60 "$HOSTS3")
for i in 1 2 3; do expect_object "$ID" "$i" $((30 * i)) "$(fl_json "$S" "hosts.h$i.location")"; done
expect_eq "$(fl_part "$ID" 4)" "" "h4's part of $ID in etcd at the end"
HOSTS4="sorted(hosts) == ['h1','h2','h3','h4']"

fl_log "2. ringcapd of h2 SIGKILLed mid-capture"
ID=$(fl_json "$(fl_api POST /pcaps "$FULL")" result.id)
fl_api_wait "$ID" running 30 "$HOSTS4 and $ALL_RUNNING" >/dev/null
for i in 1 2 3 4; do fl_send "$i" --count 20 --size 200; done
fl_api_wait "$ID" running 30 "s['packets_captured'] == 80" >/dev/null
fl_kill ringcapd2 KILL
T0=$SECONDS
fl_ringcapd_start 2 # as systemd's Restart=on-failure does
S=$(fl_api_wait "$ID" failed $((FL_LEASE_TTL + 2)) "hosts['h2']['status'] == 'failed' and hosts['h2'].get('error_message')")
echo "figure: h2's part failed $((SECONDS - T0)) s after ringcapd was killed (lease TTL $FL_LEASE_TTL s)"
MSG=$(fl_json "$S" hosts.h2.error_message)
expect_grep "ringcapd restarted during the capture" "$MSG" "h2's error_message"
expect_grep "host h2 failed: ringcapd restarted during the capture" "$(fl_json "$S" error_message)" "the capture's error_message"
fl_api PUT "/pcaps/$ID/stop" >/dev/null
S=$(fl_api_wait "$ID" failed 60 "all(hosts[h]['status'] == 'success' for h in ('h1','h3','h4'))")
for i in 1 3 4; do expect_object "$ID" "$i" 20 "$(fl_json "$S" "hosts.h$i.location")"; done

fl_log "3. ringcap-agent of h3 SIGKILLed mid-capture"
ID=$(fl_json "$(fl_api POST /pcaps "$FULL")" result.id)
fl_api_wait "$ID" running 30 "$HOSTS4 and $ALL_RUNNING" >/dev/null
for i in 1 2 3 4; do fl_send "$i" --count 15 --size 200; done
fl_api_wait "$ID" running 30 "s['packets_captured'] == 60" >/dev/null
fl_kill agent3 KILL
T0=$SECONDS
S=$(fl_api_wait "$ID" failed $((FL_LEASE_TTL + 3)) "hosts['h3']['status'] == 'failed'")
echo "figure: h3's part failed in the fleet status $((SECONDS - T0)) s after its agent was killed (lease TTL $FL_LEASE_TTL s)"
expect_eq "$(fl_json "$S" hosts.h3.error_message)" "host h3 vanished (its registration expired) while its part was running" "h3's error_message"
# Its ringcapd goes on meanwhile: the fleet's stop reaches it when its agent is back.
fl_api PUT "/pcaps/$ID/stop" >/dev/null
S=$(fl_api_wait "$ID" failed 60 "all(hosts[h]['status'] == 'success' for h in ('h1','h2','h4'))")
for i in 1 2 4; do expect_object "$ID" "$i" 15 "$(fl_json "$S" "hosts.h$i.location")"; done
fl_agent_start 3
fl_until 15 grep -q "capture $ID: this host's part is running on ringcapd; reporting it again" "$FL_AGENT_LOG"
S=$(fl_api_wait "$ID" failed 30 "hosts['h3'].get('reported_status') == 'success'")
expect_eq "$(fl_json "$S" hosts.h3.status)" failed "h3 in the fleet status after its agent came back"
expect_eq "$(fl_json "$(fl_part "$ID" 3)" status)" success "h3's part in etcd (the capture ringcapd went on with)"
expect_eq "$(fl_json "$(fl_part "$ID" 3)" packets_captured)" 15 "h3's packets_captured"
expect_eq "$(fl_ctl 3 --json list | /usr/bin/python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c["id"] == sys.argv[1]))' "$ID")" 1 "captures $ID on h3's ringcapd (not run again)"
if grep -q "capture $ID: claimed" "$FL_AGENT_LOG"; then fail "the restarted agent claimed $ID again"; fi
echo "ok: the restarted agent reported h3's part and did not run it again"

fl_log "4. ringcap-gateway restarted mid-capture (a simple capture, 10 packets a host)"
body=$(fl_api POST /pcaps "{\"type\":\"simple\",\"system\":\"magic-transit\",\"time_limit\":60,\"packet_limit\":10,\"filter_v1\":$FILTER}")
ID=$(fl_json "$body" result.id)
fl_api_wait "$ID" running 30 "$HOSTS4 and $ALL_RUNNING" >/dev/null
for i in 1 2 3 4; do fl_send "$i" --count 5 --size 100; done
fl_gateway_restart
for i in 4 3 2 1; do fl_send "$i" --count 5 --size 100; done
S=$(fl_api_wait "$ID" success 60 "s['packets_captured'] == 40")
echo "ok: the capture went on across the gateway's restart: success with 40 packets (GET through the new process)"
fl_api_download "$ID" "$FL_TMP/merged.pcap"
for i in 1 2 3 4; do
  expect_eq "$(fl_count "$FL_TMP/merged.pcap" "$i")" 10 "packets to h$i in the merged download after the restart"
done
expect_eq "$(capinfos -c -M "$FL_TMP/merged.pcap" | awk '/Number of packets/ {print $NF}')" 40 "packets in the merged download"
tshark -r "$FL_TMP/merged.pcap" -T fields -e frame.time_epoch 2>/dev/null >"$FL_TMP/times"
sort -g -c "$FL_TMP/times" || fail "the merged download is not in timestamp order"
echo "ok: the merged download through the new process: 10 packets of each host in timestamp order"
