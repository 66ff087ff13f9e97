#!/usr/bin/env bash
# ringcap-merge with s3:// inputs, against a real S3-compatible server (s3rver, which checks
# SigV4; tests/s3/s3rver.js) on loopback, loaded with Debian's awscli. The result must equal
# mergecap's merge of the same files taken locally. Exit 77 = skipped (a failure if CI=true).
set -euo pipefail
source "$(dirname "$0")/../lib/check.sh" # fail, skip, expect_eq, expect_rc, expect_grep

BUILD_DIR=${BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
MERGE=${RINGCAP_MERGE:-$BUILD_DIR/tools/ringcap-merge}
HERE=$(cd "$(dirname "$0")" && pwd)
S3DIR=$(cd "$HERE/../s3" && pwd)


for tool in mergecap tshark python3 node aws; do
  command -v $tool >/dev/null || skip "needs $tool (wireshark-common, tshark, python3, nodejs, awscli)"
done
[ -d "$S3DIR/node_modules/@20minutes/s3rver" ] ||
  skip "needs @20minutes/s3rver in $S3DIR/node_modules (scripts/setup.sh runs npm ci there)"
[ -x "$MERGE" ] || fail "ringcap-merge not built at $MERGE"
TMP=$(mktemp -d /tmp/ringcap-merge-s3.XXXXXX)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"
python3 "$HERE/gen_inputs.py" in

KEY=AKIAMERGETEST SECRET=merge-test-secret-key
node --openssl-legacy-provider "$S3DIR/s3rver.js" --directory "$TMP/s3" --bucket captures \
  --access-key $KEY --secret-key $SECRET >server.out 2>server.err &
SERVER=$!
deadline=$((SECONDS + 30))
until grep -q '^ready ' server.out; do
  kill -0 $SERVER 2>/dev/null || fail "s3rver exited: $(cat server.err)"
  [ $SECONDS -lt $deadline ] || fail "s3rver not ready in 30 s: $(cat server.err)"
  sleep 0.1
done
ENDPOINT=http://$(sed -n 's/^ready //p' server.out)
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
put() { aws --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$1" "s3://captures/$2"; }

# The last packet of a_cut.pcap is cut short (a capture cut by a crash).
python3 - <<'EOF'
import struct
a = open("in/a_usec.pcap", "rb").read()
off, last = 24, 24
while off < len(a):
    last = off
    off += 16 + struct.unpack_from("<I", a, off + 8)[0]
open("in/a_clean.pcap", "wb").write(a[:last])
open("in/a_cut.pcap", "wb").write(a[:len(a) - 20])
EOF
put in/h1_host.pcapng incident/hostA/pcap_1.pcap
put in/h2_host.pcapng incident/hostB/pcap_2.pcap
put in/c_two_ifaces.pcapng incident/hostB/pcap_3.pcap
put in/a_cut.pcap incident/hostC/pcap_7.pcap
put in/b_nsec_be.pcap incident/hostC/pcap_4.pcapng # not *.pcap
put in/b_nsec_be.pcap incident/hostC/notes.pcap    # not pcap_*
put in/b_nsec_be.pcap incidentx/hostD/pcap_5.pcap  # another prefix
put in/b_nsec_be.pcap other/pcap_6.pcap
URL="s3://captures/incident?region=us-east-1&endpoint=$ENDPOINT"

packets() {
  tshark -r "$1" -o frame.generate_md5_hash:TRUE -T fields -e frame.time_epoch -e frame.len \
    -e frame.cap_len -e frame.interface_name -e frame.md5_hash -e frame.interface_description \
    2>/dev/null | awk -F'\t' -v OFS='\t' '$4 == "unknown" { $4 = "" } { print }'
}
run() {
  local want=$1 rc=0
  shift
  "$MERGE" "$@" >stdout 2>err || rc=$?
  [ "$rc" -eq "$want" ] || fail "ringcap-merge $*: exit code $rc, expected $want: $(cat err)"
}

# Objects in key order: hostA/pcap_1, hostB/pcap_2, hostB/pcap_3, hostC/pcap_7 (truncated).
# mergecap gets the local files reversed (it breaks ties toward the later input); descriptions
# differ (object URL vs local path), so they are compared apart.
run 0 -v -I none -w s3.pcapng "$URL"
grep -q "4 objects named pcap_\*.pcap" err || fail "listing: $(cat err)"
grep -q "warning: s3://captures/incident/hostC/pcap_7.pcap: truncated packet record" err ||
  fail "no warning for the truncated object: $(cat err)"
mergecap -I none -w ref.pcapng in/a_clean.pcap in/c_two_ifaces.pcapng in/h2_host.pcapng \
  in/h1_host.pcapng
packets s3.pcapng >s3.ours
packets ref.pcapng >s3.ref
cmp -s <(cut -f1-5 s3.ours) <(cut -f1-5 s3.ref) || {
  diff <(cut -f1-5 s3.ours) <(cut -f1-5 s3.ref) | head >&2
  fail "s3: packets differ from mergecap's"
}
echo "ok: s3: $(wc -l <s3.ours) packets equal"
want="s3://captures/incident/hostA/pcap_1.pcap s3://captures/incident/hostB/pcap_2.pcap \
s3://captures/incident/hostB/pcap_3.pcap s3://captures/incident/hostC/pcap_7.pcap "
got=$(cut -f6 s3.ours | sort -u | tr '\n' ' ')
[ "$got" = "$want" ] || fail "interface descriptions: '$got', expected '$want'"
echo "ok: s3: interfaces described by their object"

# S3 and local inputs mixed; credentials from a file.
creds=$TMP/credentials
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' $KEY $SECRET >"$creds"
(
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  run 0 --credentials-file "$creds" -w mixed.pcapng in/b_nsec_be.pcap "$URL"
)
mergecap -w ref_mixed.pcapng in/a_clean.pcap in/c_two_ifaces.pcapng in/h2_host.pcapng \
  in/h1_host.pcapng in/b_nsec_be.pcap
cmp -s <(packets mixed.pcapng | cut -f1-5) <(packets ref_mixed.pcapng | cut -f1-5) ||
  fail "mixed: packets differ from mergecap's"
echo "ok: s3 and local inputs mixed, credentials from a file"

# --strict: the truncated object is an error; nothing is left behind.
run 1 --strict -w strict.pcapng "$URL"
grep -q "s3://captures/incident/hostC/pcap_7.pcap: truncated packet record" err ||
  fail "--strict: $(cat err)"
[ ! -e strict.pcapng ] || fail "--strict: left the output file behind"
echo "ok: --strict names the object"

# Failures: wrong secret, empty prefix, missing bucket, bad URL, no credentials.
AWS_SECRET_ACCESS_KEY=wrong run 1 -w bad.pcapng "$URL"
expect_grep "s3://captures/incident/*: the credentials were refused (SignatureDoesNotMatch): check the secret access key" \
  "$(cat err)" "wrong secret"
run 1 -w bad.pcapng "s3://captures/nothing?region=us-east-1&endpoint=$ENDPOINT"
grep -q "no object named pcap_\*.pcap below s3://captures/nothing/" err || fail "empty: $(cat err)"
run 1 -w bad.pcapng "s3://nobucket/incident?region=us-east-1&endpoint=$ENDPOINT"
expect_grep "bucket \"nobucket\" does not exist at $ENDPOINT (NoSuchBucket)" "$(cat err)" "missing bucket"
run 1 -w bad.pcapng "s3://captures/incident?endpoint=$ENDPOINT"
grep -q "needs ?region=REGION" err || fail "no region: $(cat err)"
(
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  run 1 -w bad.pcapng --credentials-file "$TMP/missing" "$URL"
  expect_grep "AWS credentials file $TMP/missing: cannot open: No such file or directory" "$(cat err)" \
    "missing credentials"
)
[ ! -e bad.pcapng ] || fail "a failed S3 input left an output file"
echo "PASS"
