#!/usr/bin/env bash
# ringcap-dump's drain: woken by the program, not by a periodic tick (docs/design.md, "The
# drain"):
#  1. an idle capture wakes the process about once a second (the housekeeping timer), not
#     100 times a second;
#  2. a trickle below the ring's wake-up threshold reaches the file within the drain bound
#     (20 ms; the check allows 300 ms for a loaded machine, where the periodic fallback alone
#     would take up to 1 s);
#  3. records still waiting for their bound when the capture is stopped are written.
source "$(dirname "$0")/../integration/lib.sh"
require_lab
lab_up 74

json=$LAB_TMP/dump.out
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$json" "$1"; }
# Voluntary context switches of all of ringcap-dump's threads (each wait that slept).
wakeups() {
  local pid=$1 sum=0 t n
  for t in /proc/"$pid"/task/*; do
    n=$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")
    sum=$((sum + n))
  done
  echo "$sum"
}

OUT=$LAB_TMP/trickle.pcapng
start_dump -i "$IF_CAP" -w "$OUT" --destination-port 7000 --time-limit 120 --json
# start_dump runs ringcap-dump through `ip netns exec`, which execs it: DUMP_PID is its pid.
expect_eq "$(cat /proc/"$DUMP_PID"/comm)" ringcap-dump "process behind DUMP_PID"

# 1. Idle: 3 s without a packet.
w0=$(wakeups "$DUMP_PID")
t0=$(date +%s%N)
sleep 3
w1=$(wakeups "$DUMP_PID")
t1=$(date +%s%N)
tenths=$(( (w1 - w0) * 10000000000 / (t1 - t0) )) # wake-ups per 10 s
per_s="$((tenths / 10)).$((tenths % 10))"
echo "idle wake-ups: $((w1 - w0)) in $(( (t1 - t0) / 1000000 )) ms ($per_s per second)"
[ "$tenths" -le 50 ] || fail "an idle ringcap-dump woke $per_s times a second (at most 5 expected)"

# 2. A trickle: 5 single datagrams, 300 ms apart; each must be in the file (its size grows
# when the drain writes it) within 300 ms of being sent.
in_gen /usr/bin/python3 "$(dirname "$0")/trickle_latency.py" "$ADDR_CAP" "$OUT" 5 >"$LAB_TMP/latency"
echo "file written after (ms): $(tr '\n' ' ' <"$LAB_TMP/latency")"
expect_eq "$(wc -l <"$LAB_TMP/latency")" 5 "latencies measured"
while read -r ms; do
  [ "$ms" != never ] || fail "a datagram did not reach the file within 2 s"
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 300 else 1)' "$ms" ||
    fail "a datagram reached the file $ms ms after it was sent (bound 20 ms, 300 allowed)"
done <"$LAB_TMP/latency"

# 3. Three datagrams, then SIGINT at once: they are below the wake-up threshold and still
# within their bound, and the stop writes them.
in_gen /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(3):
    s.sendto(b"y" * 32, (sys.argv[1], 7000))' "$ADDR_CAP"
stop_dump 30
expect_eq "$DUMP_RC" 0 "ringcap-dump exit code"
expect_eq "$(field packets_captured)" 8 "packets captured in the kernel"
expect_eq "$(field packets_written)" 8 "packets written"
expect_eq "$(capinfos -c -M "$OUT" | awk '/Number of packets/ {print $NF}')" 8 "capinfos packet count"
expect_detached
echo "PASS"
