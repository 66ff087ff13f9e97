#!/usr/bin/env bash
# The XDP program's history slot on live traffic (a veth pair in the lab's namespaces), with
# no job armed: build/tools/ringcap-bench-history-xdp attaches the program, arms only the
# history slot and drains the history ring with a RingDrainer until SIGINT, then prints the
# history's counters and what it drained. Checks:
#  1. 1 in 1: every datagram sent is sampled, emitted and drained, none lost, each cut to 160
#     bytes;
#  2. 1 in 10: about a tenth of the datagrams (within 5 sigma), every sampled one drained;
#  and the program is detached at the end.
source "$(dirname "$0")/../integration/lib.sh"
require_lab
HIST=$BUILD_DIR/tools/ringcap-bench-history-xdp
[ -x "$HIST" ] || fail "ringcap-bench-history-xdp not built at $HIST"
lab_up 79

# run_history RATE COUNT: the slot at 1 in RATE while COUNT datagrams of 400 bytes are sent;
# sets SAMPLED EMITTED BYTES RING_FULL DRAINED and the veth's DROPS.
run_history() {
  local rate=$1 count=$2 out=$LAB_TMP/hist.out log=$LAB_TMP/hist.log rc pid deadline
  : >"$log"
  LIBXDP_BPFFS=$LAB_BPFFS ip netns exec "$NS_CAP" "$HIST" -i "$IF_CAP" --sample-rate "$rate" \
    --snaplen 160 --ring-mib 4 >"$out" 2>"$log" &
  pid=$!
  LAB_PIDS="$LAB_PIDS $pid"
  deadline=$((SECONDS + 20))
  until grep -q "history armed" "$log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "ringcap-bench-history-xdp exited early"; }
    [ $SECONDS -lt $deadline ] || { cat "$log" >&2; fail "the history was not armed in 20 s"; }
    sleep 0.05
  done
  local drops0 drops1
  drops0=$(( $(in_gen cat "/sys/class/net/$IF_GEN/statistics/tx_dropped") + $(in_cap cat "/sys/class/net/$IF_CAP/statistics/rx_dropped") ))
  rc=0
  in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7100 --sport 5100 --count "$count" --size 400 \
    --max-seconds 60 >"$LAB_TMP/sent" || rc=$?
  expect_eq "$rc" 0 "exit code of the sender"
  expect_eq "$(cat "$LAB_TMP/sent")" "$count" "datagrams sent"
  drops1=$(( $(in_gen cat "/sys/class/net/$IF_GEN/statistics/tx_dropped") + $(in_cap cat "/sys/class/net/$IF_CAP/statistics/rx_dropped") ))
  DROPS=$((drops1 - drops0))
  kill -INT "$pid"
  deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$log" >&2; fail "ringcap-bench-history-xdp still running 30 s after SIGINT"; }
    sleep 0.05
  done
  rc=0
  wait "$pid" || rc=$?
  expect_eq "$rc" 0 "exit code of ringcap-bench-history-xdp"
  read -r SAMPLED EMITTED BYTES RING_FULL DRAINED < <(python3 -c '
import json, sys
c = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(c["sampled"], c["emitted"], c["bytes_emitted"], c["ring_full"], c["drained"])' "$out")
  echo "1 in $rate: sent $count (veth drops $DROPS): sampled $SAMPLED, emitted $EMITTED, bytes $BYTES, ring full $RING_FULL, drained $DRAINED"
  expect_eq "$RING_FULL" 0 "history ring full"
  expect_eq "$EMITTED" "$SAMPLED" "emitted = sampled"
  expect_eq "$DRAINED" "$EMITTED" "drained = emitted"
}

# 1. Every datagram (the lab's static neighbours keep ARP/ND out; a few other packets of the
#    namespace, such as IPv6 multicast listener reports, may be sampled too).
N=3000
run_history 1 $N
[ "$SAMPLED" -ge $((N - DROPS)) ] && [ "$SAMPLED" -le $((N + 20)) ] ||
  fail "sampled $SAMPLED at 1 in 1, expected $N less the veth's $DROPS drops (and at most 20 others)"
# 400-byte datagrams are 442-byte frames: 160 bytes kept of each; the others are shorter.
[ "$BYTES" -ge $(( (SAMPLED - 20) * 160 )) ] && [ "$BYTES" -le $((SAMPLED * 160)) ] ||
  fail "bytes emitted $BYTES for $SAMPLED packets: not 160 bytes of each datagram"
echo "ok: every datagram in the history ring, 160 bytes each"

# 2. 1 in 10 of 20000: mean 2000; gaps uniform in 1..19, the count's sigma below the
#    binomial one, sqrt(20000 * 0.1 * 0.9) = 42.4: 5 sigma is 212.
N=20000
run_history 10 $N
[ "$SAMPLED" -ge $(( (N - DROPS) / 10 - 212 )) ] && [ "$SAMPLED" -le $((N / 10 + 212 + 20)) ] ||
  fail "sampled $SAMPLED at 1 in 10 of $N (veth drops $DROPS), expected 2000 +- 212"
echo "ok: 1 in 10 sampled"
expect_detached
echo "PASS"
