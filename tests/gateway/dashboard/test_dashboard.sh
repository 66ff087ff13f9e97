#!/usr/bin/env bash
# The dashboard in a real browser: headless Chromium, driven over the Chrome DevTools Protocol
# (cdp.py), against the real ringcap-gateway over a real ringcapd on a veth lab.
#  - /#token=...&account=... is taken into sessionStorage and leaves the address bar;
#  - Start a capture: a bad value is refused with the API's message next to its field (also a
#    filter_v1 field, through the error's JSON pointer) and nothing is created; a simple
#    capture with a filter starts, is listed, and reaches success by itself (the page polls)
#    once traffic was sent; Download saves a file that capinfos/tshark read, holding exactly
#    the packets that were sent and matched, byte for byte the API's download;
#  - Buckets: a file:// destination passes the ownership challenge through the panel; a full
#    capture into it is started from the form, stopped with Stop, and ends `success` with stop reason `stopped`;
#  - the page raised no exception and no Content-Security-Policy violation; a bad token brings
#    back the login form, which signs in again; Forget token empties sessionStorage. A screenshot is kept (DASHBOARD_SCREENSHOT=docs/dashboard.png to
#    refresh the one in docs/).
if [ ! -f "$(dirname "$0")/../lib.sh" ]; then
  source "$(dirname "$0")/../../lib/check.sh"
  fail "needs tests/gateway/lib.sh (start_gateway)"
fi
source "$(dirname "$0")/../lib.sh" # start_gateway, on top of tests/integration/lib.sh
HERE=$(cd "$(dirname "$0")" && pwd)

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "needs chromium (Debian's package)"
require_lab
command -v capinfos >/dev/null || skip "needs capinfos (wireshark-common)"

lab_up 91
start_bus
start_ringcapd "[destinations]
file_roots = [\"$LAB_TMP/files\"]"
mkdir -p "$LAB_TMP/files/dash"
start_gateway
: "${GATEWAY_URL:?start_gateway sets GATEWAY_URL}" "${GATEWAY_ACCOUNT:?}" "${GATEWAY_TOKEN:?}"

# ---- the browser ----------------------------------------------------------------------------
CDP_SOCKET=$LAB_TMP/cdp.sock
DOWNLOADS=$LAB_TMP/downloads
mkdir -p "$DOWNLOADS" "$LAB_TMP/chromium-profile"
/usr/bin/python3 "$HERE/cdp.py" serve --chromium "$CHROMIUM" --socket "$CDP_SOCKET" --profile "$LAB_TMP/chromium-profile" \
  --downloads "$DOWNLOADS" --log "$LAB_TMP/chromium.log" 2>"$LAB_TMP/cdp.log" &
CDP_PID=$!
# On any exit, the driver ends its Chromium (and waits for it) before the lab's files go.
stop_browser() {
  local deadline=$((SECONDS + 40))
  kill -TERM "$CDP_PID" 2>/dev/null || return 0
  while kill -0 "$CDP_PID" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill -KILL "$CDP_PID" 2>/dev/null; break; }
    sleep 0.05
  done
}
# start_gateway's EXIT trap (the gateway's end, then lab_down) runs after the browser is gone,
# with the script's exit status.
PREV_EXIT_TRAP=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT\$/\1/")
[ -n "$PREV_EXIT_TRAP" ] || fail "no EXIT trap from start_gateway/lab_up"
dashboard_exit() {
  local rc=$?
  stop_browser
  (exit "$rc")
  eval "$PREV_EXIT_TRAP"
}
trap dashboard_exit EXIT
deadline=$((SECONDS + 60))
until [ -S "$CDP_SOCKET" ]; do
  kill -0 "$CDP_PID" 2>/dev/null || { cat "$LAB_TMP/cdp.log" "$LAB_TMP/chromium.log" >&2; fail "the browser driver exited"; }
  [ $SECONDS -lt $deadline ] || fail "Chromium not ready after 60 s"
  sleep 0.05
done

on_fail() {
  [ -S "${CDP_SOCKET:-}" ] && drv screenshot "$LAB_TMP/failed.png" >/dev/null 2>&1 &&
    echo "--- the page at the failure: $LAB_TMP/failed.png (kept only while the lab exists)"
  [ -S "${CDP_SOCKET:-}" ] && { echo "--- the page's problems:"; drv problems 2>&1 | head -n 20; }
  [ -s "${GATEWAY_LOG:-}" ] && { echo "--- last lines of the gateway's log:"; tail -n 20 "$GATEWAY_LOG"; }
  [ -s "$LAB_TMP/ringcapd.log" ] && { echo "--- last lines of ringcapd's log:"; tail -n 20 "$LAB_TMP/ringcapd.log"; }
  return 0
}

drv() { /usr/bin/python3 "$HERE/cdp.py" call --socket "$CDP_SOCKET" -- "$@"; }
# page EXPR: sets PAGE to EXPR's value in the page.
page() { PAGE=$(drv eval "$1") || fail "evaluating in the page: $1"; }
# expect_page EXPR WANT WHAT
expect_page() { page "$1"; expect_eq "$PAGE" "$2" "$3"; }
# page_wait SECONDS EXPR WHAT: polls EXPR in the page until it is truthy; sets PAGE to it.
page_wait() { PAGE=$(drv wait "$1" "$2") || fail "$3: not seen within $1 s"; echo "ok: $3"; }
click() { drv click "$1" >/dev/null || fail "clicking $1"; }
# type_in SELECTOR TEXT: types TEXT into the field (as keyboard input) and checks its value.
type_in() {
  local got
  got=$(drv type "$1" "$2") || fail "typing into $1"
  [ "$got" = "$2" ] || fail "$1 holds '$got' after typing '$2'"
}
row() { printf '#captures-body tr[data-id="%s"]' "$1"; }
api_get() {
  curl -sS --max-time 20 -H "Authorization: Bearer $GATEWAY_TOKEN" \
    "$GATEWAY_URL/client/v4/accounts/$GATEWAY_ACCOUNT/pcaps$1"
}
captures_via_api() { api_get "" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["result"]))'; }

echo "== the token in the fragment"
drv navigate "$GATEWAY_URL/#token=$GATEWAY_TOKEN&account=$GATEWAY_ACCOUNT" >/dev/null || fail "opening the dashboard"
page_wait 20 '!document.getElementById("app").hidden && !document.getElementById("captures-empty").hidden' \
  "the page lists no capture yet"
expect_page 'location.hash' "" "the fragment after load"
expect_page 'location.href' "$GATEWAY_URL/" "the address bar"
expect_page 'String(location.href.includes(sessionStorage.getItem("ringcap.token")))' false "the token in the address bar"
expect_page 'sessionStorage.getItem("ringcap.token")' "$GATEWAY_TOKEN" "the token in sessionStorage"
expect_page 'sessionStorage.getItem("ringcap.account")' "$GATEWAY_ACCOUNT" "the account in sessionStorage"
expect_page 'document.getElementById("session-account").textContent' "$GATEWAY_ACCOUNT" "the account shown"
expect_page '[...document.querySelectorAll("input")].filter(i => i.labels.length === 0).map(i => i.id || i.name).join(" ")' "" \
  "fields without a label"

echo "== a bad value: the API's error next to its field, nothing created"
click '#open-start'
page_wait 5 '!document.getElementById("start").hidden' "the form opens"
expect_page 'document.querySelector("#f-byte_limit").closest(".field").hidden' true "full-only fields hidden for a simple capture"
type_in '#f-time_limit' 0
type_in '#f-packet_limit' 30
type_in '#f-source_address' "$ADDR_GEN"
type_in '#f-destination_port' 5300
type_in '#f-protocol' 17
click '#start-submit'
page_wait 20 'document.getElementById("err-time_limit").textContent' "an error next to the time limit"
expect_grep "time_limit: " "$PAGE" "the time limit's error (the API's message)"
expect_grep "300" "$PAGE" "the time limit's error names the range"
expect_page 'document.getElementById("f-time_limit").getAttribute("aria-invalid")' true "the time limit marked invalid"
expect_page 'document.activeElement.id' f-time_limit "the focus on the field in error"
expect_page '[...document.querySelectorAll("#start-form [data-error-for]")].filter(e => e.textContent).length' 1 "fields in error"
expect_page 'document.getElementById("start-error").textContent' "" "errors not placed next to a field"
type_in '#f-time_limit' 60
type_in '#f-source_port' 70000
click '#start-submit'
page_wait 20 'document.getElementById("err-source_port").textContent' "an error next to the filter's source port"
expect_grep "filter_v1.source_port: " "$PAGE" "the source port's error"
expect_page 'document.getElementById("err-time_limit").textContent' "" "the time limit's error cleared"
expect_eq "$(captures_via_api)" 0 "captures after two refused requests (API)"
expect_page 'document.querySelectorAll("#captures-body tr").length' 0 "captures listed after two refused requests"

echo "== a simple capture with a filter, from the form"
type_in '#f-source_port' ""
click '#start-submit'
page_wait 20 'document.getElementById("start").hidden && document.querySelector("#captures-body tr")?.dataset.id' \
  "the capture listed"
ID=$PAGE
[[ "$ID" =~ ^[0-9a-f]{32}$ ]] || fail "capture id '$ID'"
expect_eq "$(api_get "/$ID" | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r["type"], r["time_limit"], r["packet_limit"], json.dumps(r["filter_v1"], sort_keys=True))')" \
  "simple 60 30 {\"destination_port\": 5300, \"protocol\": 17, \"source_address\": \"$ADDR_GEN\"}" \
  "the request the form sent (API)"
page "document.querySelector('$(row "$ID")').cells[1].textContent"
expect_eq "$PAGE" simple "type column"
page "document.querySelector('$(row "$ID") .cell-filter').textContent"
expect_eq "$PAGE" "src $ADDR_GEN · dport 5300 · proto udp" "filter column"
page_wait 20 "document.querySelector('$(row "$ID")').dataset.status === 'running'" "the capture running"
page "document.querySelector('$(row "$ID") [data-action=stop]') !== null && document.querySelector('$(row "$ID") [data-action=download]') === null"
expect_eq "$PAGE" true "Stop offered, Download not, while running"
page "document.querySelector('$(row "$ID")').cells[3].textContent"
[[ "$PAGE" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ UTC$ ]] || fail "submitted column '$PAGE'"
echo "ok: submitted column $PAGE"

echo "== traffic: the page follows the capture to success"
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5301 --sport 6000 --count 20 --size 300 --max-seconds 20 >/dev/null # not matched
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5300 --sport 6000 --count 30 --size 300 --max-seconds 20 >/dev/null
page_wait 60 "document.querySelector('$(row "$ID")').dataset.status === 'success'" "the capture reached success in the page"
page "document.querySelector('$(row "$ID") .cell-packets').textContent"
expect_eq "$PAGE" 30 "packets captured column"
page "document.querySelector('$(row "$ID") [data-action=stop]') === null"
expect_eq "$PAGE" true "no Stop once finished"

echo "== the capture's page: its record and counters"
click "$(row "$ID") [data-action=detail]"
page_wait 20 "document.getElementById('detail').dataset.id === '$ID' && !document.getElementById('detail').hidden" "the detail opens"
page "[...document.querySelectorAll('#detail-counters dd')].map(d => d.dataset.key + '=' + d.textContent).join(' ')"
expect_grep "packets_captured=30" "$PAGE" "counters"
expect_grep "packets_matched=30" "$PAGE" "counters"
expect_grep "packets_lost=0" "$PAGE" "counters"
expect_page 'document.querySelector("#detail-fields dd[data-key=stop_reason]").textContent' packet_limit "stop reason shown"
expect_page 'document.querySelector("#detail-fields dd[data-key=file_name]").textContent' "pcap_$ID.pcap" "file name shown"

echo "== Download"
click "$(row "$ID") [data-action=download]"
FILE=$DOWNLOADS/pcap_$ID.pcap
deadline=$((SECONDS + 30))
until [ -f "$FILE" ] && ! compgen -G "$DOWNLOADS/*.crdownload" >/dev/null; do
  [ $SECONDS -lt $deadline ] || { ls -la "$DOWNLOADS" >&2; fail "no downloaded pcap_$ID.pcap after 30 s"; }
  sleep 0.05
done
echo "ok: the browser saved pcap_$ID.pcap"
expect_nanosecond_pcap "$FILE" "the downloaded file"
expect_eq "$(capinfos -c -M "$FILE" | awk -F': *' '/Number of packets/ {print $2}')" 30 "packets in the downloaded file (capinfos)"
expect_eq "$(tshark_fields "$FILE" ip.src ip.dst udp.srcport udp.dstport | sort | uniq -c | sed 's/^ *//')" \
  "30 $ADDR_GEN $ADDR_CAP 6000 5300" "tshark: only the filtered flow"
api_get "/$ID/download" >"$LAB_TMP/api.pcap" || fail "downloading through the API with curl"
cmp "$FILE" "$LAB_TMP/api.pcap" || fail "the browser's file differs from the API's download"
echo "ok: the browser's file is the API's download, byte for byte"

echo "== Buckets: the ownership challenge of a file:// destination"
DEST="file://$LAB_TMP/files/dash"
type_in '#b-destination_conf' "$DEST"
click '#bucket-create'
page_wait 20 'document.querySelector("#buckets-body tr[data-status=pending]")?.cells[2].textContent' "a pending challenge listed"
CHALLENGE_FILE=$PAGE
[[ "$CHALLENGE_FILE" =~ ^ownership-challenge-[0-9a-f]+\.txt$ ]] || fail "challenge file name '$CHALLENGE_FILE'"
expect_grep "$CHALLENGE_FILE" "$(drv eval 'document.getElementById("bucket-notice").textContent')" "the notice names the challenge file"
[ -f "$LAB_TMP/files/dash/$CHALLENGE_FILE" ] || fail "no $CHALLENGE_FILE in the destination"
type_in '#b-ownership_challenge' "not-the-token"
click '#bucket-validate'
page_wait 20 'document.querySelector("#buckets-body tr")?.dataset.status === "failed"' "a wrong challenge turns the record failed"
type_in '#b-ownership_challenge' "$(tr -d '\n' <"$LAB_TMP/files/dash/$CHALLENGE_FILE")"
click '#bucket-validate'
page_wait 20 'document.querySelector("#buckets-body tr")?.dataset.status === "success"' "the right challenge validates the bucket"
expect_page 'document.querySelector("#buckets-body tr").cells[0].textContent' "$DEST" "the validated destination"
expect_page '[...document.querySelectorAll("#validated-buckets option")].map(o => o.value).join(" ")' "$DEST" \
  "the start form offers the validated destination"

echo "== a full capture from the form, stopped with Stop"
click '#open-start'
click '#f-type-full'
page_wait 5 '!document.querySelector("#f-byte_limit").closest(".field").hidden' "full-only fields shown"
type_in '#f-time_limit' 120
type_in '#f-packet_limit' ""
type_in '#f-colo_name' lab01
type_in '#f-destination_conf' "$DEST"
type_in '#f-source_address' ""
type_in '#f-destination_port' 5400
click '#start-submit'
page_wait 20 "document.getElementById('start').hidden && [...document.querySelectorAll('#captures-body tr')].find(r => r.dataset.id !== '$ID')?.dataset.id" \
  "the full capture listed"
FULL=$PAGE
expect_page "document.querySelector('#captures-body tr').dataset.id" "$FULL" "newest first"
page_wait 20 "document.querySelector('$(row "$FULL")').dataset.status === 'running' && document.querySelector('$(row "$FULL") [data-action=stop]') !== null" \
  "the full capture running, with Stop"
page "document.querySelector('$(row "$FULL")').cells[1].textContent"
expect_eq "$PAGE" full "type column of the full capture"
click "$(row "$FULL") [data-action=stop]"
page_wait 60 "document.querySelector('$(row "$FULL")').dataset.status === 'success'" "the stopped capture reached success in the page"
expect_eq "$(api_get "/$FULL" | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r["stop_reason"], "stop_requested" in r)')" \
  "stopped True" "stop reason (API)"
click "$(row "$FULL") [data-action=detail]"
page_wait 20 "document.getElementById('detail').dataset.id === '$FULL' && document.querySelector('#detail-fields dd[data-key=stop_reason]')?.textContent" \
  "the detail of the full capture"
expect_eq "$PAGE" stopped "stop reason shown"
page 'document.querySelector("#detail-fields dd[data-key=location]")?.textContent || ""'
expect_grep "$LAB_TMP/files/dash/" "$PAGE" "the delivered file's location"
expect_page 'document.querySelectorAll("#captures-body tr").length' 2 "captures listed"
expect_eq "$(captures_via_api)" 2 "captures (API)"

echo "== the screenshot (with the simple capture's page open)"
click "$(row "$ID") [data-action=detail]"
page_wait 20 "document.getElementById('detail').dataset.id === '$ID'" "the detail of the simple capture"
drv eval 'window.scrollTo(0, 0); true' >/dev/null
drv screenshot "$LAB_TMP/dashboard.png" >/dev/null || fail "Page.captureScreenshot"
expect_eq "$(head -c 8 "$LAB_TMP/dashboard.png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "PNG signature of the screenshot"
[ "$(stat -c %s "$LAB_TMP/dashboard.png")" -gt 20000 ] || fail "the screenshot is too small to show the page"
if [ -n "${DASHBOARD_SCREENSHOT:-}" ]; then
  cp "$LAB_TMP/dashboard.png" "$DASHBOARD_SCREENSHOT"
  echo "info: screenshot written to $DASHBOARD_SCREENSHOT"
fi

echo "== Buckets: delete"
click '#buckets-body tr [data-action=delete]'
page_wait 20 '!document.getElementById("buckets-empty").hidden && document.querySelectorAll("#buckets-body tr").length === 0' \
  "the bucket's record deleted"
expect_eq "$(api_get /ownership | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["result"]))')" 0 \
  "ownership records (API)"

echo "== no exception, no CSP violation"
PROBLEMS=$(drv problems) || fail "reading the page's problems"
expect_eq "$PROBLEMS" "" "the page's exceptions and console/security errors"

echo "== a bad token brings back the login form"
drv navigate about:blank >/dev/null || fail "leaving the dashboard"
drv navigate "$GATEWAY_URL/#token=not-a-token&account=$GATEWAY_ACCOUNT" >/dev/null || fail "reopening the dashboard"
page_wait 20 '!document.getElementById("login").hidden && document.getElementById("app").hidden' "the login form after a refused token"
expect_page 'location.hash' "" "the fragment after load"
page 'document.getElementById("banner").textContent'
expect_grep "refused the token" "$PAGE" "the banner"

echo "== the login form"
type_in '#login-token' "$GATEWAY_TOKEN"
expect_page 'document.getElementById("login-account").value' "$GATEWAY_ACCOUNT" "the account kept in the login form"
click '#login-save'
page_wait 20 '!document.getElementById("app").hidden && document.querySelectorAll("#captures-body tr").length === 2' \
  "the captures listed after signing in with the form"
expect_page 'sessionStorage.getItem("ringcap.token")' "$GATEWAY_TOKEN" "the token in sessionStorage"
click '#sign-out'
page_wait 10 '!document.getElementById("login").hidden && sessionStorage.getItem("ringcap.token") === null' \
  "Forget token removes the token from sessionStorage"

drv quit >/dev/null || fail "closing Chromium"
rc=0
wait "$CDP_PID" || rc=$?
expect_eq "$rc" 0 "exit code of the browser driver"
stop_gateway
stop_ringcapd
echo "PASS"
