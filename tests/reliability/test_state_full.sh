#!/usr/bin/env bash
# The state directory fills up during a capture: ringcapd's state_directory is a 2 MiB tmpfs
# mounted by the test, mostly taken by a filler file. The capture must end `failed` with
# "No space left on device" in error_message (stop_reason write_error); the file keeps the
# packets written before (whole blocks: tshark and capinfos read it, as many packets as the
# message says); the daemon keeps serving (GetCapture, ListCaptures; CreateCapture while the
# disk is full is refused, not fatal), and after space is freed a new capture works and the
# failed record survives a restart with its message.
source "$(dirname "$0")/common.sh"
require_lab
lab_up 82
STATE=$LAB_TMP/state
mkdir "$STATE"
mount -t tmpfs -o size=2m,mode=0750 ringcap-test-state "$STATE" || skip "cannot mount a tmpfs"
cleanup_state() {
  # ringcapd holds files on the tmpfs: stop it (by pid) before the unmount.
  if [ -n "${RINGCAPD_PID:-}" ] && kill -0 "$RINGCAPD_PID" 2>/dev/null; then
    kill "$RINGCAPD_PID" 2>/dev/null || true
    wait "$RINGCAPD_PID" 2>/dev/null || true # exit status: the test already failed
  fi
  umount "$STATE" 2>/dev/null || umount -l "$STATE" 2>/dev/null || true
}
trap 'rc=$?; cleanup_state; lab_down "$rc"' EXIT
start_bus
# min_free_bytes = 0: this test is about the disk filling anyway (a write error), not about
# the free-space floor that stops captures before it.
CONF="[capture]
min_free_bytes = 0
[rate_limits]
simple_interval_seconds = 0"
start_ringcapd "$CONF"

# Leave 512 KiB: a simple capture of 10000 packets (about 2 MB of pcapng) cannot fit.
AVAIL=$(df --output=avail -B1 "$STATE" | tail -1)
FILLER_BYTES=$((AVAIL - 512 * 1024))
head -c "$FILLER_BYTES" /dev/zero >"$STATE/filler"
echo "info: tmpfs of 2 MiB, $(df --output=avail -B1 "$STATE" | tail -1) bytes left for the capture"

ID=$(json_field "$(ctl --json create --type simple --time-limit 120 --packet-limit 10000 \
  --destination-port 7510)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7510 --count 10000 --size 300 --max-seconds 60 >/dev/null
REC=$(wait_finished "$ID" 60)
echo "info: record: $REC"
expect_eq "$(json_field "$REC" status)" failed "status when the disk is full"
MSG=$(json_field "$REC" error_message)
echo "$MSG" | grep -q "No space left on device" || fail "error_message does not say 'No space left on device': $MSG"
echo "ok: error_message: $MSG"
expect_eq "$(json_field "$REC" stop_reason)" write_error "stop_reason"
SPOOL=$(spool_path "$ID")
expect_readable "$SPOOL" "the file of the capture that filled the disk"
WRITTEN=$(echo "$MSG" | sed -n 's/.*the file holds the \([0-9]*\) packets written before the failure.*/\1/p')
[ -n "$WRITTEN" ] || fail "error_message does not say how many packets the file holds: $MSG"
expect_eq "$(packets_in "$SPOOL")" "$WRITTEN" "packets in the file, as error_message says"
[ "$WRITTEN" -gt 0 ] && [ "$WRITTEN" -lt 10000 ] || fail "implausible packet count $WRITTEN"
expect_eq "$(json_field "$REC" file_size)" "$(stat -c %s "$SPOOL")" "file_size in the record"

echo "== the daemon serves while the disk is still full"
# Take what the truncation of the last block gave back: the disk is full, to the last page.
head -c 4194304 /dev/zero >"$STATE/filler2" 2>/dev/null || true
expect_eq "$(df --output=avail -B1 "$STATE" | tail -1 | tr -d " ")" 0 "bytes left on the state tmpfs"
expect_serving "disk full"
expect_eq "$(live_field "$ID" status)" failed "GetCapture while the disk is full"
rc=0
ctl create --type simple --time-limit 10 --packet-limit 10 >"$LAB_TMP/out" 2>"$LAB_TMP/err" || rc=$?
expect_eq "$rc" 1 "exit code of CreateCapture on a full disk"
grep -q "org.ringcap.Ringcap1.Error.Failed" "$LAB_TMP/err" || fail "CreateCapture on a full disk: $(cat "$LAB_TMP/err")"
grep -q "No space left on device" "$LAB_TMP/err" || fail "CreateCapture on a full disk does not say why: $(cat "$LAB_TMP/err")"
echo "ok: CreateCapture on a full disk: $(cat "$LAB_TMP/err")"
expect_eq "$(ctl --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 "captures listed (the refused one made none)"

echo "== space freed: the failed record is saved, while no capture runs"
rm -f "$STATE/filler" "$STATE/filler2"
# The final record of the capture that filled the disk could not be written; ringcapd tries
# again every 250 ms even though it is idle (no capture runs, so nothing else wakes it).
on_disk_failed() { [ "$(disk_field "$ID" status)" = failed ]; }
wait_until 5 on_disk_failed
echo "ok: the on-disk record says failed within 5 s of the space being freed, with no capture running"
echo "== a new capture works"
ID2=$(json_field "$(ctl --json create --type simple --time-limit 60 --packet-limit 10 --destination-port 7511)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7511 --count 10 --size 100 >/dev/null
REC2=$(wait_finished "$ID2" 30)
expect_eq "$(json_field "$REC2" status)" success "a capture after space was freed"
expect_eq "$(packets_in "$(output_path "$ID2")")" 10 "packets of that capture"

echo "== the conversion to PCAP finds the disk full: failed, the spool kept"
# 2000 packets cut to 160 bytes: about 384 KiB of pcapng fit in the 512 KiB left; the
# 352 KiB of PCAP beside them do not.
AVAIL=$(df --output=avail -B1 "$STATE" | tail -1)
head -c $((AVAIL - 512 * 1024)) /dev/zero >"$STATE/filler3"
ID3=$(json_field "$(ctl --json create --type simple --time-limit 30 --packet-limit 2000 \
  --destination-port 7512)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7512 --count 2000 --size 300 --max-seconds 30 >/dev/null
REC3=$(wait_finished "$ID3" 60)
expect_eq "$(json_field "$REC3" status)" failed "status when the conversion finds the disk full"
MSG3=$(json_field "$REC3" error_message)
echo "$MSG3" | grep -q "to PCAP: .*No space left on device" || fail "error_message does not say the conversion ran out of space: $MSG3"
echo "$MSG3" | grep -q "kept in $(spool_path "$ID3")" || fail "error_message does not say where the spool is: $MSG3"
echo "ok: error_message: $MSG3"
expect_readable "$(spool_path "$ID3")" "the spool of the failed conversion"
expect_eq "$(packets_in "$(spool_path "$ID3")")" "$(json_field "$REC3" packets_captured)" "packets in the kept spool"
expect_eq "$(json_field "$REC3" file_name)" "pcap_$ID3.pcapng" "file_name of the failed conversion"
expect_eq "$(json_field "$REC3" file_size)" "$(stat -c %s "$(spool_path "$ID3")")" "file_size of the failed conversion"
[ ! -e "$(output_path "$ID3")" ] && [ ! -e "$(output_path "$ID3").part" ] || fail "the failed conversion left a PCAP file"
ctl download "$ID3" -o "$LAB_TMP/dl3.pcapng" >/dev/null
cmp "$(spool_path "$ID3")" "$LAB_TMP/dl3.pcapng" || fail "the download of the failed conversion differs from the spool"
rm -f "$STATE/filler3"

echo "== the failed record is on disk, and survives a restart"
soft_expect_eq "$(disk_field "$ID" status)" failed "on-disk status of the capture that filled the disk"
disk_field "$ID" error_message | grep -q "No space left on device" ||
  soft_fail "the on-disk record does not say 'No space left on device': '$(disk_field "$ID" error_message)'"
stop_ringcapd
start_ringcapd "$CONF"
soft_expect_eq "$(live_field "$ID" status)" failed "status after a restart"
live_field "$ID" error_message | grep -q "No space left on device" ||
  soft_fail "after a restart the record says: '$(live_field "$ID" error_message)'"
expect_readable "$SPOOL" "the file after the restart"
expect_serving "after the restart"
stop_ringcapd
finish_test
