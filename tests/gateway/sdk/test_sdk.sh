#!/usr/bin/env bash
# The official cloudflare SDK (tests/gateway/sdk/node_modules, pinned in package-lock.json),
# unchanged, against ringcap-gateway over ringcapd on a veth lab. sdk_test.mjs calls every
# method of client.magicTransit.pcaps (create, list, get, stop, download.get, ownership.create,
# validate, get, delete) and the errors (BadRequestError with the daemon's message,
# AuthenticationError, NotFoundError, ConflictError, PermissionDeniedError, RateLimitError);
# this script then checks:
#  - the simple capture downloaded through download.get: nanosecond PCAP, exactly the
#    matching datagrams sent (capinfos, tshark);
#  - the full capture delivered into the file:// bucket after the ownership flow and stopped
#    through stop: exactly its matching datagrams;
#  - the gateway's log: every create the script made arrived exactly once (the SDK resent no
#    refused create), and no token appears in it;
#  - over HTTPS (a gateway with tls_certificate and tls_key, sdk_tls.mjs): list, get and
#    download.get, the file byte for byte the one downloaded over HTTP;
#  - with ringcapd stopped (sdk_unavailable.mjs): list and create raise InternalServerError
#    (503) after the SDK's two retries, which the gateway invites (x-should-retry: true:
#    nothing reached ringcapd), three attempts each in the gateway's log.
source "$(dirname "$0")/../lib.sh"
SDK_DIR=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || skip "needs node"
[ -d "$SDK_DIR/node_modules/cloudflare" ] ||
  skip "needs tests/gateway/sdk/node_modules (scripts/setup.sh, or npm ci --prefix tests/gateway/sdk)"
require_lab
lab_up 93
start_bus
mkdir -p "$LAB_TMP/files" "$LAB_TMP/sdk"
# The default rate limits: one simple capture a minute, one full capture at a time.
start_ringcapd "[destinations]
file_roots = [\"$LAB_TMP/files\"]"
start_gateway

echo "== the SDK's calls (sdk_test.mjs)"
rc=0
env -u CLOUDFLARE_API_TOKEN -u CLOUDFLARE_API_KEY -u CLOUDFLARE_EMAIL \
  -u CLOUDFLARE_API_USER_SERVICE_KEY -u CLOUDFLARE_BASE_URL -u CLOUDFLARE_LOG \
  SDK_OUT="$LAB_TMP/sdk" NS_GEN="$NS_GEN" ADDR_CAP="$ADDR_CAP" TRAFFIC_PY="$SOURCE_DIR/tests/integration/traffic.py" \
  FILES_ROOT="$LAB_TMP/files" COLO_NAME=lab01 \
  node "$SDK_DIR/sdk_test.mjs" || rc=$?
expect_eq "$rc" 0 "exit code of sdk_test.mjs"
SUMMARY=$LAB_TMP/sdk/summary.json
summary() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$SUMMARY" "$1"; }

echo "== the simple capture, as download.get wrote it"
PCAP=$LAB_TMP/sdk/simple.pcap
expect_nanosecond_pcap "$PCAP" "the downloaded simple capture"
expect_eq "$(capinfos -c -M "$PCAP" | awk '/Number of packets/ {print $NF}')" "$(summary simple_sent)" \
  "packets in the downloaded file (capinfos) = matching datagrams sent"
expect_eq "$(tshark_fields "$PCAP" ip.dst udp.dstport | sort | uniq -c | sed 's/^ *//')" \
  "$(summary simple_sent) $ADDR_CAP $(summary simple_port)" "tshark: every packet matches filter_v1"

echo "== the full capture, delivered into the file:// bucket"
FULL=$(summary full_file)
[ -f "$FULL" ] || fail "the stopped full capture was not delivered to $FULL: $(find "$LAB_TMP/files" -type f)"
expect_nanosecond_pcap "$FULL" "the delivered full capture"
expect_eq "$(tshark_fields "$FULL" udp.dstport frame.len | sort | uniq -c | sed 's/^ *//')" \
  "$(summary full_sent) $(summary full_port) 842" "tshark: the full capture's packets (whole 800-byte datagrams)"

echo "== the gateway's log: each create arrived once, no token in it"
/usr/bin/python3 - "$SUMMARY" "$GATEWAY_LOG" <<'EOF' || fail "the gateway's log does not match the SDK's requests"
import json, re, sys
want = json.load(open(sys.argv[1]))["expected_requests"]
log = open(sys.argv[2], errors="replace").read().splitlines()
bad = []
for key, n in sorted(want.items()):
    method, path, status = key.split(" ")
    # The gateway's request line: "<time> [info] METHOD PATH STATUS <ms>ms <token name> <address>".
    pat = re.compile(r"\] " + re.escape(method) + " " + re.escape(path) + " " + status + r" [0-9.]+ms ")
    got = sum(1 for line in log if pat.search(line))
    print(f"{'ok' if got == n else 'MISMATCH'}: {key}: {got} in the gateway's log, {n} made by the SDK")
    if got != n:
        bad.append(key)
sys.exit(1 if bad else 0)
EOF
for secret in "$GATEWAY_TOKEN" not-a-token-of-this-gateway not-a-key; do
  ! grep -qF -- "$secret" "$GATEWAY_LOG" || fail "a token ($secret) appears in the gateway's log"
done
echo "ok: no token in the gateway's log"
stop_gateway

echo "== over HTTPS (tls_certificate, tls_key): the certificate trusted by NODE_EXTRA_CA_CERTS"
make_gateway_tls
start_gateway "tls_certificate = \"$LAB_TMP/gateway/tls.crt\"
tls_key = \"$LAB_TMP/gateway/tls.key\""
rc=0
env -u CLOUDFLARE_API_TOKEN -u CLOUDFLARE_API_KEY -u CLOUDFLARE_EMAIL \
  -u CLOUDFLARE_API_USER_SERVICE_KEY -u CLOUDFLARE_BASE_URL -u CLOUDFLARE_LOG \
  NODE_EXTRA_CA_CERTS="$LAB_TMP/gateway/tls.crt" SDK_OUT="$LAB_TMP/sdk" \
  node "$SDK_DIR/sdk_tls.mjs" || rc=$?
expect_eq "$rc" 0 "exit code of sdk_tls.mjs"
cmp "$LAB_TMP/sdk/simple-tls.pcap" "$PCAP" || fail "the capture downloaded over HTTPS differs from the one over HTTP"
echo "ok: the capture downloaded over HTTPS is byte for byte the one downloaded over HTTP"

echo "== ringcapd stopped: 503 with x-should-retry: true, the SDK's retries, InternalServerError"
stop_ringcapd
expect_detached
rc=0
env -u CLOUDFLARE_API_TOKEN -u CLOUDFLARE_API_KEY -u CLOUDFLARE_EMAIL \
  -u CLOUDFLARE_API_USER_SERVICE_KEY -u CLOUDFLARE_BASE_URL -u CLOUDFLARE_LOG \
  NODE_EXTRA_CA_CERTS="$LAB_TMP/gateway/tls.crt" node "$SDK_DIR/sdk_unavailable.mjs" || rc=$?
expect_eq "$rc" 0 "exit code of sdk_unavailable.mjs"
# The SDK's default maxRetries is 2: three attempts of each call.
for call in GET POST; do
  expect_eq "$(grep -c "\] $call /client/v4/accounts/$GATEWAY_ACCOUNT/pcaps 503 " "$GATEWAY_LOG" || true)" 3 \
    "$call /pcaps answered 503 in the gateway's log (the SDK's first attempt and 2 retries)"
done
stop_gateway
echo "PASS"
