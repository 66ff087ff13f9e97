// The official cloudflare SDK while ringcapd is stopped (test_sdk.sh): the gateway answers
// 503 with x-should-retry: true (nothing reached ringcapd, so even a create may be resent),
// the SDK retries (its default maxRetries, 2) and then raises InternalServerError with the
// gateway's message. test_sdk.sh counts the attempts in the gateway's log.
import assert from 'node:assert/strict';
import Cloudflare from 'cloudflare';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`FAIL: ${name} is not set`);
    process.exit(1);
  }
  return v;
};
const acct = { account_id: env('GATEWAY_ACCOUNT') };
const client = new Cloudflare({ apiToken: env('GATEWAY_TOKEN'), apiKey: null, apiEmail: null,
  userServiceKey: null, baseURL: env('GATEWAY_URL') + '/client/v4', timeout: 30000 });

async function expect503(promise, what) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Cloudflare.InternalServerError,
    `${what}: expected InternalServerError, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, 503, `${what}: status`);
  assert.equal(err.headers.get('x-should-retry'), 'true', `${what}: x-should-retry`);
  assert.ok(err.errors[0]?.message?.includes('ringcapd is not running'),
    `${what}: the message: ${JSON.stringify(err.errors)}`);
  console.log(`ok: ${what}: InternalServerError (503) after the SDK's retries: ${err.errors[0].message}`);
}

async function main() {
  await expect503(client.magicTransit.pcaps.list(acct), 'list with ringcapd stopped');
  await expect503(client.magicTransit.pcaps.create({ ...acct, system: 'magic-transit', type: 'simple',
    time_limit: 5, packet_limit: 10 }), 'create with ringcapd stopped');
}

main().then(() => console.log('node (ringcapd stopped): PASS'), (e) => {
  console.error(`FAIL: ${e?.message ?? e}`);
  process.exit(1);
});
