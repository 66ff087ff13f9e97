#!/usr/bin/env bash
# The capture interface is deleted during a capture (ip link del inside the namespace): the
# capture ends `failed` with a message naming the interface (stop_reason fault) and keeps the
# packets captured before; ringcapd keeps its bus name and answers; a new capture on the
# system whose only interface is gone does not run silently; ringcapd stops cleanly
# afterwards (exit code 0) and removes attachments.json.
source "$(dirname "$0")/common.sh"
require_lab
lab_up 83
start_bus
start_ringcapd "[rate_limits]
simple_interval_seconds = 0"

ID=$(json_field "$(ctl --json create --type simple --time-limit 300 --packet-limit 10000 \
  --destination-port 7520)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7520 --count 100 --size 200 >/dev/null
deadline=$((SECONDS + 20))
until [ "$(live_field "$ID" packets_captured)" = 100 ]; do
  [ $SECONDS -lt $deadline ] || fail "the capture did not count 100 packets"
  sleep 0.05
done
T0=$(date +%s.%N)
ip -n "$NS_CAP" link del "$IF_CAP"
echo "ok: $IF_CAP deleted during the capture"
REC=$(wait_finished "$ID" 20)
echo "figure: the capture was finished $(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 2))" "$T0") s after the link was deleted (allowed: 20 s)"
echo "info: record: $REC"
expect_eq "$(json_field "$REC" status)" failed "status"
MSG=$(json_field "$REC" error_message)
echo "$MSG" | grep -q "interface $IF_CAP disappeared during the capture" ||
  fail "error_message does not name the interface: $MSG"
echo "ok: error_message: $MSG"
expect_eq "$(json_field "$REC" stop_reason)" fault "stop_reason"
expect_eq "$(json_field "$REC" packets_captured)" 100 "packets_captured"
expect_readable "$(spool_path "$ID")" "the file"
expect_eq "$(packets_in "$(spool_path "$ID")")" 100 "packets in the file"
expect_eq "$(disk_field "$ID" status)" failed "on-disk status"
expect_serving "interface deleted"
ctl download "$ID" -o "$LAB_TMP/dl.pcapng" >/dev/null
cmp "$(spool_path "$ID")" "$LAB_TMP/dl.pcapng" || fail "the download differs from the file"

echo "== a new capture on the system whose interface is gone"
rc=0
ctl --json create --type simple --time-limit 60 --packet-limit 10 >"$LAB_TMP/out" 2>"$LAB_TMP/err" || rc=$?
if [ "$rc" -eq 0 ]; then
  ID2=$(json_field "$(cat "$LAB_TMP/out")" id)
  REC2=$(wait_finished "$ID2" 20)
  expect_eq "$(json_field "$REC2" status)" failed "a capture on the vanished interface"
  json_field "$REC2" error_message | grep -q "$IF_CAP" ||
    fail "the capture on the vanished interface failed without naming it: $(json_field "$REC2" error_message)"
  echo "ok: created, then failed: $(json_field "$REC2" error_message)"
else
  expect_eq "$rc" 1 "exit code of the refused capture"
  grep -q "$IF_CAP" "$LAB_TMP/err" || fail "refused without naming the interface: $(cat "$LAB_TMP/err")"
  echo "ok: refused: $(cat "$LAB_TMP/err")"
fi
expect_serving "after a capture on the vanished interface"

echo "== clean stop"
stop_ringcapd # exit code 0, no sanitizer report
grep -Eq "critical|terminate called|Aborted|Segmentation" "$LAB_TMP/ringcapd.log" &&
  fail "ringcapd's log shows a crash"
[ ! -e "$LAB_TMP/state/attachments.json" ] || fail "attachments.json is still there: $(cat "$LAB_TMP/state/attachments.json")"
echo "ok: stopped cleanly, attachments.json removed"
echo "PASS"
