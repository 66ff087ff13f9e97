#!/usr/bin/env bash
# Full captures end to end: ringcapd on a veth lab, an S3-compatible server that checks
# SigV4 signatures (s3rver) on loopback, and awscli as the independent reader.
#  - ownership: create, a wrong challenge fails, the right one succeeds; a full capture into
#    a destination without it is refused;
#  - a destination naming an S3 endpoint the operator did not configure is refused at
#    CreateOwnership and CreateCapture, and that server receives no request;
#  - a full capture delivered to <dir>/<hostname>/pcap_<id>.pcap, read back with awscli and
#    checked with tshark; the same into a file:// destination;
#  - a capture of more than 100 MiB delivered as a multipart upload, byte for byte;
#  - a wrong secret, a missing bucket and a stopped server each end `failed` with an
#    error_message that says why, and leave no multipart upload behind.
source "$(dirname "$0")/lib.sh"
require_lab
lab_up 76
start_s3rver ringcap-test ringcap-gone
start_bus
CREDS=$LAB_TMP/aws-credentials
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$CREDS"
mkdir -p "$LAB_TMP/files"
start_ringcapd "[destinations]
file_roots = [\"$LAB_TMP/files\"]
[s3]
endpoint = \"$S3_ENDPOINT\"
credentials_file = \"$CREDS\"
[rate_limits]
simple_interval_seconds = 0"
HOST=$(hostname)
DEST="s3://ringcap-test/pcaps?region=us-east-1"

# own DEST: passes the ownership challenge of DEST, reading the token with READER.
own() {
  local dest=$1 reader=$2 rec file token
  rec=$(ctl --json ownership create "$dest")
  expect_eq "$(json_field "$rec" status)" pending "ownership status after create"
  file=$(json_field "$rec" filename)
  [[ "$file" =~ ^ownership-challenge-[0-9a-f]+\.txt$ ]] || fail "challenge file name $file"
  token=$($reader "$file")
  rc=0
  ctl --json ownership validate "$dest" "not-the-token" >"$LAB_TMP/v" 2>&1 || rc=$?
  expect_eq "$rc" 1 "exit code of a wrong challenge"
  expect_eq "$(ctl --json ownership list | python3 -c 'import json,sys; print([o["status"] for o in json.load(sys.stdin) if o["id"] == sys.argv[1]][0])' "$(json_field "$rec" id)")" failed "ownership after a wrong challenge"
  rec=$(ctl --json ownership validate "$dest" "$token")
  expect_eq "$(json_field "$rec" status)" success "ownership after the right challenge"
  json_field "$rec" validated >/dev/null
}
read_s3_challenge() { aws_s3 s3 cp "s3://ringcap-test/pcaps/$1" -; }

# full_capture DEST EXTRA...: creates a full capture of UDP to port 7400; prints its id.
full_capture() {
  local dest=$1
  shift
  json_field "$(ctl --json create --type full --colo-name LAB --destination-conf "$dest" \
    --destination-port 7400 "$@")" id
}
# finish ID: waits for the capture to end; prints its final record (JSON).
finish() {
  ctl --json watch "$1" >/dev/null || true
  ctl --json get "$1"
}
send() { in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7400 "$@" >/dev/null; }

echo "== refused before ownership"
expect_rc 1 "a full capture without ownership" \
  ctl create --type full --colo-name LAB --destination-conf "$DEST" --time-limit 5
expect_grep "OwnershipRequired" "$RC_ERR" "a full capture without ownership"
expect_rc 1 "a full capture for another colo" \
  ctl create --type full --colo-name ORD --destination-conf "$DEST" --time-limit 5
expect_grep '"ORD" is neither this host' "$RC_ERR" "a full capture for another colo"

echo "== an endpoint the operator did not allow"
# A server of the caller's choosing: ringcapd must never send it a request (signed with the
# operator's key id), neither a challenge nor a delivery.
mkdir -p "$LAB_TMP/rogue"
# A simple command (not the in_cap function), so that $! is the server itself: ip execs it.
ip netns exec "$NS_CAP" /usr/bin/python3 "$SOURCE_DIR/tests/reliability/scripted_bucket.py" --directory "$LAB_TMP/rogue" \
  >"$LAB_TMP/rogue.out" 2>"$LAB_TMP/rogue.log" &
LAB_PIDS="$LAB_PIDS $!"
wait_until 20 grep -q '^ready ' "$LAB_TMP/rogue.out"
ROGUE="s3://ringcap-test/pcaps?region=us-east-1&endpoint=http://$(awk '/^ready / {print $2}' "$LAB_TMP/rogue.out")"
for call in "ownership create $ROGUE" \
  "create --type full --colo-name LAB --destination-conf $ROGUE --time-limit 5"; do
  rc=0
  # shellcheck disable=SC2086 # the call's words
  ctl $call 2>"$LAB_TMP/e" || rc=$?
  expect_eq "$rc" 1 "exit code of '$call'"
  # (ringcapctl names the field by its option, --destination-conf.)
  grep -Eq '(destination_conf|--destination-conf): endpoint "http://127.0.0.1:[0-9]*" is not allowed' "$LAB_TMP/e" &&
    grep -q "s3.allowed_endpoints" "$LAB_TMP/e" && grep -q "allowed here: $S3_ENDPOINT" "$LAB_TMP/e" ||
    fail "expected an error naming destination_conf and the rule: $(cat "$LAB_TMP/e")"
done
[ ! -s "$LAB_TMP/rogue/requests.log" ] ||
  fail "ringcapd sent requests to an endpoint it was not allowed to: $(cat "$LAB_TMP/rogue/requests.log")"
echo "ok: no request reached the endpoint that was not allowed"
# Naming the configured endpoint is allowed (a trailing / does not matter).
ctl --json ownership create "s3://ringcap-test/named?region=us-east-1&endpoint=$S3_ENDPOINT/" >/dev/null ||
  fail "a destination naming the configured endpoint was refused"
echo "ok: a destination naming the configured endpoint is accepted"

echo "== ownership of the bucket"
own "$DEST" read_s3_challenge

echo "== a full capture delivered to the bucket"
ID=$(full_capture "$DEST" --packet-limit 300 --time-limit 60)
send --count 300 --size 1200
REC=$(finish "$ID")
expect_eq "$(json_field "$REC" status)" success "full capture status"
expect_eq "$(json_field "$REC" location)" "s3://ringcap-test/pcaps/$HOST/pcap_$ID.pcap" "location"
aws_s3 s3 cp "s3://ringcap-test/pcaps/$HOST/pcap_$ID.pcap" "$LAB_TMP/got.pcap" >/dev/null
expect_nanosecond_pcap "$LAB_TMP/got.pcap" "the delivered object"
expect_eq "$(tshark_fields "$LAB_TMP/got.pcap" udp.dstport frame.len frame.cap_len | sort | uniq -c | sed 's/^ *//')" \
  "300 7400 1242 1242" "tshark on the object read back with awscli"

echo "== a full capture into a file:// destination"
FDEST="file://$LAB_TMP/files/team"
read_file_challenge() { cat "$LAB_TMP/files/team/$1"; }
own "$FDEST" read_file_challenge
ID=$(full_capture "$FDEST" --packet-limit 50 --time-limit 60)
send --count 50 --size 500
REC=$(finish "$ID")
expect_eq "$(json_field "$REC" status)" success "file:// capture status"
expect_nanosecond_pcap "$LAB_TMP/files/team/$HOST/pcap_$ID.pcap" "the delivered file"
expect_eq "$(capinfos -c -M "$LAB_TMP/files/team/$HOST/pcap_$ID.pcap" | awk '/Number of packets/ {print $NF}')" 50 "packets in the delivered file"
expect_eq "$(json_field "$REC" checksum)" "sha256:$(sha256sum "$LAB_TMP/files/team/$HOST/pcap_$ID.pcap" | cut -d' ' -f1)" "checksum of the delivered file"

echo "== the pcapng option: delivered as pcap_<id>.pcapng, with its interface"
ID=$(full_capture "$FDEST" --packet-limit 20 --time-limit 60 --output-format pcapng)
send --count 20 --size 500
REC=$(finish "$ID")
expect_eq "$(json_field "$REC" status)" success "pcapng capture status"
expect_eq "$(json_field "$REC" output_format)" pcapng "output_format"
expect_eq "$(json_field "$REC" file_name)" "pcap_$ID.pcapng" "file_name"
OBJ=$LAB_TMP/files/team/$HOST/pcap_$ID.pcapng
[ ! -e "$LAB_TMP/files/team/$HOST/pcap_$ID.pcap" ] || fail "a pcapng capture was also delivered as .pcap"
expect_pcapng "$OBJ" "the delivered pcapng file"
expect_eq "$(tshark_fields "$OBJ" frame.interface_name | sort | uniq -c | sed 's/^ *//')" "20 $IF_CAP" "interface names in the pcapng file"
(cd "$LAB_TMP" && ctl download "$ID" >/dev/null)
cmp "$OBJ" "$LAB_TMP/pcap_$ID.pcapng" || fail "download without -o: pcap_$ID.pcapng differs from the delivered file"
echo "ok: download without -o wrote pcap_$ID.pcapng"
rc=0
ctl create --type full --colo-name LAB --destination-conf "$FDEST" --time-limit 5 --output-format pcap-ng 2>"$LAB_TMP/e" || rc=$?
expect_eq "$rc" 1 "exit code of an unknown output format"
grep -q -- '--output-format: must be "pcap" or "pcapng" (got "pcap-ng")' "$LAB_TMP/e" || fail "unclear error: $(cat "$LAB_TMP/e")"

expect_rc 1 "CreateOwnership of file:///etc/x" ctl ownership create "file:///etc/x"
expect_grep "is not below an allowed directory" "$RC_ERR" "CreateOwnership of file:///etc/x"

echo "== more than 100 MiB, delivered as a multipart upload"
ID=$(full_capture "$DEST" --byte-limit 110000000 --time-limit 120)
# 1400-byte datagrams: no IP fragments (a non-first fragment has no port to match).
send --count 80000 --size 1400 --max-seconds 100
REC=$(finish "$ID")
expect_eq "$(json_field "$REC" status)" success "large capture status"
BYTES=$(json_field "$REC" file_size)
[ "$BYTES" -gt $((100 << 20)) ] || fail "the large capture holds only $BYTES bytes"
# What the server was asked (its request log, not ringcapd's): one CreateMultipartUpload, two
# parts or more, and a CompleteMultipartUpload, all answered 200; no plain PUT of the object.
KEY="/ringcap-test/pcaps/$HOST/pcap_$ID.pcap"
expect_eq "$(grep -cE "^POST $KEY\?uploads=? 200\$" "$S3_REQUESTS" || true)" 1 "CreateMultipartUpload requests for the large capture"
PARTS=$(grep -cE "^PUT $KEY\?(uploadId=[^&]+&)?partNumber=[0-9]+(&uploadId=[^ ]+)? 200\$" "$S3_REQUESTS" || true)
[ "$PARTS" -ge 2 ] || fail "the server stored $PARTS part(s) of the large capture: $(grep -F "$KEY" "$S3_REQUESTS")"
expect_eq "$(grep -cE "^POST $KEY\?uploadId=[^ &]+ 200\$" "$S3_REQUESTS" || true)" 1 "CompleteMultipartUpload requests"
expect_eq "$(grep -cE "^PUT $KEY [0-9]+\$" "$S3_REQUESTS" || true)" 0 "single PUTs of the large capture"
echo "ok: $BYTES bytes in a multipart upload of $PARTS parts (the server's request log)"
ctl download "$ID" -o "$LAB_TMP/local.pcap"
aws_s3 s3 cp "s3://ringcap-test/pcaps/$HOST/pcap_$ID.pcap" "$LAB_TMP/big.pcap" >/dev/null
cmp "$LAB_TMP/local.pcap" "$LAB_TMP/big.pcap" || fail "the object differs from the local capture"
echo "ok: the object is byte for byte the converted capture"
expect_nanosecond_pcap "$LAB_TMP/big.pcap" "the multipart object"
[ ! -e "$LAB_TMP/state/captures/$ID.pcapng" ] || fail "the spool was kept after the conversion"
rm -f "$LAB_TMP/local.pcap" "$LAB_TMP/big.pcap"

# s3rver has no ListMultipartUploads; it keeps uploads in progress in a directory per
# bucket, which must be empty (or absent).
no_uploads_left() {
  local n
  n=$( (find "$LAB_TMP/s3/$1" -mindepth 2 -maxdepth 2 -path '*uploads*' 2>/dev/null || true) | wc -l)
  expect_eq "$n" 0 "multipart uploads left in $1"
}
no_uploads_left ringcap-test

echo "== a wrong secret"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = WRONG-SECRET-x9\n' >"$CREDS"
# Above the 16 MiB multipart threshold: the refusal comes at CreateMultipartUpload.
ID=$(full_capture "$DEST" --byte-limit 20000000 --time-limit 60)
send --count 15000 --size 1400
REC=$(finish "$ID")
expect_eq "$(json_field "$REC" status)" failed "status with a wrong secret"
json_field "$REC" error_message | grep -q "credentials were refused" || fail "unhelpful error: $(json_field "$REC" error_message)"
grep -rq "WRONG-SECRET-x9" "$LAB_TMP/ringcapd.log" "$LAB_TMP/state" && fail "the secret leaked into logs or records"
ctl --json get "$ID" | grep -q "WRONG-SECRET-x9" && fail "the secret leaked into the record"
printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$CREDS"
no_uploads_left ringcap-test

echo "== a bucket that disappeared"
GONE="s3://ringcap-gone/x?region=us-east-1"
read_gone_challenge() { aws_s3 s3 cp "s3://ringcap-gone/x/$1" -; }
own "$GONE" read_gone_challenge
aws_s3 s3 rb s3://ringcap-gone --force >/dev/null
ID=$(full_capture "$GONE" --packet-limit 20 --time-limit 60)
send --count 20 --size 300
REC=$(finish "$ID")
expect_eq "$(json_field "$REC" status)" failed "status with a missing bucket"
json_field "$REC" error_message | grep -q 'does not exist' || fail "unhelpful error: $(json_field "$REC" error_message)"
no_uploads_left ringcap-gone

echo "== a stopped server"
kill "$S3_PID"
wait "$S3_PID" 2>/dev/null || true
ID=$(full_capture "$DEST" --byte-limit 20000000 --time-limit 60)
send --count 15000 --size 1400
REC=$(finish "$ID")
expect_eq "$(json_field "$REC" status)" failed "status with the server stopped"
MSG=$(json_field "$REC" error_message)
echo "$MSG" | grep -q "cannot connect" || fail "unhelpful error: $MSG"
echo "$MSG" | grep -q "kept in" || fail "the error does not say where the capture is kept: $MSG"
[ -s "$LAB_TMP/state/captures/$ID.pcap" ] || fail "the converted capture is gone"
echo "$MSG" | grep -q "captures/$ID.pcap " || fail "the error does not name the kept file: $MSG"
no_uploads_left ringcap-test
stop_ringcapd
expect_detached
echo "PASS"
