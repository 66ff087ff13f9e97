# The three-host fleet lab (bash; docs/fleet.md, "Integration test"). Source it, then:
#
#   fl_require; fl_up NET          # NET (1..254): the lab's addresses are 10.NET.<host>.0/24
#   fl_host_up 1; fl_host_up 2; fl_host_up 3
#   fl_create '{"type":"full",...}'   # prints the capture's id (fleet::Coordinator's create)
#   fl_send 2 --count 40              # UDP from the generator to host 2 (port 7400 by default)
#   fl_wait_status ID success 30      # polls the fleet status; prints it (JSON)
#
# What runs (everything the lab starts is in FL_PIDS and ended by its PID by fl_down, which
# fl_up sets as the EXIT trap; a script with a trap of its own calls fl_down from it):
#   - a 3-member etcd cluster on 127.0.0.1 (free ports; data in $FL_TMP/etcd/m<i>);
#   - s3rver (tests/s3/s3rver.js) on 127.0.0.1 with the bucket ringcap-fleet, reached from each
#     host's namespace through relay.py (a Unix socket: the same http://127.0.0.1:<port>
#     endpoint in every namespace);
#   - host <i> (fl_host_up i): the network namespace ringcap-fl-<pid>-h<i> with a veth pair to
#     the generator's namespace ringcap-fl-<pid>-gen (10.NET.<i>.1 on the host's side,
#     10.NET.<i>.2 on the generator's), its own dbus-daemon with the shipped policy, ringcapd
#     (in the namespace and in a UTS namespace whose hostname is the host's name, with its own
#     state directory and configuration: colo_name, [s3], [fleet] with staging_destination) and ringcap-agent (in the
#     root namespace, as the unprivileged user ringcap-agent-test in the group ringcap, which
#     [fleet] agent_user names, as systemd/ringcap-agent.service runs it), reading the same
#     file as ringcapd;
#   - ringcap-gateway in fleet mode on 127.0.0.1 (fl_gateway_up), when the test needs it.
# A full capture needs the fleet's ownership of its destination (fl_api_own: the REST
# challenge; each agent imports the record into its ringcapd); each host's part of a full
# capture into s3://ringcap-fleet/pcaps is delivered under pcaps/h<i>.

source "$(dirname "${BASH_SOURCE[0]}")/../../lib/check.sh"

FL_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$FL_SRC/build}
FL_RINGCAPD=${RINGCAPD:-$BUILD_DIR/daemon/ringcapd/ringcapd}
FL_AGENT=${RINGCAP_AGENT:-$BUILD_DIR/daemon/agent/ringcap-agent}
FL_GATEWAY=${GATEWAY:-$BUILD_DIR/daemon/gateway/ringcap-gateway}
FL_CTL=${RINGCAPCTL:-$BUILD_DIR/tools/ringcapctl}
FL_TOOL=${RINGCAP_FLEET_LAB_TOOL:-$BUILD_DIR/tests/ringcap-fleet-lab-tool}
FL_TRAFFIC="/usr/bin/python3 $FL_SRC/tests/integration/traffic.py"
FL_RELAY="/usr/bin/python3 $FL_SRC/tests/fleet/lab/relay.py"
FL_COLO=fl01
FL_BUCKET=ringcap-fleet
FL_DEST="s3://$FL_BUCKET/pcaps?region=us-east-1"
# Where the agents stage a simple capture's files for the gateway's merged download.
FL_STAGING="s3://$FL_BUCKET/staging?region=us-east-1"
FL_AGENT_USER=ringcap-agent-test
FL_LEASE_TTL=4
FL_PORT=7400

# Called by fail (check.sh): the end of every log of the lab.
on_fail() {
  [ -n "${FL_TMP:-}" ] || return 0
  local f
  for f in "$FL_TMP"/h*/ringcapd.log "$FL_TMP"/h*/agent*.log "$FL_TMP"/gateway*.log; do
    [ -s "$f" ] || continue
    echo "--- last lines of ${f#"$FL_TMP"/}:"
    tail -n 15 "$f"
  done
}

fl_require() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP)"
  local t
  for t in ip tshark capinfos etcd dbus-daemon setpriv unshare curl node aws; do
    command -v "$t" >/dev/null || skip "needs $t"
  done
  [ -d "$FL_SRC/tests/s3/node_modules" ] || skip "needs tests/s3/node_modules (npm ci --prefix tests/s3)"
  for t in "$FL_RINGCAPD" "$FL_AGENT" "$FL_GATEWAY" "$FL_CTL" "$FL_TOOL"; do
    [ -x "$t" ] || fail "not built: $t"
  done
}

# fl_log WHAT: a line with the seconds since fl_up, so that a run shows where its time goes.
fl_log() { echo "== [$((SECONDS - FL_T0)) s] $*"; }

# Polls COMMAND... until it succeeds, for up to $1 seconds.
fl_until() {
  local timeout=$1 deadline
  shift
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "not true after ${timeout} s: $*"
    sleep 0.1
  done
}

fl_free_ports() {
  /usr/bin/python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

fl_up() {
  FL_NET=$1
  FL_T0=$SECONDS
  FL_TAG=fl-$$
  FL_TMP=$(mktemp -d /tmp/ringcap-fl.XXXXXX)
  chmod 755 "$FL_TMP"
  FL_PIDS=""
  FL_NS_GEN=ringcap-$FL_TAG-gen
  FL_HOSTS=""
  trap 'fl_down $?' EXIT
  getent group ringcap >/dev/null || groupadd --system ringcap
  id "$FL_AGENT_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin --groups ringcap "$FL_AGENT_USER"
  ip netns add "$FL_NS_GEN" || skip "cannot create network namespaces"
  ip -n "$FL_NS_GEN" link set lo up
  fl_etcd_up
  fl_s3_up
}

# fl_down RC: ends what the lab started, by PID (ringcapd with SIGTERM and, when the test
# passed, the checks of tests/integration/lib.sh's stop_check: exit code 0, no sanitizer
# report), deletes the namespaces, unmounts the BPF file systems, removes $FL_TMP.
fl_down() {
  local rc=${1:-0} i pid problem=""
  trap - EXIT
  for i in $FL_HOSTS; do
    pid=$(fl_pid "ringcapd$i")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
    fl_stop_check "ringcapd on h$i" "$pid" "$FL_TMP/h$i/ringcapd.log"
    [ -z "$FL_STOP_PROBLEM" ] || problem="$problem; $FL_STOP_PROBLEM"
  done
  for pid in $FL_PIDS; do kill -TERM "${pid#*=}" 2>/dev/null || true; done
  for pid in $FL_PIDS; do fl_reap "${pid#*=}"; done
  for i in $FL_HOSTS; do
    ip netns del "ringcap-$FL_TAG-h$i" 2>/dev/null || true
    umount "$FL_TMP/h$i/bpffs" 2>/dev/null || true
  done
  ip netns del "$FL_NS_GEN" 2>/dev/null || true
  if [ "$rc" -eq 0 ] && [ -n "$problem" ]; then
    echo "FAIL (at the end of the test):$problem" >&2
    rc=1
  fi
  [ "${FL_KEEP:-}" = 1 ] && echo "kept $FL_TMP" || rm -rf "$FL_TMP"
  [ "$rc" -ne 0 ] || echo "ok: the lab is removed ($((SECONDS - FL_T0)) s in all)"
  exit "$rc"
}

# Waits up to 10 s for a process the lab started to exit, then SIGKILLs it.
fl_reap() {
  local pid=$1 deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# FL_PIDS holds NAME=PID words; fl_pid NAME prints the PID (empty when none).
fl_track() { FL_PIDS="$(fl_untrack_words "$1") $1=$2"; }
fl_untrack_words() {
  local w out=""
  for w in $FL_PIDS; do [ "${w%%=*}" = "$1" ] || out="$out $w"; done
  echo "$out"
}
fl_untrack() { FL_PIDS=$(fl_untrack_words "$1"); }
fl_pid() {
  local w
  for w in $FL_PIDS; do [ "${w%%=*}" != "$1" ] || echo "${w#*=}"; done
}

# fl_stop_check NAME PID LOG: SIGTERM, then FL_STOP_PROBLEM says what is wrong with the end
# (empty: exit code 0 within 30 s, no sanitizer report in LOG).
fl_stop_check() {
  local name=$1 pid=$2 log=$3 rc=0 deadline=$((SECONDS + 30)) lines
  FL_STOP_PROBLEM=""
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -KILL "$pid" 2>/dev/null || true
      FL_STOP_PROBLEM="$name did not exit within 30 s of SIGTERM (killed)"
      return 0
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || { FL_STOP_PROBLEM="$name exited with code $rc after SIGTERM (0 expected)"; return 0; }
  lines=$(sanitizer_lines "$log" | head -n 5)
  [ -z "$lines" ] || FL_STOP_PROBLEM="a sanitizer report in $name's log: $lines"
}

# ---- etcd: three members on 127.0.0.1 ------------------------------------------------------

fl_etcd_member_start() {
  local i=$1
  etcd --name "m$i" --data-dir "$FL_TMP/etcd/m$i" \
    --listen-client-urls "http://127.0.0.1:${FL_ETCD_CLIENT[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${FL_ETCD_CLIENT[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${FL_ETCD_PEER[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${FL_ETCD_PEER[$i]}" \
    --initial-cluster "$FL_ETCD_CLUSTER" --initial-cluster-token "ringcap-$FL_TAG" \
    --initial-cluster-state new >>"$FL_TMP/etcd/m$i.log" 2>&1 &
  fl_track "etcd$i" $!
}

fl_etcd_up() {
  local ports i
  read -r -a ports <<<"$(fl_free_ports 6)"
  mkdir -p "$FL_TMP/etcd"
  FL_ETCD_CLIENT=() FL_ETCD_PEER=() FL_ETCD_CLUSTER="" FL_ETCD=""
  for i in 0 1 2; do
    FL_ETCD_CLIENT[$i]=${ports[$((2 * i))]}
    FL_ETCD_PEER[$i]=${ports[$((2 * i + 1))]}
    FL_ETCD_CLUSTER="$FL_ETCD_CLUSTER${FL_ETCD_CLUSTER:+,}m$i=http://127.0.0.1:${FL_ETCD_PEER[$i]}"
    FL_ETCD="$FL_ETCD${FL_ETCD:+,}http://127.0.0.1:${FL_ETCD_CLIENT[$i]}"
  done
  for i in 0 1 2; do fl_etcd_member_start "$i"; done
  for i in 0 1 2; do fl_until 30 fl_etcd_healthy "$i"; done
  fl_log "etcd: 3 members ($FL_ETCD)"
}
fl_etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:${FL_ETCD_CLIENT[$1]}/health" | grep -q '"health":"true"'; }

# fl_etcd_stop I: stops member I (SIGTERM) and waits for its exit; fl_etcd_restart I.
fl_etcd_stop() {
  local pid
  pid=$(fl_pid "etcd$1")
  kill -TERM "$pid"
  fl_reap "$pid"
  fl_untrack "etcd$1"
}
fl_etcd_restart() {
  fl_etcd_member_start "$1"
  fl_until 30 fl_etcd_healthy "$1"
}

# The lab tool (fleet::Coordinator on the lab's cluster).
fl_tool() { "$FL_TOOL" --etcd "$FL_ETCD" --simple-interval 1 --claim-timeout 20 "$@"; }

# ---- S3: s3rver on 127.0.0.1, a Unix socket into every host ---------------------------------

fl_s3_up() {
  mkdir -p "$FL_TMP/s3"
  node --openssl-legacy-provider "$FL_SRC/tests/s3/s3rver.js" --directory "$FL_TMP/s3" \
    --bucket "$FL_BUCKET" --request-log "$FL_TMP/s3.requests" >"$FL_TMP/s3.out" 2>"$FL_TMP/s3.log" &
  fl_track s3 $!
  fl_until 20 grep -q '^ready ' "$FL_TMP/s3.out"
  FL_S3_PORT=$(awk '/^ready / {sub(/.*:/, "", $2); print $2}' "$FL_TMP/s3.out")
  FL_S3_ENDPOINT=http://127.0.0.1:$FL_S3_PORT
  $FL_RELAY unix "$FL_TMP/s3.sock" "$FL_S3_PORT" >"$FL_TMP/s3-relay.out" 2>&1 &
  fl_track s3relay $!
  fl_until 20 grep -q '^ready' "$FL_TMP/s3-relay.out"
  printf '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' >"$FL_TMP/aws-credentials"
  # ringcapd (root), the agents (staging uploads) and the gateway (group ringcap) read it.
  chgrp ringcap "$FL_TMP/aws-credentials"
  chmod 640 "$FL_TMP/aws-credentials"
  fl_log "s3rver: $FL_S3_ENDPOINT, bucket $FL_BUCKET"
}
fl_aws() {
  AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "$FL_S3_ENDPOINT" "$@"
}

# ---- hosts ---------------------------------------------------------------------------------

fl_ns() { echo "ringcap-$FL_TAG-h$1"; }
fl_bus() { echo "unix:path=$FL_TMP/h$1/bus"; }
fl_addr() { echo "10.$FL_NET.$1.1"; }
# ringcapctl on host I's bus.
fl_ctl() {
  local i=$1
  shift
  DBUS_SYSTEM_BUS_ADDRESS=$(fl_bus "$i") "$FL_CTL" "$@"
}

# fl_host_up I: the namespace, veth, bus, ringcapd and agent of host h<I>; returns once the
# agent registered in etcd.
fl_host_up() {
  local i=$1 ns dir ifh ifg mac_h mac_g
  ns=$(fl_ns "$i")
  dir=$FL_TMP/h$i
  ifh=rcfl$$h$i ifg=rcfl$$g$i
  mkdir -p "$dir/bpffs" "$dir/agent"
  chmod 755 "$dir"
  FL_HOSTS="$FL_HOSTS $i"
  ip netns add "$ns"
  ip link add "$ifh" netns "$ns" type veth peer name "$ifg" netns "$FL_NS_GEN"
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "10.$FL_NET.$i.1/24" dev "$ifh"
  ip -n "$FL_NS_GEN" addr add "10.$FL_NET.$i.2/24" dev "$ifg"
  ip -n "$ns" link set "$ifh" up
  ip -n "$FL_NS_GEN" link set "$ifg" up
  # Static neighbours: no ARP in the middle of the traffic.
  mac_h=$(ip -n "$ns" -j link show "$ifh" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
  mac_g=$(ip -n "$FL_NS_GEN" -j link show "$ifg" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
  ip -n "$FL_NS_GEN" neigh replace "10.$FL_NET.$i.1" lladdr "$mac_h" dev "$ifg" nud permanent
  ip -n "$ns" neigh replace "10.$FL_NET.$i.2" lladdr "$mac_g" dev "$ifh" nud permanent
  mount -t bpf bpf "$dir/bpffs"

  # The S3 endpoint inside the namespace.
  ip netns exec "$ns" $FL_RELAY tcp "$FL_S3_PORT" "$FL_TMP/s3.sock" >"$dir/relay.out" 2>&1 &
  fl_track "relay$i" $!
  fl_until 20 grep -q '^ready' "$dir/relay.out"

  # The bus, with the shipped policy.
  sed "s|@RINGCAP_DBUS_POLICY@|$FL_SRC/systemd/org.ringcap.Ringcap1.conf|" \
    "$FL_SRC/tests/systemd/dbus-system-test.conf.in" >"$dir/bus.conf"
  dbus-daemon --config-file="$dir/bus.conf" --address="$(fl_bus "$i")" --nofork 2>"$dir/bus.log" &
  fl_track "bus$i" $!
  fl_until 20 test -S "$dir/bus"

  local endpoints
  endpoints=$(echo "$FL_ETCD" | sed 's/\([^,]*\)/"\1"/g; s/,/, /g')
  cat >"$dir/ringcapd.toml" <<CONF
colo_name = "$FL_COLO"
colo_groups = ["FL"]
state_directory = "$dir/state"
[systems]
magic-transit = ["$ifh"]
[s3]
endpoint = "$FL_S3_ENDPOINT"
credentials_file = "$FL_TMP/aws-credentials"
[rate_limits]
simple_interval_seconds = 0
[fleet]
agent_user = "$FL_AGENT_USER"
etcd_endpoints = [$endpoints]
host_name = "h$i"
state_directory = "$dir/agent"
lease_ttl_seconds = $FL_LEASE_TTL
status_interval_seconds = 1
staging_destination = "$FL_STAGING"
CONF
  chmod 644 "$dir/ringcapd.toml"
  chown "$FL_AGENT_USER:$FL_AGENT_USER" "$dir/agent"
  chmod 700 "$dir/agent"
  fl_ringcapd_start "$i"
  fl_agent_start "$i"
  fl_log "host h$i: $(fl_addr "$i") in $ns, ringcapd $(fl_pid "ringcapd$i"), agent $(fl_pid "agent$i")"
}

fl_ringcapd_start() {
  local i=$1 dir=$FL_TMP/h$1 pid deadline
  # ip and unshare exec: $! is ringcapd itself. Its own hostname (a UTS namespace), as a host.
  DBUS_SYSTEM_BUS_ADDRESS=$(fl_bus "$i") LIBXDP_BPFFS=$dir/bpffs RINGCAP_TEST_FAST_RETRIES=1 ip netns exec "$(fl_ns "$i")" \
    unshare --uts /bin/sh -c 'hostname "$0" && exec "$@"' "h$i" \
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$FL_RINGCAPD" --config "$dir/ringcapd.toml" \
    >>"$dir/ringcapd.log" 2>&1 &
  pid=$!
  fl_track "ringcapd$i" "$pid"
  deadline=$((SECONDS + 20))
  until busctl --address="$(fl_bus "$i")" status org.ringcap.Ringcap1 >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail "ringcapd on h$i exited: $(tail -n 5 "$dir/ringcapd.log")"
    [ $SECONDS -lt $deadline ] || fail "ringcapd on h$i not on its bus after 20 s"
    sleep 0.05
  done
}

# fl_agent_start I: the agent of host I (log agent-<run>.log); returns once its registration
# is in etcd.
fl_agent_start() {
  local i=$1 dir=$FL_TMP/h$1 run=1 pid deadline
  while [ -e "$dir/agent-$run.log" ]; do run=$((run + 1)); done
  DBUS_SYSTEM_BUS_ADDRESS=$(fl_bus "$i") setpriv --reuid="$FL_AGENT_USER" --regid="$FL_AGENT_USER" \
    --groups=ringcap "$FL_AGENT" --config "$dir/ringcapd.toml" >"$dir/agent-$run.log" 2>&1 &
  pid=$!
  fl_track "agent$i" "$pid"
  FL_AGENT_LOG=$dir/agent-$run.log
  deadline=$((SECONDS + 20))
  until fl_tool get "/ringcap/hosts/$FL_COLO/h$i" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail "ringcap-agent of h$i exited: $(tail -n 5 "$FL_AGENT_LOG")"
    [ $SECONDS -lt $deadline ] || fail "ringcap-agent of h$i not registered after 20 s"
    sleep 0.1
  done
}

# fl_kill NAME SIGNAL: signals a process of the lab and waits for its end.
fl_kill() {
  local pid
  pid=$(fl_pid "$1")
  [ -n "$pid" ] || fail "fl_kill: no process $1"
  # Out of the job table first: bash would print a "Killed" notice for the job.
  disown "$pid" 2>/dev/null || true
  kill "-$2" "$pid"
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "$1 did not exit within 20 s of SIG$2"
    sleep 0.05
  done
  { wait "$pid"; } 2>/dev/null || true
  fl_untrack "$1"
}

# fl_json JSON PATH: a field (a.b.c) of a JSON text; "null" when absent.
fl_json() {
  /usr/bin/python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    if isinstance(v, list):  # a list of objects named by "host": hosts.h1
        v = {e.get("host"): e for e in v if isinstance(e, dict)}
    v = v.get(k) if isinstance(v, dict) else None
print(json.dumps(v) if isinstance(v, (dict, list)) or v is None else v)' "$1" "$2"
}

# ---- captures through the coordinator ------------------------------------------------------

# fl_create REQUEST-JSON [COLO]: creates a capture (prints its id).
fl_create() {
  local out
  out=$(fl_tool create "${2:-$FL_COLO}" "$1" 2>"$FL_TMP/create.err") || fail "create: $(cat "$FL_TMP/create.err")"
  fl_json "$out" id || fail "create: not JSON: $out"
}
fl_status() { fl_tool status "$1"; }
# fl_wait_status ID STATUS TIMEOUT [PYTHON-CONDITION on s]: polls the status until its
# "status" is STATUS (and the condition holds; `hosts` maps a host to its part); prints it.
fl_wait_status() {
  local id=$1 want=$2 timeout=$3 cond=${4:-True} deadline s=""
  deadline=$((SECONDS + timeout))
  while [ $SECONDS -lt "$deadline" ]; do
    s=$(fl_status "$id" 2>"$FL_TMP/status.err") || s=""
    if [ -n "$s" ] && /usr/bin/python3 -c "
import json, sys
s = json.loads(sys.argv[1])
hosts = {p['host']: p for p in s.get('hosts', [])}
sys.exit(0 if s.get('status') == sys.argv[2] and ($cond) else 1)" "$s" "$want"; then
      echo "$s"
      return 0
    fi
    sleep 0.2
  done
  fail "capture $id: status not $want ($cond) after $timeout s: $s"
}
# fl_part ID I: host I's part in etcd (JSON), empty when there is none.
fl_part() { fl_tool get "/ringcap/captures/$1/parts/h$2" 2>/dev/null || true; }

# fl_send I ARGS...: UDP from the generator to host I, port $FL_PORT (bounded: --count).
fl_send() {
  local i=$1
  shift
  ip netns exec "$FL_NS_GEN" $FL_TRAFFIC send --dst "$(fl_addr "$i")" --dport "$FL_PORT" \
    --max-seconds 20 "$@" >/dev/null || fail "traffic to h$i failed"
}

# fl_count FILE I: packets in FILE from the generator to host I's port.
fl_count() {
  tshark -r "$1" -Y "ip.src == 10.$FL_NET.$2.2 && ip.dst == 10.$FL_NET.$2.1 && udp.dstport == $FL_PORT" \
    -T fields -e frame.number 2>/dev/null | wc -l
}

# ---- ringcap-gateway in fleet mode ---------------------------------------------------------


# fl_gateway_up: ringcap-gateway in fleet mode on a free port of 127.0.0.1, as the user
# ringcap-gateway-test (group ringcap, as tests/gateway/lib.sh runs it): [fleet] with the lab's
# etcd endpoints and a staging destination in the lab's bucket, [s3] the lab's endpoint.
# Sets FL_API (the account's routes) and FL_TOKEN. fl_gateway_restart: SIGTERM (exit code 0
# checked), then started again on the same port.
FL_GATEWAY_USER=ringcap-gateway-test
fl_gateway_up() {
  [ -x "$FL_GATEWAY" ] || fail "not built: $FL_GATEWAY"
  id "$FL_GATEWAY_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin --groups ringcap "$FL_GATEWAY_USER"
  local dir=$FL_TMP/gateway endpoints
  mkdir -p "$dir"
  FL_ACCOUNT=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  FL_TOKEN=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)
  printf 'lab %s\n' "$FL_TOKEN" >"$dir/tokens"
  cp "$FL_TMP/aws-credentials" "$dir/aws-credentials"
  endpoints=$(echo "$FL_ETCD" | sed 's/\([^,]*\)/"\1"/g; s/,/, /g')
  FL_GATEWAY_PORT=${FL_GATEWAY_PORT:-$(fl_free_ports 1)}
  cat >"$dir/gateway.toml" <<CONF
[s3]
endpoint = "$FL_S3_ENDPOINT"
credentials_file = "$dir/aws-credentials"
[fleet]
etcd_endpoints = [$endpoints]
staging_destination = "$FL_STAGING"
[gateway]
listen = "127.0.0.1:$FL_GATEWAY_PORT"
account_id = "$FL_ACCOUNT"
tokens_file = "$dir/tokens"
dashboard_dir = "$FL_SRC/daemon/gateway/dashboard"
fleet_colo_name = "$FL_COLO"
fleet_claim_timeout_seconds = 20
CONF
  chgrp -R ringcap "$dir"
  chmod 750 "$dir"
  chmod 640 "$dir"/*
  fl_gateway_start
  FL_API=http://127.0.0.1:$FL_GATEWAY_PORT/client/v4/accounts/$FL_ACCOUNT
}
fl_gateway_start() {
  local run=1 pid deadline
  while [ -e "$FL_TMP/gateway-$run.log" ]; do run=$((run + 1)); done
  FL_GATEWAY_LOG=$FL_TMP/gateway-$run.log
  setpriv --reuid="$FL_GATEWAY_USER" --regid=ringcap --init-groups \
    "$FL_GATEWAY" --config "$FL_TMP/gateway/gateway.toml" 2>"$FL_GATEWAY_LOG" &
  pid=$!
  fl_track gateway "$pid"
  deadline=$((SECONDS + 20))
  until grep -q "listening on " "$FL_GATEWAY_LOG"; do
    kill -0 "$pid" 2>/dev/null || fail "ringcap-gateway exited: $(tail -n 5 "$FL_GATEWAY_LOG")"
    [ $SECONDS -lt $deadline ] || fail "ringcap-gateway not listening after 20 s"
    sleep 0.05
  done
}
fl_gateway_restart() {
  fl_stop_check ringcap-gateway "$(fl_pid gateway)" "$FL_GATEWAY_LOG"
  [ -z "$FL_STOP_PROBLEM" ] || fail "$FL_STOP_PROBLEM"
  fl_untrack gateway
  echo "ok: ringcap-gateway stopped (exit code 0)"
  fl_gateway_start
  echo "ok: ringcap-gateway started again"
}

# fl_api METHOD PATH [BODY]: a request to the gateway's account routes; prints the answer's
# body, fails unless it is a 2xx with "success": true.
fl_api() {
  local method=$1 path=$2 body=${3:-} code
  local args=(-sS -o "$FL_TMP/api.body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $FL_TOKEN")
  [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data "$body")
  code=$(curl "${args[@]}" "$FL_API$path") || fail "curl $method $path"
  [[ "$code" == 2* ]] || fail "$method $path: HTTP $code: $(cat "$FL_TMP/api.body")"
  [ "$code" != 204 ] || return 0
  expect_eq "$(fl_json "$(cat "$FL_TMP/api.body")" success)" True "$method $path: success" >/dev/null
  cat "$FL_TMP/api.body"
}
# fl_api_wait ID STATUS TIMEOUT [CONDITION]: as fl_wait_status, through GET /pcaps/ID (the
# envelope's result); prints the result.
fl_api_wait() {
  local id=$1 want=$2 timeout=$3 cond=${4:-True} deadline s=""
  deadline=$((SECONDS + timeout))
  while [ $SECONDS -lt "$deadline" ]; do
    s=$(curl -sS -H "Authorization: Bearer $FL_TOKEN" "$FL_API/pcaps/$id" 2>/dev/null) || s=""
    if [ -n "$s" ] && s=$(/usr/bin/python3 -c "
import json, sys
s = json.loads(sys.argv[1]).get('result') or {}
hosts = {p['host']: p for p in s.get('hosts', [])}
print(json.dumps(s))
sys.exit(0 if s.get('status') == sys.argv[2] and ($cond) else 1)" "$s" "$want"); then
      echo "$s"
      return 0
    fi
    sleep 0.2
  done
  fail "capture $id (REST): status not $want ($cond) after $timeout s: $s"
}
# fl_api_own DEST: the fleet's ownership challenge of DEST through the REST API (the token
# read from the bucket with awscli).
fl_api_own() {
  local dest=$1 rec file path token
  rec=$(fl_api POST /pcaps/ownership "{\"destination_conf\":\"$dest\"}")
  file=$(fl_json "$rec" result.filename)
  path=${dest#s3://}
  path=${path%%\?*}
  token=$(fl_aws s3 cp "s3://$path/$file" - 2>/dev/null) || fail "reading s3://$path/$file"
  token=$(echo "$token" | tr -d '\n')
  rec=$(fl_api POST /pcaps/ownership/validate "{\"destination_conf\":\"$dest\",\"ownership_challenge\":\"$token\"}")
  expect_eq "$(fl_json "$rec" result.status)" success "the fleet's ownership of $dest"
}
# fl_api_download ID FILE
fl_api_download() {
  local code
  code=$(curl -sS -o "$2" -w '%{http_code}' -H "Authorization: Bearer $FL_TOKEN" "$FL_API/pcaps/$1/download") ||
    fail "curl download $1"
  expect_eq "$code" 200 "HTTP status of the download of $1"
}
