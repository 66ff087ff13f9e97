#!/usr/bin/env bash
# Load on ringcap-gateway, in two phases: a burst (LOAD_CLIENTS clients send BURST_REQUESTS
# requests each as fast as they are answered: the gateway's capacity) and a sustained load
# (LOAD_REQUESTS each, LOAD_INTERVAL s apart, about 20 s), each bounded by LOAD_SECONDS. Half
# the clients keep their connection alive, half open one per request; each sends a mix of GET
# list, GET one, bad-token requests, creates with a body that is not JSON, creates that
# ringcapd refuses (time_limit 0) and downloads of a finished capture. Meanwhile a control
# client GETs the capture every 50 ms on its own connection and ringcapctl lists the captures
# every 0.2 s, straight over D-Bus. The gateway answers an address that sent BAD_TOKEN_LIMIT
# bad tokens within a minute with 429 until the minute ends, whatever it sends
# (docs/rest-api.md): each client sends its bad tokens from an address of its own
# (127.0.0.<10+i> in the burst, 127.0.0.<20+i> after), the rest from 127.0.0.1. Checks:
#  - every request got the status its kind expects (200, 400; a bad token 401 for the first
#    BAD_TOKEN_LIMIT of its address, then 429 with Retry-After), every answer had the body it
#    should (the capture in list and get, success:false and the field in the errors, the whole
#    file with Content-Length in downloads); the whole burst, and at least MIN_REQUESTS in the
#    sustained phase;
#  - the control client's GET latency stays under CONTROL_P99_BOUND_MS (p99) and
#    CONTROL_MAX_BOUND_MS (max), with no failed request; the keep-alive clients' median under
#    KEEPALIVE_P50_BOUND_MS (a reply written in two parts without TCP_NODELAY waits for the
#    client's delayed ACK, 40 ms, on every request after a connection's first);
#  - every ringcapctl call during the load succeeds, each within CTL_BOUND_MS;
#  - the gateway's peak resident memory (VmHWM) stays under GATEWAY_RSS_BOUND_KIB, ringcapd's
#    stays under RINGCAPD_RSS_BOUND_KIB and grows by less than RINGCAPD_GROWTH_BOUND_KIB;
#    ringcapd has the same open fds after the load as before; the gateway keeps no TCP
#    connection once the clients are gone (polled: it closes keep-alive connections on its
#    own time), the same files and pipes, and at most GATEWAY_THREADS unix sockets (its D-Bus
#    connections, one per request thread, opened as a thread first serves);
#  - the load created no capture, both processes still answer afterwards, and the gateway's
#    log holds one line per request and no token.
# figure: lines give requests/s, the control client's p50/p99 and the peak RSS.
source "$(dirname "$0")/lib.sh"
require_lab
LOAD_CLIENTS=${LOAD_CLIENTS:-6}
LOAD_SECONDS=${LOAD_SECONDS:-25}
LOAD_REQUESTS=${LOAD_REQUESTS:-1500}
LOAD_INTERVAL=${LOAD_INTERVAL:-0.012}
BURST_REQUESTS=${BURST_REQUESTS:-1000}
MIN_REQUESTS=${MIN_REQUESTS:-2000}
# Bounds, from measurements on the 2-core development machine: the gateway's VmHWM was about
# 12 MiB (11 MiB before the load), ringcapd grew by under 64 KiB, the control client's p99 was
# 5 ms and its slowest GET 8 ms, ringcapctl's slowest list 50 ms. The latency bounds leave room
# for a machine busy with other work; 40 ms per request (a delayed ACK) still crosses the
# keep-alive one.
GATEWAY_RSS_BOUND_KIB=${GATEWAY_RSS_BOUND_KIB:-65536}
RINGCAPD_GROWTH_BOUND_KIB=${RINGCAPD_GROWTH_BOUND_KIB:-8192}
# ringcapd: about 78 MiB resident, 64 MiB of which are its 32 MiB ring mapped twice
# (tests/reliability/test_load.sh has the same bound).
RINGCAPD_RSS_BOUND_KIB=${RINGCAPD_RSS_BOUND_KIB:-98304}
CONTROL_P99_BOUND_MS=${CONTROL_P99_BOUND_MS:-250}
CONTROL_MAX_BOUND_MS=${CONTROL_MAX_BOUND_MS:-2000}
CTL_BOUND_MS=${CTL_BOUND_MS:-2000}
KEEPALIVE_P50_BOUND_MS=${KEEPALIVE_P50_BOUND_MS:-20}
GATEWAY_THREADS=16 # gateway.threads, set below (the default, docs/rest-api.md)
BAD_TOKEN_LIMIT=20
vm_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
# The open fds of process $1 by kind: "tcp-listen=1 tcp=0 unix=3 other=5" (sockets looked up
# by inode in the process's /proc/PID/net tables).
fd_kinds() {
  /usr/bin/python3 - "$1" <<'PY'
import os, re, sys
pid = sys.argv[1]
kind = {}
for table in ("tcp", "tcp6", "unix"):
    for line in open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]:
        f = line.split()
        if table == "unix":
            kind[f[6]] = "unix"
        else:
            kind[f[9]] = "tcp-listen" if f[3] == "0A" else "tcp"
n = {"tcp-listen": 0, "tcp": 0, "unix": 0, "other": 0}
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
    except FileNotFoundError:
        continue
    n[kind.get(m.group(1), "other") if m else "other"] += 1
print(" ".join(f"{k}={v}" for k, v in n.items()))
PY
}
# fd_kind PID KIND: one count of fd_kinds.
fd_kind() { fd_kinds "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
# kind_of "KINDS" KIND: one count of a saved fd_kinds line.
kind_of() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }
now_ms() { date +%s%3N; }

lab_up 94
start_bus
# No simple-capture interval: the refused creates of the load must be refused for their field,
# never for the rate.
start_ringcapd "[rate_limits]
simple_interval_seconds = 0"
start_gateway "threads = $GATEWAY_THREADS"

echo "== a finished capture to download"
ID=$(json_field "$(ctl --json create --type simple --time-limit 60 --packet-limit 100 --destination-port 7600)" id)
capture_running() { [ "$(json_field "$(ctl --json get "$ID")" status)" = running ]; }
wait_until 20 capture_running
in_gen $TRAFFIC send --dst "$ADDR_CAP" --dport 7600 --count 100 --size 500 >/dev/null
REC=$(ctl --json watch "$ID") || fail "watching the capture: $REC"
REC=$(ctl --json get "$ID")
expect_eq "$(json_field "$REC" status)" success "status of the capture to download"
ctl download "$ID" -o "$LAB_TMP/want.pcap" >/dev/null
FILE_SIZE=$(stat -c %s "$LAB_TMP/want.pcap")
FILE_SHA=$(sha256sum "$LAB_TMP/want.pcap" | cut -d' ' -f1)
echo "info: capture $ID: $FILE_SIZE bytes"

cat >"$LAB_TMP/client.py" <<'EOF'
# One client of the load: requests of the kinds given, in turn, until its count or its time
# is spent; prints a JSON summary. Every answer is compared with what its kind expects.
import hashlib, http.client, json, os, sys, time, urllib.parse

a = dict(arg.split("=", 1) for arg in sys.argv[1:])
url = urllib.parse.urlsplit(a["url"])
base = f"/client/v4/accounts/{a['account']}/pcaps"
cid, token = a["id"], a["token"]
keepalive = a["mode"] == "keepalive"
kinds = a["kinds"].split(",")
deadline = time.monotonic() + float(a["seconds"])
bad_source = a.get("badsource", "127.0.0.1")
bad_limit = int(a["badlimit"])
bad_sent = 0
limit = int(a["requests"])
interval = float(a.get("interval", "0"))
until = a.get("until")  # stop once this file exists
good = {"Authorization": f"Bearer {token}"}


def check_envelope(body, ok):
    j = json.loads(body)
    if j.get("success") is not ok or not isinstance(j.get("errors"), list) or "messages" not in j:
        return None, f"envelope {body[:200]!r}"
    return j, None


def run(kind, n):
    """(method, path, headers, body, expected status, check(status, headers, body) -> problem)"""
    if kind == "list":
        def check(b, h):
            j, p = check_envelope(b, True)
            return p or (None if any(r.get("id") == cid for r in j["result"]) else "capture not listed")
        return "GET", base, good, None, 200, check
    if kind == "get":
        def check(b, h):
            j, p = check_envelope(b, True)
            return p or (None if j["result"].get("id") == cid and j["result"].get("status") == "success"
                         else f"record {b[:200]!r}")
        return "GET", f"{base}/{cid}", good, None, 200, check
    if kind == "badtoken":
        # The first bad_limit of this address are refused (401), the rest slowed down (429).
        blocked = bad_sent >= bad_limit
        def check(b, h):
            j, p = check_envelope(b, False)
            if p or not blocked:
                return p
            ra = h.get("retry-after", "")
            return None if ra.isdigit() and 1 <= int(ra) <= 60 else f"Retry-After {ra!r}"
        return "GET", base, {"Authorization": f"Bearer wrong-{n}"}, None, 429 if blocked else 401, check
    if kind == "badjson":
        def check(b, h):
            j, p = check_envelope(b, False)
            return p or (None if j["errors"] and j["errors"][0].get("message") else "no message")
        return "POST", base, {**good, "Content-Type": "application/json"}, b'{"type": "simple", ', 400, check
    if kind == "badfield":
        def check(b, h):
            j, p = check_envelope(b, False)
            return p or (None if j["errors"] and "time_limit" in j["errors"][0].get("message", "")
                         else f"errors {b[:200]!r}")
        body = json.dumps({"system": "magic-transit", "type": "simple", "time_limit": 0,
                           "packet_limit": 10}).encode()
        return "POST", base, {**good, "Content-Type": "application/json"}, body, 400, check
    if kind == "download":
        def check(b, h):
            if h.get("content-type") != "application/vnd.tcpdump.pcap":
                return f"Content-Type {h.get('content-type')}"
            if h.get("content-length") != a["size"] or len(b) != int(a["size"]):
                return f"Content-Length {h.get('content-length')}, {len(b)} bytes"
            return None if hashlib.sha256(b).hexdigest() == a["sha256"] else "other bytes"
        return "GET", f"{base}/{cid}/download", good, None, 200, check
    raise SystemExit(f"unknown kind {kind}")


out = {"mode": a["mode"], "sent": 0, "by_kind": {}, "problems": [], "problem_count": 0,
       "connections": 0, "latency_ms": []}
conns = {}  # source address -> connection
start = time.monotonic()
n = 0
while n < limit and time.monotonic() < deadline and not (until and os.path.exists(until)):
    kind = kinds[n % len(kinds)]
    method, path, headers, body, want, check = run(kind, n)
    headers = dict(headers)
    if not keepalive:
        headers["Connection"] = "close"
    t0 = time.monotonic()
    problem = None
    status = "none"
    source = bad_source if kind == "badtoken" else "127.0.0.1"
    if kind == "badtoken":
        bad_sent += 1
    conn = conns.get(source)
    try:
        if conn is None:
            conn = conns[source] = http.client.HTTPConnection(url.hostname, url.port, timeout=30,
                                                              source_address=(source, 0))
            out["connections"] += 1
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        status = r.status
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if status != want:
            problem = f"status {status}, expected {want}: {data[:200]!r}"
        else:
            problem = check(data, hdrs)
        if not keepalive or r.will_close:
            conn.close()
            del conns[source]
    except Exception as e:  # a reset, a timeout, a malformed answer: all count as problems
        problem = f"{type(e).__name__}: {e}"
        conn.close()
        conns.pop(source, None)
    ms = (time.monotonic() - t0) * 1000
    out["latency_ms"].append(round(ms, 2))
    out["sent"] += 1
    k = out["by_kind"].setdefault(kind, {})
    k[str(status)] = k.get(str(status), 0) + 1
    if problem:
        out["problem_count"] += 1
        if len(out["problems"]) < 10:
            out["problems"].append(f"{kind} #{n}: {problem}")
    n += 1
    if interval:
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
for conn in conns.values():
    conn.close()
out["seconds"] = time.monotonic() - start
print(json.dumps(out))
EOF

client() {
  /usr/bin/python3 "$LAB_TMP/client.py" url="$GATEWAY_URL" account="$GATEWAY_ACCOUNT" token="$GATEWAY_TOKEN" \
    id="$ID" size="$FILE_SIZE" sha256="$FILE_SHA" badlimit="$BAD_TOKEN_LIMIT" "$@"
}

echo "== warm-up: one request of each kind"
expect_rc 0 "the warm-up client" client mode=keepalive kinds=list,get,badtoken,badjson,badfield,download \
  seconds=30 requests=6
/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(1 if r["problem_count"] or r["sent"] != 6 else 0)' "$RC_OUT" ||
  fail "the warm-up requests were not answered as expected: $RC_OUT"
echo "ok: one request of each kind answered as expected"

GW_FDS_START=$(fd_kinds "$GATEWAY_PID")
echo "info: the gateway's fds before the load: $GW_FDS_START"
RD_FDS_START=$(fds "$RINGCAPD_PID")
RD_RSS_START=$(vm_kib "$RINGCAPD_PID" VmRSS)
GW_RSS_START=$(vm_kib "$GATEWAY_PID" VmRSS)

# analyze.py PHASE CLIENTS MIN_REQUESTS WALL_MS: compares the answers of a phase's clients
# ($LAB_TMP/PHASE.<i>.json, PHASE.control.json) with what each kind expects; prints figures.
cat >"$LAB_TMP/analyze.py" <<'EOF'
import json, os, sys
phase, clients, minimum, wall_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tmp = os.environ["LAB_TMP"]
p99_bound, max_bound = float(os.environ["CONTROL_P99_BOUND_MS"]), float(os.environ["CONTROL_MAX_BOUND_MS"])
bad_limit = int(os.environ["BAD_TOKEN_LIMIT"])
keepalive_p50_bound = float(os.environ["KEEPALIVE_P50_BOUND_MS"])
want = {"list": {"200"}, "get": {"200"}, "badtoken": {"401", "429"}, "badjson": {"400"},
        "badfield": {"400"}, "download": {"200"}}
problems, total, kinds, lat, conns, want_401, busy = [], 0, {}, {"keepalive": [], "close": []}, 0, 0, 0.0
for i in range(1, clients + 1):
    r = json.load(open(f"{tmp}/{phase}.{i}.json"))
    total += r["sent"]
    conns += r["connections"]
    busy = max(busy, r["seconds"])
    want_401 += min(sum(r["by_kind"].get("badtoken", {}).values()), bad_limit)
    lat[r["mode"]] += r["latency_ms"]
    if r["problem_count"]:
        problems.append(f"client {i} ({r['mode']}): {r['problem_count']} problems, first: {r['problems']}")
    for k, by in r["by_kind"].items():
        for status, n in by.items():
            kinds.setdefault(k, {}).setdefault(status, 0)
            kinds[k][status] += n
for k, by in sorted(kinds.items()):
    if not set(by) <= want[k]:
        problems.append(f"{k}: statuses {by}, expected only {sorted(want[k])}")
    else:
        print(f"ok: {k}: answered {by}")
bad = kinds.get("badtoken", {})
if bad.get("401") != want_401:
    problems.append(f"bad tokens answered 401: {bad.get('401')}, expected {want_401} (up to {bad_limit} per address)")
else:
    print(f"ok: bad tokens: {bad.get('401')} answered 401 (up to {bad_limit} per address), "
          f"then {bad.get('429', 0)} slowed down (429 with Retry-After)")
if total < minimum:
    problems.append(f"only {total} requests in all (at least {minimum} expected)")
c = json.load(open(f"{tmp}/{phase}.control.json"))
if c["problem_count"]:
    problems.append(f"control client: {c['problem_count']} problems, first: {c['problems']}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


cl = c["latency_ms"]
p50, p99, mx = pct(cl, 50), pct(cl, 99), max(cl)
print(f"figure: {phase}: {total} requests from {clients} clients in {busy:.1f} s: "
      f"{total / busy:.0f} requests/s ({conns} connections)")
for mode, xs in lat.items():
    print(f"figure: {phase}: load clients ({mode}): latency p50 {pct(xs, 50):.1f} ms, p99 {pct(xs, 99):.1f} ms, "
          f"max {max(xs):.1f} ms over {len(xs)} requests")
print(f"figure: {phase}: control client GET during the load: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
      f"max {mx:.1f} ms over {len(cl)} requests (bounds: p99 {p99_bound:.0f} ms, max {max_bound:.0f} ms)")
if pct(lat["keepalive"], 50) > keepalive_p50_bound:
    problems.append(f"keep-alive clients' median latency {pct(lat['keepalive'], 50):.1f} ms over the bound "
                    f"{keepalive_p50_bound:.0f} ms (one-shot connections: {pct(lat['close'], 50):.1f} ms)")
if len(cl) < 10:
    problems.append(f"the control client made only {len(cl)} requests")
if p99 > p99_bound:
    problems.append(f"control client p99 {p99:.1f} ms over the bound {p99_bound:.0f} ms")
if mx > max_bound:
    problems.append(f"control client max {mx:.1f} ms over the bound {max_bound:.0f} ms")
if problems:
    print(f"FAIL: {phase}: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"ok: {phase}: {total} requests, every one answered as its kind expects; control latency within the bounds")
EOF
export LAB_TMP CONTROL_P99_BOUND_MS CONTROL_MAX_BOUND_MS BAD_TOKEN_LIMIT KEEPALIVE_P50_BOUND_MS

# run_phase NAME REQUESTS INTERVAL BAD_BASE MIN_REQUESTS: LOAD_CLIENTS clients send REQUESTS
# requests each (for at most LOAD_SECONDS s), INTERVAL s apart (0: as fast as answered), bad
# tokens from 127.0.0.<BAD_BASE+i>; the control client and ringcapctl run until they are done.
run_phase() {
  local name=$1 requests=$2 interval=$3 bad_base=$4 minimum=$5 i mode k t ms r p rc
  local kinds=list,get,badtoken,badjson,get,badfield,list,download
  echo "== $name: $LOAD_CLIENTS clients, $requests requests each, $interval s apart, for at most $LOAD_SECONDS s"
  local pids=() t0 t1
  t0=$(now_ms)
  for i in $(seq 1 "$LOAD_CLIENTS"); do
    mode=keepalive
    [ $((i % 2)) -eq 0 ] && mode=close
    # Each client starts at another kind, so that the kinds overlap.
    k=$(/usr/bin/python3 -c 'import sys; k=sys.argv[1].split(","); i=int(sys.argv[2]); print(",".join(k[i:]+k[:i]))' "$kinds" "$i")
    client mode=$mode kinds="$k" badsource="127.0.0.$((bad_base + i))" seconds="$LOAD_SECONDS" \
      requests="$requests" interval="$interval" >"$LAB_TMP/$name.$i.json" &
    pids+=($!)
    LAB_PIDS="$LAB_PIDS $!"
  done
  client mode=keepalive kinds=get seconds="$LOAD_SECONDS" requests=100000 interval=0.05 \
    until="$LAB_TMP/$name.done" >"$LAB_TMP/$name.control.json" &
  local control=$!
  LAB_PIDS="$LAB_PIDS $control"
  # ringcapctl straight over D-Bus, every 0.2 s while the load clients run.
  local calls=0 slowest=0
  loading() {
    local p
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
  }
  while loading; do
    t=$(now_ms)
    expect_rc 0 "ringcapctl list during the load" ctl --json list >/dev/null
    ms=$(($(now_ms) - t))
    calls=$((calls + 1))
    [ "$ms" -gt "$slowest" ] && slowest=$ms
    [ "$ms" -le "$CTL_BOUND_MS" ] || fail "ringcapctl list took $ms ms during the load (bound $CTL_BOUND_MS ms)"
    r=$(vm_kib "$GATEWAY_PID" VmRSS)
    [ "$r" -gt "$GW_RSS_MAX" ] && GW_RSS_MAX=$r
    sleep 0.2
  done >/dev/null
  t1=$(now_ms)
  touch "$LAB_TMP/$name.done"
  for p in "${pids[@]}" "$control"; do
    rc=0
    wait "$p" || rc=$?
    expect_eq "$rc" 0 "exit code of load client $p" >/dev/null
  done
  echo "ok: $name: $calls ringcapctl list calls during the load, all answered, the slowest in $slowest ms"
  [ "$calls" -ge 3 ] || fail "only $calls ringcapctl calls ran during the load"
  expect_rc 0 "$name: the answers" /usr/bin/python3 "$LAB_TMP/analyze.py" "$name" "$LOAD_CLIENTS" "$minimum" "$((t1 - t0))"
  echo "$RC_OUT"
}

GW_RSS_MAX=0
# A burst, as fast as the gateway answers (its capacity), then a sustained load, paced, for
# most of LOAD_SECONDS.
run_phase burst "$BURST_REQUESTS" 0 10 $((LOAD_CLIENTS * BURST_REQUESTS))
run_phase sustained "$LOAD_REQUESTS" "$LOAD_INTERVAL" 20 "$MIN_REQUESTS"

echo "== memory and fds"
GW_HWM=$(vm_kib "$GATEWAY_PID" VmHWM)
RD_HWM=$(vm_kib "$RINGCAPD_PID" VmHWM)
echo "figure: gateway VmRSS before the load ${GW_RSS_START} KiB, sampled maximum ${GW_RSS_MAX} KiB, VmHWM ${GW_HWM} KiB (bound ${GATEWAY_RSS_BOUND_KIB} KiB)"
echo "figure: ringcapd VmRSS before the load ${RD_RSS_START} KiB, VmHWM ${RD_HWM} KiB (bound ${RINGCAPD_RSS_BOUND_KIB} KiB, growth bound ${RINGCAPD_GROWTH_BOUND_KIB} KiB)"
[ "$RD_HWM" -lt "$RINGCAPD_RSS_BOUND_KIB" ] || fail "ringcapd's peak RSS ${RD_HWM} KiB is over the bound ${RINGCAPD_RSS_BOUND_KIB} KiB"
echo "ok: ringcapd's peak RSS is under the bound"
[ "$GW_HWM" -lt "$GATEWAY_RSS_BOUND_KIB" ] || fail "the gateway's peak RSS ${GW_HWM} KiB is over the bound ${GATEWAY_RSS_BOUND_KIB} KiB"
echo "ok: the gateway's peak RSS is under the bound"
[ $((RD_HWM - RD_RSS_START)) -lt "$RINGCAPD_GROWTH_BOUND_KIB" ] ||
  fail "ringcapd's resident memory grew by $((RD_HWM - RD_RSS_START)) KiB during the load (bound ${RINGCAPD_GROWTH_BOUND_KIB} KiB)"
echo "ok: ringcapd's resident memory grew by $((RD_HWM - RD_RSS_START)) KiB during the load"
# The clients have exited; the gateway closes their connections as it reads the ends (its
# keep-alive timeout is 5 s).
deadline=$((SECONDS + 20))
until [ "$(fd_kind "$GATEWAY_PID" tcp)" -eq 0 ]; do
  [ $SECONDS -lt $deadline ] ||
    fail "the gateway still has $(fd_kind "$GATEWAY_PID" tcp) TCP connections 20 s after the load: $(fd_kinds "$GATEWAY_PID")"
  sleep 0.1
done
GW_FDS_END=$(fd_kinds "$GATEWAY_PID")
echo "info: the gateway's fds after the load: $GW_FDS_END"
expect_eq "$(kind_of "$GW_FDS_END" tcp-listen)" "$(kind_of "$GW_FDS_START" tcp-listen)" "the gateway's listening sockets after the load"
expect_eq "$(kind_of "$GW_FDS_END" other)" "$(kind_of "$GW_FDS_START" other)" "the gateway's other fds (files, pipes) after the load"
[ "$(kind_of "$GW_FDS_END" unix)" -le "$GATEWAY_THREADS" ] ||
  fail "the gateway has $(kind_of "$GW_FDS_END" unix) unix sockets after the load (at most one D-Bus connection per thread, $GATEWAY_THREADS)"
echo "ok: the gateway's unix sockets after the load: $(kind_of "$GW_FDS_END" unix) (at most $GATEWAY_THREADS)"
expect_eq "$(fds "$RINGCAPD_PID")" "$RD_FDS_START" "ringcapd's open fds after the load"

echo "== both still answer; the load created no capture"
expect_rc 0 "ringcapctl list after the load" ctl --json list
expect_eq "$(/usr/bin/python3 -c 'import json,sys; print(" ".join(r["id"] for r in json.loads(sys.argv[1])))' "$RC_OUT")" "$ID" "captures after the load"
expect_rc 0 "a GET after the load" client mode=keepalive kinds=get,list,download seconds=30 requests=3
/usr/bin/python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(1 if r["problem_count"] or r["sent"] != 3 else 0)' "$RC_OUT" ||
  fail "the gateway does not answer as before after the load: $RC_OUT"
echo "ok: the gateway answers as before"

echo "== every request in the gateway's log"
# One line per request (docs/rest-api.md): the warm-up's 6, each phase's clients and control
# client, and the 3 after the load. Polled: the log is written as replies go out.
SENT=$(/usr/bin/python3 -c '
import glob, json, sys
print(6 + 3 + sum(json.load(open(f))["sent"] for f in glob.glob(sys.argv[1] + "/*.json")
                  if f.rsplit("/", 1)[1].split(".")[0] in ("burst", "sustained")))' "$LAB_TMP")
logged() { grep -cE '\] (GET|POST|PUT|DELETE) /client/v4/' "$GATEWAY_LOG" || true; }
deadline=$((SECONDS + 10))
until [ "$(logged)" -eq "$SENT" ]; do
  [ $SECONDS -lt $deadline ] || fail "the gateway's log holds $(logged) request lines for $SENT requests"
  sleep 0.1
done
echo "ok: $SENT requests, $SENT request lines in the gateway's log"
! grep -qF -e "$GATEWAY_TOKEN" -e "wrong-" "$GATEWAY_LOG" || fail "a token (good or bad) appears in the gateway's log"
echo "ok: no token in the gateway's log"
stop_gateway
stop_ringcapd
echo "PASS"
