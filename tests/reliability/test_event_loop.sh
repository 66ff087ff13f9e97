#!/usr/bin/env bash
# ringcapd's event loop: an idle daemon does not wake up (no timer ticks while no capture
# runs: its main thread's context switches over 3 s stay few), and a capture that ends with
# a full ring behind it does not block the bus (GetCapture answers promptly while the ring
# drains and the capture finishes).
source "$(dirname "$0")/common.sh"
require_lab
lab_up 89
start_bus
mkdir -p "$LAB_TMP/files"
# A ring that holds 10000 jumbo records (8 KiB each, one per packet for the three captures)
# without the consumer. ring_size_mib is split into one ring per online CPU and the flood
# arrives on one CPU: 512 MiB per CPU (counting the possible CPUs, at least as many).
possible_cpus=$(( $(cut -d- -f2 /sys/devices/system/cpu/possible) + 1 ))
ring_mib=512
while [ $ring_mib -lt $((512 * possible_cpus)) ] && [ $ring_mib -lt 2048 ]; do ring_mib=$((ring_mib * 2)); done
start_ringcapd "[rate_limits]
simple_interval_seconds = 0
full_concurrent = 3
[destinations]
file_roots = [\"$LAB_TMP/files\"]
[capture]
ring_size_mib = $ring_mib"

# Voluntary context switches of ringcapd's main thread (the event loop): one per wake-up.
wakeups() { awk '$1 == "voluntary_ctxt_switches:" {print $2}' "/proc/$RINGCAPD_PID/task/$RINGCAPD_PID/status"; }
idle_wakeups() {
  local before after
  before=$(wakeups)
  sleep 3 # the measured interval itself: nothing is awaited here
  after=$(wakeups)
  echo $((after - before))
}

echo "== idle"
# Let the start settle (the bus's first messages), then measure.
ctl --json list >/dev/null
N=$(idle_wakeups)
echo "info: idle ringcapd woke $N times in 3 s"
[ "$N" -le 10 ] || fail "an idle ringcapd woke $N times in 3 s (at most 10 expected)"
echo "ok: idle ringcapd woke $N times in 3 s"

echo "== idle again after a capture"
ID=$(json_field "$(ctl --json create --type simple --time-limit 300 --packet-limit 10 \
  --destination-port 7560)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7560 --count 10 --size 100 >/dev/null
REC=$(wait_finished "$ID" 30)
expect_eq "$(json_field "$REC" status)" success "status of the short capture"
N=$(idle_wakeups)
echo "info: ringcapd woke $N times in 3 s after its capture ended"
[ "$N" -le 10 ] || fail "ringcapd woke $N times in 3 s after its capture ended (at most 10 expected)"
echo "ok: idle again after the capture: $N wake-ups in 3 s"
expect_serving "after the idle checks"

echo "== captures end with a full ring behind them: the bus is answered meanwhile"
# Jumbo frames: 10000 datagrams of 8000 bytes are 80 MiB of records in the ring per capture.
for side in cap gen; do
  if [ $side = cap ]; then ns=$NS_CAP if=$IF_CAP; else ns=$NS_GEN if=$IF_GEN; fi
  ip -n "$ns" link set "$if" mtu 9000
done
DEST="file://$LAB_TMP/files/loop"
read_file_challenge() { cat "$LAB_TMP/files/loop/$1"; }
own_destination "$DEST" read_file_challenge
IDS=()
for i in 1 2 3; do
  IDS+=("$(json_field "$(ctl --json create --type full --colo-name LAB --destination-conf "$DEST" \
    --time-limit 300 --packet-limit 10000 --destination-port 7561)" id)")
done
ID=${IDS[2]}
# The consumer stalls (SIGSTOP) while the ring fills: 10000 records (for 3 captures) wait when
# it resumes.
kill -STOP "$RINGCAPD_PID"
trap 'rc=$?; kill -CONT "$RINGCAPD_PID" 2>/dev/null; lab_down "$rc"' EXIT
SENT=$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7561 --count 10000 --size 8000 --max-seconds 60)
expect_eq "$SENT" 10000 "jumbo datagrams sent while ringcapd was stopped"
kill -CONT "$RINGCAPD_PID"
trap lab_down EXIT
# GetCapture (busctl: a quick client), again and again, while ringcapd drains the ring and
# finishes the capture: the slowest answer must be prompt.
get_capture() {
  busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.ringcap.Ringcap1 /org/ringcap/Ringcap1 \
    org.ringcap.Ringcap1.Manager GetCapture s "$1"
}
max_ms=0 calls=0 running=1
deadline=$((SECONDS + 60))
while [ "$running" = 1 ]; do
  t0=$(date +%s%N)
  out=$(get_capture "$ID")
  ms=$((($(date +%s%N) - t0) / 1000000))
  calls=$((calls + 1))
  [ "$ms" -le "$max_ms" ] || max_ms=$ms
  case $out in *'"status" s "running"'*) ;; *) running=0 ;; esac
  [ $SECONDS -lt $deadline ] || fail "capture $ID still running 60 s after the flood"
done
echo "info: $calls GetCapture calls while the ring drained; the slowest took $max_ms ms"
for id in "${IDS[@]}"; do
  REC=$(wait_finished "$id" 60)
  expect_eq "$(json_field "$REC" status)" success "status of jumbo capture $id"
  expect_eq "$(json_field "$REC" packets_captured)" 10000 "packets_captured of $id"
  expect_eq "$(packets_in "$(output_path "$id")")" 10000 "packets in the file of $id"
done
[ "$calls" -ge 3 ] || fail "only $calls GetCapture call(s) answered while the ring drained: the loop was blocked"
[ "$max_ms" -le 300 ] || fail "a GetCapture took $max_ms ms while the ring drained (at most 300 ms expected)"
echo "ok: the bus was answered $calls times while the ring drained, within $max_ms ms each"
expect_serving "after the drain"
echo "PASS"
