// The official `cloudflare` SDK (tests/gateway/sdk/package.json), unchanged, against
// ringcap-gateway: every method of client.magicTransit.pcaps. Run by test_sdk.sh, which
// starts the lab, ringcapd and the gateway, then checks the files this script writes with
// capinfos and tshark, and the gateway's log against the requests this script made.
//
// Environment (all required):
//   GATEWAY_URL, GATEWAY_ACCOUNT, GATEWAY_TOKEN   the gateway (tests/gateway/lib.sh)
//   SDK_OUT          a directory for simple.pcap and summary.json
//   NS_GEN, ADDR_CAP, TRAFFIC_PY   where and how to send test traffic (traffic.py send)
//   FILES_ROOT       a directory below one of ringcapd's destinations.file_roots
//   COLO_NAME        this host's colo_name in ringcapd's config
//
// Prints "ok: ..." per check; the first failed check ends it with exit code 1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Cloudflare from 'cloudflare';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`FAIL: ${name} is not set`);
    process.exit(1);
  }
  return v;
};
const BASE = env('GATEWAY_URL') + '/client/v4';
const ACCOUNT = env('GATEWAY_ACCOUNT');
const TOKEN = env('GATEWAY_TOKEN');
const OUT = env('SDK_OUT');
const NS_GEN = env('NS_GEN');
const ADDR_CAP = env('ADDR_CAP');
const TRAFFIC_PY = env('TRAFFIC_PY');
const FILES_ROOT = env('FILES_ROOT');
const COLO_NAME = env('COLO_NAME');
const SEQUENTIAL_GET_BOUND_MS = 20;

// Every client names its credentials explicitly (null for the others), so that nothing comes
// from CLOUDFLARE_* variables of the environment. The SDK's default maxRetries (2) stays,
// except where a test says otherwise: a create the gateway refused must not be resent, and
// test_sdk.sh counts the requests in the gateway's log.
const noAuth = { apiToken: null, apiKey: null, apiEmail: null, userServiceKey: null };
const makeClient = (opts) => new Cloudflare({ ...noAuth, baseURL: BASE, timeout: 30000, ...opts });
const client = makeClient({ apiToken: TOKEN });
const pcaps = client.magicTransit.pcaps;
const acct = { account_id: ACCOUNT };

// Requests whose count test_sdk.sh compares with the gateway's log: "METHOD PATH STATUS".
const expectedRequests = {};
const count = (method, route, status) => {
  const key = `${method} /client/v4/accounts/${ACCOUNT}${route} ${status}`;
  expectedRequests[key] = (expectedRequests[key] ?? 0) + 1;
};

const ok = (what) => console.log(`ok: ${what}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// expectError(promise, Class, status, what): the call must reject with the SDK's Class.
async function expectError(promise, Class, status, what) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what}: the call succeeded, expected ${Class.name}`);
  assert.ok(err instanceof Class,
    `${what}: expected ${Class.name}, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, status, `${what}: HTTP status`);
  ok(`${what}: ${Class.name} (${err.status})`);
  return err;
}

// The daemon's message in the envelope's errors[] and in the SDK's error message; with
// pointer, the JSON pointer to the field in errors[0].source.pointer (the SDK's ResponseInfo).
function expectMessage(err, text, what, pointer) {
  assert.ok(Array.isArray(err.errors) && err.errors.length >= 1,
    `${what}: errors[] is empty: ${JSON.stringify(err.error)}`);
  const e = err.errors[0];
  assert.equal(typeof e.code, 'number', `${what}: errors[0].code is a number: ${JSON.stringify(e)}`);
  assert.ok(typeof e.message === 'string' && e.message.includes(text),
    `${what}: errors[0].message does not say '${text}': ${JSON.stringify(e)}`);
  assert.ok(err.message.includes(text), `${what}: the SDK's message does not say '${text}': ${err.message}`);
  ok(`${what}: says '${text}'`);
  if (pointer !== undefined) {
    assert.equal(e.source?.pointer, pointer, `${what}: errors[0].source.pointer: ${JSON.stringify(e)}`);
    ok(`${what}: source.pointer ${pointer}`);
  }
}

// send(dport, count): count UDP datagrams from the generator namespace to ADDR_CAP:dport.
function send(dport, n, size = 300) {
  const r = spawnSync('ip', ['netns', 'exec', NS_GEN, '/usr/bin/python3', TRAFFIC_PY, 'send',
    '--dst', ADDR_CAP, '--dport', String(dport), '--count', String(n), '--size', String(size),
    '--max-seconds', '20'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `traffic.py send: exit code ${r.status}: ${r.stderr}`);
  assert.equal(r.stdout.trim(), String(n), `datagrams sent to port ${dport}`);
}

// pollGet(id, until, seconds): calls get until until(record) holds; returns the record.
async function pollGet(id, until, seconds, what) {
  const deadline = Date.now() + seconds * 1000;
  let rec;
  for (;;) {
    rec = await pcaps.get(id, acct);
    if (until(rec))
      return rec;
    assert.ok(Date.now() < deadline,
      `${what}: not reached after ${seconds} s; last record: ${JSON.stringify(rec)}`);
    await sleep(200);
  }
}

const finished = (r) => r.status === 'success' || r.status === 'failed';

// Newest first: submitted never increases along the list.
function expectNewestFirst(items, what) {
  for (let i = 1; i < items.length; i++)
    assert.ok(Date.parse(items[i - 1].submitted) >= Date.parse(items[i].submitted),
      `${what}: not newest first at ${i}: ${items[i - 1].submitted} before ${items[i].submitted}`);
  ok(`${what}: ${items.length} items, newest first`);
}

async function main() {
  const summary = { methods: [] };
  const covered = (m) => summary.methods.includes(m) || summary.methods.push(m);

  console.log('== authentication');
  await expectError(makeClient({ apiToken: 'not-a-token-of-this-gateway' }).magicTransit.pcaps.list(acct),
    Cloudflare.AuthenticationError, 401, 'list with a bad bearer token');
  await expectError(makeClient({ apiToken: 'not-a-token' }).magicTransit.pcaps.create({
    ...acct, system: 'magic-transit', type: 'simple', time_limit: 5, packet_limit: 10 }),
    Cloudflare.AuthenticationError, 401, 'create with a bad bearer token');
  count('POST', '/pcaps', 401);
  const keyClient = makeClient({ apiKey: TOKEN, apiEmail: 'operator@example.com' });
  const viaKey = await keyClient.magicTransit.pcaps.list(acct);
  assert.ok(Array.isArray(viaKey.result), 'list through X-Auth-Key/X-Auth-Email: result is an array');
  ok('list with X-Auth-Key and X-Auth-Email (apiKey, apiEmail)');
  await expectError(makeClient({ apiKey: 'not-a-key', apiEmail: 'operator@example.com' })
    .magicTransit.pcaps.list(acct), Cloudflare.AuthenticationError, 401, 'list with a bad X-Auth-Key');

  console.log('== unknown account and id');
  await expectError(pcaps.list({ account_id: 'f'.repeat(32) === ACCOUNT ? 'e'.repeat(32) : 'f'.repeat(32) }),
    Cloudflare.NotFoundError, 404, 'list of another account');
  await expectError(pcaps.get('0'.repeat(32), acct), Cloudflare.NotFoundError, 404, 'get of an unknown id');

  console.log('== bad requests: BadRequestError with the daemon\'s message');
  const simple = { ...acct, system: 'magic-transit', type: 'simple' };
  let err = await expectError(pcaps.create({ ...simple, time_limit: 301, packet_limit: 10 }),
    Cloudflare.BadRequestError, 400, 'create with time_limit 301');
  expectMessage(err, 'time_limit: must be an integer from 1 to 300 (got 301)', 'time_limit 301', '/time_limit');
  count('POST', '/pcaps', 400);
  err = await expectError(pcaps.create({ ...simple, time_limit: 5 }),
    Cloudflare.BadRequestError, 400, 'create of a simple capture without packet_limit');
  expectMessage(err, 'packet_limit: required for simple captures', 'no packet_limit');
  count('POST', '/pcaps', 400);
  err = await expectError(pcaps.create({ ...simple, time_limit: 5, packet_limit: 10,
    filter_v1: { destination_port: 70000 } }),
    Cloudflare.BadRequestError, 400, 'create with filter_v1.destination_port 70000');
  expectMessage(err, 'destination_port', 'destination_port 70000', '/filter_v1/destination_port');
  expectMessage(err, '70000', 'destination_port 70000');
  count('POST', '/pcaps', 400);
  err = await expectError(pcaps.create({ ...simple, time_limit: 5, packet_limit: 10, colour: 'red' }),
    Cloudflare.BadRequestError, 400, 'create with an unknown field');
  expectMessage(err, 'colour: unknown field', 'unknown field');
  count('POST', '/pcaps', 400);
  err = await expectError(pcaps.create({ ...acct, system: 'magic-transit', type: 'full', time_limit: 5,
    colo_name: COLO_NAME, destination_conf: 'file:///etc/ringcap-sdk-test' }),
    Cloudflare.BadRequestError, 400, 'create of a full capture into file:///etc');
  expectMessage(err, 'destination_conf', 'a full capture into file:///etc');
  count('POST', '/pcaps', 400);
  covered('create');

  console.log('== a simple capture with a filter');
  const SIMPLE_PORT = 7400, SIMPLE_SENT = 40, OTHER_SENT = 25;
  const created = await pcaps.create({ ...simple, time_limit: 10, packet_limit: 1000,
    filter_v1: { destination_address: ADDR_CAP, destination_port: SIMPLE_PORT, protocol: 17 } });
  count('POST', '/pcaps', 200);
  assert.match(created.id ?? '', /^[0-9a-f]{32}$/, `id of the created capture: ${JSON.stringify(created)}`);
  assert.equal(created.type, 'simple', 'type of the created capture');
  assert.equal(created.system, 'magic-transit', 'system of the created capture');
  assert.equal(created.time_limit, 10, 'time_limit of the created capture');
  assert.deepEqual(created.filter_v1,
    { destination_address: ADDR_CAP, destination_port: SIMPLE_PORT, protocol: 17 }, 'filter_v1 echoed');
  assert.ok(['pending', 'running'].includes(created.status), `status after create: ${created.status}`);
  assert.ok(!Number.isNaN(Date.parse(created.submitted)), `submitted is a date: ${created.submitted}`);
  ok(`create: simple capture ${created.id}, status ${created.status}`);
  const id = created.id;
  summary.simple_id = id;

  // 409 NotReady before the capture finished. maxRetries 0: the SDK retries a 409 (as a lock
  // timeout) by default, and its retries could outlast the capture and hide the answer.
  await expectError(pcaps.download.get(id, acct, { maxRetries: 0 }), Cloudflare.ConflictError, 409,
    'download.get before the capture finished');

  await pollGet(id, (r) => r.status === 'running' || finished(r), 30, 'simple capture running');
  const running = await pcaps.get(id, acct);
  assert.equal(running.status, 'running', 'the simple capture is running before the traffic');
  ok('get: the simple capture is running');
  covered('get');
  send(SIMPLE_PORT, SIMPLE_SENT);
  send(SIMPLE_PORT + 1, OTHER_SENT);
  const done = await pollGet(id, finished, 60, 'simple capture finished');
  assert.equal(done.status, 'success', `status of the simple capture: ${JSON.stringify(done)}`);
  assert.equal(done.packets_captured, SIMPLE_SENT, 'packets_captured of the simple capture');
  ok(`get: the simple capture reached success with ${done.packets_captured} packets`);
  summary.simple_sent = SIMPLE_SENT;
  summary.simple_port = SIMPLE_PORT;

  const resp = await pcaps.download.get(id, acct);
  assert.equal(resp.status, 200, 'download status');
  assert.equal(resp.headers.get('content-type'), 'application/vnd.tcpdump.pcap', 'download Content-Type');
  const body = Buffer.from(await resp.arrayBuffer());
  assert.equal(resp.headers.get('content-length'), String(body.length), 'download Content-Length = bytes received');
  assert.ok(body.length > 24, `download holds ${body.length} bytes`);
  fs.writeFileSync(path.join(OUT, 'simple.pcap'), body);
  ok(`download.get: ${body.length} bytes written to simple.pcap`);
  covered('download.get');

  // The SDK's fetch keeps its connection alive between calls. A reply written in two parts
  // without TCP_NODELAY waits for the client's delayed ACK (40 ms) on every call after a
  // connection's first; the gateway answers a get in well under a millisecond of its own time.
  const times = [];
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    await pcaps.get(id, acct);
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  const median = times[10];
  assert.ok(median < SEQUENTIAL_GET_BOUND_MS,
    `median of 21 sequential get calls ${median.toFixed(1)} ms, over ${SEQUENTIAL_GET_BOUND_MS} ms ` +
    `(fastest ${times[0].toFixed(1)} ms, slowest ${times[20].toFixed(1)} ms)`);
  ok(`21 sequential get calls: median ${median.toFixed(1)} ms (bound ${SEQUENTIAL_GET_BOUND_MS} ms)`);
  console.log(`figure: sequential SDK get calls: median ${median.toFixed(1)} ms, slowest ${times[20].toFixed(1)} ms`);

  console.log('== rate limit');
  // The default maxRetries (2): the SDK retries a 429 unless the gateway says x-should-retry:
  // false, and test_sdk.sh checks in the gateway's log that it received this create once.
  err = await expectError(pcaps.create({ ...simple, time_limit: 5, packet_limit: 10 }),
    Cloudflare.RateLimitError, 429, 'a second simple capture within the interval');
  count('POST', '/pcaps', 429);
  assert.ok(/^[0-9]+$/.test(err.headers?.get('retry-after') ?? ''),
    `Retry-After of the 429: ${err.headers?.get('retry-after')}`);
  assert.equal(err.headers.get('x-should-retry'), 'false', 'x-should-retry of a refused create');
  ok(`the 429 has Retry-After: ${err.headers.get('retry-after')} and x-should-retry: false`);
  assert.ok(err.errors.length >= 1 && err.errors[0].message.length > 0, 'the 429 has a message');
  ok(`the 429 says: ${err.errors[0].message}`);

  console.log('== list');
  let page = await pcaps.list(acct);
  let ids = page.result.map((r) => r.id);
  assert.ok(ids.includes(id), `list holds the simple capture: ${ids}`);
  assert.equal(ids[0], id, 'the newest capture is first in the list');
  expectNewestFirst(page.result, 'list');
  const listed = page.result.find((r) => r.id === id);
  assert.equal(listed.status, 'success', 'status in the list');
  covered('list');

  console.log('== ownership of a file:// bucket');
  const own = pcaps.ownership;
  err = await expectError(own.create({ ...acct, destination_conf: 'file:///etc/ringcap-sdk-test' }),
    Cloudflare.BadRequestError, 400, 'ownership.create of file:///etc');
  expectMessage(err, 'is not below an allowed directory', 'ownership.create of file:///etc');
  count('POST', '/pcaps/ownership', 400);
  const bucketDir = path.join(FILES_ROOT, 'sdk-bucket');
  const dest = `file://${bucketDir}`;
  const o = await own.create({ ...acct, destination_conf: dest });
  count('POST', '/pcaps/ownership', 200);
  assert.match(o.id ?? '', /^[0-9a-f]+$/, `ownership id: ${JSON.stringify(o)}`);
  assert.equal(o.status, 'pending', 'ownership status after create');
  assert.equal(o.destination_conf, dest, 'ownership destination_conf');
  assert.match(o.filename, /^ownership-challenge-[0-9a-f]+\.txt$/, 'challenge file name');
  ok(`ownership.create: ${o.id}, challenge ${o.filename}`);
  covered('ownership.create');
  const challenge = fs.readFileSync(path.join(bucketDir, o.filename), 'utf8').trim();
  assert.match(challenge, /^[0-9a-f]{64}$/, 'the challenge the daemon wrote into the bucket');
  err = await expectError(pcaps.create({ ...acct, system: 'magic-transit', type: 'full', time_limit: 60,
    colo_name: COLO_NAME, destination_conf: dest }),
    Cloudflare.PermissionDeniedError, 403, 'a full capture before the challenge is answered');
  count('POST', '/pcaps', 403);
  // A wrong challenge answers the record, now failed; the right one then turns it to success.
  const wrong = await own.validate({ ...acct, destination_conf: dest, ownership_challenge: 'f'.repeat(64) });
  assert.equal(wrong.status, 'failed', `ownership after a wrong challenge: ${JSON.stringify(wrong)}`);
  assert.equal(wrong.id, o.id, 'a wrong challenge answers the record it failed');
  count('POST', '/pcaps/ownership/validate', 200);
  ok('ownership.validate with a wrong challenge: status failed');
  assert.equal((await own.get(acct)).result.find((r) => r.id === o.id)?.status, 'failed',
    'ownership.get after a wrong challenge');
  await expectError(own.validate({ ...acct, destination_conf: `file://${FILES_ROOT}/no-challenge`,
    ownership_challenge: challenge }), Cloudflare.NotFoundError, 404, 'ownership.validate of a destination without a challenge');
  count('POST', '/pcaps/ownership/validate', 404);
  const v = await own.validate({ ...acct, destination_conf: dest, ownership_challenge: challenge });
  count('POST', '/pcaps/ownership/validate', 200);
  assert.equal(v.status, 'success', `ownership after validate: ${JSON.stringify(v)}`);
  assert.equal(v.id, o.id, 'validate answers the record it validated');
  assert.ok(!Number.isNaN(Date.parse(v.validated)), `validated is a date: ${v.validated}`);
  ok('ownership.validate: success');
  covered('ownership.validate');
  const owned = await own.get(acct);
  const mine = owned.result.find((r) => r.id === o.id);
  assert.ok(mine, `ownership.get lists ${o.id}: ${JSON.stringify(owned.result)}`);
  assert.equal(mine.status, 'success', 'listed ownership status');
  assert.equal(mine.destination_conf, dest, 'listed ownership destination_conf');
  expectNewestFirst(owned.result, 'ownership.get');
  covered('ownership.get');

  console.log('== a full capture into the bucket, stopped');
  const FULL_PORT = 7410, FULL_SENT = 30;
  const full = await pcaps.create({ ...acct, system: 'magic-transit', type: 'full', time_limit: 300,
    colo_name: COLO_NAME, destination_conf: dest, filter_v1: { destination_port: FULL_PORT, protocol: 17 } });
  count('POST', '/pcaps', 200);
  assert.match(full.id ?? '', /^[0-9a-f]{32}$/, `id of the full capture: ${JSON.stringify(full)}`);
  assert.equal(full.type, 'full', 'type of the full capture');
  assert.equal(full.colo_name, COLO_NAME, 'colo_name of the full capture');
  assert.equal(full.destination_conf, dest, 'destination_conf of the full capture');
  ok(`create: full capture ${full.id}`);
  summary.full_id = full.id;
  await pollGet(full.id, (r) => r.status === 'running' || finished(r), 30, 'full capture running');
  // rate_limits.full_concurrent is 1: a second full capture is refused while this one runs.
  err = await expectError(pcaps.create({ ...acct, system: 'magic-transit', type: 'full', time_limit: 60,
    colo_name: COLO_NAME, destination_conf: dest }),
    Cloudflare.RateLimitError, 429, 'a second full capture while one runs');
  count('POST', '/pcaps', 429);
  send(FULL_PORT, FULL_SENT, 800);
  send(FULL_PORT + 1, 10, 800);
  await pollGet(full.id, (r) => r.packets_captured === FULL_SENT || finished(r), 30,
    'the full capture counted the packets');
  const beforeStop = await pcaps.get(full.id, acct);
  assert.equal(beforeStop.status, 'running', 'the full capture still runs before stop');
  const stopped = await pcaps.stop(full.id, acct);
  ok(`stop: answered (${JSON.stringify(stopped ?? null)})`);
  covered('stop');
  const fullDone = await pollGet(full.id, finished, 120, 'full capture finished after stop');
  assert.equal(fullDone.status, 'success', `status of the stopped full capture: ${JSON.stringify(fullDone)}`);
  assert.ok(!Number.isNaN(Date.parse(fullDone.stop_requested)), `stop_requested: ${fullDone.stop_requested}`);
  assert.equal(fullDone.packets_captured, FULL_SENT, 'packets_captured of the full capture');
  ok(`the full capture left running: ${fullDone.status}, stop_requested ${fullDone.stop_requested}`);
  summary.full_sent = FULL_SENT;
  summary.full_port = FULL_PORT;
  summary.full_file = path.join(bucketDir, os.hostname(), `pcap_${full.id}.pcap`);
  // Stopping a capture that already ended leaves it as it is (dbus-api.md, StopCapture).
  await pcaps.stop(full.id, acct);
  const again = await pcaps.get(full.id, acct);
  assert.equal(again.status, 'success', 'status after a stop of the finished capture');
  assert.equal(again.stop_requested, fullDone.stop_requested, 'stop_requested after a second stop');
  ok('stop of the finished capture: it stays success, stop_requested unchanged');
  await expectError(pcaps.stop('0'.repeat(32), acct), Cloudflare.NotFoundError, 404, 'stop of an unknown id');
  // The SDK's auto-pagination over list (one page here).
  const iterated = [];
  for await (const c of pcaps.list(acct))
    iterated.push(c.id);
  assert.ok(iterated.includes(full.id) && iterated.includes(id), `for await over list: ${iterated}`);
  ok(`for await over list: ${iterated.length} captures`);
  page = await pcaps.list(acct);
  ids = page.result.map((r) => r.id);
  assert.deepEqual(ids.slice(0, 2), [full.id, id], 'list: the full capture, then the simple one');
  expectNewestFirst(page.result, 'list after the full capture');

  console.log('== ownership.delete');
  const deleted = await own.delete(o.id, acct);
  ok(`ownership.delete: answered (${JSON.stringify(deleted ?? null)})`);
  covered('ownership.delete');
  const after = await own.get(acct);
  assert.ok(!after.result.some((r) => r.id === o.id), 'the deleted ownership is no longer listed');
  ok('ownership.get no longer lists it');
  await expectError(own.delete(o.id, acct), Cloudflare.NotFoundError, 404, 'ownership.delete of a deleted id');

  summary.expected_requests = expectedRequests;
  fs.writeFileSync(path.join(OUT, 'summary.json'), JSON.stringify(summary, null, 1));
  console.log(`methods covered: ${summary.methods.join(', ')}`);
}

main().then(() => console.log('node: PASS'), (e) => {
  console.error(`FAIL: ${e?.message ?? e}`);
  if (e?.stack)
    console.error(e.stack.split('\n').slice(1, 4).join('\n'));
  process.exit(1);
});
