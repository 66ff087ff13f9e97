#!/usr/bin/env bash
# Bad options are refused before anything is loaded, with a message that names the option
# and the rule, and exit code 2; a caller without the capabilities gets one clear sentence.
source "$(dirname "$0")/lib.sh"
[ -x "$RINGCAP_DUMP" ] || fail "ringcap-dump not built at $RINGCAP_DUMP"
TMP=$(mktemp -d /tmp/ringcap-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# expect_usage EXPECTED-MESSAGE ARGS...: exit code 2 and the message on stderr.
expect_usage() {
  local want=$1
  shift
  local rc=0
  "$RINGCAP_DUMP" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "ringcap-dump $*: exit code $rc, expected 2 ($(cat "$TMP/err"))"
  grep -qF -- "$want" "$TMP/err" || fail "ringcap-dump $*: expected '$want' in: $(cat "$TMP/err")"
  [ ! -e "$TMP/x.pcapng" ] || fail "ringcap-dump $*: created the output file"
  echo "ok: $* -> $want"
}

W=(-i lo -w "$TMP/x.pcapng")
expect_usage "-i: at least one interface is needed" -w "$TMP/x.pcapng"
expect_usage "-w: an output file is needed" -i lo
expect_usage "--time-limit: must be an integer from 1 to 300 (got 0)" "${W[@]}" --time-limit 0
expect_usage "--time-limit: must be an integer from 1 to 300 (got 301)" "${W[@]}" --time-limit 301
expect_usage "--time-limit: must be an integer (got \"ten\")" "${W[@]}" --time-limit ten
expect_usage "--packet-limit: must be an integer from 1 to 10000 (got 10001)" "${W[@]}" --packet-limit 10001
expect_usage "--byte-limit: must be an integer from 1 to 1000000000 (got 1000000001)" "${W[@]}" --byte-limit 1000000001
expect_usage "--source-port: must be an integer from 0 to 65535 (got 65536)" "${W[@]}" --source-port 65536
expect_usage "--destination-port: must be an integer from 0 to 65535 (got -1)" "${W[@]}" --destination-port -1
expect_usage "--protocol: must be an integer from 0 to 255 (got 256)" "${W[@]}" --protocol 256
expect_usage "--source-address: not an IPv4 or IPv6 address" "${W[@]}" --source-address 10.0.0.256
expect_usage "--destination-address: must be the same address family as source_address" "${W[@]}" --source-address 10.0.0.1 --destination-address fd00::1
expect_usage "--type: must be \"simple\", \"full\" or \"sample\"" "${W[@]}" --type everything
expect_usage "--snaplen: must be an integer from 1 to 65535 (got 0)" "${W[@]}" --snaplen 0
expect_usage "--sample-rate: must be an integer from 1 to 1000000 (got 0)" "${W[@]}" --sample-rate 0
expect_usage "--ring-size: must be a power of two (got 3)" "${W[@]}" --ring-size 3
expect_usage "unknown option --colour" "${W[@]}" --colour
expect_usage "unexpected argument \"port\"" "${W[@]}" port 53

# Without privileges: one sentence, exit 1, nothing created.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  rc=0
  setpriv --reuid=65534 --regid=65534 --clear-groups "$RINGCAP_DUMP" -i lo -w "$TMP/np.pcapng" --time-limit 1 \
    >"$TMP/out" 2>"$TMP/err" || rc=$?
  expect_eq "$rc" 1 "exit code without privileges"
  grep -q "ringcap needs the capabilities CAP_SYS_ADMIN and CAP_NET_ADMIN" "$TMP/err" ||
    fail "unclear message without privileges: $(cat "$TMP/err")"
  expect_eq "$(wc -l <"$TMP/err")" 1 "lines printed without privileges"
  [ ! -e "$TMP/np.pcapng" ] || fail "created the output file without privileges"
else
  skip "the privilege check needs root (to drop to an unprivileged user) and setpriv"
fi
echo "PASS"
