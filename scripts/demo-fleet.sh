#!/usr/bin/env bash
# The three-host demo of fleet mode (docs/fleet.md): sets up this Debian 12 machine (as root),
# builds ringcap, then starts the lab of the fleet's integration test (tests/fleet/lab/lib.sh):
# a 3-member etcd cluster and an S3-compatible server (s3rver) on 127.0.0.1, three hosts h1-h3
# (each a network namespace with a veth pair, its own dbus-daemon with the shipped policy,
# ringcapd and ringcap-agent) and ringcap-gateway in fleet mode on 127.0.0.1. Through the
# gateway's REST API (curl) it runs a full capture of the site fl01, delivered by each host to
# the bucket as pcaps/<host>/pcap_<id>.pcap, and a simple capture downloaded as one merged PCAP;
# it prints the fleet status, the objects and what tshark sees, then removes everything (on a
# terminal, once Enter is pressed). About 30 s once built.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

source tests/fleet/lab/lib.sh
fl_require
fl_up 99
for i in 1 2 3; do fl_host_up "$i"; done
fl_gateway_up
echo "== ringcap-gateway (fleet mode, etcd $FL_ETCD): $FL_API"
echo "== POST /pcaps/ownership and /pcaps/ownership/validate: the fleet's challenge of $FL_DEST"
fl_api_own "$FL_DEST"

show() {
  /usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[1])
print("capture %s (%s) at %s: %s, %d packets in all"
      % (s["id"], s.get("type"), s.get("colo_name") or "the default site", s["status"], s["packets_captured"]))
for p in s.get("hosts", []):
    print("  %-4s %-8s %4d packets  %s" % (p["host"], p["status"], p.get("packets_captured", 0), p.get("location", "")))' "$1"
}
FILTER="{\"protocol\":17,\"destination_port\":$FL_PORT}"

echo "== POST /pcaps: a full capture of UDP to port $FL_PORT at site $FL_COLO into $FL_DEST"
ID=$(fl_json "$(fl_api POST /pcaps "{\"type\":\"full\",\"system\":\"magic-transit\",\"colo_name\":\"$FL_COLO\",\"destination_conf\":\"$FL_DEST\",\"time_limit\":60,\"packet_limit\":10000,\"filter_v1\":$FILTER}")" result.id)
fl_api_wait "$ID" running 30 "all(p['status'] == 'running' for p in hosts.values())" >/dev/null
echo "== traffic: 20 datagrams to h1, 30 to h2, 40 to h3"
for i in 1 2 3; do fl_send "$i" --count $((10 * i + 10)) --size 300; done
fl_api_wait "$ID" running 30 "s['packets_captured'] == 90" >/dev/null
echo "== PUT /pcaps/$ID/stop"
fl_api PUT "/pcaps/$ID/stop" >/dev/null
show "$(fl_api_wait "$ID" success 60)"
echo "== the bucket (aws s3 ls)"
fl_aws s3 ls --recursive "s3://$FL_BUCKET/pcaps/" | grep "pcap_$ID"

echo "== POST /pcaps: a simple capture of 10 packets a host at site $FL_COLO (the gateway's default location)"
ID=$(fl_json "$(fl_api POST /pcaps "{\"type\":\"simple\",\"system\":\"magic-transit\",\"time_limit\":60,\"packet_limit\":10,\"filter_v1\":$FILTER}")" result.id)
fl_api_wait "$ID" running 30 "all(p['status'] == 'running' for p in hosts.values())" >/dev/null
for _ in 1 2; do for i in 3 1 2; do fl_send "$i" --count 5 --size 100; done; done
show "$(fl_api_wait "$ID" success 60)"
echo "== GET /pcaps/$ID/download: one PCAP, every host's packets in timestamp order"
fl_api_download "$ID" "$FL_TMP/merged.pcap"
tshark -r "$FL_TMP/merged.pcap" -T fields -e frame.number -e frame.time_relative -e ip.dst -e udp.length 2>/dev/null | head -n 12
capinfos "$FL_TMP/merged.pcap" | grep -E "Number of packets|Capture duration"
if [ -t 0 ]; then
  read -r -p "Press Enter to stop the hosts, the gateway and etcd and remove the lab: " _
fi
echo "== the demo removes its lab now"
