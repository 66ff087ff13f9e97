#!/usr/bin/env bash
# Live paths of one capture on two interfaces: a trickle of packets reaches the file
# promptly while the capture still runs (batched wake-ups plus the drain timer), jumbo
# frames that arrive as multi-buffer XDP packets are captured whole, and the file names
# the interface of every packet.
source "$(dirname "$0")/lib.sh"
require_lab
lab_up 75

# A second veth pair between the same namespaces, with jumbo frames.
IF2_CAP="rc${$}d" IF2_GEN="rc${$}e"
ip link add "$IF2_CAP" netns "$NS_CAP" type veth peer name "$IF2_GEN" netns "$NS_GEN"
in_cap ip addr add 10.175.0.1/24 dev "$IF2_CAP"
in_gen ip addr add 10.175.0.2/24 dev "$IF2_GEN"
for side in cap gen; do
  if [ $side = cap ]; then ns=$NS_CAP if=$IF2_CAP; else ns=$NS_GEN if=$IF2_GEN; fi
  ip -n "$ns" link set "$if" mtu 9000
  ip -n "$ns" link set "$if" up
  ip netns exec "$ns" ethtool -K "$if" gro on >/dev/null 2>&1 || true
done
mac2=$(in_cap cat "/sys/class/net/$IF2_CAP/address")
in_gen ip neigh replace 10.175.0.1 lladdr "$mac2" dev "$IF2_GEN" nud permanent

OUT=$LAB_TMP/live.pcapng
start_dump -i "$IF_CAP" -i "$IF2_CAP" -w "$OUT" --protocol 17 --destination-port 7300 --time-limit 60 --json

# Trickle: one packet at a time; each must be readable in the file within 2 s, while the
# capture runs.
for i in 1 2 3; do
  in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7300 --count 1 --size 100 >/dev/null
  deadline=$((SECONDS + 2))
  until [ "$(tshark_fields "$OUT" frame.number 2>/dev/null | wc -l)" -eq "$i" ]; do
    [ $SECONDS -lt $deadline ] || fail "packet $i was not in the file 2 s after it was sent"
    sleep 0.02
  done
  echo "ok: packet $i readable in the file while capturing"
done

# Jumbo frames on the second interface: 8000-byte datagrams, 8042-byte frames, larger than
# one page with the XDP headroom, so they reach XDP as multi-buffer packets.
expect_eq "$(in_gen $TRAFFIC send --dst 10.175.0.1 --dport 7300 --count 5 --size 8000)" 5 "sent jumbo datagrams"
deadline=$((SECONDS + 5))
until [ "$(tshark_fields "$OUT" frame.number 2>/dev/null | wc -l)" -eq 8 ]; do
  [ $SECONDS -lt $deadline ] || fail "jumbo frames not in the file after 5 s"
  sleep 0.05
done
stop_dump
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
expect_eq "$(tshark_fields "$OUT" frame.interface_name ip.dst frame.len frame.cap_len | sort | uniq -c | sed 's/^ *//' | sort)" \
  "$(printf '%s\n' "3 $IF_CAP $ADDR_CAP 142 142" "5 $IF2_CAP 10.175.0.1 8042 8042" | sort)" "packets per interface, whole"
# The payload bytes of a jumbo frame survived the multi-buffer copy: byte i of the payload is i % 251.
tshark -r "$OUT" -Y "frame.len == 8042" -T fields -e udp.payload >"$LAB_TMP/payloads" 2>/dev/null
python3 - "$LAB_TMP/payloads" <<'PY' || fail "a jumbo payload differs from what was sent"
import sys
want = bytes(i % 251 for i in range(8000))
lines = open(sys.argv[1]).read().split()
assert len(lines) == 5, len(lines)
sys.exit(0 if all(bytes.fromhex(l.replace(":", "")) == want for l in lines) else 1)
PY
echo "ok: every jumbo payload is identical to what was sent"
expect_detached
echo "PASS"
