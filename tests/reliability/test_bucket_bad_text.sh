#!/usr/bin/env bash
# A bucket server answers the upload of a capture with 403 and an error <Message> that is not
# valid UTF-8 (a lone 0xff, Latin-1 bytes, a multi-byte character cut at the end), as any
# S3-compatible server or a proxy's error page may. ringcapd stays up, the capture ends
# `failed` with a readable (valid UTF-8) error_message that shows the bad bytes escaped, its
# record on disk is valid JSON, and a restart does not resume (or loop on) the delivery.
source "$(dirname "$0")/common.sh"
require_lab
lab_up 85
start_bus
BUCKET_DIR=$LAB_TMP/bucket
mkdir -p "$BUCKET_DIR"
ip netns exec "$NS_CAP" /usr/bin/python3 "$RELIABILITY_DIR/scripted_bucket.py" \
  --directory "$BUCKET_DIR" --capture-put bad-utf8 >"$LAB_TMP/bucket.out" 2>"$LAB_TMP/bucket.log" &
LAB_PIDS="$LAB_PIDS $!"
wait_until 20 grep -q '^ready ' "$LAB_TMP/bucket.out"
ENDPOINT="http://$(awk '/^ready / {print $2}' "$LAB_TMP/bucket.out")"
CREDS=$LAB_TMP/aws-credentials
printf '[default]\naws_access_key_id = AKIDBADTEXT\naws_secret_access_key = notasecret\n' >"$CREDS"
CONFIG="[s3]
endpoint = \"$ENDPOINT\"
credentials_file = \"$CREDS\""
start_ringcapd "$CONFIG"
DEST="s3://ringcap-bad/text?region=us-east-1"
read_challenge() { cat "$BUCKET_DIR/objects/ringcap-bad_text_$1"; }
own_destination "$DEST" read_challenge

ID=$(json_field "$(ctl --json create --type full --colo-name LAB --destination-conf "$DEST" \
  --time-limit 30 --packet-limit 20 --destination-port 7560)" id)
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7560 --count 20 --size 200 >/dev/null
REC=$(wait_finished "$ID" 60)
expect_eq "$(json_field "$REC" status)" failed "status after the server refused with bad text"
MSG=$(json_field "$REC" error_message)
echo "info: error_message: $MSG"
case $MSG in *"access denied (AccessDenied)"*) ;; *) fail "error_message does not say access denied: $MSG" ;; esac
case $MSG in *'\xff'*) ;; *) fail "error_message does not show the bad byte 0xff escaped: $MSG" ;; esac
expect_serving "after the delivery failed with bad text"
# The record on disk: strict UTF-8 JSON, and the same status.
/usr/bin/python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
rec = json.loads(raw.decode("utf-8", errors="strict"))
assert rec["status"] == "failed", rec["status"]' "$(record_path "$ID")" ||
  fail "the record on disk is not valid UTF-8 JSON with status failed"
echo "ok: the record on disk is valid UTF-8 JSON, status failed"
PUTS=$(grep -c "^PUT .*pcap_$ID" "$BUCKET_DIR/requests.log")
expect_eq "$PUTS" 1 "uploads of the capture (403 is not retried)"

echo "== restart"
kill "$RINGCAPD_PID"
rc=0
wait "$RINGCAPD_PID" || rc=$?
expect_eq "$rc" 0 "ringcapd's exit code at stop"
start_ringcapd "$CONFIG"
expect_serving "after the restart"
expect_eq "$(live_field "$ID" status)" failed "status after the restart"
# Nothing to resume: no new upload; and the daemon is still there a moment later (the old
# crash came within milliseconds of the answer).
ctl --json list >/dev/null
expect_eq "$(grep -c "^PUT .*pcap_$ID" "$BUCKET_DIR/requests.log")" "$PUTS" "uploads after the restart"
expect_serving "after the restart, once more"
grep -Eq "terminate called|type_error|Aborted" "$LAB_TMP/ringcapd.log" && fail "ringcapd's log shows a crash"
echo "PASS"
