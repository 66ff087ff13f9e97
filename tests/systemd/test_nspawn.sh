#!/usr/bin/env bash
# ringcapd under a real systemd: boots a Debian 12 container with systemd-nspawn and runs
# the installed unit, D-Bus policy, activation file and sysusers file there.
#
#  1. A debootstrapped bookworm with the runtime packages, cached in $RINGCAP_NSPAWN_CACHE
#     (default /var/cache/ringcap-test/bookworm) and reused while its package list is the same.
#     The mirror (and any proxy) is the one this machine's apt uses.
#  2. A copy of it per run, with `cmake --install --prefix /usr` into it (DESTDIR).
#  3. `systemd-nspawn --boot --keep-unit --register=no --private-network` with CAP_BPF,
#     CAP_PERFMON and CAP_NET_ADMIN (CAP_SYS_ADMIN is in nspawn's default set), the bpf()
#     system call let through nspawn's own seccomp filter, and a fresh bpffs of the run's own
#     at /sys/fs/bpf (nspawn mounts none). Commands run inside with nsenter on the
#     container's init (there is no machinectl without registration).
#  4. Inside: the group ringcap exists (systemd-sysusers at boot); with the shipped config
#     ringcapd refuses to start and names the key to edit; with a test config on a veth pair
#     of the container's own (its peer in a network namespace inside the container)
#     `systemctl start ringcapd` succeeds, a simple capture driven with busctl catches the
#     generated packets into a 0640 file of group ringcap (read back with tshark on the host),
#     nobody is refused by the bus, a ringcap member is not, `systemctl stop ringcapd`
#     leaves no XDP program attached, and a bus call starts the stopped service again
#     (D-Bus activation through systemd).
#  5. ringcap-gateway.service beside it: a world-readable tokens file fails its start (the
#     rule in the journal); started with a [gateway] table and a 0640 tokens file, it
#     reaches active (READY=1), runs as ringcap-gateway (member of ringcap) with no
#     capability, answers the API over the container's system bus (200 with the token, 401
#     without, from the host's curl in the container's network namespace), serves the
#     installed dashboard, reads the tokens again on `systemctl reload`, and stops cleanly.
# Every step has a time limit; the container is powered off (and killed by pid if it does
# not stop) on exit, and the run's copy removed. Exit code 77 = skipped (a failure under
# CI=true).
set -euo pipefail
source "$(dirname "$0")/../lib/check.sh" # fail, skip, expect_eq, expect_rc, expect_grep

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build}
CACHE=${RINGCAP_NSPAWN_CACHE:-/var/cache/ringcap-test/bookworm}
SUITE=bookworm
BUS_NAME=org.ringcap.Ringcap1
OBJ=/org/ringcap/Ringcap1
IFACE=org.ringcap.Ringcap1.Manager

step() { echo "== $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter ip timeout cmake tshark jq apt-config curl; do
  command -v "$tool" >/dev/null || skip "needs $tool"
done
RINGCAPD=$BUILD_DIR/daemon/ringcapd/ringcapd
[ -x "$RINGCAPD" ] || fail "ringcapd not built at $RINGCAPD"
GATEWAY=$BUILD_DIR/daemon/gateway/ringcap-gateway
[ -x "$GATEWAY" ] || fail "ringcap-gateway not built at $GATEWAY"

# --- the mirror, from this machine's apt configuration --------------------------------------
# The first source of type deb for $SUITE with the component main: deb822 .sources files,
# then one-line .list files.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") &&
            comps ~ /(^| )main( |$)/ && enabled != "no" && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = suites = comps = uris = enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "uris:" { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "components:" { $1 = ""; comps = $0 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { if (!found) flush() }' "$f"
  done | head -n1 | grep . && return 0
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' |
    awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { for (i = 4; i <= NF; i++) if ($i == "main") { print $2; exit } }' |
    head -n1 | grep .
}
MIRROR=$(apt_mirror) || skip "this machine's apt has no 'deb' source for $SUITE main to debootstrap from"
eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy APT_HTTPS_PROXY Acquire::https::Proxy)"
[ -n "${APT_HTTP_PROXY:-}" ] && export http_proxy=$APT_HTTP_PROXY
[ -n "${APT_HTTPS_PROXY:-}" ] && export https_proxy=$APT_HTTPS_PROXY

# --- 1. the cached base ---------------------------------------------------------------------
# Runtime libraries: the Debian packages of what the installed binaries link (same release
# on both sides), plus systemd, the bus and iproute2.
runtime_packages() {
  local bin lib real
  for bin in "$RINGCAPD" "$GATEWAY" "$BUILD_DIR"/tools/ringcapctl; do
    [ -x "$bin" ] || continue
    ldd "$bin" | awk '$3 ~ /^\// { print $3 }' | while read -r lib; do
      real=$(readlink -f "$lib")
      dpkg -S "$real" 2>/dev/null || dpkg -S "/usr${real#/usr}" 2>/dev/null ||
        dpkg -S "${real#/usr}" 2>/dev/null || echo "unknown:$lib"
    done
  done | cut -d: -f1 | sed 's/:.*//'
  printf '%s\n' systemd systemd-sysv dbus iproute2 libcurl4
}
PACKAGES=$(runtime_packages | sort -u | tr '\n' ' ')
case "$PACKAGES" in *unknown*) fail "cannot tell the Debian package of a library ringcapd links: $PACKAGES" ;; esac
PACKAGES=${PACKAGES% }

if [ ! -f "$CACHE/.ringcap-packages" ] || [ "$(cat "$CACHE/.ringcap-packages")" != "$PACKAGES" ]; then
  step "debootstrap $SUITE from $MIRROR into $CACHE (packages: $PACKAGES)"
  rm -rf "$CACHE.tmp"
  mkdir -p "$(dirname "$CACHE")"
  if ! timeout 1200 debootstrap --variant=minbase --include="${PACKAGES// /,}" \
    "$SUITE" "$CACHE.tmp" "$MIRROR" >"$CACHE.log" 2>&1; then
    tail -n 30 "$CACHE.log" >&2
    rm -rf "$CACHE.tmp"
    skip "debootstrap failed (no network to $MIRROR?); log: $CACHE.log"
  fi
  echo "$PACKAGES" >"$CACHE.tmp/.ringcap-packages"
  rm -rf "$CACHE"
  mv "$CACHE.tmp" "$CACHE"
else
  step "reusing $CACHE"
fi

# --- 2. this run's machine --------------------------------------------------------------------
RUN=$(mktemp -d /var/tmp/ringcap-nspawn.XXXXXX)
ROOT=$RUN/root
BPFFS=$RUN/bpffs
TIMEOUT_PID=""
NSPAWN_PID=""
LEADER=""
cleanup() {
  local rc=$?
  if [ -n "$TIMEOUT_PID" ] && kill -0 "$TIMEOUT_PID" 2>/dev/null; then
    # timeout passes SIGTERM on to systemd-nspawn, which powers a booted container off.
    kill -TERM "$TIMEOUT_PID" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$TIMEOUT_PID" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$TIMEOUT_PID" 2>/dev/null; then
      echo "the container did not power off in 20 s: killing it" >&2
      for pid in $LEADER $NSPAWN_PID $TIMEOUT_PID; do kill -KILL "$pid" 2>/dev/null || true; done
      sleep 1
    fi
  fi
  if [ "$rc" -ne 0 ] && [ -f "$RUN/console.log" ]; then
    echo "--- container console (last 40 lines)" >&2
    tail -n 40 "$RUN/console.log" >&2
  fi
  mountpoint -q "$BPFFS" && umount "$BPFFS"
  rm -rf "$RUN"
  return $rc
}
trap cleanup EXIT

step "copying the base and installing ringcap into it"
cp -a --reflink=auto "$CACHE" "$ROOT"
DESTDIR=$ROOT timeout 120 cmake --install "$BUILD_DIR" --prefix /usr >"$RUN/install.log" 2>&1 ||
  { cat "$RUN/install.log" >&2; fail "cmake --install into the container failed"; }
[ -x "$ROOT/usr/sbin/ringcapd" ] || fail "cmake --install --prefix /usr put no /usr/sbin/ringcapd"
grep -q '^ExecStart=/usr/sbin/ringcapd ' "$ROOT/lib/systemd/system/ringcapd.service" ||
  fail "the installed unit does not start /usr/sbin/ringcapd"
# No login prompt on the console.
ln -sf /dev/null "$ROOT/etc/systemd/system/console-getty.service"

# --- 3. boot ----------------------------------------------------------------------------------
step "booting the container"
mkdir "$BPFFS"
mount -t bpf bpf "$BPFFS"
# timeout bounds the container's life even if this script is killed.
timeout 900 systemd-nspawn --boot --keep-unit --register=no --private-network \
  --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN --system-call-filter=bpf \
  --bind="$BPFFS:/sys/fs/bpf" --machine="ringcap-test-$$" \
  --directory="$ROOT" >"$RUN/console.log" 2>&1 </dev/null &
TIMEOUT_PID=$!
# timeout -> systemd-nspawn -> the container's init (systemd).
for _ in $(seq 150); do
  kill -0 "$TIMEOUT_PID" 2>/dev/null || { cat "$RUN/console.log" >&2; fail "systemd-nspawn exited"; }
  [ -n "$NSPAWN_PID" ] || NSPAWN_PID=$(pgrep -P "$TIMEOUT_PID" -x systemd-nspawn || true)
  [ -n "$NSPAWN_PID" ] && LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
  [ -n "$LEADER" ] && break
  sleep 0.2
done
[ -n "$LEADER" ] || fail "found no systemd in the container within 30 s"
in_ct() { nsenter --target="$LEADER" --mount --uts --ipc --net --pid --cgroup -- "$@"; }

# systemctl needs the manager's private socket, which comes a moment after init starts.
for _ in $(seq 150); do
  in_ct test -S /run/systemd/private && break
  sleep 0.2
done
state=$(in_ct timeout 90 systemctl is-system-running --wait 2>&1 || true)
echo "container: systemd is $state"
case "$state" in
running) ;;
degraded)
  in_ct systemctl --failed --no-legend --plain || true
  ;;
*) fail "the container's systemd did not finish booting: $state" ;;
esac

# --- 4. inside ---------------------------------------------------------------------------------
step "sysusers"
in_ct getent group ringcap || fail "systemd-sysusers did not create the group ringcap at boot"
# A member as an operator makes one (ringcapd reads the group's members from the user database).
in_ct useradd --system --no-create-home --no-user-group --gid nogroup --groups ringcap rcmember

step "the shipped config: ringcapd refuses to start and names the key"
if in_ct timeout 60 systemctl start ringcapd; then
  fail "ringcapd started with the shipped config, which has no colo_name or [systems]"
fi
in_ct journalctl -u ringcapd -b --no-pager -o cat | tail -n 5
in_ct journalctl -u ringcapd -b --no-pager -o cat | grep -q 'colo_name' ||
  fail "the journal does not say which key is missing"
in_ct systemctl stop ringcapd || true
in_ct systemctl reset-failed ringcapd 2>/dev/null || true

step "veth pair rc0 (capture side) / rc1 (in the network namespace gen)"
in_ct ip netns add gen
in_ct ip link add rc0 type veth peer name rc1 netns gen
in_ct ip addr add 10.77.0.1/24 dev rc0
in_ct ip link set rc0 up
in_ct ip netns exec gen ip addr add 10.77.0.2/24 dev rc1
in_ct ip netns exec gen ip link set rc1 up
in_ct ip netns exec gen ip link set lo up
in_ct findmnt -n -t bpf /sys/fs/bpf >/dev/null || fail "no bpffs at /sys/fs/bpf in the container"

cat >"$ROOT/etc/ringcap/ringcapd.toml" <<'EOF'
colo_name = "test01"
[systems]
magic-transit = ["rc0"]
[rate_limits]
simple_interval_seconds = 0
EOF

step "systemctl start ringcapd"
if ! in_ct timeout 60 systemctl start ringcapd; then
  in_ct journalctl -u ringcapd -b --no-pager -o cat | tail -n 20 >&2
  fail "systemctl start ringcapd failed"
fi
in_ct systemctl status ringcapd --no-pager --lines=8 || true
in_ct ip link show rc0 | grep -q 'xdp' || fail "ringcapd is running but rc0 has no XDP program"
# libxdp reached the host's bpffs through the unit's BindPaths= (its state directory "xdp").
[ -d "$BPFFS/xdp" ] || fail "libxdp made no state directory in the bpffs: the unit keeps it from bpffs"

busctl_ct() { in_ct timeout 20 busctl --json=short "$@"; }
step "a simple capture over D-Bus"
# Only the generated datagrams (UDP to port 9) match, so the counts below are exact.
created=$(busctl_ct call "$BUS_NAME" "$OBJ" "$IFACE" CreateCapture 'a{sv}' 5 \
  system s magic-transit type s simple time_limit u 30 packet_limit u 20 \
  filter_v1 'a{sv}' 2 destination_port q 9 protocol y 17) ||
  fail "CreateCapture failed: $created"
id=$(jq -r '.data[1].id.data' <<<"$created")
[[ "$id" =~ ^[0-9a-f]{32}$ ]] || fail "CreateCapture returned no id: $created"
echo "capture $id"
# 30 UDP datagrams from the namespace gen, with bash's /dev/udp (no extra package needed):
# the capture stops at its packet_limit, 20.
# shellcheck disable=SC2016
in_ct ip netns exec gen bash -c 'for i in $(seq 30); do echo ringcap >/dev/udp/10.77.0.1/9; sleep 0.05; done' ||
  fail "sending the 30 datagrams from the namespace gen failed"
status=""
for _ in $(seq 60); do
  record=$(busctl_ct call "$BUS_NAME" "$OBJ" "$IFACE" GetCapture s "$id") || fail "GetCapture failed: $record"
  status=$(jq -r '.data[0].status.data' <<<"$record")
  case "$status" in success | failed) break ;; esac
  sleep 0.5
done
[ "$status" = success ] || fail "capture $id ended as '$status': $record"
captured=$(jq -r '.data[0].packets_captured.data' <<<"$record")
expect_eq "$captured" 20 "packets_captured of capture $id (packet_limit 20, 30 sent)"
expect_eq "$(jq -r '.data[0].stop_reason.data' <<<"$record")" packet_limit "stop_reason of capture $id"
file=$(find "$ROOT/var/lib/ringcap" -name "$id.pcap*" -type f | head -n1)
[ -n "$file" ] || fail "no capture file for $id under /var/lib/ringcap"
perm=$(in_ct stat -c '%a %G' "${file#"$ROOT"}")
[ "$perm" = "640 ringcap" ] || fail "capture file is '$perm', expected '640 ringcap'"
udp=$(tshark -r "$file" -Y 'udp.dstport == 9' 2>/dev/null | wc -l)
expect_eq "$udp" 20 "generated UDP packets in $file (tshark)"
expect_eq "$(tshark -r "$file" 2>/dev/null | wc -l)" 20 "packets in $file (tshark)"
echo "ok: $captured packets captured, $udp of the generated UDP packets in the file (tshark), mode $perm"

step "who may call"
out=$(in_ct setpriv --reuid=nobody --regid=nogroup --clear-groups \
  timeout 20 busctl call "$BUS_NAME" "$OBJ" "$IFACE" ListCaptures 2>&1 || true)
grep -qi 'access denied' <<<"$out" || fail "nobody was not refused: $out"
in_ct setpriv --reuid=rcmember --regid=nogroup --init-groups \
  timeout 20 busctl call "$BUS_NAME" "$OBJ" "$IFACE" ListCaptures >/dev/null ||
  fail "a member of ringcap was refused"
echo "ok: nobody refused, ringcap member allowed"

step "ringcap-gateway.service"
in_ct getent passwd ringcap-gateway >/dev/null || fail "systemd-sysusers did not create the user ringcap-gateway"
expect_grep ringcap "$(in_ct id -nG ringcap-gateway)" "the groups of ringcap-gateway"
[ -x "$ROOT/usr/sbin/ringcap-gateway" ] || fail "cmake --install put no /usr/sbin/ringcap-gateway"
GW_ACCOUNT=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
GW_TOKEN=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)
printf 'nspawn %s\n' "$GW_TOKEN" >"$ROOT/etc/ringcap/gateway.tokens"
in_ct chown root:ringcap-gateway /etc/ringcap/gateway.tokens
in_ct chmod 0640 /etc/ringcap/gateway.tokens
cat >>"$ROOT/etc/ringcap/ringcapd.toml" <<EOF
[gateway]
listen = "127.0.0.1:8787"
account_id = "$GW_ACCOUNT"
tokens_file = "/etc/ringcap/gateway.tokens"
EOF
gw_journal() { in_ct journalctl -u ringcap-gateway -b --no-pager -o cat | tail -n "${1:-20}"; }
# A tokens file other users may read is refused: the start fails, naming the rule.
in_ct chmod 0644 /etc/ringcap/gateway.tokens
if in_ct timeout 60 systemctl start ringcap-gateway; then
  fail "ringcap-gateway started with a tokens file of mode 0644"
fi
gw_journal 50 | grep -q "/etc/ringcap/gateway.tokens: readable by other users (mode 644)" ||
  fail "the journal does not say why the tokens file was refused: $(gw_journal 5)"
in_ct systemctl stop ringcap-gateway || true
in_ct systemctl reset-failed ringcap-gateway 2>/dev/null || true
in_ct chmod 0640 /etc/ringcap/gateway.tokens
echo "ok: a tokens file of mode 0644 is refused under systemd, with the rule in the journal"
if ! in_ct timeout 60 systemctl start ringcap-gateway; then
  gw_journal >&2
  in_ct systemctl status ringcap-gateway --no-pager --lines=0 >&2 || true
  fail "systemctl start ringcap-gateway failed"
fi
# Type=notify: start returns once READY=1 came; the unit is then active and running.
expect_eq "$(in_ct systemctl show -p ActiveState,SubState --value ringcap-gateway | tr '\n' ' ')" \
  "active running " "ringcap-gateway.service's state after start"
expect_grep "Listening on http://127.0.0.1:8787" "$(in_ct systemctl show -p StatusText --value ringcap-gateway)" \
  "the gateway's STATUS= (sent with READY=1)"
gwpid=$(in_ct systemctl show -p MainPID --value ringcap-gateway)
[[ "$gwpid" =~ ^[1-9][0-9]*$ ]] || fail "no MainPID for ringcap-gateway: '$gwpid'"
gwstatus=$(in_ct cat "/proc/$gwpid/status")
gwuid=$(in_ct id -u ringcap-gateway)
expect_eq "$(awk '/^Uid:/ {print $2, $3, $4, $5}' <<<"$gwstatus")" "$gwuid $gwuid $gwuid $gwuid" "the gateway's uids (ringcap-gateway)"
ringcap_gid=$(in_ct getent group ringcap | cut -d: -f3)
awk '/^Groups:/' <<<"$gwstatus" | grep -qw "$ringcap_gid" ||
  fail "the gateway is not in the group ringcap ($ringcap_gid): $(awk '/^Groups:/' <<<"$gwstatus")"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
  expect_eq "$(awk -v c="$cap:" '$1 == c {print $2}' <<<"$gwstatus")" 0000000000000000 "the gateway's $cap"
done
expect_eq "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$gwstatus")" 1 "the gateway's NoNewPrivs"
echo "ok: ringcap-gateway ($gwpid) runs as uid $gwuid in group ringcap, no capability"

# The host's curl inside the container's network namespace only (the container has a private
# network): 127.0.0.1:8787 is the gateway's.
gw_curl() { nsenter --target="$LEADER" --net -- timeout 20 curl -sS "$@"; }
GW=http://127.0.0.1:8787
GW_API=$GW/client/v4/accounts/$GW_ACCOUNT
out=$(gw_curl -w '\n%{http_code}' -H "Authorization: Bearer $GW_TOKEN" "$GW_API/pcaps") ||
  { gw_journal >&2; fail "curl GET /pcaps failed"; }
expect_eq "$(tail -n1 <<<"$out")" 200 "GET /pcaps with the token (status)"
body=$(sed '$d' <<<"$out")
expect_eq "$(jq -r '.success' <<<"$body")" true "GET /pcaps: success"
expect_eq "$(jq -r '.result[0].id' <<<"$body")" "$id" "GET /pcaps: the capture made over D-Bus above, read through ringcapd"
out=$(gw_curl -o /dev/null -w '%{http_code}' "$GW_API/pcaps") || fail "curl GET /pcaps without a token failed"
expect_eq "$out" 401 "GET /pcaps without a token"
gw_curl -o "$RUN/index.html" -w '%{http_code}\n' "$GW/" >"$RUN/index.status" || fail "curl GET / failed"
expect_eq "$(cat "$RUN/index.status")" 200 "GET / (the dashboard)"
cmp -s "$RUN/index.html" "$ROOT/usr/share/ringcap/dashboard/index.html" ||
  fail "GET / is not the installed /usr/share/ringcap/dashboard/index.html"
gw_journal 50 | grep -q "GET /client/v4/accounts/$GW_ACCOUNT/pcaps 200 [0-9.]*ms nspawn 127.0.0.1$" ||
  fail "no request log line in the journal naming the token 'nspawn': $(gw_journal 5)"
echo "ok: 200 with the token (over the system bus to ringcapd), 401 without, / is the installed dashboard"

step "systemctl reload ringcap-gateway reads the tokens again"
GW_TOKEN2=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)
printf 'nspawn %s\nsecond %s\n' "$GW_TOKEN" "$GW_TOKEN2" >"$ROOT/etc/ringcap/gateway.tokens"
in_ct timeout 30 systemctl reload ringcap-gateway || fail "systemctl reload ringcap-gateway failed"
expect_eq "$(gw_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $GW_TOKEN2" "$GW_API/pcaps")" 200 \
  "GET /pcaps with a token added before the reload"
expect_eq "$(in_ct systemctl show -p MainPID --value ringcap-gateway)" "$gwpid" "the gateway's pid after the reload"

step "systemctl stop ringcap-gateway"
in_ct timeout 60 systemctl stop ringcap-gateway || fail "systemctl stop ringcap-gateway failed"
expect_eq "$(in_ct systemctl show -p Result --value ringcap-gateway)" success "ringcap-gateway.service Result after the stop"
expect_eq "$(in_ct systemctl show -p ExecMainStatus --value ringcap-gateway)" 0 "ringcap-gateway's exit status after the stop"
gw_journal 5 | grep -qx '\[info\] stopped' || fail "the gateway did not log its clean stop: $(gw_journal 5)"
echo "ok: ringcap-gateway stopped with exit status 0"

# How the service's main process ended, as systemd saw it: a clean stop is Result=success with
# exit status 0 (a crash or a non-zero exit at shutdown must not pass).
expect_clean_stop() {
  expect_eq "$(in_ct systemctl show -p Result --value ringcapd)" success "ringcapd.service Result after the stop"
  expect_eq "$(in_ct systemctl show -p ExecMainStatus --value ringcapd)" 0 "ringcapd's exit status after the stop"
}

step "systemctl stop ringcapd"
in_ct timeout 60 systemctl stop ringcapd || fail "systemctl stop ringcapd failed"
expect_clean_stop
if in_ct ip link show rc0 | grep -q 'xdp'; then
  in_ct ip link show rc0 >&2
  fail "an XDP program is still attached to rc0 after the stop"
fi
echo "ok: no XDP program left on rc0"
in_ct journalctl -u ringcapd -b --no-pager -o cat | tail -n 3

step "D-Bus activation"
busctl_ct call "$BUS_NAME" "$OBJ" "$IFACE" ListCaptures >/dev/null ||
  fail "a call to the stopped service did not start it"
[ "$(in_ct systemctl is-active ringcapd)" = active ] || fail "ringcapd is not active after the activating call"
echo "ok: a bus call started ringcapd.service"

step "watchdog (WatchdogSec=2s in a drop-in, 6 s of waiting)"
mkdir -p "$ROOT/etc/systemd/system/ringcapd.service.d"
printf '[Service]\nWatchdogSec=2s\n' >"$ROOT/etc/systemd/system/ringcapd.service.d/watchdog.conf"
in_ct systemctl daemon-reload
in_ct timeout 60 systemctl restart ringcapd || fail "systemctl restart ringcapd failed"
pid=$(in_ct systemctl show -p MainPID --value ringcapd)
sleep 6
if [ "$(in_ct systemctl show -p MainPID --value ringcapd)" != "$pid" ] ||
  [ "$(in_ct systemctl show -p NRestarts --value ringcapd)" != 0 ]; then
  in_ct journalctl -u ringcapd -b --no-pager -o cat | tail -n 10 >&2
  fail "ringcapd did not keep the watchdog happy"
fi
echo "ok: the same ringcapd ($pid) after 3 watchdog intervals"
in_ct timeout 60 systemctl stop ringcapd || fail "systemctl stop ringcapd failed"
expect_clean_stop
in_ct ip link show rc0 | grep -q 'xdp' && fail "an XDP program is still attached to rc0 after the stop"
echo "PASS"
