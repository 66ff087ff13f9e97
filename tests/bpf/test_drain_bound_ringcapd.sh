#!/usr/bin/env bash
# ringcapd's drain: the one of ringcap-dump (DrainLoop; docs/design.md, "The drain"):
#  1. an idle ringcapd does not wake up (no timer while no capture runs);
#  2. a capture running without traffic wakes it about once a second (the housekeeping
#     period, as ringcap-dump's), not 10 times (the 100 ms drain tick it had);
#  3. a trickle below the ring's wake-up threshold reaches the capture's file within the
#     drain bound (20 ms; the check allows 150 ms for a loaded machine, where the
#     housekeeping alone would take up to 1 s);
#  4. a backlog (9000 records that arrived while ringcapd was stopped) is drained in
#     slices of 1024 back to back, without a sleep between them (the timer was once 1 ms
#     coarse, and a slice a millisecond lost packets at 4 Mpps);
#  5. records still waiting for their bound when the capture is stopped are in its file.
source "$(dirname "$0")/../reliability/common.sh"
require_lab
lab_up 75
start_bus
start_ringcapd "[rate_limits]
simple_interval_seconds = 0"
expect_eq "$(cat /proc/"$RINGCAPD_PID"/comm)" ringcapd "process behind RINGCAPD_PID"

# Voluntary context switches of all of ringcapd's threads (each wait that slept).
wakeups() {
  local pid=$1 sum=0 t n
  for t in /proc/"$pid"/task/*; do
    n=$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")
    sum=$((sum + n))
  done
  echo "$sum"
}
# wakeups_per_10s: the wake-ups of ringcapd over 3 s, per 10 s (sets RATE and RATE_TEXT).
measure() {
  local w0 w1 t0 t1
  w0=$(wakeups "$RINGCAPD_PID")
  t0=$(date +%s%N)
  sleep 3 # the measured interval itself: nothing is awaited here
  w1=$(wakeups "$RINGCAPD_PID")
  t1=$(date +%s%N)
  RATE=$(((w1 - w0) * 10000000000 / (t1 - t0)))
  RATE_TEXT="$((w1 - w0)) in $(((t1 - t0) / 1000000)) ms ($((RATE / 10)).$((RATE % 10)) per second)"
}

echo "== 1. idle"
ctl --json list >/dev/null # the start's first bus messages are behind us
measure
echo "info: idle wake-ups: $RATE_TEXT"
[ "$RATE" -le 10 ] || fail "an idle ringcapd woke $RATE_TEXT (at most 1 a second expected)"

echo "== 2. a capture running, no traffic"
ID=$(json_field "$(ctl --json create --type simple --time-limit 300 --packet-limit 10000 \
  --destination-port 7000)" id)
expect_eq "$(live_field "$ID" status)" running "status of the capture"
SPOOL=$(spool_path "$ID")
[ -s "$SPOOL" ] || fail "the capture's file $SPOOL is missing"
measure
echo "info: wake-ups with a capture running and no traffic: $RATE_TEXT"
[ "$RATE" -le 30 ] || fail "ringcapd with an idle capture woke $RATE_TEXT (at most 3 a second expected)"

echo "== 3. a trickle"
# 8 single datagrams, 300 ms apart (out of step with the 1 s period); each must be in the
# file (its size grows when the drain writes it) within 150 ms of being sent.
in_gen /usr/bin/python3 "$(dirname "$0")/trickle_latency.py" "$ADDR_CAP" "$SPOOL" 8 >"$LAB_TMP/latency"
echo "info: file written after (ms): $(tr '\n' ' ' <"$LAB_TMP/latency")"
expect_eq "$(wc -l <"$LAB_TMP/latency")" 8 "latencies measured"
while read -r ms; do
  [ "$ms" != never ] || fail "a datagram did not reach the file within 2 s"
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 150 else 1)' "$ms" ||
    fail "a datagram reached the file $ms ms after it was sent (bound 20 ms, 150 allowed)"
done <"$LAB_TMP/latency"
expect_eq "$(live_field "$ID" packets_captured)" 8 "packets_captured during the capture"

echo "== 4. a backlog"
kill -STOP "$RINGCAPD_PID"
trap 'rc=$?; kill -CONT "$RINGCAPD_PID" 2>/dev/null; lab_down "$rc"' EXIT
SENT=$(in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7000 --count 9000 --size 32 --max-seconds 60)
expect_eq "$SENT" 9000 "datagrams sent while ringcapd was stopped"
w0=$(wakeups "$RINGCAPD_PID")
kill -CONT "$RINGCAPD_PID"
trap lab_down EXIT
# capinfos reads the file without waking ringcapd; the file is flushed after the last slice.
backlog_in_file() { [ "$(packets_in "$SPOOL" 2>/dev/null)" = 9008 ]; }
wait_until 60 backlog_in_file
w1=$(wakeups "$RINGCAPD_PID")
echo "info: the backlog of 9000 records (9 slices) was drained with $((w1 - w0)) wake-up(s)"
[ $((w1 - w0)) -le 5 ] ||
  fail "draining 9 slices took $((w1 - w0)) wake-ups (at most 5 expected: the slices run back to back)"

echo "== 5. the stop"
# Three datagrams, then StopCapture at once: they wait for their bound, and the stop writes them.
in_gen /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(b"y" * 32, (sys.argv[1], 7000))' "$ADDR_CAP"
ctl stop "$ID" >/dev/null || fail "StopCapture $ID failed"
REC=$(wait_finished "$ID" 30)
expect_eq "$(json_field "$REC" status)" success "status of the capture"
expect_eq "$(json_field "$REC" packets_captured)" 9011 "packets_captured"
expect_eq "$(packets_in "$(output_path "$ID")")" 9011 "packets in the capture's file"

echo "== 6. idle again"
measure
echo "info: idle wake-ups after the capture: $RATE_TEXT"
[ "$RATE" -le 10 ] || fail "ringcapd woke $RATE_TEXT after its capture ended (at most 1 a second expected)"
expect_serving "at the end"
echo "PASS"
