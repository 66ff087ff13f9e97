#!/usr/bin/env bash
# The three-host lab (lib.sh): a full capture with colo_name is delivered by each host as
# pcaps/<host>/pcap_<id>.pcap in the S3 server, the three objects together holding exactly the
# packets sent to each host (tshark counts per host); a simple capture downloads as one merged
# PCAP with every host's packets in timestamp order. Both through ringcap-gateway's REST API
# (fleet mode).
source "$(dirname "$0")/lib.sh"
fl_require
fl_up 61
for i in 1 2 3; do fl_host_up "$i"; done
fl_gateway_up
fl_api_own "$FL_DEST"

fl_log "a full capture at $FL_COLO into $FL_DEST"
FILTER="{\"protocol\":17,\"destination_port\":$FL_PORT}"
ID=$(fl_json "$(fl_api POST /pcaps "{\"type\":\"full\",\"system\":\"magic-transit\",\"colo_name\":\"$FL_COLO\",\"destination_conf\":\"$FL_DEST\",\"time_limit\":60,\"packet_limit\":10000,\"filter_v1\":$FILTER}")" result.id)
S=$(fl_api_wait "$ID" running 30 "sorted(hosts) == ['h1','h2','h3'] and all(p['status'] == 'running' for p in hosts.values())")
declare -A SENT=([1]=30 [2]=45 [3]=60)
for i in 1 2 3; do fl_send "$i" --count "${SENT[$i]}" --size 300; done
fl_api_wait "$ID" running 30 "s['packets_captured'] == 135" >/dev/null
fl_api PUT "/pcaps/$ID/stop" >/dev/null
S=$(fl_api_wait "$ID" success 60)
declare -A LOC
for i in 1 2 3; do
  expect_eq "$(fl_json "$S" "hosts.h$i.packets_captured")" "${SENT[$i]}" "packets_captured of h$i's part"
  LOC[$i]=$(fl_json "$S" "hosts.h$i.location")
done

fl_log "the objects in the bucket (awscli)"
fl_aws s3 ls --recursive "s3://$FL_BUCKET/pcaps/" >"$FL_TMP/ls" || fail "aws s3 ls"
expect_eq "$(awk '{print "s3://'"$FL_BUCKET"'/" $4}' "$FL_TMP/ls" | grep "pcap_$ID" | sort | tr '\n' ' ')" \
  "${LOC[1]} ${LOC[2]} ${LOC[3]} " "the capture's objects: the parts' locations, nothing else"
for i in 1 2 3; do
  fl_aws s3 cp "${LOC[$i]}" "$FL_TMP/full-h$i.pcap" >/dev/null || fail "aws s3 cp ${LOC[$i]}"
  for j in 1 2 3; do
    want=0
    [ "$i" != "$j" ] || want=${SENT[$i]}
    expect_eq "$(fl_count "$FL_TMP/full-h$i.pcap" "$j")" "$want" "packets to h$j in h$i's object"
  done
  expect_eq "$(capinfos -c -M "$FL_TMP/full-h$i.pcap" | awk '/Number of packets/ {print $NF}')" "${SENT[$i]}" "packets in h$i's object"
done
# Each host delivers <dir>/<host>/pcap_<id>.pcap (issue 11): checked after the simple capture,
# so that it runs too.
FULL_ID=$ID
expect_issue_paths() {
  for i in 1 2 3; do
    expect_eq "${LOC[$i]}" "s3://$FL_BUCKET/pcaps/h$i/pcap_$FULL_ID.pcap" "location of h$i's part"
  done
}
echo "ok: three objects, ${SENT[1]}+${SENT[2]}+${SENT[3]} packets, each where it was sent"

fl_simple_through_gateway() {
  fl_log "a simple capture through ringcap-gateway, downloaded merged"
  local id body
  body=$(fl_api POST /pcaps "{\"type\":\"simple\",\"system\":\"magic-transit\",\"time_limit\":60,\"packet_limit\":10,\"filter_v1\":$FILTER}")
  id=$(fl_json "$body" result.id)
  fl_api_wait "$id" running 30 "all(p['status'] == 'running' for p in hosts.values())" >/dev/null
  # 10 packets to each host (each host's part ends at its packet_limit), interleaved, so that
  # timestamp order differs from host order.
  for _ in 1 2; do
    for i in 3 1 2; do fl_send "$i" --count 5 --size 100; done
  done
  fl_api_wait "$id" success 60 "s['packets_captured'] == 30" >/dev/null
  fl_api_download "$id" "$FL_TMP/merged.pcap"
  for i in 1 2 3; do
    expect_eq "$(fl_count "$FL_TMP/merged.pcap" "$i")" 10 "packets to h$i in the merged download"
  done
  expect_eq "$(capinfos -c -M "$FL_TMP/merged.pcap" | awk '/Number of packets/ {print $NF}')" 30 "packets in the merged download"
  tshark -r "$FL_TMP/merged.pcap" -T fields -e frame.time_epoch 2>/dev/null >"$FL_TMP/times"
  sort -g -c "$FL_TMP/times" || fail "the merged download is not in timestamp order"
  echo "ok: one merged PCAP, 10 packets of each host, in timestamp order"
}
fl_simple_through_gateway
expect_issue_paths
