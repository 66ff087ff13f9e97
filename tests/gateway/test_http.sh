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
#  - the request log names the token, never shows it; a burst of bad tokens gets 429;
#  - SIGHUP reads the tokens file again (a broken file keeps the tokens read before);
#  - keep-alive replies are not held back (TCP_NODELAY); a client that stops in the middle of
#    its request is cut off while others are served;
#  - Range is not served (200, the whole file; 2000 ranges cost no memory); a path cannot
#    forge its log line; a world-readable tokens file is refused; kept-alive clients holding
#    every thread do not starve another; a download survives the deletion of its file;
#  - HTTPS (tls_certificate, tls_key), READY=1 on the notification socket, a pcapng capture
#    of 10000 packets downloaded as application/x-pcapng without the gateway's peak memory
#    growing by half the file; SIGTERM ends the gateway with exit code 0.
source "$(dirname "$0")/lib.sh"
require_lab
command -v capinfos >/dev/null || skip "needs capinfos"
lab_up 101
start_bus
BUS_PID=${LAB_PIDS##* } # start_bus's dbus-daemon
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

echo "== requests on one keep-alive connection are not held back by delayed ACKs"
# Without TCP_NODELAY the body of each reply (written after its headers) waited for the
# client's delayed ACK: 40 ms a request. The median of 30 must stay far below that.
median=$(/usr/bin/python3 - "${GATEWAY_URL#http://}" "$A/pcaps" "$GATEWAY_TOKEN" <<'PY'
import http.client, sys, time
host, path, token = sys.argv[1:]
c = http.client.HTTPConnection(host, timeout=30)
lat = []
for _ in range(30):
    t = time.perf_counter()
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
    lat.append(time.perf_counter() - t)
print(int(sorted(lat)[15] * 1000))
PY
)
[ "$median" -lt 20 ] || fail "median latency on a keep-alive connection: $median ms (at most 20 expected)"
echo "ok: median latency on a keep-alive connection: $median ms"

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
req POST $A/pcaps "${auth[@]}" -F type=simple
expect_error 400 1001 "not multipart/form-data" "" "a multipart/form-data body"
expect_eq "$(hdr x-should-retry)" false "x-should-retry of a multipart body"
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
expect_eq "$(hdr Content-Length)" "$(stat -c %s "$LAB_TMP/dl.pcap")" "HEAD of the download: Content-Length"
# Range is not served: 200 is the whole file (cpp-httplib cut the body to the range under the
# status 200, so that a resumed download took a part for the whole file).
req GET "$A/pcaps/$ID/download" "${auth[@]}" -H 'Range: bytes=0-9'
expect_eq "$STATUS $(hdr Accept-Ranges)" "200 none" "a download with Range: status, Accept-Ranges"
cmp -s "$OUT" "$LAB_TMP/dl.pcap" || fail "a download with Range: bytes=0-9 is not the whole file ($(stat -c %s "$OUT") bytes)"
expect_eq "$(hdr Content-Range)" "" "a download with Range: no Content-Range"

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
# 2000 ranges in one header, without a token: the multipart body of every range was built in
# memory (270 MB for a 130 KB file).
peak_before=$(awk '/^VmHWM:/ {print $2}' "/proc/$GATEWAY_PID/status")
RANGES="bytes=$(printf '0-,%.0s' $(seq 1999))0-"
req GET / -H "Range: $RANGES"
expect_eq "$STATUS" 200 "GET / with 2000 ranges"
cmp -s "$OUT" "$SOURCE_DIR/daemon/gateway/dashboard/index.html" || fail "GET / with 2000 ranges is not index.html"
peak_after=$(awk '/^VmHWM:/ {print $2}' "/proc/$GATEWAY_PID/status")
[ $((peak_after - peak_before)) -lt 32768 ] ||
  fail "GET / with 2000 ranges raised the gateway's peak memory by $((peak_after - peak_before)) KiB"
echo "ok: 2000 ranges: the whole file, peak memory +$((peak_after - peak_before)) KiB"
# A path that would forge the fields of its log line, and one with a newline.
req GET "/x%20200%200.1ms%20test%20127.0.0.1%0aGET%20/forged"
expect_eq "$STATUS" 404 "GET of a path with spaces and a newline"

echo "== the request log"
grep -q "GET /client/v4/accounts/$GATEWAY_ACCOUNT/pcaps/$ID/download 200 [0-9.]*ms test 127.0.0.1" "$GATEWAY_LOG" ||
  fail "no log line of the download naming the token 'test': $(tail -n 5 "$GATEWAY_LOG")"
grep -q "GET /client/v4/accounts/$GATEWAY_ACCOUNT/pcaps 401 [0-9.]*ms sha256:[0-9a-f]\{8\} " "$GATEWAY_LOG" ||
  fail "no log line of a bad token with its hash prefix"
grep -q "POST /client/v4/accounts/$GATEWAY_ACCOUNT/pcaps 413 " "$GATEWAY_LOG" || fail "no log line of the 413"
! grep -qF "$GATEWAY_TOKEN" "$GATEWAY_LOG" || fail "the token is in the gateway's log"
grep -qF 'GET /x\x20200\x200.1ms\x20test\x20127.0.0.1\x0aGET\x20/forged 404 ' "$GATEWAY_LOG" ||
  fail "no escaped log line of the path with spaces and a newline: $(grep -a 'GET /x' "$GATEWAY_LOG")"
! grep -q '^GET /forged\|GET /x 200' "$GATEWAY_LOG" || fail "a client's path forged a log line: $(grep -a 'forged' "$GATEWAY_LOG")"
echo "ok: the log names requests by token name or hash prefix, never the token"

echo "== SIGHUP reads the tokens file again; a broken one leaves the tokens as they were"
NEW_TOKEN=second-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'test %s\nsecond %s\n' "$GATEWAY_TOKEN" "$NEW_TOKEN" >"$LAB_TMP/gateway/tokens"
kill -HUP "$GATEWAY_PID"
wait_until 10 grep -q "reloaded 2 API token(s)" "$GATEWAY_LOG"
req GET $A/pcaps -H "Authorization: Bearer $NEW_TOKEN"
expect_eq "$STATUS" 200 "a token added to the file, after SIGHUP"
grep -q "GET $A/pcaps 200 [0-9.]*ms second 127.0.0.1" "$GATEWAY_LOG" || fail "no log line naming the token 'second'"
echo "short" >"$LAB_TMP/gateway/tokens"
kill -HUP "$GATEWAY_PID"
wait_until 10 grep -q "keeping the 2 token(s) read before" "$GATEWAY_LOG"
expect_grep "tokens:1: a token must be 16 to 512" "$(grep 'keeping the 2' "$GATEWAY_LOG")" "the log of a broken tokens file"
req GET $A/pcaps -H "Authorization: Bearer $NEW_TOKEN"
expect_eq "$STATUS" 200 "the tokens after a broken file and SIGHUP"
printf 'test %s\n' "$GATEWAY_TOKEN" >"$LAB_TMP/gateway/tokens"
chmod 644 "$LAB_TMP/gateway/tokens"
kill -HUP "$GATEWAY_PID"
wait_until 10 grep -q "readable by other users (mode 644); make it 0640" "$GATEWAY_LOG"
expect_grep "keeping the 2 token(s) read before" "$(grep 'readable by other users' "$GATEWAY_LOG")" "a world-readable tokens file"
chmod 640 "$LAB_TMP/gateway/tokens"
kill -HUP "$GATEWAY_PID"
wait_until 10 grep -q "reloaded 1 API token(s)" "$GATEWAY_LOG"
req GET $A/pcaps -H "Authorization: Bearer $NEW_TOKEN"
expect_eq "$STATUS" 401 "a token removed from the file, after SIGHUP"

echo "== a client that stops in the middle of its request is cut off; others are served meanwhile"
/usr/bin/python3 - "${GATEWAY_URL#http://}" >"$LAB_TMP/slow.out" 2>&1 <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
print("sent", flush=True)
s.settimeout(30)
t = time.monotonic()
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    print("not closed after 30 s", flush=True)
    sys.exit(1)
print("closed after %.1f s" % (time.monotonic() - t), flush=True)
PY
SLOW_PID=$!
wait_until 10 grep -q '^sent' "$LAB_TMP/slow.out"
t0=$(date +%s%N)
req GET $A/pcaps "${auth[@]}"
expect_eq "$STATUS" 200 "a request while a slow client holds a connection"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ] || fail "a request took $ms ms while a slow client held a connection"
rc=0
wait "$SLOW_PID" || rc=$?
expect_eq "$rc" 0 "the slow client's connection was closed by the gateway ($(cat "$LAB_TMP/slow.out" | tail -n 1))"
secs=$(sed -n 's/^closed after \([0-9]*\)\..*/\1/p' "$LAB_TMP/slow.out")
[ -n "$secs" ] && [ "$secs" -ge 5 ] && [ "$secs" -le 20 ] || fail "slow client: $(cat "$LAB_TMP/slow.out") (10 to 15 s expected)"

echo "== clients that keep every thread busy with kept-alive connections do not starve others"
# 16 connections (one per request thread), each sending GET / every 4 s (under the 5 s idle
# limit) for 14 s: another client waited for them all to stop. While connections wait for a
# thread, replies now say Connection: close, so a waiting client is served within about 4 s.
/usr/bin/python3 - "${GATEWAY_URL#http://}" 16 14 <<'PY' >"$LAB_TMP/holders.out" 2>&1 || fail "keep-alive holders: $(cat "$LAB_TMP/holders.out")"
import http.client, sys, threading, time
host, n, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
closes = [0]
served = threading.Semaphore(0)  # one release per holder, at its first reply
def hold():
    end = time.monotonic() + duration
    c = http.client.HTTPConnection(host, timeout=30)
    first = True
    while time.monotonic() < end:
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        if first:
            served.release()
            first = False
        if (r.getheader("Connection") or "").lower() == "close":
            closes[0] += 1
            c.close()
            c = http.client.HTTPConnection(host, timeout=30)
            continue  # back at once, as a client that wants to keep its thread would
        time.sleep(4)
threads = [threading.Thread(target=hold) for _ in range(n)]
for t in threads:
    t.start()
# Every holder has a thread and a kept-alive connection before the probe is sent.
for _ in range(n):
    if not served.acquire(timeout=20):
        print("not every holder was served within 20 s", flush=True)
        sys.exit(1)
t = time.monotonic()
c = http.client.HTTPConnection(host, timeout=30)
c.request("GET", "/index.html")
r = c.getresponse()
r.read()
print("%d %.1f %d" % (r.status, time.monotonic() - t, closes[0]), flush=True)
for t in threads:
    t.join()
PY
read -r held_status held_secs held_closes <"$LAB_TMP/holders.out"
expect_eq "$held_status" 200 "a request while 16 kept-alive clients hold the threads"
[ "${held_secs%.*}" -lt 7 ] || fail "a request waited $held_secs s while 16 kept-alive clients held the threads"
echo "ok: served after $held_secs s while 16 kept-alive clients held every thread ($held_closes replies said Connection: close)"

echo "== ringcapd stopped: 503, and a create may be retried"
stop_ringcapd
req GET $A/pcaps "${auth[@]}"
expect_error 503 1008 "ringcapd is not running" "" "GET $A/pcaps without ringcapd"
post_json $A/pcaps '{"type":"simple","system":"magic-transit","time_limit":10,"packet_limit":10}'
expect_error 503 1008 "ringcapd is not running" "" "POST $A/pcaps without ringcapd"
expect_eq "$(hdr x-should-retry)" true "x-should-retry of a create that never reached ringcapd"

echo "== the bus restarts: 503 while it is away, then the gateway connects again"
kill -TERM "$BUS_PID"
wait_until 20 sh -c "! kill -0 $BUS_PID 2>/dev/null"
rm -f "$LAB_TMP/bus"
req GET $A/pcaps "${auth[@]}"
expect_error 503 1008 "the system bus is unreachable" "" "GET /pcaps with the bus gone"
post_json $A/pcaps '{"type":"simple","system":"magic-transit","time_limit":10,"packet_limit":10}'
expect_eq "$STATUS" 503 "POST /pcaps with the bus gone"
start_bus
start_ringcapd ""
for i in 1 2 3 4 5 6 7 8 9 10; do # every request thread has to notice
  req GET $A/pcaps "${auth[@]}"
  expect_eq "$STATUS" 200 "GET /pcaps ($i) once the bus and ringcapd are back"
done
stop_ringcapd

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

echo "== HTTPS with tls_certificate and tls_key; READY=1 to systemd once listening"
make_gateway_tls
# A stand-in for systemd's notification socket: records what the gateway sends.
/usr/bin/python3 - "$LAB_TMP/notify.sock" "$LAB_TMP/notify.out" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.settimeout(60)
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        try:
            out.write(s.recv(4096) + b"\n")
        except socket.timeout:
            break
PY
LAB_PIDS="$LAB_PIDS $!"
wait_until 10 test -S "$LAB_TMP/notify.sock"
# A dashboard directory of its own: a file that is a symbolic link is not served.
mkdir -p "$LAB_TMP/dash"
echo '<!doctype html><title>t</title>' >"$LAB_TMP/dash/index.html"
echo 'body{}' >"$LAB_TMP/dash/style.css"
ln -s /etc/passwd "$LAB_TMP/dash/passwd.txt"
chmod -R a+rX "$LAB_TMP/dash"
GATEWAY_DASHBOARD_DIR=$LAB_TMP/dash NOTIFY_SOCKET=$LAB_TMP/notify.sock start_gateway "tls_certificate = \"$LAB_TMP/gateway/tls.crt\"
tls_key = \"$LAB_TMP/gateway/tls.key\""
wait_until 10 grep -q '^READY=1' "$LAB_TMP/notify.out"
expect_grep "STATUS=Listening on $GATEWAY_URL" "$(cat "$LAB_TMP/notify.out")" "the gateway's notification"
expect_eq "${GATEWAY_URL%%://*}" https "the URL's scheme with TLS"
tls=(--cacert "$LAB_TMP/gateway/tls.crt")
req GET /style.css "${tls[@]}"
expect_eq "$STATUS $(hdr Content-Type)" "200 text/css; charset=utf-8" "GET /style.css over HTTPS"
req GET /passwd.txt "${tls[@]}"
expect_eq "$STATUS" 404 "GET of a dashboard file that is a symbolic link"
req GET $A/pcaps "${tls[@]}" "${auth[@]}"
expect_error 503 1008 "ringcapd is not running" "" "GET /pcaps over HTTPS (ringcapd is stopped)"

echo "== over HTTPS, a pcapng capture of 10000 packets, streamed as application/x-pcapng"
start_ringcapd ""
post_json $A/pcaps "{\"type\":\"simple\",\"system\":\"magic-transit\",\"time_limit\":60,\"packet_limit\":10000,\"output_format\":\"pcapng\",\"filter_v1\":{\"destination_port\":5310}}" "${tls[@]}"
expect_envelope_ok 200 "POST /pcaps over HTTPS"
ID=$(jq_ 'j["result"]["id"]')
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 5310 --count 10000 --size 1400 >/dev/null
capture_done() { req GET "$A/pcaps/$ID" "${tls[@]}" "${auth[@]}"; [ "$(jq_ 'j["result"]["status"]')" = success ]; }
wait_until 60 capture_done
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$GATEWAY_PID/status"; }
peak_before=$(peak_kib)
req GET "$A/pcaps/$ID/download" "${tls[@]}" "${auth[@]}"
peak_after=$(peak_kib)
cp "$OUT" "$LAB_TMP/dl.pcapng"
size_kib=$(($(stat -c %s "$LAB_TMP/dl.pcapng") / 1024))
[ "$size_kib" -gt 1000 ] || fail "the pcapng download is only $size_kib KiB"
[ $((peak_after - peak_before)) -lt $((size_kib / 2)) ] ||
  fail "the gateway's peak memory grew by $((peak_after - peak_before)) KiB for a download of $size_kib KiB"
echo "ok: a download of $size_kib KiB raised the gateway's peak memory by $((peak_after - peak_before)) KiB (streamed)"
expect_eq "$STATUS" 200 "pcapng download: status"
expect_eq "$(hdr Content-Type)" application/x-pcapng "pcapng download: Content-Type"
expect_eq "$(hdr Content-Disposition)" "attachment; filename=\"pcap_$ID.pcapng\"" "pcapng download: Content-Disposition"
expect_eq "$(hdr Content-Length)" "$(stat -c %s "$LAB_TMP/dl.pcapng")" "pcapng download: Content-Length"
expect_pcapng "$LAB_TMP/dl.pcapng" "the pcapng download"
expect_eq "$(capinfos -c -M "$LAB_TMP/dl.pcapng" | awk '/Number of packets/ {print $NF}')" 10000 "packets in the pcapng download"
echo "== the capture's file deleted while it is downloaded: the download is whole"
# The gateway streams from the descriptor ringcapd passed: the file's data stays readable.
SPOOL=$(find "$LAB_TMP/state" -name "$ID.pcapng" -type f | head -n 1)
[ -n "$SPOOL" ] || fail "no capture file $ID.pcapng under $LAB_TMP/state"
curl -sS "${tls[@]}" "${auth[@]}" --limit-rate 2M -o "$LAB_TMP/dl2.pcapng" "$GATEWAY_URL$A/pcaps/$ID/download" &
CURL_PID=$!
wait_until 20 test -s "$LAB_TMP/dl2.pcapng"
rm -f "$SPOOL"
rc=0
wait "$CURL_PID" || rc=$?
expect_eq "$rc" 0 "curl of a download whose file was deleted during it"
cmp -s "$LAB_TMP/dl2.pcapng" "$LAB_TMP/dl.pcapng" || fail "a download whose file was deleted during it differs from the first"
echo "ok: the file was deleted during the download; the download is whole ($(stat -c %s "$LAB_TMP/dl2.pcapng") bytes)"
rc=0
curl -sS -o /dev/null "http://${GATEWAY_URL#https://}/" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || fail "plain HTTP was answered on the HTTPS port"
echo "ok: plain HTTP on the HTTPS port fails (curl exit code $rc)"
stop_gateway
echo "PASS"
