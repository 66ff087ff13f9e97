#!/usr/bin/env bash
# The demo: sets up this Debian 12 machine (as root), builds ringcap, makes a veth lab of two
# network namespaces, captures DNS-like traffic to 10.99.0.1 port 53 with ringcap-dump while
# other traffic passes by, shows what tshark sees in the file, and removes the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

NS_CAP=ringcap-demo-cap NS_GEN=ringcap-demo-gen
OUT=$(mktemp -d /tmp/ringcap-demo.XXXXXX)
cleanup() {
  ip netns del "$NS_CAP" 2>/dev/null || true
  ip netns del "$NS_GEN" 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT
cleanup_quiet() { ip netns del "$NS_CAP" 2>/dev/null || true; ip netns del "$NS_GEN" 2>/dev/null || true; }
cleanup_quiet

echo "== lab: $NS_GEN (10.99.0.2) --veth--> $NS_CAP (10.99.0.1, ringcap attached)"
ip netns add "$NS_CAP"
ip netns add "$NS_GEN"
ip link add rcdemo0 netns "$NS_CAP" type veth peer name rcdemo1 netns "$NS_GEN"
ip -n "$NS_CAP" addr add 10.99.0.1/24 dev rcdemo0
ip -n "$NS_GEN" addr add 10.99.0.2/24 dev rcdemo1
ip -n "$NS_CAP" link set rcdemo0 up
ip -n "$NS_GEN" link set rcdemo1 up
ip -n "$NS_CAP" link set lo up
ip -n "$NS_GEN" link set lo up

BPFFS=$OUT/bpffs
mkdir "$BPFFS" && mount -t bpf bpf "$BPFFS"
trap 'umount "$BPFFS" 2>/dev/null || true; cleanup' EXIT

echo "== ringcap-dump: up to 100 UDP packets to 10.99.0.1:53, for at most 20 s"
LIBXDP_BPFFS=$BPFFS ip netns exec "$NS_CAP" build/tools/ringcap-dump -v -i rcdemo0 -w "$OUT/demo.pcapng" \
  --destination-address 10.99.0.1 --destination-port 53 --protocol 17 \
  --packet-limit 100 --time-limit 20 2>"$OUT/dump.log" &
DUMP=$!
deadline=$((SECONDS + 20))
until grep -q "capturing on" "$OUT/dump.log"; do
  kill -0 $DUMP 2>/dev/null || { cat "$OUT/dump.log"; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "ringcap-dump did not start"; exit 1; }
  sleep 0.1
done

echo "== traffic: 150 DNS queries to port 53, 50 datagrams to port 8080, 5 pings"
ip netns exec "$NS_GEN" python3 tests/integration/traffic.py send --dst 10.99.0.1 --dport 8080 --count 50 --size 200 >/dev/null
ip netns exec "$NS_GEN" ping -c 5 -i 0.05 -q 10.99.0.1 >/dev/null
ip netns exec "$NS_GEN" python3 tests/integration/traffic.py send --dst 10.99.0.1 --dport 53 --count 150 --dns-query www.example.org >/dev/null
wait $DUMP
grep -v "^info: libbpf\|^info: libxdp" "$OUT/dump.log"

echo "== what tshark sees (first 5 packets of $(capinfos -c -M "$OUT/demo.pcapng" | awk '/Number of packets/ {print $NF}'))"
tshark -r "$OUT/demo.pcapng" -c 5 2>/dev/null
echo "== capinfos"
capinfos "$OUT/demo.pcapng" | grep -E "File type|Number of packets|Capture duration|Data size"
echo "== the demo removes its lab now"
