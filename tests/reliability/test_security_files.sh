#!/usr/bin/env bash
# Files, destinations and secrets (the D-Bus caller table is SecurityCallersTest.cpp):
#  1. file:// confinement, end to end through CreateOwnership: a table of hostile
#     destination_conf values (outside the roots, "..", a sibling with the root as a prefix,
#     links out of the root - absolute, relative, chained -, encodings, control characters,
#     an authority, the root itself) is refused and nothing appears outside the root; a
#     directory swapped for a link after validation, and a link planted where ringcapd
#     creates <hostname>/, make the delivery fail without writing outside;
#  2. secrets: an S3 credentials file with a recognizable secret key and session token;
#     ownership, a delivered capture, a delivery to a missing bucket and one with a wrong
#     secret (also recognizable); neither secret may appear in ringcapd's (debug) log, the
#     state directory, the bus log, or anything ringcapctl printed (--json and errors);
#  3. modes: nothing under the state directory is open to others, records and files are
#     0640, directories 0750; delivered file:// objects and challenges 0640 in 0750
#     directories; the unprivileged user can read none of it, a ringcap member can read the
#     capture files and records.
source "$(dirname "$0")/common.sh"
require_lab
command -v setpriv >/dev/null || skip "needs setpriv"
lab_up 88
getent group ringcap >/dev/null || groupadd --system ringcap
id ringcap-test-user >/dev/null 2>&1 ||
  useradd --system --no-create-home --shell /usr/sbin/nologin ringcap-test-user
id ringcap-test-member >/dev/null 2>&1 ||
  useradd --system --no-create-home --shell /usr/sbin/nologin --groups ringcap ringcap-test-member
in_ringcap() { id -nG "$1" | tr ' ' '\n' | grep -qx ringcap; }
in_ringcap ringcap-test-member || usermod --append --groups ringcap ringcap-test-member
in_ringcap ringcap-test-user && fail "ringcap-test-user must not be in the group ringcap"
as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups "$@"; }

SECRET="rcTestSecretKey$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
TOKEN="rcTestSessionToken$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
WRONG="rcTestWrongSecret$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
KEY_ID=RINGCAPTESTKEY
# s3rver with the test's own key pair (start_s3rver knows only S3RVER/S3RVER).
mkdir -p "$LAB_TMP/s3"
ip netns exec "$NS_CAP" node --openssl-legacy-provider "$SOURCE_DIR/tests/s3/s3rver.js" \
  --directory "$LAB_TMP/s3" --bucket ringcap-sec --bucket ringcap-gone \
  --access-key "$KEY_ID" --secret-key "$SECRET" >"$LAB_TMP/s3rver.out" 2>"$LAB_TMP/s3rver.log" &
S3_PID=$!
LAB_PIDS="$LAB_PIDS $S3_PID"
wait_until 20 grep -q '^ready ' "$LAB_TMP/s3rver.out"
S3_ENDPOINT="http://$(awk '/^ready / {print $2}' "$LAB_TMP/s3rver.out")"
export AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=us-east-1
start_bus
CREDS=$LAB_TMP/aws-credentials
write_creds() {
  printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n' \
    "$KEY_ID" "$1" "$TOKEN" >"$CREDS"
  chmod 600 "$CREDS"
}
write_creds "$SECRET"
ROOT=$LAB_TMP/files
OUTSIDE=$LAB_TMP/outside
touch "$LAB_TMP/marker" # older than anything ringcapd writes
mkdir -p "$ROOT" "$OUTSIDE" "$ROOT-evil"
# ringcapd with debug logging, so that the grep below also covers what it logs at -v.
printf '#!/bin/sh\nexec %s -v "$@"\n' "$RINGCAPD" >"$LAB_TMP/ringcapd-verbose"
chmod 755 "$LAB_TMP/ringcapd-verbose"
RINGCAPD=$LAB_TMP/ringcapd-verbose
CONF="[destinations]
file_roots = [\"$ROOT\"]
[s3]
endpoint = \"$S3_ENDPOINT\"
credentials_file = \"$CREDS\"
[rate_limits]
simple_interval_seconds = 0"
start_ringcapd "$CONF"
OUTS=$LAB_TMP/outputs
mkdir "$OUTS"
n=0
# Runs ringcapctl, keeping everything it printed for the secret grep; returns its exit code.
ctlk() {
  n=$((n + 1))
  local rc=0
  ctl "$@" >"$OUTS/$n.out" 2>"$OUTS/$n.err" || rc=$?
  cat "$OUTS/$n.out"
  return $rc
}
expect_nothing_outside() {
  local found
  found=$(find "$OUTSIDE" "$ROOT-evil" /etc -newer "$LAB_TMP/marker" -name 'ownership-challenge-*' 2>/dev/null; find "$OUTSIDE" "$ROOT-evil" -mindepth 1 2>/dev/null)
  [ -z "$found" ] || fail "$1: written outside the allowed root: $found"
}

echo "== 1. file:// confinement through CreateOwnership"
ln -s "$OUTSIDE" "$ROOT/link-out"
ln -s ../outside "$ROOT/rel-out"
ln -s "$ROOT/chain2" "$ROOT/chain"
ln -s "$OUTSIDE" "$ROOT/chain2"
ln -s .. "$ROOT/up"
mkdir "$ROOT/real"
ln -s "$ROOT/real" "$ROOT/inner-link"
LONG=$(printf 'a%.0s' $(seq 1 2100))
NL=$'\n'
# value | what the refusal must say (a fragment of the message)
while IFS='|' read -r value want; do
  value=${value//@ROOT@/$ROOT}
  value=${value//@NL@/$NL}
  value=${value//@LONG@/$LONG}
  rc=0
  ctlk ownership create "$value" >/dev/null || rc=$?
  err=$(cat "$OUTS/$n.err")
  [ "$rc" -eq 1 ] || fail "destination_conf '$value' was accepted (exit $rc): $(cat "$OUTS/$n.out")"
  echo "$err" | grep -q "(org.ringcap.Ringcap1.Error.InvalidRequest)" || fail "'$value': not InvalidRequest: $err"
  echo "$err" | grep -qF -- "$want" || fail "'$value': the refusal does not say '$want': $err"
  expect_nothing_outside "$value"
  echo "ok: refused ${value:0:90}: ${err:0:160}"
done <<'TABLE'
file:///etc/ringcap-escape|is not below an allowed directory
file://@ROOT@/../outside|must not contain "." or ".." segments
file://@ROOT@/a/../../outside|must not contain "." or ".." segments
file://@ROOT@/./x|must not contain "." or ".." segments
file://@ROOT@//x|must not contain empty segments
file://@ROOT@-evil/x|is not below an allowed directory
file://@ROOT@/link-out|through a symbolic link
file://@ROOT@/link-out/sub/dir|through a symbolic link
file://@ROOT@/rel-out/sub|through a symbolic link
file://@ROOT@/chain/sub|through a symbolic link
file://@ROOT@/up/outside|through a symbolic link
file://@ROOT@/x%2F..%2F..%2Foutside|must not contain
file://@ROOT@/x?y=1|must not contain
file://@ROOT@/x#frag|must not contain
file://@ROOT@/x\..\..\outside|must not contain
file://@ROOT@/x@NL@y|control characters
file://localhost@ROOT@/x|file:///absolute/directory
file:relative/x|must start with s3:// or file://
file://@ROOT@/@LONG@|at most 2048 bytes
TABLE

# A link inside the root to a directory inside the root: CreateOwnership is refused when the
# challenge is written (delivery opens every component with O_NOFOLLOW), nothing lands outside
# the root and the daemon answers.
rc=0
ctlk ownership create "file://$ROOT/inner-link/x" >/dev/null || rc=$?
expect_eq "$rc" 1 "exit code of CreateOwnership through a link inside the root"
expect_grep "/inner-link is a symbolic link or not a directory" "$(cat "$OUTS/$n.err")" \
  "CreateOwnership through a link inside the root"
[ -z "$(find "$ROOT/real" -mindepth 1)" ] || fail "a challenge was written through the inner link: $(find "$ROOT/real" -mindepth 1)"
expect_nothing_outside "inner link"
expect_serving "after CreateOwnership through a link inside the root"
# The root itself, with and without a trailing slash: accepted, the challenge lands in the
# root, and ringcapd survives it (bug 2 aborted it).
for value in "file://$ROOT" "file://$ROOT/"; do
  rc=0
  ctlk --json ownership create "$value" >/dev/null || rc=$?
  if ! kill -0 "$RINGCAPD_PID" 2>/dev/null; then
    wait "$RINGCAPD_PID" 2>/dev/null || true # exit status: a crash, already a failure
    soft_fail "CreateOwnership of the allowed root itself ('$value') killed ringcapd: $(grep -A1 'terminate called' "$LAB_TMP/ringcapd.log" | tail -2 | tr '\n' ' ')"
    start_ringcapd "$CONF"
    continue
  fi
  if [ "$rc" -ne 0 ]; then
    soft_fail "CreateOwnership of the root itself ('$value'): exit code $rc, expected 0: $(cat "$OUTS/$n.err")"
  else
    challenge=$(json_field "$(cat "$OUTS/$n.out")" filename)
    if [ -f "$ROOT/$challenge" ]; then
      echo "ok: '$value': accepted, the challenge $challenge is in the root"
    else
      soft_fail "'$value': accepted, but the challenge '$challenge' is not in the root"
    fi
  fi
  expect_serving "after CreateOwnership of the root itself ($value)"
  expect_nothing_outside "$value"
done

echo "== 1b. a directory swapped for a link after validation, a planted <hostname> link"
HOST=$(hostname)
read_file() { cat "$1/$2"; }
full() {
  json_field "$(ctlk --json create --type full --colo-name LAB --destination-conf "$1" \
    --time-limit 60 --packet-limit 5 --destination-port "$2")" id
}
send5() { in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport "$1" --count 5 --size 100 >/dev/null; }
mkdir "$ROOT/swap"
own_destination "file://$ROOT/swap" "read_file $ROOT/swap"
ID=$(full "file://$ROOT/swap" 7581)
mv "$ROOT/swap" "$ROOT/swap.old"
ln -s "$OUTSIDE" "$ROOT/swap"
send5 7581
REC=$(wait_finished "$ID" 60)
expect_eq "$(json_field "$REC" status)" failed "a delivery into a directory swapped for a link"
expect_grep "leads out of the allowed directory" "$(json_field "$REC" error_message)" "the swapped directory's error_message"
expect_grep "through a symbolic link" "$(json_field "$REC" error_message)" "the swapped directory's error_message"
expect_nothing_outside "swapped directory"
rc=0
ctlk create --type full --colo-name LAB --destination-conf "file://$ROOT/swap" --time-limit 5 >/dev/null || rc=$?
expect_eq "$rc" 1 "a new capture into the swapped directory"
grep -q "through a symbolic link" "$OUTS/$n.err" || fail "not refused for the link: $(cat "$OUTS/$n.err")"
mkdir "$ROOT/plant"
own_destination "file://$ROOT/plant" "read_file $ROOT/plant"
ln -s "$OUTSIDE" "$ROOT/plant/$HOST"
ID=$(full "file://$ROOT/plant" 7582)
send5 7582
REC=$(wait_finished "$ID" 60)
expect_eq "$(json_field "$REC" status)" failed "a delivery through a planted <hostname> link"
expect_grep "is a symbolic link or not a directory" "$(json_field "$REC" error_message)" "the planted link's error_message"
expect_nothing_outside "planted link"

echo "== 1c. a delivery that succeeds (for the modes below)"
own_destination "file://$ROOT/ok/team" "read_file $ROOT/ok/team"
OKID=$(full "file://$ROOT/ok/team" 7586)
send5 7586
expect_eq "$(json_field "$(wait_finished "$OKID" 60)" status)" success "a file:// delivery"
expect_record_and_file "$OKID" "the delivered capture"

echo "== 2. secrets"
DEST="s3://ringcap-sec/sec?region=us-east-1"
read_s3() { in_cap aws --endpoint-url "$S3_ENDPOINT" s3 cp "s3://ringcap-sec/sec/$1" -; }
rec=$(ctlk --json ownership create "$DEST")
token=$(read_s3 "$(json_field "$rec" filename)")
ctlk --json ownership validate "$DEST" "$token" >/dev/null
ctlk --json ownership list >/dev/null
ID=$(full "$DEST" 7583)
send5 7583
expect_eq "$(json_field "$(wait_finished "$ID" 60)" status)" success "a delivery with the secret"
ctlk --json get "$ID" >/dev/null
ctlk get "$ID" >/dev/null
ctlk --json watch "$ID" >/dev/null
GONE="s3://ringcap-gone/x?region=us-east-1"
rec=$(ctlk --json ownership create "$GONE")
token=$(in_cap aws --endpoint-url "$S3_ENDPOINT" s3 cp "s3://ringcap-gone/x/$(json_field "$rec" filename)" -)
ctlk --json ownership validate "$GONE" "$token" >/dev/null
in_cap aws --endpoint-url "$S3_ENDPOINT" s3 rb s3://ringcap-gone --force >/dev/null
ID=$(full "$GONE" 7584)
send5 7584
REC=$(wait_finished "$ID" 60)
expect_eq "$(json_field "$REC" status)" failed "a delivery to a missing bucket"
ctlk --json get "$ID" >/dev/null
write_creds "$WRONG"
ID=$(full "$DEST" 7585)
send5 7585
REC=$(wait_finished "$ID" 60)
expect_eq "$(json_field "$REC" status)" failed "a delivery with a wrong secret"
REFUSED="the credentials were refused (SignatureDoesNotMatch): check the secret access key"
expect_grep "$REFUSED" "$(json_field "$REC" error_message)" "a delivery with a wrong secret"
ctlk --json get "$ID" >/dev/null
ctlk get "$ID" >/dev/null
rc=0
ctlk ownership create "s3://ringcap-sec/other?region=us-east-1" >/dev/null || rc=$?
expect_eq "$rc" 1 "exit code of CreateOwnership with the wrong secret"
expect_grep "$REFUSED" "$(cat "$OUTS/$n.err")" "CreateOwnership with the wrong secret"
ctlk --json list >/dev/null
ctlk list >/dev/null
ctlk --json ownership list >/dev/null
write_creds "$SECRET"
for s in "$SECRET" "$WRONG" "$TOKEN"; do
  hits=$(grep -rlaF -- "$s" "$LAB_TMP/ringcapd.log" "$LAB_TMP/state" "$LAB_TMP/bus.log" "$OUTS" "$ROOT" 2>/dev/null || true)
  [ -z "$hits" ] || fail "a secret (${s:0:14}...) appears in: $hits"
done
echo "ok: no secret in ringcapd's log ($(wc -l <"$LAB_TMP/ringcapd.log") lines, debug level), the state directory, the bus log or $n ringcapctl outputs"

echo "== 3. modes"
world=$(find "$LAB_TMP/state" -perm /o=rwx -printf '%m %p\n')
[ -z "$world" ] || fail "open to others under the state directory: $world"
bad=$(find "$LAB_TMP/state" -mindepth 1 \( -type f ! -perm 0640 -o -type d ! -perm 0750 \) -printf '%m %p\n')
[ -z "$bad" ] || fail "modes other than 0640 (files) and 0750 (directories): $bad"
echo "ok: $(find "$LAB_TMP/state" -mindepth 1 | wc -l) entries under the state directory: files 0640, directories 0750"
GID=$(getent group ringcap | cut -d: -f3)
notgroup=$(find "$LAB_TMP/state" -name '*.pcap*' ! -gid "$GID" -printf '%p\n')
[ -z "$notgroup" ] || fail "capture files not of the group ringcap: $notgroup"
OWNED=$(find "$ROOT" -path "$ROOT/swap.old" -prune -o -newer "$LAB_TMP/marker" -print | grep -v -e "^$ROOT\$" -e "^$ROOT/real\$" -e "^$ROOT/plant\$" -e "^$ROOT/swap\$" || true)
badroot=$(for p in $OWNED; do
  [ -L "$p" ] && continue
  m=$(stat -c %a "$p")
  if [ -d "$p" ]; then [ "$m" = 750 ] || echo "$m $p"; else [ "$m" = 640 ] || echo "$m $p"; fi
done)
[ -z "$badroot" ] || fail "delivered objects or challenge directories with other modes: $badroot"
echo "ok: what ringcapd wrote below the file root: files 0640, directories 0750 ($(echo "$OWNED" | wc -w) entries, links skipped)"
for p in $OWNED; do [ -L "$p" ] || echo "info:   $(stat -c '%a %U:%G' "$p") ${p#"$ROOT"/}"; done
expect_eq "$(stat -c %a "$ROOT/ok/team/$HOST/pcap_$OKID.pcap")" 640 "mode of a delivered object"
expect_eq "$(stat -c %a "$ROOT/ok/team/$HOST")" 750 "mode of the <hostname> directory ringcapd made"
expect_eq "$(stat -c %a "$ROOT/ok")" 750 "mode of a destination directory ringcapd made"
as_user ringcap-test-user cat "$ROOT/ok/team/$HOST/pcap_$OKID.pcap" >/dev/null 2>&1 &&
  fail "the unprivileged user can read a delivered object"
SAMPLE_REC=$(ls "$LAB_TMP/state/captures/"*.json | head -1)
SAMPLE_CAP=$(ls "$LAB_TMP/state/captures/"*.pcap* | head -1)
as_user ringcap-test-user cat "$SAMPLE_REC" >/dev/null 2>&1 && fail "the unprivileged user can read a record"
as_user ringcap-test-user cat "$SAMPLE_CAP" >/dev/null 2>&1 && fail "the unprivileged user can read a capture"
as_user ringcap-test-user ls "$LAB_TMP/state/captures" >/dev/null 2>&1 && fail "the unprivileged user can list the captures"
echo "ok: the unprivileged user can read nothing under the state directory"
as_user ringcap-test-member cat "$SAMPLE_CAP" >/dev/null || fail "a ringcap member cannot read a capture file"
as_user ringcap-test-member cat "$SAMPLE_REC" >/dev/null || fail "a ringcap member cannot read a record"
echo "ok: a ringcap member can read capture files and records"
expect_serving "at the end"
finish_test
