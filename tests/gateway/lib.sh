# ringcap-gateway for test scripts (bash), on top of tests/integration/lib.sh. Use:
#
#   source "$(dirname "$0")/../lib.sh"   # from tests/gateway/<dir>/; sources tests/integration/lib.sh
#   require_lab; lab_up 90; start_bus; start_ringcapd ""
#   start_gateway            # or: start_gateway 'threads = 4' (more keys for [gateway])
#   curl -fsS -H "Authorization: Bearer $GATEWAY_TOKEN" \
#     "$GATEWAY_URL/client/v4/accounts/$GATEWAY_ACCOUNT/pcaps"
#
# start_gateway writes $LAB_TMP/gateway.toml (ringcapd's configuration of the lab, when there
# is one, plus a [gateway] table: listen on 127.0.0.1 with a free port, an account id, a
# tokens file with one token named "test") and runs build/daemon/gateway/ringcap-gateway as
# the unprivileged user ringcap-gateway-test (created on first use, member of the group
# ringcap), connected to the lab's bus ($DBUS_SYSTEM_BUS_ADDRESS: call start_bus first). It
# returns once the gateway listens, and exports:
#   GATEWAY_URL      http://127.0.0.1:<port> (no trailing slash)
#   GATEWAY_ACCOUNT  the account id (32 hex digits) of the API's routes
#   GATEWAY_TOKEN    a valid API token (Authorization: Bearer $GATEWAY_TOKEN)
#   GATEWAY_API      $GATEWAY_URL/client/v4/accounts/$GATEWAY_ACCOUNT
#   GATEWAY_PID, GATEWAY_LOG (its stderr: one line per request)
# GATEWAY_ACCOUNT and GATEWAY_TOKEN may be set before the call to choose them (a second
# start_gateway in one script keeps them). NOTIFY_SOCKET, when exported, reaches the gateway.
# start_gateway sets the EXIT trap to gateway_exit (which ends with lab_down): a script with a
# trap of its own must call gateway_exit from it.
# The dashboard is served from daemon/gateway/dashboard/ of this checkout (GATEWAY_DASHBOARD_DIR
# overrides it; GATEWAY selects the binary, such as a sanitizer build's). stop_gateway stops it
# with SIGTERM and fails unless it exits with code 0 within 30 s and its log holds no
# sanitizer report; when the script ends (EXIT), a gateway still running is stopped the same way
# and a non-zero exit code fails the script, then lab_down runs.

source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

GATEWAY=${GATEWAY:-$BUILD_DIR/daemon/gateway/ringcap-gateway}
GATEWAY_USER=ringcap-gateway-test

require_gateway() {
  [ -x "$GATEWAY" ] || fail "ringcap-gateway not built at $GATEWAY"
  command -v curl >/dev/null || skip "needs curl"
  command -v setpriv >/dev/null || skip "needs setpriv"
}

# The EXIT trap of a script that started a gateway: stops it (checked when the script passed),
# then lab_down.
gateway_exit() {
  local rc=$?
  if [ -n "${GATEWAY_PID:-}" ] && kill -0 "$GATEWAY_PID" 2>/dev/null; then
    if [ "$rc" -eq 0 ]; then
      gateway_stop_check
      if [ -n "$GATEWAY_STOP_PROBLEM" ]; then
        echo "FAIL (at the end of the test): $GATEWAY_STOP_PROBLEM" >&2
        tail -n 20 "$GATEWAY_LOG" >&2 || true
        rc=1
      fi
    else
      kill -TERM "$GATEWAY_PID" 2>/dev/null || true
    fi
  fi
  lab_down "$rc"
  exit "$rc"
}

# SIGTERM to the gateway; sets GATEWAY_STOP_PROBLEM (empty when it exited with code 0 within
# 30 s and its log holds no sanitizer report).
gateway_stop_check() {
  stop_check ringcap-gateway "$GATEWAY_PID" "$GATEWAY_LOG"
  GATEWAY_STOP_PROBLEM=$STOP_PROBLEM
}

# make_gateway_tls: a self-signed certificate for 127.0.0.1 and its key in $LAB_TMP/gateway/
# (tls.crt, tls.key), readable by the gateway's group, for start_gateway's tls_certificate
# and tls_key lines.
make_gateway_tls() {
  command -v openssl >/dev/null || fail "needs openssl"
  mkdir -p "$LAB_TMP/gateway"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$LAB_TMP/gateway/tls.key" -out "$LAB_TMP/gateway/tls.crt" 2>/dev/null ||
    fail "openssl could not make a test certificate"
  chgrp ringcap "$LAB_TMP/gateway/tls.key" "$LAB_TMP/gateway/tls.crt"
  chmod 640 "$LAB_TMP/gateway/tls.key"
  chmod 644 "$LAB_TMP/gateway/tls.crt"
}

stop_gateway() {
  gateway_stop_check
  [ -z "$GATEWAY_STOP_PROBLEM" ] || fail "$GATEWAY_STOP_PROBLEM"
  GATEWAY_PID=""
  echo "ok: ringcap-gateway stopped: exit code 0"
}

# start_gateway [TOML-LINES]: TOML-LINES are added to the [gateway] table.
start_gateway() {
  require_gateway
  [ -n "${DBUS_SYSTEM_BUS_ADDRESS:-}" ] || fail "start_gateway: call start_bus first"
  getent group ringcap >/dev/null || groupadd --system ringcap
  id "$GATEWAY_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin --groups ringcap "$GATEWAY_USER"
  local dir=$LAB_TMP/gateway
  mkdir -p "$dir"
  chgrp ringcap "$dir"
  chmod 750 "$dir"
  GATEWAY_ACCOUNT=${GATEWAY_ACCOUNT:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  GATEWAY_TOKEN=${GATEWAY_TOKEN:-$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)}
  printf '# test tokens\ntest %s\n' "$GATEWAY_TOKEN" >"$dir/tokens"
  chgrp ringcap "$dir/tokens"
  chmod 640 "$dir/tokens"
  {
    [ -f "$LAB_TMP/ringcapd.toml" ] && cat "$LAB_TMP/ringcapd.toml"
    echo
    echo "[gateway]"
    echo 'listen = "127.0.0.1:0"'
    echo "account_id = \"$GATEWAY_ACCOUNT\""
    echo "tokens_file = \"$dir/tokens\""
    echo "dashboard_dir = \"${GATEWAY_DASHBOARD_DIR:-$SOURCE_DIR/daemon/gateway/dashboard}\""
    [ -z "${1:-}" ] || echo "$1"
  } >"$dir/gateway.toml"
  chgrp ringcap "$dir/gateway.toml"
  chmod 640 "$dir/gateway.toml"
  GATEWAY_LOG=$LAB_TMP/gateway.log
  : >"$GATEWAY_LOG"
  setpriv --reuid="$GATEWAY_USER" --regid=ringcap --init-groups \
    "$GATEWAY" --config "$dir/gateway.toml" 2>>"$GATEWAY_LOG" &
  GATEWAY_PID=$!
  trap gateway_exit EXIT
  local deadline=$((SECONDS + 20))
  until grep -q "listening on " "$GATEWAY_LOG"; do
    kill -0 "$GATEWAY_PID" 2>/dev/null || { cat "$GATEWAY_LOG" >&2; fail "ringcap-gateway exited"; }
    [ $SECONDS -lt $deadline ] || { cat "$GATEWAY_LOG" >&2; fail "ringcap-gateway not listening after 20 s"; }
    sleep 0.05
  done
  GATEWAY_URL=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$GATEWAY_LOG" | head -n 1)
  [ -n "$GATEWAY_URL" ] || fail "start_gateway: no URL in the gateway's log"
  GATEWAY_API=$GATEWAY_URL/client/v4/accounts/$GATEWAY_ACCOUNT
  export GATEWAY_URL GATEWAY_ACCOUNT GATEWAY_TOKEN GATEWAY_API GATEWAY_PID GATEWAY_LOG
}
