#!/usr/bin/env bash
# Load: while a simple capture runs under a flood, 8 clients (threads of ringcap-bus-stress,
# one connection each, 16 calls outstanding per connection) send 12000 D-Bus calls:
# CreateCapture with bad input (14 kinds of invalid request in turn), GetCapture and
# ListCaptures. Checks:
#  - every call is answered: every bad CreateCapture with InvalidRequest, every GetCapture
#    (status running) and ListCaptures with success;
#  - ringcapd's peak resident memory (VmHWM) stays under RSS_BOUND_KIB, grows by less than
#    RSS_GROWTH_BOUND_KIB over its resident memory before the load, and its open fds are the
#    same before and after;
#  - the capture, completed afterwards, holds exactly its packet_limit (record, capinfos) and
#    lost nothing.
# The flood: flood.py sends 200-byte datagrams to a port the capture does not match as fast as
# it can, and 200 per second to the one it does (paced, so that the capture is still running
# when the load ends); it is bounded to 120 s and stopped after the load.
source "$(dirname "$0")/common.sh"
require_lab
require_bus_stress
# Measured on the development machine (docs/reliability.md): VmRSS about 77 MiB before the
# load, of which 64 MiB are the 32 MiB ring's data pages (mapped twice, populated at mmap);
# the load added under 1 MiB. Bounds: 96 MiB in all, and 8 MiB of growth during the load,
# which a leak of 700 bytes per call (12000 calls) would cross.
RSS_BOUND_KIB=${RSS_BOUND_KIB:-98304}
RSS_GROWTH_BOUND_KIB=${RSS_GROWTH_BOUND_KIB:-8192}
CLIENTS=8
CALLS_PER_CLIENT=1500
lab_up 86
start_bus
start_ringcapd "[rate_limits]
simple_interval_seconds = 0"

ID=$(json_field "$(ctl --json create --type simple --time-limit 300 --packet-limit 10000 \
  --destination-port 7560)" id)
ip netns exec "$NS_GEN" $FLOOD --dst "$ADDR_CAP" --other-port 7561 --match-port 7560 \
  --match-rate 200 --match-count 100000 --size 200 --max-seconds 120 >"$LAB_TMP/flood.out" &
FLOOD_PID=$!
LAB_PIDS="$LAB_PIDS $FLOOD_PID"
deadline=$((SECONDS + 20))
until [ "$(live_field "$ID" packets_captured)" -gt 100 ]; do
  [ $SECONDS -lt $deadline ] || fail "the paced packets do not reach the capture"
  sleep 0.05
done
SEEN_BEFORE=$(live_field "$ID" packets_seen)
RSS_START=$(vm_kib "$RINGCAPD_PID" VmRSS)
FDS_START=$(ls "/proc/$RINGCAPD_PID/fd" | wc -l)

"$BUS_STRESS" load --capture "$ID" --clients $CLIENTS --calls-per-client $CALLS_PER_CLIENT \
  --window 16 --timeout-ms 30000 >"$LAB_TMP/load.json" &
LOAD_PID=$!
LAB_PIDS="$LAB_PIDS $LOAD_PID"
# Resident memory while the load runs (VmHWM, read at the end, is the exact peak).
RSS_MAX=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
  r=$(vm_kib "$RINGCAPD_PID" VmRSS)
  [ "$r" -gt "$RSS_MAX" ] && RSS_MAX=$r
  sleep 0.2
done
rc=0
wait "$LOAD_PID" || rc=$?
expect_eq "$rc" 0 "ringcap-bus-stress exit code"
STATUS_AFTER_LOAD=$(live_field "$ID" status)
SEEN_AFTER=$(live_field "$ID" packets_seen)
kill "$FLOOD_PID"
wait "$FLOOD_PID" || true
echo "info: flood: $(cat "$LAB_TMP/flood.out")"
echo "info: load: $(cat "$LAB_TMP/load.json")"
expect_eq "$STATUS_AFTER_LOAD" running "capture status when the load ended"
[ "$SEEN_AFTER" -gt "$SEEN_BEFORE" ] || fail "the flood did not reach the interface during the load"

python3 - "$LAB_TMP/load.json" $((CLIENTS * CALLS_PER_CLIENT)) <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
m = r["methods"]
problems = []
if r["sent"] != want or r["answered"] != want:
    problems.append(f'sent {r["sent"]}, answered {r["answered"]}, expected {want}')
if r["send_failures"] or r["unreadable_replies"]:
    problems.append(f'send failures {r["send_failures"]}, unreadable replies {r["unreadable_replies"]}')
bad = m["CreateCapture(bad)"]
if bad["success"] or bad["errors"] != {"org.ringcap.Ringcap1.Error.InvalidRequest": bad["sent"]}:
    problems.append(f"bad CreateCapture: {bad}")
for k in ("GetCapture", "ListCaptures"):
    if m[k]["success"] != m[k]["sent"] or m[k]["errors"]:
        problems.append(f"{k}: {m[k]}")
if r["get_status"] != {"running": m["GetCapture"]["sent"]}:
    problems.append(f'GetCapture statuses: {r["get_status"]}')
if problems:
    print("FAIL: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
for k, v in m.items():
    print(f'ok: {k}: {v["sent"]} sent, {v["success"]} success, errors {v["errors"]}')
print(f'figure: {r["answered"]} of {r["sent"]} calls answered by {r["clients"]} clients in '
      f'{r["seconds"]:.2f} s ({r["calls_per_second"]:.0f}/s); latency p50 '
      f'{r["latency_ms"]["p50"]:.1f} ms, p99 {r["latency_ms"]["p99"]:.1f} ms, '
      f'max {r["latency_ms"]["max"]:.1f} ms')
EOF

HWM=$(vm_kib "$RINGCAPD_PID" VmHWM)
RSS_END=$(vm_kib "$RINGCAPD_PID" VmRSS)
echo "figure: ringcapd VmRSS before the load ${RSS_START} KiB, sampled maximum during the load ${RSS_MAX} KiB, VmHWM ${HWM} KiB, after ${RSS_END} KiB (bound ${RSS_BOUND_KIB} KiB)"
[ "$HWM" -lt "$RSS_BOUND_KIB" ] || fail "ringcapd's peak RSS ${HWM} KiB is over the bound ${RSS_BOUND_KIB} KiB"
echo "ok: peak RSS under the bound"
[ $((HWM - RSS_START)) -lt "$RSS_GROWTH_BOUND_KIB" ] ||
  fail "ringcapd's resident memory grew by $((HWM - RSS_START)) KiB during the load (bound ${RSS_GROWTH_BOUND_KIB} KiB)"
echo "ok: resident memory grew by $((HWM - RSS_START)) KiB during the load"
expect_eq "$(ls "/proc/$RINGCAPD_PID/fd" | wc -l)" "$FDS_START" "ringcapd's open fds after the load"

echo "== the capture completes at exactly its packet_limit"
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7560 --count 12000 --size 200 --max-seconds 60 >/dev/null
REC=$(wait_finished "$ID" 60)
expect_eq "$(json_field "$REC" status)" success "status"
expect_eq "$(json_field "$REC" stop_reason)" packet_limit "stop_reason"
expect_eq "$(json_field "$REC" packets_captured)" 10000 "packets_captured"
expect_eq "$(json_field "$REC" packets_lost)" 0 "packets_lost (a 32 MiB ring, 2 MB of records)"
expect_readable "$(output_path "$ID")" "the capture file"
expect_eq "$(packets_in "$(output_path "$ID")")" 10000 "packets in the file"
expect_eq "$(tshark_fields "$(output_path "$ID")" udp.dstport | sort -u)" 7560 "ports in the file"
expect_record_and_file "$ID" "the capture under load"
echo "figure: the capture saw $(json_field "$REC" packets_seen) packets, matched $(json_field "$REC" packets_matched), over the limit $(json_field "$REC" packets_over_limit)"
expect_serving "after the load"
echo "PASS"
