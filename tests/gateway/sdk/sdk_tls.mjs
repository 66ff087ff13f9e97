// The official cloudflare SDK over HTTPS: the gateway with tls_certificate and tls_key, its
// certificate trusted through NODE_EXTRA_CA_CERTS (test_sdk.sh). list, get and download.get
// of the captures sdk_test.mjs made; download.get writes SDK_OUT/simple-tls.pcap, which
// test_sdk.sh compares with the file downloaded over HTTP.
import assert from 'node:assert/strict';
import fs from 'node:fs';
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
const URL_ = env('GATEWAY_URL');
const OUT = env('SDK_OUT');
const summary = JSON.parse(fs.readFileSync(path.join(OUT, 'summary.json'), 'utf8'));
const acct = { account_id: env('GATEWAY_ACCOUNT') };

async function main() {
  assert.ok(URL_.startsWith('https://'), `the gateway's URL with TLS: ${URL_}`);
  const client = new Cloudflare({ apiToken: env('GATEWAY_TOKEN'), apiKey: null, apiEmail: null,
    userServiceKey: null, baseURL: URL_ + '/client/v4', timeout: 30000 });
  const pcaps = client.magicTransit.pcaps;
  const ids = (await pcaps.list(acct)).result.map((r) => r.id);
  assert.deepEqual(ids.slice(0, 2), [summary.full_id, summary.simple_id], 'list over HTTPS');
  console.log('ok: list over HTTPS: the full capture, then the simple one');
  const rec = await pcaps.get(summary.simple_id, acct);
  assert.equal(rec.status, 'success', 'get over HTTPS');
  console.log('ok: get over HTTPS: success');
  const resp = await pcaps.download.get(summary.simple_id, acct);
  assert.equal(resp.headers.get('content-type'), 'application/vnd.tcpdump.pcap', 'Content-Type over HTTPS');
  const body = Buffer.from(await resp.arrayBuffer());
  fs.writeFileSync(path.join(OUT, 'simple-tls.pcap'), body);
  console.log(`ok: download.get over HTTPS: ${body.length} bytes`);
}

main().then(() => console.log('node (HTTPS): PASS'), (e) => {
  console.error(`FAIL: ${e?.message ?? e}`);
  process.exit(1);
});
