#!/usr/bin/env bash
# A bucket server that takes the upload of a capture and never answers (a stuck server):
#  - a delivery to another destination (file://) and a CreateOwnership are not held up by it:
#    both finish while the stuck delivery is still conversion_running;
#  - SIGTERM while the transfer hangs: ringcapd detaches its XDP program and exits within a
#    bounded time (the transfer is cancelled, not waited for up to its 120 s timeout x 4), and
#    the stuck capture stays conversion_running on disk, for the next daemon to resume.
source "$(dirname "$0")/common.sh"
require_lab
lab_up 86
start_bus
BUCKET_DIR=$LAB_TMP/bucket
mkdir -p "$BUCKET_DIR" "$LAB_TMP/files"
ip netns exec "$NS_CAP" /usr/bin/python3 "$RELIABILITY_DIR/scripted_bucket.py" \
  --directory "$BUCKET_DIR" --capture-put hang >"$LAB_TMP/bucket.out" 2>"$LAB_TMP/bucket.log" &
LAB_PIDS="$LAB_PIDS $!"
wait_until 20 grep -q '^ready ' "$LAB_TMP/bucket.out"
ENDPOINT="http://$(awk '/^ready / {print $2}' "$LAB_TMP/bucket.out")"
CREDS=$LAB_TMP/aws-credentials
printf '[default]\naws_access_key_id = AKIDSTUCK\naws_secret_access_key = notasecret\n' >"$CREDS"
start_ringcapd "[destinations]
file_roots = [\"$LAB_TMP/files\"]
[s3]
endpoint = \"$ENDPOINT\"
credentials_file = \"$CREDS\"
[rate_limits]
simple_interval_seconds = 0"
STUCK="s3://ringcap-stuck/x?region=us-east-1"
FILES="file://$LAB_TMP/files/fast"
read_s3_challenge() { cat "$BUCKET_DIR/objects/ringcap-stuck_x_$1"; }
read_file_challenge() { cat "$LAB_TMP/files/fast/$1"; }
own_destination "$STUCK" read_s3_challenge
own_destination "$FILES" read_file_challenge
full() {
  json_field "$(ctl --json create --type full --colo-name LAB --destination-conf "$1" \
    --time-limit 30 --packet-limit 10 --destination-port "$2")" id
}
send10() { in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport "$1" --count 10 --size 200 >/dev/null; }

echo "== a delivery stuck on the bucket server"
SID=$(full "$STUCK" 7570)
send10 7570
wait_status "$SID" conversion_running 30
wait_until 20 grep -q "^PUT .*pcap_$SID" "$BUCKET_DIR/requests.log"
echo "ok: the server holds the upload of $SID"

echo "== another destination meanwhile"
T0=$SECONDS
FID=$(full "$FILES" 7571)
send10 7571
REC=$(wait_finished "$FID" 30)
expect_eq "$(json_field "$REC" status)" success "the file:// delivery while the bucket is stuck"
timeout 20 "$RINGCAPCTL" --json ownership create "file://$LAB_TMP/files/other" >/dev/null ||
  fail "CreateOwnership was not answered within 20 s while the bucket is stuck"
echo "ok: CreateOwnership answered while the bucket is stuck"
echo "info: delivered and answered $((SECONDS - T0)) s after the stuck upload began"
expect_eq "$(live_field "$SID" status)" conversion_running "the stuck delivery meanwhile"

echo "== stop while the transfer hangs"
[ "$(xdp_programs)" -ge 1 ] || fail "no XDP program attached before the stop"
T0=$(date +%s.%N)
kill "$RINGCAPD_PID"
deadline=$((SECONDS + 15))
while kill -0 "$RINGCAPD_PID" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "ringcapd has not exited 15 s after SIGTERM (the stuck transfer is waited for)"
  sleep 0.05
done
rc=0
wait "$RINGCAPD_PID" || rc=$?
T1=$(date +%s.%N)
expect_eq "$rc" 0 "ringcapd's exit code"
echo "info: ringcapd stopped $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$T0" "$T1") s after SIGTERM"
expect_detached
[ ! -e "$LAB_TMP/state/attachments.json" ] || fail "attachments.json is left behind"
expect_eq "$(disk_field "$SID" status)" conversion_running "the stuck capture on disk (resumed by the next daemon)"
grep -Eq "terminate called|Aborted" "$LAB_TMP/ringcapd.log" && fail "ringcapd's log shows a crash"
echo "PASS"
