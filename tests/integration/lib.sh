# Shared helpers for ringcap's integration tests (bash). Source it, then call lab_up.
#
# A lab is two network namespaces joined by a veth pair:
#   $NS_CAP  (capture side) : $IF_CAP  10.$NET.0.1/24  fd00:$NET::1/64   <- ringcap attaches here
#   $NS_GEN  (generator)    : $IF_GEN  10.$NET.0.2/24  fd00:$NET::2/64
# Nothing is created in the root namespace; lab_down (run on EXIT) deletes both namespaces.

source "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh" # fail, skip, expect_eq, expect_rc ...

BUILD_DIR=${BUILD_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
RINGCAP_DUMP=${RINGCAP_DUMP:-$BUILD_DIR/tools/ringcap-dump}
TRAFFIC="/usr/bin/python3 $(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/traffic.py"

# Called by fail (check.sh): the end of ringcapd's log.
on_fail() {
  if [ -n "${LAB_TMP:-}" ] && [ -s "$LAB_TMP/ringcapd.log" ]; then
    echo "--- last lines of ringcapd's log:"
    tail -n 30 "$LAB_TMP/ringcapd.log"
  fi
}

require_lab() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces and XDP)"
  command -v ip >/dev/null || skip "needs iproute2"
  command -v tshark >/dev/null || skip "needs tshark"
  [ -x "$RINGCAP_DUMP" ] || fail "ringcap-dump not built at $RINGCAP_DUMP"
}

# Runs on EXIT (a trap of the script's own passes the exit status as $1). Ends what the lab
# started. When the script passed, ringcapd's end is checked too: a ringcapd still running is
# stopped with stop_ringcapd's checks (exit code 0), and its log must hold no sanitizer report
# (ASan, LSan, UBSan: a report at shutdown must not pass). A failure there makes the script
# fail; otherwise the script's own exit status stands (under set -e a failing status of a
# command here would replace it, hence the explicit exit).
lab_down() {
  local rc=${1:-$?} problem=""
  if [ "$rc" -eq 0 ] && [ -n "${RINGCAPD_PID:-}" ]; then
    if kill -0 "$RINGCAPD_PID" 2>/dev/null; then
      ringcapd_stop_check
      problem=$STOP_PROBLEM
    fi
    if [ -z "$problem" ] && [ -n "${LAB_TMP:-}" ]; then
      problem=$(sanitizer_lines "$LAB_TMP/ringcapd.log" | head -n 20)
      [ -z "$problem" ] || problem="a sanitizer report in ringcapd's log: $problem"
    fi
    if [ -n "$problem" ]; then
      echo "FAIL (at the end of the test): $problem" >&2
      tail -n 30 "$LAB_TMP/ringcapd.log" >&2 || true
      rc=1
    fi
  fi
  if [ -n "${LAB_PIDS:-}" ]; then
    for pid in $LAB_PIDS; do kill "$pid" 2>/dev/null || true; done
  fi
  [ -n "${NS_CAP:-}" ] && ip netns del "$NS_CAP" 2>/dev/null || true
  [ -n "${NS_GEN:-}" ] && ip netns del "$NS_GEN" 2>/dev/null || true
  [ -n "${LAB_BPFFS:-}" ] && umount "$LAB_BPFFS" 2>/dev/null || true
  [ -n "${LAB_TMP:-}" ] && rm -rf "$LAB_TMP"
  [ -z "$problem" ] || exit "$rc"
  return 0
}

# lab_up NET: NET (1..254) picks the addresses; tests that run at the same time use
# different NETs.
lab_up() {
  NET=$1
  local tag="t$$"
  NS_CAP="ringcap-${tag}-cap"
  NS_GEN="ringcap-${tag}-gen"
  IF_CAP="rc${tag}c"
  IF_GEN="rc${tag}g"
  ADDR_CAP=10.$NET.0.1
  ADDR_GEN=10.$NET.0.2
  ADDR6_CAP=fd00:$NET::1
  ADDR6_GEN=fd00:$NET::2
  LAB_TMP=$(mktemp -d /tmp/ringcap-test.XXXXXX)
  LAB_PIDS=""
  trap lab_down EXIT
  # ip netns exec gives every command a fresh /sys, so libxdp's state (its dispatcher pins)
  # lives in a BPF file system of the lab's own, named by LIBXDP_BPFFS.
  LAB_BPFFS=$LAB_TMP/bpffs
  mkdir "$LAB_BPFFS"
  mount -t bpf bpf "$LAB_BPFFS"
  ip netns add "$NS_CAP" || skip "cannot create network namespaces"
  ip netns add "$NS_GEN"
  ip link add "$IF_CAP" netns "$NS_CAP" type veth peer name "$IF_GEN" netns "$NS_GEN"
  local ns if a a6
  for side in cap gen; do
    if [ $side = cap ]; then ns=$NS_CAP if=$IF_CAP a=$ADDR_CAP a6=$ADDR6_CAP
    else ns=$NS_GEN if=$IF_GEN a=$ADDR_GEN a6=$ADDR6_GEN; fi
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$a/24" dev "$if"
    ip -n "$ns" addr add "$a6/64" dev "$if" nodad
    ip -n "$ns" link set "$if" up
    # Native XDP on veth needs GRO on the receiving end for multi-buffer frames; it is harmless here.
    ip netns exec "$ns" ethtool -K "$if" gro on >/dev/null 2>&1 || true
  done
  # Static neighbours: no ARP/ND packets in the middle of a test's traffic.
  local mac_cap mac_gen
  mac_cap=$(ip -n "$NS_CAP" -j link show "$IF_CAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
  mac_gen=$(ip -n "$NS_GEN" -j link show "$IF_GEN" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
  ip -n "$NS_GEN" neigh replace "$ADDR_CAP" lladdr "$mac_cap" dev "$IF_GEN" nud permanent
  ip -n "$NS_GEN" neigh replace "$ADDR6_CAP" lladdr "$mac_cap" dev "$IF_GEN" nud permanent
  ip -n "$NS_CAP" neigh replace "$ADDR_GEN" lladdr "$mac_gen" dev "$IF_CAP" nud permanent
  ip -n "$NS_CAP" neigh replace "$ADDR6_GEN" lladdr "$mac_gen" dev "$IF_CAP" nud permanent
}

in_cap() { ip netns exec "$NS_CAP" "$@"; }
# Like in_cap, with a BPF file system mounted in the command's own mount namespace (ip netns
# exec gives each command a fresh /sys, and libxdp keeps its dispatcher state in bpffs).
in_cap_bpffs() { LIBXDP_BPFFS=$LAB_BPFFS ip netns exec "$NS_CAP" "$@"; }
in_gen() { ip netns exec "$NS_GEN" "$@"; }

# Starts ringcap-dump in the capture namespace in the background; sets DUMP_PID. It is
# ready once it logged that it is capturing (waits for that line, with a deadline).
start_dump() {
  local log=$LAB_TMP/dump.log
  : >"$log"
  # A simple command (not a function) so that $! is ringcap-dump itself: ip execs it.
  LIBXDP_BPFFS=$LAB_BPFFS ip netns exec "$NS_CAP" "$RINGCAP_DUMP" -v "$@" >"$LAB_TMP/dump.out" 2>"$log" &
  DUMP_PID=$!
  LAB_PIDS="$LAB_PIDS $DUMP_PID"
  local deadline=$((SECONDS + 20))
  until grep -q "capturing on" "$log"; do
    kill -0 "$DUMP_PID" 2>/dev/null || { cat "$log" >&2; fail "ringcap-dump exited early"; }
    [ $SECONDS -lt $deadline ] || { cat "$log" >&2; fail "ringcap-dump did not start in 20 s"; }
    sleep 0.05
  done
}

# Waits for ringcap-dump to exit (it stops at a limit), with a deadline; sets DUMP_RC.
wait_dump() {
  local timeout=${1:-30}
  local deadline=$((SECONDS + timeout))
  while kill -0 "$DUMP_PID" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { cat "$LAB_TMP/dump.log" >&2; fail "ringcap-dump still running after ${timeout} s"; }
    sleep 0.05
  done
  DUMP_RC=0
  wait "$DUMP_PID" || DUMP_RC=$?
}

# Stops ringcap-dump with SIGINT and waits for it.
stop_dump() {
  kill -INT "$DUMP_PID"
  wait_dump "${1:-30}"
}

# Prints one tshark field line per packet of a capture file.
tshark_fields() {
  local file=$1
  shift
  local args=()
  for f in "$@"; do args+=(-e "$f"); done
  tshark -r "$file" -T fields -E separator=' ' "${args[@]}" 2>/dev/null
}

# Fails unless FILE is classic PCAP with nanosecond timestamps (what ringcapd delivers and
# downloads by default): capinfos names the type and the precision, and tcpdump reads it.
expect_nanosecond_pcap() {
  local file=$1 what=$2
  expect_eq "$(capinfos -t -M "$file" | awk -F': *' '/File type/ {print $2}')" nsecpcap "$what: file type (capinfos -t)"
  capinfos "$file" | grep -q 'File timestamp precision: *nanoseconds (9)' ||
    fail "$what: capinfos does not report nanoseconds (9): $(capinfos "$file" | grep -i precision)"
  tcpdump -r "$file" -nn >/dev/null 2>"$LAB_TMP/tcpdump.err" ||
    fail "$what: tcpdump -r cannot read $file: $(cat "$LAB_TMP/tcpdump.err")"
}

# Fails unless FILE is pcapng (the output_format "pcapng" option).
expect_pcapng() {
  expect_eq "$(capinfos -t -M "$1" | awk -F': *' '/File type/ {print $2}')" pcapng "$2: file type (capinfos -t)"
}

# No XDP program may stay attached after a capture ends.
expect_detached() {
  if in_cap ip -d link show "$IF_CAP" | grep -q 'prog/xdp'; then
    in_cap ip -d link show "$IF_CAP" >&2
    fail "an XDP program is still attached to $IF_CAP"
  fi
  echo "ok: nothing attached to $IF_CAP"
}

RINGCAPD=${RINGCAPD:-$BUILD_DIR/daemon/ringcapd/ringcapd}
RINGCAPCTL=${RINGCAPCTL:-$BUILD_DIR/tools/ringcapctl}
SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Polls COMMAND... until it succeeds, for up to $1 seconds.
wait_until() {
  local timeout=$1 deadline
  shift
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "not true after ${timeout} s: $*"
    sleep 0.05
  done
}

# Starts a private system-like bus with the shipped policy; sets DBUS_SYSTEM_BUS_ADDRESS.
start_bus() {
  getent group ringcap >/dev/null || groupadd --system ringcap
  chmod 755 "$LAB_TMP"
  sed "s|@RINGCAP_DBUS_POLICY@|$SOURCE_DIR/systemd/org.ringcap.Ringcap1.conf|" \
    "$SOURCE_DIR/tests/systemd/dbus-system-test.conf.in" >"$LAB_TMP/bus.conf"
  dbus-daemon --config-file="$LAB_TMP/bus.conf" --address="unix:path=$LAB_TMP/bus" --nofork \
    2>"$LAB_TMP/bus.log" &
  LAB_PIDS="$LAB_PIDS $!"
  wait_until 20 test -S "$LAB_TMP/bus"
  export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$LAB_TMP/bus"
}

# start_ringcapd CONFIG-EXTRA: starts ringcapd on the lab's capture interface with a config
# whose [systems] names it, plus the TOML in CONFIG-EXTRA; sets RINGCAPD_PID.
start_ringcapd() {
  cat >"$LAB_TMP/ringcapd.toml" <<CONF
colo_name = "lab01"
colo_groups = ["LAB"]
state_directory = "$LAB_TMP/state"
[systems]
magic-transit = ["$IF_CAP"]
$1
CONF
  LIBXDP_BPFFS=$LAB_BPFFS RINGCAP_TEST_FAST_RETRIES=1 ip netns exec "$NS_CAP" \
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$RINGCAPD" --config "$LAB_TMP/ringcapd.toml" \
    >>"$LAB_TMP/ringcapd.log" 2>&1 &
  RINGCAPD_PID=$!
  LAB_PIDS="$LAB_PIDS $RINGCAPD_PID"
  local deadline=$((SECONDS + 20))
  until busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" status org.ringcap.Ringcap1 >/dev/null 2>&1; do
    kill -0 "$RINGCAPD_PID" 2>/dev/null || { cat "$LAB_TMP/ringcapd.log" >&2; fail "ringcapd exited"; }
    [ $SECONDS -lt $deadline ] || { cat "$LAB_TMP/ringcapd.log" >&2; fail "ringcapd not on the bus after 20 s"; }
    sleep 0.05
  done
}

# SIGTERM to ringcapd (not in a subshell: it waits for its child); sets STOP_PROBLEM to what
# is wrong with how it ended, empty when it exited with code 0 within 30 s and its log holds
# no sanitizer report.
ringcapd_stop_check() { stop_check ringcapd "$RINGCAPD_PID" "$LAB_TMP/ringcapd.log"; }

# stop_check NAME PID LOG: SIGTERM to a service the test started, then sets STOP_PROBLEM to
# what is wrong with how it ended (empty when it exited with code 0 within 30 s and LOG holds
# no sanitizer report). Shared by ringcapd and ringcap-gateway (tests/gateway/lib.sh).
stop_check() {
  local name=$1 pid=$2 log=$3 rc=0 deadline=$((SECONDS + 30)) lines
  STOP_PROBLEM=""
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL "$pid" 2>/dev/null || true
      STOP_PROBLEM="$name did not exit within 30 s of SIGTERM (killed)"
      return 0
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || rc=$?
  if [ "$rc" -ne 0 ]; then
    STOP_PROBLEM="$name exited with code $rc after SIGTERM (0 expected)"
    return 0
  fi
  lines=$(sanitizer_lines "$log" | head -n 20)
  [ -z "$lines" ] || STOP_PROBLEM="a sanitizer report in $name's log: $lines"
  return 0
}

# Stops ringcapd with SIGTERM and checks its end: exit code 0 within 30 s, no sanitizer report
# (runtime error:, AddressSanitizer, LeakSanitizer) in its log.
stop_ringcapd() {
  ringcapd_stop_check
  [ -z "$STOP_PROBLEM" ] || fail "$STOP_PROBLEM"
  echo "ok: ringcapd stopped: exit code 0, no sanitizer report in its log"
}

ctl() { "$RINGCAPCTL" "$@"; }

# A JSON field of ringcapctl's --json output in $1.
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# Starts s3rver on a free loopback port of the capture namespace (where ringcapd runs) with
# the given buckets; sets S3_ENDPOINT, S3_PID and the AWS_* variables for awscli. The server
# logs every request it answered to $S3_REQUESTS ("METHOD URL STATUS").
start_s3rver() {
  local modules=$SOURCE_DIR/tests/s3/node_modules
  [ -d "$modules" ] || skip "needs tests/s3/node_modules (npm ci --prefix tests/s3)"
  command -v aws >/dev/null || skip "needs awscli"
  mkdir -p "$LAB_TMP/s3"
  local args=()
  for b in "$@"; do args+=(--bucket "$b"); done
  S3_REQUESTS=$LAB_TMP/s3rver.requests
  ip netns exec "$NS_CAP" node --openssl-legacy-provider "$SOURCE_DIR/tests/s3/s3rver.js" --directory "$LAB_TMP/s3" \
    --request-log "$S3_REQUESTS" "${args[@]}" >"$LAB_TMP/s3rver.out" 2>"$LAB_TMP/s3rver.log" &
  S3_PID=$!
  LAB_PIDS="$LAB_PIDS $S3_PID"
  wait_until 20 grep -q '^ready ' "$LAB_TMP/s3rver.out"
  S3_ENDPOINT="http://$(awk '/^ready / {print $2}' "$LAB_TMP/s3rver.out")"
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
}
aws_s3() { in_cap aws --endpoint-url "$S3_ENDPOINT" "$@"; }
