#!/usr/bin/env bash
# The demo: sets up this Debian 12 machine (as root), builds ringcap, makes a veth lab of two
# network namespaces, starts ringcapd on it (with a private D-Bus system bus that uses the
# shipped policy) and ringcap-gateway (the REST API and the dashboard) on 127.0.0.1, asks
# ringcapd for a simple capture of DNS queries with ringcapctl while other traffic passes by,
# reads it back through the REST API with curl, downloads the file, shows what tshark sees in
# it, prints the dashboard's address with a token, and removes the lab (on a terminal, once
# Enter is pressed, so that the dashboard can be looked at first).
# DEMO_GATEWAY_LISTEN sets the gateway's address (default 127.0.0.1:8787).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

NS_CAP=ringcap-demo-cap NS_GEN=ringcap-demo-gen
WORK=$(mktemp -d /tmp/ringcap-demo.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  umount "$WORK/bpffs" 2>/dev/null || true
  ip netns del "$NS_CAP" 2>/dev/null || true
  ip netns del "$NS_GEN" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del "$NS_CAP" 2>/dev/null || true
ip netns del "$NS_GEN" 2>/dev/null || true
getent group ringcap >/dev/null || groupadd --system ringcap

# wait_for DESCRIPTION COMMAND...: polls COMMAND for up to 20 s.
wait_for() {
  local what=$1 deadline=$((SECONDS + 20))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "demo: $what did not happen in 20 s" >&2; exit 1; }
    sleep 0.1
  done
}

echo "== lab: $NS_GEN (10.99.0.2) --veth--> $NS_CAP (10.99.0.1, ringcapd attached)"
ip netns add "$NS_CAP"
ip netns add "$NS_GEN"
ip link add rcdemo0 netns "$NS_CAP" type veth peer name rcdemo1 netns "$NS_GEN"
ip -n "$NS_CAP" addr add 10.99.0.1/24 dev rcdemo0
ip -n "$NS_GEN" addr add 10.99.0.2/24 dev rcdemo1
for ns in "$NS_CAP" "$NS_GEN"; do ip -n "$ns" link set lo up; done
ip -n "$NS_CAP" link set rcdemo0 up
ip -n "$NS_GEN" link set rcdemo1 up
mkdir "$WORK/bpffs" && mount -t bpf bpf "$WORK/bpffs"

echo "== a private system bus with the shipped policy (systemd/org.ringcap.Ringcap1.conf)"
sed "s|@RINGCAP_DBUS_POLICY@|$PWD/systemd/org.ringcap.Ringcap1.conf|" \
  tests/systemd/dbus-system-test.conf.in >"$WORK/bus.conf"
dbus-daemon --config-file="$WORK/bus.conf" --address="unix:path=$WORK/bus" --nofork &
PIDS+=($!)
wait_for "the bus socket" test -S "$WORK/bus"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$WORK/bus"

echo "== ringcapd on rcdemo0"
cat >"$WORK/ringcapd.toml" <<CONF
colo_name = "demo01"
state_directory = "$WORK/state"
[systems]
magic-transit = ["rcdemo0"]
CONF
LIBXDP_BPFFS="$WORK/bpffs" ip netns exec "$NS_CAP" build/daemon/ringcapd/ringcapd --config "$WORK/ringcapd.toml" \
  2>"$WORK/ringcapd.log" &
PIDS+=($!)
wait_for "ringcapd on the bus" busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" status org.ringcap.Ringcap1

echo "== ringcap-gateway on ${DEMO_GATEWAY_LISTEN:=127.0.0.1:8787}: the REST API and the dashboard"
# Its own unprivileged user in the group ringcap, as systemd/ringcap.sysusers makes it.
id ringcap-gateway >/dev/null 2>&1 ||
  useradd --system --no-create-home --shell /usr/sbin/nologin --groups ringcap ringcap-gateway
ACCOUNT=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)
mkdir "$WORK/gateway"
cp -r daemon/gateway/dashboard "$WORK/gateway/dashboard" # readable by the gateway's user
printf 'demo %s\n' "$TOKEN" >"$WORK/gateway/tokens"
{
  cat "$WORK/ringcapd.toml"
  echo "[gateway]"
  echo "listen = \"$DEMO_GATEWAY_LISTEN\""
  echo "account_id = \"$ACCOUNT\""
  echo "tokens_file = \"$WORK/gateway/tokens\""
  echo "dashboard_dir = \"$WORK/gateway/dashboard\""
} >"$WORK/gateway/gateway.toml"
chgrp -R ringcap "$WORK/gateway"
chmod 750 "$WORK/gateway"
chmod 640 "$WORK/gateway/tokens" "$WORK/gateway/gateway.toml"
setpriv --reuid=ringcap-gateway --regid=ringcap --init-groups \
  build/daemon/gateway/ringcap-gateway --config "$WORK/gateway/gateway.toml" 2>"$WORK/gateway.log" &
PIDS+=($!)
wait_for "ringcap-gateway listening" grep -q "listening on " "$WORK/gateway.log"
URL=http://$DEMO_GATEWAY_LISTEN
API=$URL/client/v4/accounts/$ACCOUNT

echo "== ringcapctl create: a simple capture of up to 100 DNS queries to 10.99.0.1, for 20 s"
build/tools/ringcapctl create --type simple --time-limit 20 --packet-limit 100 \
  --destination-address 10.99.0.1 --destination-port 53 --protocol 17 --json >"$WORK/created.json"
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/created.json")
echo "capture $ID"

echo "== traffic: 50 datagrams to port 8080, 5 pings, 150 DNS queries to port 53"
ip netns exec "$NS_GEN" python3 tests/integration/traffic.py send --dst 10.99.0.1 --dport 8080 --count 50 --size 200 >/dev/null
ip netns exec "$NS_GEN" ping -c 5 -i 0.05 -q 10.99.0.1 >/dev/null
ip netns exec "$NS_GEN" python3 tests/integration/traffic.py send --dst 10.99.0.1 --dport 53 --count 150 --dns-query www.example.org >/dev/null

echo "== ringcapctl watch (until the capture ends)"
build/tools/ringcapctl watch "$ID"
echo "== the same capture through the REST API: curl -H 'Authorization: Bearer ...' $API/pcaps/$ID"
curl -fsS -H "Authorization: Bearer $TOKEN" "$API/pcaps/$ID" | python3 -m json.tool
build/tools/ringcapctl download "$ID" -o "$WORK/demo.pcap"

echo "== what tshark sees (first 5 of $(capinfos -c -M "$WORK/demo.pcap" | awk '/Number of packets/ {print $NF}') packets)"
tshark -r "$WORK/demo.pcap" -c 5 2>/dev/null
echo "== capinfos"
capinfos "$WORK/demo.pcap" | grep -E "File type|Number of packets|Capture duration|Data size"
echo
echo "== the dashboard: $URL/#token=$TOKEN&account=$ACCOUNT"
echo "   (API token $TOKEN, account $ACCOUNT; from another machine: ssh -L ${DEMO_GATEWAY_LISTEN##*:}:$DEMO_GATEWAY_LISTEN this-host)"
if [ -t 0 ]; then
  read -r -p "Press Enter to stop ringcapd and the gateway and remove the lab: " _
fi
echo "== the demo stops ringcapd and the gateway and removes its lab now"
