#!/usr/bin/env bash
# Live traffic on a veth pair with two RX queues, sent from two senders pinned to two CPUs,
# so that the XDP program runs on both CPUs and writes both CPUs' rings:
#  1. no limit: every datagram is captured, both CPUs captured, the file holds them all;
#  2. packet_limit 5000 under 2 x 20000 datagrams: exactly 5000 in the file, and the
#     counters add up (the per-CPU budget leases keep the limit exact).
source "$(dirname "$0")/../integration/lib.sh"
require_lab
command -v bpftool >/dev/null || skip "needs bpftool (the per-CPU counters)"
command -v taskset >/dev/null || skip "needs taskset"
[ "$(nproc)" -ge 2 ] || skip "needs two CPUs"
lab_up 73

# The lab's veth pair again, with two queues on each end.
ip -n "$NS_CAP" link del "$IF_CAP"
ip link add "$IF_CAP" numtxqueues 2 numrxqueues 2 netns "$NS_CAP" type veth \
  peer name "$IF_GEN" numtxqueues 2 numrxqueues 2 netns "$NS_GEN"
for side in cap gen; do
  if [ $side = cap ]; then ns=$NS_CAP if=$IF_CAP a=$ADDR_CAP; else ns=$NS_GEN if=$IF_GEN a=$ADDR_GEN; fi
  ip -n "$ns" addr add "$a/24" dev "$if"
  ip -n "$ns" link set "$if" up
  ip netns exec "$ns" ethtool -K "$if" gro on >/dev/null 2>&1 || true
done
mac_cap=$(ip -n "$NS_CAP" -j link show "$IF_CAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
ip -n "$NS_GEN" neigh replace "$ADDR_CAP" lladdr "$mac_cap" dev "$IF_GEN" nud permanent
expect_eq "$(in_cap ls "/sys/class/net/$IF_CAP/queues" | grep -c rx-)" 2 "RX queues of $IF_CAP"

json=$LAB_TMP/dump.out
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$json" "$1"; }

# Sends N datagrams to PORT from each of two senders, pinned to CPU 0 and CPU 1 (the veth
# runs the receiver's XDP program in the sender's softirq, on the sender's CPU).
send_from_two_cpus() {
  local n=$1 port=$2 rc
  in_gen taskset -c 0 $TRAFFIC send --dst "$ADDR_CAP" --dport "$port" --sport 5001 --count "$n" --size 64 --max-seconds 30 >"$LAB_TMP/s0" &
  local s0=$!
  in_gen taskset -c 1 $TRAFFIC send --dst "$ADDR_CAP" --dport "$port" --sport 5002 --count "$n" --size 64 --max-seconds 30 >"$LAB_TMP/s1" &
  local s1=$!
  LAB_PIDS="$LAB_PIDS $s0 $s1"
  rc=0; wait "$s0" || rc=$?
  expect_eq "$rc" 0 "exit code of the sender on CPU 0"
  rc=0; wait "$s1" || rc=$?
  expect_eq "$rc" 0 "exit code of the sender on CPU 1"
  expect_eq "$(cat "$LAB_TMP/s0") $(cat "$LAB_TMP/s1")" "$n $n" "datagrams sent"
}

# Packets captured in slot 0 per CPU ("cpu:count ..."), from the counters map of the XDP
# program attached to the capture interface.
captured_per_cpu() {
  local prog map
  prog=$(in_cap ip -j -d link show "$IF_CAP" | python3 -c '
import json, sys
l = json.load(sys.stdin)[0]
print(l.get("xdp", {}).get("prog", {}).get("id", ""))')
  [ -n "$prog" ] || fail "no XDP program attached to $IF_CAP"
  for map in $(bpftool -j prog show id "$prog" | python3 -c 'import json,sys; print(*json.load(sys.stdin).get("map_ids", []))'); do
    if [ "$(bpftool -j map show id "$map" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')" = counters ]; then
      # ringcap_counters: slot[0] first; its captured counter is the 4th __u64 (capture_abi.h).
      bpftool -j map dump id "$map" | python3 -c '
import json, sys
for v in json.load(sys.stdin)[0]["values"]:
    b = bytes(int(x, 16) for x in v["value"][24:32])
    print("%d:%d" % (v["cpu"], int.from_bytes(b, "little")), end=" ")'
      return
    fi
  done
  fail "no counters map among the maps of program $prog (a libxdp dispatcher?)"
}

# 1. No limit: 2 x 20000 datagrams, stopped with SIGINT once they were sent.
OUT=$LAB_TMP/all.pcapng
start_dump -i "$IF_CAP" -w "$OUT" --destination-port 7000 --time-limit 120 --json
send_from_two_cpus 20000 7000
per_cpu=$(captured_per_cpu)
echo "captured per CPU: $per_cpu"
for cpu in 0 1; do
  n=$(tr ' ' '\n' <<<"$per_cpu" | awk -F: -v c=$cpu '$1 == c {print $2}')
  [ "${n:-0}" -gt 0 ] || fail "CPU $cpu captured nothing ($per_cpu): the two queues were not used"
done
stop_dump 30
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
# Every datagram reached the program, but for what the veth pair dropped (its counters).
veth_drops=$(( $(in_gen cat "/sys/class/net/$IF_GEN/statistics/tx_dropped") + $(in_cap cat "/sys/class/net/$IF_CAP/statistics/rx_dropped") ))
matched=$(field packets_matched)
[ "$matched" -le 40000 ] && [ "$matched" -ge $((40000 - veth_drops)) ] ||
  fail "packets matched $matched, expected 40000 less the veth's $veth_drops drops"
echo "ok: matched $matched of 40000 (veth drops $veth_drops)"
expect_eq "$(( $(field packets_captured) + $(field packets_lost) ))" "$matched" "captured + lost = matched"
expect_eq "$(field packets_written)" "$(field packets_captured)" "packets written"
expect_eq "$(capinfos -c -M "$OUT" | awk '/Number of packets/ {print $NF}')" "$(field packets_captured)" "capinfos packet count"
disorder=$(tshark_fields "$OUT" frame.time_epoch | python3 -c '
import sys
t = [float(x) for x in sys.stdin if x.strip()]
print(sum(1 for a, b in zip(t, t[1:]) if b < a))')
echo "info: records out of timestamp order: $disorder (the drainer merges the rings; a record stamped just before another CPU's can still commit after it)"

# 2. packet_limit 5000 under 2 x 20000 datagrams.
OUT2=$LAB_TMP/limit.pcapng
start_dump -i "$IF_CAP" -w "$OUT2" --destination-port 7001 --packet-limit 5000 --time-limit 60 --json
send_from_two_cpus 20000 7001
wait_dump 30
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code (packet_limit)"
expect_eq "$(field stop_reason)" packet_limit "stop reason"
expect_eq "$(field packets_captured)" 5000 "packets captured in the kernel"
expect_eq "$(field packets_written)" 5000 "packets written"
expect_eq "$(capinfos -c -M "$OUT2" | awk '/Number of packets/ {print $NF}')" 5000 "capinfos packet count"
over=$(field packets_over_limit)
[ "$over" -gt 0 ] || fail "the senders should have met the limit (packets_over_limit = $over)"
expect_eq "$(( $(field packets_captured) + $(field packets_lost) + over + $(field packets_sampled_out) ))" \
  "$(field packets_matched)" "captured + lost + over the limit + sampled out = matched"
expect_detached
echo "PASS"
