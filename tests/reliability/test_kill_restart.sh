#!/usr/bin/env bash
# kill -9 of ringcapd, then a restart, at three moments:
#  A. a simple capture running, with packets arriving at the moment of the kill;
#  B. a full capture running (into a file:// destination);
#  C. a full capture being delivered (conversion_running) to a bucket server that does not
#     answer (SIGSTOP), which answers again before the restart.
# After each restart: the record (running -> failed with the restart message; conversion ->
# delivered, success), the file (tshark and capinfos read it to its end; downloadable), and
# the daemon (the killed daemon's XDP program replaced by the new one's, new captures work).
source "$(dirname "$0")/common.sh"
require_lab
lab_up 81
start_s3rver ringcap-rel
start_bus
CREDS=$LAB_TMP/aws-credentials
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$CREDS"
mkdir -p "$LAB_TMP/files"
CONF="[destinations]
file_roots = [\"$LAB_TMP/files\"]
[s3]
endpoint = \"$S3_ENDPOINT\"
credentials_file = \"$CREDS\"
[rate_limits]
simple_interval_seconds = 0"
start_ringcapd "$CONF"
RESTART_MSG="ringcapd restarted during the capture; the file holds the packets captured until then"

# A paced flood from the generator namespace: datagrams to a port no capture matches as fast
# as they go, and RATE per second to MATCH_PORT; bounded; sets FLOOD_PID.
start_flood() {
  local port=$1 rate=$2
  ip netns exec "$NS_GEN" $FLOOD --dst "$ADDR_CAP" --other-port 7599 --match-port "$port" \
    --match-rate "$rate" --match-count 100000 --size 300 --max-seconds 60 >"$LAB_TMP/flood.out" &
  FLOOD_PID=$!
  LAB_PIDS="$LAB_PIDS $FLOOD_PID"
}
stop_flood() {
  kill "$FLOOD_PID" 2>/dev/null || true
  wait "$FLOOD_PID" || true
}
# Polls until the live record of ID counts more than N captured packets.
wait_live_captured_above() {
  local id=$1 n=$2 deadline=$((SECONDS + 30)) v
  while :; do
    v=$(live_field "$id" packets_captured)
    [ "$v" -gt "$n" ] && return 0
    [ $SECONDS -lt $deadline ] || fail "capture $id has $v packets, not more than $n, after 30 s"
    sleep 0.05
  done
}
# The checks after a restart of a capture that was running when ringcapd was killed.
expect_failed_by_restart() {
  local id=$1 what=$2 rec spool
  rec=$(ctl --json get "$id")
  spool=$(spool_path "$id")
  expect_eq "$(json_field "$rec" status)" failed "$what: status after the restart"
  expect_eq "$(json_field "$rec" error_message)" "$RESTART_MSG" "$what: error_message"
  expect_eq "$(json_field "$rec" stop_reason)" restart "$what: stop_reason"
  json_field "$rec" finished >/dev/null || fail "$what: no finished time"
  expect_eq "$(json_field "$rec" file_size)" "$(stat -c %s "$spool")" "$what: file_size in the record"
  expect_eq "$(disk_field "$id" status)" failed "$what: status in the on-disk record"
  expect_readable "$spool" "$what: the partial file"
  # What the record says was captured should be what the file holds (the kill came between
  # two periodic saves of the counters): the restarted daemon counts the file after READY.
  wait_until 60 grep -q "capture $id: recounted its file after the restart" "$LAB_TMP/ringcapd.log"
  rec=$(ctl --json get "$id")
  soft_expect_eq "$(json_field "$rec" packets_captured)" "$(packets_in "$spool")" \
    "$what: packets_captured in the record after the restart vs packets in the file"
  ctl download "$id" -o "$LAB_TMP/dl.pcapng" --force >/dev/null
  cmp "$spool" "$LAB_TMP/dl.pcapng" || fail "$what: the download differs from the file"
  echo "ok: $what: OpenCaptureFile hands out the partial file"
}

echo "== A. kill -9 during a running simple capture, packets in flight"
ID=$(json_field "$(ctl --json create --type simple --time-limit 300 --packet-limit 10000 \
  --destination-port 7500)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7500 --count 2000 --size 200 >/dev/null
# The periodic save (every 5 s) has written these 2000 to the on-disk record, and the file
# has them (flushed after each drain, within 20 ms).
wait_disk_captured "$ID" 2000 20
start_flood 7500 400
wait_live_captured_above "$ID" 2200
kill9_ringcapd
stop_flood
expect_eq "$(disk_field "$ID" status)" running "on-disk status left by the killed daemon"
expect_eq "$(xdp_programs)" 1 "XDP programs the killed daemon left on $IF_CAP"
RECORDED=$(disk_field "$ID" counters.captured)
start_ringcapd "$CONF"
expect_failed_by_restart "$ID" "simple capture"
IN_FILE=$(packets_in "$(spool_path "$ID")")
[ "$IN_FILE" -ge 2000 ] || fail "the partial file holds $IN_FILE packets, fewer than the 2000 flushed before the kill"
expect_eq "$(tshark_fields "$(spool_path "$ID")" udp.dstport | sort -u)" 7500 "ports of the packets in the partial file"
echo "info: the on-disk record counted $RECORDED captured packets at the kill (its last periodic save), the file holds $IN_FILE"
grep -q "removed the XDP program a previous ringcapd left on $IF_CAP" "$LAB_TMP/ringcapd.log" ||
  fail "the restarted daemon did not remove its predecessor's program"
expect_eq "$(xdp_programs)" 1 "XDP programs on $IF_CAP after the restart"
ID2=$(json_field "$(ctl --json create --type simple --time-limit 60 --packet-limit 10 --destination-port 7503)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7503 --count 10 --size 100 >/dev/null
REC=$(wait_finished "$ID2" 30)
expect_eq "$(json_field "$REC" status)" success "a new capture after the restart"
expect_eq "$(packets_in "$(output_path "$ID2")")" 10 "packets of the new capture"

echo "== B. kill -9 during a running full capture"
FDEST="file://$LAB_TMP/files/kill"
read_file_challenge() { cat "$LAB_TMP/files/kill/$1"; }
own_destination "$FDEST" read_file_challenge
ID=$(json_field "$(ctl --json create --type full --colo-name LAB --destination-conf "$FDEST" \
  --time-limit 300 --packet-limit 10000 --destination-port 7501)" id)
start_flood 7501 400
wait_live_captured_above "$ID" 500
kill9_ringcapd
stop_flood
expect_eq "$(disk_field "$ID" status)" running "on-disk status of the full capture at the kill"
start_ringcapd "$CONF"
expect_failed_by_restart "$ID" "full capture"
[ ! -e "$LAB_TMP/files/kill/$(hostname)/pcap_$ID.pcap" ] || fail "a failed capture was delivered"
echo "ok: nothing delivered for the failed full capture"

echo "== C. kill -9 during the delivery (conversion_running), server not answering"
DEST="s3://ringcap-rel/kill?region=us-east-1"
read_s3_challenge() { aws_s3 s3 cp "s3://ringcap-rel/kill/$1" -; }
own_destination "$DEST" read_s3_challenge
kill -STOP "$S3_PID"
S3_STOPPED=1
trap 'rc=$?; [ -n "${S3_STOPPED:-}" ] && kill -CONT "$S3_PID" 2>/dev/null; lab_down "$rc"' EXIT
# Above the 16 MiB multipart threshold.
ID=$(json_field "$(ctl --json create --type full --colo-name LAB --destination-conf "$DEST" \
  --time-limit 120 --byte-limit 20000000 --destination-port 7502)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7502 --count 15000 --size 1400 --max-seconds 60 >/dev/null
wait_status "$ID" conversion_running 60
expect_eq "$(disk_field "$ID" status)" conversion_running "on-disk status during the delivery"
# The conversion to PCAP runs first, then the upload hangs; the record still names the spool.
expect_eq "$(disk_field "$ID" file_name)" "$ID.pcapng" "the file in the record during the delivery"
cp "$(spool_path "$ID")" "$LAB_TMP/spool-at-kill.pcapng"
kill9_ringcapd
kill -CONT "$S3_PID"
S3_STOPPED=
expect_eq "$(disk_field "$ID" status)" conversion_running "on-disk status after the kill"
start_ringcapd "$CONF"
grep -q "capture $ID: resuming its delivery" "$LAB_TMP/ringcapd.log" || fail "the delivery was not resumed"
REC=$(wait_finished "$ID" 120)
expect_eq "$(json_field "$REC" status)" success "status of the resumed delivery"
expect_eq "$(json_field "$REC" location)" "s3://ringcap-rel/kill/$(hostname)/pcap_$ID.pcap" "location"
expect_eq "$(disk_field "$ID" status)" success "on-disk status after the delivery"
expect_eq "$(disk_field "$ID" file_name)" "$ID.pcap" "the file in the record after the delivery"
[ ! -e "$(spool_path "$ID")" ] || fail "the spool was kept after its conversion"
aws_s3 s3 cp "s3://ringcap-rel/kill/$(hostname)/pcap_$ID.pcap" "$LAB_TMP/object.pcap" >/dev/null
cmp "$(output_path "$ID")" "$LAB_TMP/object.pcap" || fail "the delivered object differs from the converted capture"
echo "ok: the object is byte for byte the converted capture ($(stat -c %s "$LAB_TMP/object.pcap") bytes)"
expect_nanosecond_pcap "$LAB_TMP/object.pcap" "the delivered object"
expect_readable "$LAB_TMP/object.pcap" "the delivered object"
# Every packet of the spool, in order, with its timestamp and lengths.
tshark_fields "$LAB_TMP/spool-at-kill.pcapng" frame.time_epoch frame.len frame.cap_len >"$LAB_TMP/spool.rows"
tshark_fields "$LAB_TMP/object.pcap" frame.time_epoch frame.len frame.cap_len >"$LAB_TMP/object.rows"
[ -s "$LAB_TMP/spool.rows" ] || fail "tshark read no packet of the spool"
cmp "$LAB_TMP/spool.rows" "$LAB_TMP/object.rows" || fail "the object's packets differ from the spool's"
echo "ok: the object holds the spool's $(wc -l <"$LAB_TMP/spool.rows") packets, timestamps to the nanosecond"
echo "info: multipart uploads left in the bucket by the killed daemon: $(uploads_left ringcap-rel)"
expect_serving "after three kills"
stop_ringcapd
expect_detached
finish_test
