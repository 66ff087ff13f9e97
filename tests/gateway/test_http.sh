#!/usr/bin/env bash
# ringcap-gateway over HTTP with curl: ringcapd on a veth lab (private bus, shipped policy),
# the gateway as an unprivileged member of the group ringcap (tests/gateway/lib.sh).
#  - the envelope, status and headers of every route (docs/rest-api.md);
#  - each row of the error table: 400 with ringcapd's message and a JSON pointer, 401, 404
#    (another account, an unknown id, an unknown route), 405, 409, 413, 429 with Retry-After,
#    503 with ringcapd stopped; x-should-retry on POST errors;
#  - whole floats (10.0) taken as integers;
#  - a filtered capture that reaches success, downloaded (Content-Length = the file's size,
#    read by capinfos and tshark);
#  - the request log names the token, never shows it; a burst of bad tokens gets 429.
source "$(dirname "$0")/lib.sh"
require_lab
command -v capinfos >/dev/null || skip "needs capinfos"
lab_up 101
start_bus
mkdir -p "$LAB_TMP/files/team"
chmod 755 "$LAB_TMP/files"
start_ringcapd "[destinations]
file_roots = [\"$LAB_TMP/files\"]"
start_gateway

OUT=$LAB_TMP/out
HDR=$LAB_TMP/hdr
# req METHOD URL-PATH [CURL-ARGS...]: the reply's body in $OUT, its headers in $HDR, its
# status in $STATUS.
A=/client/v4/accounts/$GATEWAY_ACCOUNT
req() {
  local method=$1 url=$GATEWAY_URL$2
  shift 2
  STATUS=$(curl -sS -o "$OUT" -D "$HDR" -w '%{http_code}' -X "$method" "$@" "$url") ||
    fail "curl $method $url failed"
}
auth=(-H "Authorization: Bearer $GATEWAY_TOKEN")
post_json() { local path=$1 body=$2; shift 2; req POST "$path" "${auth[@]}" -H 'Content-Type: application/json' --data-binary "$body" "$@"; }
# A header's value (case-insensitive name), without the CR.
hdr() { awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$1")" -F': ' 'tolower($1) == n {sub(/\r$/, "", $2); print $2}' "$HDR"; }
# A Python expression over the reply's JSON (j).
jq_() { /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$OUT" "$1"; }

# expect_envelope_ok STATUS WHAT: a success envelope with Content-Type application/json.
expect_envelope_ok() {
  expect_eq "$STATUS" "$1" "$2: status"
  expect_eq "$(hdr Content-Type)" application/json "$2: Content-Type"
  expect_eq "$(jq_ '(j["success"], j["errors"], j["messages"])')" "(True, [], [])" "$2: envelope"
}
# expect_error STATUS CODE MESSAGE-PART POINTER WHAT: an error envelope.
expect_error() {
  expect_eq "$STATUS" "$1" "$5: status"
  expect_eq "$(hdr Content-Type)" application/json "$5: Content-Type"
  expect_eq "$(jq_ '(j["success"], len(j["errors"]), j["errors"][0]["code"], j["result"])')" "(False, 1, $2, None)" "$5: error envelope"
  expect_grep "$3" "$(jq_ 'j["errors"][0]["message"]')" "$5: message"
  expect_eq "$(jq_ 'j["errors"][0].get("source", {}).get("pointer", "")')" "$4" "$5: pointer"
}

echo "== lists, empty"
req GET $A/pcaps "${auth[@]}"
expect_envelope_ok 200 "GET $A/pcaps"
expect_eq "$(jq_ '(j["result"], j["result_info"])')" "([], {'count': 0, 'page': 1, 'per_page': 0, 'total_count': 0})" "empty list and result_info"
req GET $A/pcaps/ownership "${auth[@]}"
expect_envelope_ok 200 "GET $A/pcaps/ownership"
expect_eq "$(jq_ 'j["result"]')" "[]" "no ownership"

echo "== authentication"
req GET $A/pcaps
expect_error 401 10000 "authentication required" "" "no token"
expect_eq "$(hdr WWW-Authenticate)" 'Bearer realm="ringcap"' "WWW-Authenticate"
req GET $A/pcaps -H "Authorization: Bearer not-$GATEWAY_TOKEN"
expect_error 401 10000 "invalid API token" "" "a bad token"
req GET $A/pcaps -H "Authorization: Basic $GATEWAY_TOKEN"
expect_error 401 10000 "Bearer <API token> expected" "" "not a bearer token"
req GET $A/pcaps -H "X-Auth-Key: $GATEWAY_TOKEN" -H "X-Auth-Email: ops@example.com"
expect_envelope_ok 200 "X-Auth-Key and X-Auth-Email"
req GET $A/pcaps -H "X-Auth-Key: $GATEWAY_TOKEN"
expect_error 401 10000 "X-Auth-Key needs X-Auth-Email" "" "X-Auth-Key alone"

echo "== routes that are not there"
req GET "/client/v4/accounts/0123456789abcdef0123456789abcdef/pcaps" "${auth[@]}"
expect_error 404 1004 "account 0123456789abcdef0123456789abcdef: not found" "" "another account"
req GET $A/pcaps/0123456789abcdef0123456789abcdef "${auth[@]}"
expect_error 404 1004 "" "" "an unknown capture id"
req GET $A/pcapz "${auth[@]}"
expect_error 404 7000 "no route for that URI" "" "an unknown route"
req DELETE $A/pcaps "${auth[@]}"
expect_error 405 7001 "not allowed" "" "DELETE $A/pcaps"
expect_eq "$(hdr Allow)" "GET, POST" "Allow of $A/pcaps"
req GET $A/pcaps/ownership/validate "${auth[@]}"
expect_eq "$STATUS" 405 "GET of the validate route"
expect_eq "$(hdr Allow)" "POST" "Allow of the validate route"

echo "== bad requests: ringcapd's message, a pointer, x-should-retry: false"
post_json $A/pcaps '{"type":"simple","system":"magic-transit","time_limit":-3,"packet_limit":10}'
expect_error 400 1001 "time_limit: " /time_limit "a negative time_limit"
expect_eq "$(hdr x-should-retry)" false "x-should-retry of a POST error"
post_json $A/pcaps '{"type":"simple","system":"magic-transit","time_limit":10,"packet_limit":10,"filter_v1":{"source_port":70000}}'
expect_error 400 1001 "filter_v1.source_port: " /filter_v1/source_port "a source_port out of range"
post_json $A/pcaps '{"type":"simple","system":"magic-transit","time_limit":10.5,"packet_limit":10}'
expect_error 400 1001 "time_limit: " /time_limit "a time_limit of 10.5"
post_json $A/pcaps '{"type":'
expect_error 400 1001 "request body: not valid JSON" "" "a body that is not JSON"
post_json $A/pcaps '[1,2]'
expect_error 400 1001 "request body: must be a JSON object" "" "a body that is an array"
post_json $A/pcaps/ownership '{"destination_conf": 5}'
expect_error 400 1001 "destination_conf: must be a string" /destination_conf "a destination_conf that is a number"
head -c 70000 /dev/zero | tr '\0' ' ' >"$LAB_TMP/big.json"
req POST $A/pcaps "${auth[@]}" -H 'Content-Type: application/json' --data-binary "@$LAB_TMP/big.json"
expect_error 413 7002 "larger than 65536 bytes" "" "a body of 70000 bytes"
expect_eq "$(hdr x-should-retry)" false "x-should-retry of a 413"

echo "== a filtered simple capture: whole floats, 409 before success, success, download"
post_json $A/pcaps "{\"type\":\"simple\",\"system\":\"magic-transit\",\"time_limit\":30.0,\"packet_limit\":40.0,\"filter_v1\":{\"source_address\":\"$ADDR_GEN\",\"destination_port\":5300.0,\"protocol\":17}}"
expect_envelope_ok 200 "POST $A/pcaps"
expect_eq "$(jq_ '(j["result"]["time_limit"], j["result"]["packet_limit"], j["result"]["filter_v1"]["destination_port"], j["result"]["status"])')" "(30, 40, 5300, 'running')" "whole floats as integers"
ID=$(jq_ 'j["result"]["id"]')
req GET "$A/pcaps/$ID/download" "${auth[@]}"
expect_error 409 1005 "" "" "a download before success"
post_json $A/pcaps '{"type":"simple","system":"magic-transit","time_limit":10,"packet_limit":10}'
expect_error 429 1002 "the next is allowed in" "" "a second simple capture"
RETRY=$(hdr Retry-After)
[[ "$RETRY" =~ ^[0-9]+$ ]] && [ "$RETRY" -ge 1 ] && [ "$RETRY" -le 60 ] || fail "Retry-After: '$RETRY'"
expect_eq "$RETRY" "$(jq_ 'j["errors"][0]["message"].split("allowed in ")[1].split(" s")[0]')" "Retry-After = the message's seconds"
expect_eq "$(hdr x-should-retry)" false "x-should-retry of a 429 on a create"
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5301 --count 20 --size 300 >/dev/null
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5300 --sport 6000 --count 60 --size 300 >/dev/null
capture_done() { req GET "$A/pcaps/$ID" "${auth[@]}"; [ "$(jq_ 'j["result"]["status"]')" = success ]; }
wait_until 60 capture_done
req GET "$A/pcaps/$ID" "${auth[@]}"
expect_envelope_ok 200 "GET $A/pcaps/{id}"
expect_eq "$(jq_ '(j["result"]["id"], j["result"]["status"], j["result"]["packets_captured"])')" "('$ID', 'success', 40)" "the capture's record"
req GET $A/pcaps "${auth[@]}"
expect_envelope_ok 200 "GET $A/pcaps, one capture"
expect_eq "$(jq_ '([c["id"] for c in j["result"]], j["result_info"]["count"], j["result_info"]["total_count"])')" "(['$ID'], 1, 1)" "the list"
req GET "$A/pcaps/$ID/download" "${auth[@]}"
cp "$OUT" "$LAB_TMP/dl.pcap"
expect_eq "$STATUS" 200 "download: status"
expect_eq "$(hdr Content-Type)" application/vnd.tcpdump.pcap "download: Content-Type"
expect_eq "$(hdr Content-Disposition)" "attachment; filename=\"pcap_$ID.pcap\"" "download: Content-Disposition"
expect_eq "$(hdr Content-Length)" "$(stat -c %s "$LAB_TMP/dl.pcap")" "download: Content-Length = the bytes received"
expect_eq "$(jq_ 'j' 2>/dev/null || true)" "" "download: the body is not JSON"
expect_nanosecond_pcap "$LAB_TMP/dl.pcap" "the download"
expect_eq "$(tshark_fields "$LAB_TMP/dl.pcap" ip.src udp.dstport | sort | uniq -c | sed 's/^ *//')" \
  "40 $ADDR_GEN 5300" "tshark: the filtered flow"
req HEAD "$A/pcaps/$ID/download" "${auth[@]}" --head
expect_eq "$STATUS" 200 "HEAD of the download"

echo "== ownership of a file:// bucket, a full capture, stop, delete"
FDEST="file://$LAB_TMP/files/team"
post_json $A/pcaps/ownership "{\"destination_conf\":\"$FDEST\"}"
expect_envelope_ok 200 "POST $A/pcaps/ownership"
expect_eq "$(jq_ '(j["result"]["status"], j["result"]["destination_conf"])')" "('pending', '$FDEST')" "the ownership record"
OWN_ID=$(jq_ 'j["result"]["id"]')
CHALLENGE=$(cat "$LAB_TMP/files/team/$(jq_ 'j["result"]["filename"]')")
post_json $A/pcaps/ownership/validate "{\"destination_conf\":\"$FDEST\"}"
expect_error 400 1001 "ownership_challenge: required" /ownership_challenge "validate without a challenge"
post_json $A/pcaps/ownership/validate "{\"destination_conf\":\"$FDEST\",\"ownership_challenge\":\"$CHALLENGE\"}"
expect_envelope_ok 200 "POST $A/pcaps/ownership/validate"
expect_eq "$(jq_ 'j["result"]["status"]')" success "ownership validated"
req GET $A/pcaps/ownership "${auth[@]}"
expect_envelope_ok 200 "GET $A/pcaps/ownership"
expect_eq "$(jq_ '([o["id"] for o in j["result"]], j["result_info"]["count"])')" "(['$OWN_ID'], 1)" "the ownership list"
post_json $A/pcaps "{\"type\":\"full\",\"system\":\"magic-transit\",\"colo_name\":\"lab01\",\"destination_conf\":\"$FDEST\",\"time_limit\":60,\"byte_limit\":1000000}"
expect_envelope_ok 200 "POST $A/pcaps (full)"
FULL=$(jq_ 'j["result"]["id"]')
req PUT "$A/pcaps/$FULL/stop" "${auth[@]}"
expect_eq "$STATUS" 204 "PUT $A/pcaps/{id}/stop: status"
expect_eq "$(stat -c %s "$OUT")" 0 "PUT $A/pcaps/{id}/stop: no body"
req PUT "$A/pcaps/ffffffffffffffffffffffffffffffff/stop" "${auth[@]}"
expect_error 404 1004 "" "" "stop of an unknown id"
req DELETE "$A/pcaps/ownership/$OWN_ID" "${auth[@]}"
expect_eq "$STATUS" 204 "DELETE $A/pcaps/ownership/{id}: status"
req DELETE "$A/pcaps/ownership/$OWN_ID" "${auth[@]}"
expect_error 404 1004 "" "" "DELETE of a deleted ownership"

echo "== the dashboard's files"
req GET /
expect_eq "$STATUS" 200 "GET /: status"
expect_eq "$(hdr Content-Type)" "text/html; charset=utf-8" "GET /: Content-Type"
expect_eq "$(hdr Cache-Control)" no-cache "GET /: Cache-Control"
expect_grep "default-src 'self'" "$(hdr Content-Security-Policy)" "GET /: Content-Security-Policy"
cmp -s "$OUT" "$SOURCE_DIR/daemon/gateway/dashboard/index.html" || fail "GET / is not index.html"
req GET /index.html
expect_eq "$STATUS" 200 "GET /index.html"
for bad in /../etc/passwd /%2e%2e/etc/passwd /nothing.js /.hidden; do
  req GET "$bad" --path-as-is
  expect_eq "$STATUS" 404 "GET $bad"
done
req POST /index.html
expect_eq "$STATUS" 405 "POST /index.html"

echo "== the request log"
grep -q "GET /client/v4/accounts/$GATEWAY_ACCOUNT/pcaps/$ID/download 200 [0-9.]*ms test 127.0.0.1" "$GATEWAY_LOG" ||
  fail "no log line of the download naming the token 'test': $(tail -n 5 "$GATEWAY_LOG")"
grep -q "GET /client/v4/accounts/$GATEWAY_ACCOUNT/pcaps 401 [0-9.]*ms sha256:[0-9a-f]\{8\} " "$GATEWAY_LOG" ||
  fail "no log line of a bad token with its hash prefix"
grep -q "POST /client/v4/accounts/$GATEWAY_ACCOUNT/pcaps 413 " "$GATEWAY_LOG" || fail "no log line of the 413"
! grep -qF "$GATEWAY_TOKEN" "$GATEWAY_LOG" || fail "the token is in the gateway's log"
echo "ok: the log names requests by token name or hash prefix, never the token"

echo "== ringcapd stopped: 503, and a create may be retried"
stop_ringcapd
req GET $A/pcaps "${auth[@]}"
expect_error 503 1008 "ringcapd is not running" "" "GET $A/pcaps without ringcapd"
post_json $A/pcaps '{"type":"simple","system":"magic-transit","time_limit":10,"packet_limit":10}'
expect_error 503 1008 "ringcapd is not running" "" "POST $A/pcaps without ringcapd"
expect_eq "$(hdr x-should-retry)" true "x-should-retry of a create that never reached ringcapd"

echo "== a burst of bad tokens from one address is answered 429"
for i in $(seq 1 30); do
  req GET $A/pcaps -H "Authorization: Bearer bad-token-$i-xxxxxxxxxxxx"
  [ "$STATUS" = 401 ] || break
done
expect_error 429 1002 "too many requests with a missing or bad API token" "" "after $((i - 1)) bad tokens"
[ "$i" -gt 10 ] || fail "429 after only $((i - 1)) bad tokens"
[[ "$(hdr Retry-After)" =~ ^[0-9]+$ ]] || fail "no Retry-After on the bad-token 429"
req GET $A/pcaps "${auth[@]}"
expect_eq "$STATUS" 429 "a good token from the same address, inside the window"

stop_gateway
echo "PASS"
