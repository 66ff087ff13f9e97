# Helpers of the reliability tests (faults, load, security), on top of the integration tests'
# lib.sh: source this file, then lab_up, start_bus, start_ringcapd as usual.

source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

RELIABILITY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUS_STRESS=${BUS_STRESS:-$BUILD_DIR/tests/ringcap-bus-stress}
FLOOD="python3 $RELIABILITY_DIR/flood.py"

require_bus_stress() {
  [ -x "$BUS_STRESS" ] || fail "ringcap-bus-stress not built at $BUS_STRESS (cmake --build the project)"
}

# The record of capture ID as ringcapd keeps it on disk, and one of its fields.
record_path() { echo "$LAB_TMP/state/captures/$1.json"; }
# The pcapng file a capture writes, kept as it is by failed captures and the pcapng option.
spool_path() { echo "$LAB_TMP/state/captures/$1.pcapng"; }
# The classic PCAP file a successful capture is converted to (the spool is then removed).
output_path() { echo "$LAB_TMP/state/captures/$1.pcap"; }
# KEY may name a nested field: counters.captured.
disk_field() {
  python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$(record_path "$1")" "$2"
}
# A field of the record that GetCapture answers now.
live_field() { json_field "$(ctl --json get "$1")" "$2"; }

# Packets in a capture file, as capinfos counts them.
packets_in() { capinfos -c -M "$1" | awk '/Number of packets/ {print $NF}'; }

# Fails unless tshark and capinfos both read FILE to its end without a complaint (a file cut
# short in the middle of a block makes tshark print an error and exit non-zero).
expect_readable() {
  local file=$1 what=$2 rc=0
  [ -s "$file" ] || fail "$what: $file is missing or empty"
  # (tshark warns about running as root on stderr: that line is not about the file.)
  tshark -r "$file" -q 2>&1 >/dev/null | grep -v '^Running as user "root"' >"$LAB_TMP/tshark.err" || true
  tshark -r "$file" -q >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 0 ] && [ ! -s "$LAB_TMP/tshark.err" ] ||
    fail "$what: tshark cannot read $file (exit $rc): $(cat "$LAB_TMP/tshark.err")"
  capinfos "$file" >/dev/null 2>"$LAB_TMP/capinfos.err" ||
    fail "$what: capinfos cannot read $file: $(cat "$LAB_TMP/capinfos.err")"
  echo "ok: $what: tshark and capinfos read $(packets_in "$file") packets"
}

# The three checks of docs/reliability.md for capture ID once it finished: the record as
# GetCapture answers it and as it lies on disk agree (status, packets captured), and the
# capture file the record names is read to its end by tshark and capinfos, holding packets_captured packets.
expect_record_and_file() {
  local id=$1 what=$2 live status captured
  live=$(ctl --json get "$id") || fail "$what: GetCapture $id failed"
  status=$(json_field "$live" status)
  captured=$(json_field "$live" packets_captured)
  case $status in success | failed) ;; *) fail "$what: capture $id is '$status', not finished" ;; esac
  expect_eq "$(disk_field "$id" status)" "$status" "$what: status on disk = GetCapture's"
  expect_eq "$(disk_field "$id" counters.captured)" "$captured" "$what: packets captured on disk = GetCapture's"
  local file
  file="$LAB_TMP/state/captures/$(disk_field "$id" file_name)" # the spool, or what it became
  expect_readable "$file" "$what"
  expect_eq "$(packets_in "$file")" "$captured" "$what: packets in the file = packets_captured"
}

# Polls until capture ID has status STATUS (the record GetCapture answers), for up to $3 s.
wait_status() {
  local id=$1 status=$2 timeout=${3:-60} deadline now=""
  deadline=$((SECONDS + timeout))
  while :; do
    now=$(live_field "$id" status 2>/dev/null || true)
    [ "$now" = "$status" ] && return 0
    [ $SECONDS -lt $deadline ] || fail "capture $id is '$now', not '$status', after ${timeout} s"
    sleep 0.05
  done
}

# Polls until capture ID has left pending/running/conversion_*; prints its record.
wait_finished() {
  local id=$1 timeout=${2:-120} deadline s
  deadline=$((SECONDS + timeout))
  while :; do
    s=$(live_field "$id" status 2>/dev/null || true)
    case $s in success | failed) break ;; esac
    [ $SECONDS -lt $deadline ] || fail "capture $id still '$s' after ${timeout} s"
    sleep 0.1
  done
  ctl --json get "$id"
}

# The daemon serves: its process lives, it owns its name and answers ListCaptures.
expect_serving() {
  kill -0 "$RINGCAPD_PID" 2>/dev/null || fail "ringcapd (pid $RINGCAPD_PID) is gone: $1"
  busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" status org.ringcap.Ringcap1 >/dev/null 2>&1 ||
    fail "org.ringcap.Ringcap1 has no owner: $1"
  ctl --json list >/dev/null || fail "ListCaptures was not answered: $1"
  echo "ok: ringcapd serves ($1)"
}

# kill -9 of ringcapd; waits for the process and for the bus to drop its name.
kill9_ringcapd() {
  local rc=0
  kill -9 "$RINGCAPD_PID"
  wait "$RINGCAPD_PID" 2>/dev/null || rc=$?
  expect_eq "$rc" 137 "ringcapd's exit status after SIGKILL (128 + 9)"
  local deadline=$((SECONDS + 20))
  while busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" status org.ringcap.Ringcap1 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "the bus name is still owned 20 s after kill -9"
    sleep 0.05
  done
  echo "ok: ringcapd killed with SIGKILL"
}

# XDP programs on the capture interface (the dispatcher counts as one).
xdp_programs() { in_cap ip -d link show "$IF_CAP" | grep -c 'prog/xdp' || true; }

# Peak and current resident memory of a process, in KiB.
vm_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# Starts s3rver again on the port it had and on the same directory (after it was stopped);
# sets S3_PID. Prints nothing; the caller measures the time it takes.
restart_s3rver_same_port() {
  local port=${S3_ENDPOINT##*:} args=()
  for b in "$@"; do args+=(--bucket "$b"); done
  : >"$LAB_TMP/s3rver.out"
  ip netns exec "$NS_CAP" node --openssl-legacy-provider "$SOURCE_DIR/tests/s3/s3rver.js" \
    --directory "$LAB_TMP/s3" --port "$port" "${args[@]}" \
    >"$LAB_TMP/s3rver.out" 2>>"$LAB_TMP/s3rver.log" &
  S3_PID=$!
  LAB_PIDS="$LAB_PIDS $S3_PID"
  wait_until 20 grep -q '^ready ' "$LAB_TMP/s3rver.out"
  [ "http://$(awk '/^ready / {print $2}' "$LAB_TMP/s3rver.out")" = "$S3_ENDPOINT" ] ||
    fail "s3rver came back on $(cat "$LAB_TMP/s3rver.out"), not $S3_ENDPOINT"
}

# Multipart uploads s3rver still holds for BUCKET (uploads in progress or abandoned).
uploads_left() {
  (find "$LAB_TMP/s3/$1" -mindepth 2 -maxdepth 2 -path '*uploads*' 2>/dev/null || true) | wc -l
}

# Passes the ownership challenge of DEST; READER prints the challenge file's content given
# its name.
own_destination() {
  local dest=$1 reader=$2 rec token
  rec=$(ctl --json ownership create "$dest")
  token=$($reader "$(json_field "$rec" filename)")
  rec=$(ctl --json ownership validate "$dest" "$token")
  expect_eq "$(json_field "$rec" status)" success "ownership of $dest"
}

# ringcapd writes the on-disk record of a capture at every status change and every 5 s while
# it runs: waits until the on-disk packets_captured reaches N.
wait_disk_captured() {
  local id=$1 n=$2 timeout=${3:-30} deadline v
  deadline=$((SECONDS + timeout))
  while :; do
    v=$(disk_field "$id" counters.captured 2>/dev/null || echo 0)
    [ -n "$v" ] && [ "$v" -ge "$n" ] && return 0
    [ $SECONDS -lt $deadline ] || fail "the on-disk record of $id says $v packets, not $n, after ${timeout} s"
    sleep 0.1
  done
}

# A failed check that should not stop the test: the checks after it still run and report,
# and finish_test fails the test at the end.
SOFT_FAILURES=()
soft_fail() {
  echo "FAIL (the test goes on): $*" >&2
  SOFT_FAILURES+=("$*")
}
soft_expect_eq() {
  if [ "$1" = "$2" ]; then echo "ok: $3 = $2"; else soft_fail "$3: expected '$2', got '$1'"; fi
}
finish_test() {
  if [ ${#SOFT_FAILURES[@]} -gt 0 ]; then
    printf '  - %s\n' "${SOFT_FAILURES[@]}" >&2
    fail "${#SOFT_FAILURES[@]} check(s) failed (above)"
  fi
  echo "PASS"
}
