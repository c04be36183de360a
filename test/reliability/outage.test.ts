// Store outages: while Redis or MongoDB is down every page answers a
// clear 503 (JSON endpoints a 503 JSON error, SCIM a SCIM error), the process stays up, /readyz
// names the failing store; when the store is back, sign-ins work again without
// a restart.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.ts';
import { startMongo, type TestMongo } from '../support/mongo.ts';
import { startOwnRedis, type OwnRedis } from '../support/redis.ts';
import { startRelay, type Relay } from '../support/relay.ts';
import { callbackReached, relyingParty, signIn, startServer, type TestServer } from '../support/latchkey.ts';
import { REDIS_COMMAND_TIMEOUT_MS } from '../../src/storage/index.ts';

async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('store outages (MongoDB + Redis)', () => {
  let mongo: TestMongo;
  let redis: OwnRedis;
  let server: TestServer;
  let scimToken = '';

  before(async () => {
    mongo = await startMongo();
    redis = await startOwnRedis();
    server = await startServer('mongo+redis', { mongo, env: { REDIS_URL: redis.url } });
    scimToken = (await server.latchkey.scimTokens.create('acme', 'Entra ID', 'cli')).token;
  });
  after(async () => {
    await server.stop();
    await redis.stop();
    await mongo.stop();
  });

  const signsIn = async () => {
    const rp = await relyingParty(server.issuer);
    const { page } = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
    return callbackReached(page);
  };
  const ready = async () => (await fetch(`${server.issuer}/readyz`)).status === 200;

  /** A directory's request meanwhile: a 503 in SCIM JSON, with Retry-After. */
  async function assertScimUnavailable() {
    const res = await fetch(`${server.issuer}/scim/v2/Users?count=1`, { headers: { authorization: `Bearer ${scimToken}`, accept: 'application/scim+json' } });
    assert.equal(res.status, 503);
    assert.match(res.headers.get('content-type') ?? '', /^application\/scim\+json/);
    assert.ok(res.headers.get('retry-after'));
    const body = (await res.json()) as { schemas: string[]; status: string };
    assert.deepEqual([body.schemas, body.status], [['urn:ietf:params:scim:api:messages:2.0:Error'], '503']);
  }

  it('signs in while both stores are up', async () => {
    assert.ok(await signsIn());
    assert.ok(await ready());
  });

  it('answers 503 while Redis is down, then recovers without a restart', async () => {
    const rp = await relyingParty(server.issuer);
    await redis.kill();
    await waitFor('readyz to notice', async () => !(await ready()));

    const readyz = await fetch(`${server.issuer}/readyz`);
    assert.equal(readyz.status, 503);
    const body = (await readyz.json()) as { stores: { store: string; ok: boolean }[] };
    assert.deepEqual(
      body.stores.find((s) => s.store === 'redis'),
      { store: 'redis', ok: false },
    );
    assert.equal((await fetch(`${server.issuer}/healthz`)).status, 200, 'the process stays up');

    const page = await fetch((await rp.authorize()).url, { redirect: 'manual', headers: { accept: 'text/html' } });
    assert.equal(page.status, 503);
    const html = await page.text();
    assert.match(html, /temporarily unavailable/i);
    assert.doesNotMatch(html, /at .*\.(ts|js):\d+/, 'no stack trace');

    const token = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('portal:s3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d').toString('base64')}`,
        accept: 'application/json',
      },
      body: 'grant_type=refresh_token&refresh_token=nope',
    });
    assert.equal(token.status, 503);
    assert.equal(((await token.json()) as { error: string }).error, 'temporarily_unavailable');
    await assertScimUnavailable();

    await redis.revive();
    await waitFor('readyz to recover', ready);
    assert.ok(await signsIn(), 'sign-in works again after Redis is back');
  });

  it('answers 503 from inside the provider when Redis dies mid-request: the page with Retry-After, JSON for /token', async () => {
    // This app reaches Redis through a relay, so the test can catch it waiting on Redis: past the check that
    // answers 503 at once while Redis is known to be down, inside the provider.
    const relay: Relay = await startRelay(redis.port);
    const caught = await startServer('mongo+redis', { mongo, env: { REDIS_URL: relay.url } });
    const isReady = async () => (await fetch(`${caught.issuer}/readyz`)).status === 200;
    /** Sends `request`, and once the app waits on Redis drops its connection and kills Redis. */
    const redisDiesDuring = async (request: () => Promise<Response>) => {
      await waitFor('Redis to be ready', isReady);
      const held = relay.hold();
      const answer = request();
      await held;
      await relay.cut();
      await redis.kill();
      const res = await answer;
      await redis.revive();
      await relay.restore();
      return res;
    };
    try {
      const rp = await relyingParty(caught.issuer);
      const url = (await rp.authorize()).url;
      const page = await redisDiesDuring(() => fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } }));
      assert.equal(page.status, 503);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(page.headers.get('retry-after'), '5');
      const html = await page.text();
      assert.match(html, /temporarily unavailable/i);
      assert.match(html, /data-testid="error-code">[^<]*temporarily_unavailable/);

      const token = await redisDiesDuring(() =>
        fetch(`${caught.issuer}/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from('portal:s3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d').toString('base64')}`,
          },
          body: 'grant_type=refresh_token&refresh_token=nope',
        }),
      );
      assert.equal(token.status, 503);
      assert.equal(token.headers.get('retry-after'), '5');
      assert.match(token.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(((await token.json()) as { error: string }).error, 'temporarily_unavailable');

      await waitFor('readyz to recover', isReady);
      const { page: done } = await signIn(new Browser(caught.issuer), rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(done), 'sign-in works again after Redis is back');
    } finally {
      await caught.stop();
      await relay.stop();
    }
  });

  it('answers 503 when Redis stops answering on a connection that stays open, instead of waiting for it', async () => {
    // The relay keeps back what the app sends and never closes the connection: a Redis host that died behind a proxy.
    const relay: Relay = await startRelay(redis.port);
    const stalled = await startServer('mongo+redis', { mongo, env: { REDIS_URL: relay.url } });
    try {
      await waitFor('Redis to be ready', async () => (await fetch(`${stalled.issuer}/readyz`)).status === 200);
      const rp = await relyingParty(stalled.issuer);
      const url = (await rp.authorize()).url;
      void relay.hold();
      // The deadline is only there so that a hang fails the test instead of stalling the suite.
      const deadline = () => AbortSignal.timeout(4 * REDIS_COMMAND_TIMEOUT_MS);
      const [readyz, page] = await Promise.all([
        fetch(`${stalled.issuer}/readyz`, { signal: deadline() }),
        fetch(url, { redirect: 'manual', headers: { accept: 'text/html' }, signal: deadline() }),
      ]);
      assert.equal(readyz.status, 503);
      const body = (await readyz.json()) as { stores: { store: string; ok: boolean }[] };
      assert.deepEqual(
        body.stores.find((s) => s.store === 'redis'),
        { store: 'redis', ok: false },
      );
      assert.equal(page.status, 503);
      assert.equal(page.headers.get('retry-after'), '5');
      assert.match(await page.text(), /temporarily unavailable/i);

      // Redis answering again (a new connection) brings the app back.
      await relay.cut();
      await relay.restore();
      await waitFor('readyz to recover', async () => (await fetch(`${stalled.issuer}/readyz`)).status === 200);
      const { page: done } = await signIn(new Browser(stalled.issuer), rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(done), 'sign-in works again');
    } finally {
      // A relay still holding would keep the app's last commands, and so its shutdown, waiting.
      await relay.cut();
      await relay.restore();
      await stalled.stop();
      await relay.stop();
    }
  });

  it('answers 503 while MongoDB is down, then recovers without a restart', async () => {
    if (!mongo.kill || !mongo.revive) return assert.fail('outage tests need the local FerretDB (unset MONGODB_URI)');
    await mongo.kill();
    await waitFor('readyz to notice', async () => !(await ready()), 30_000);
    const readyz = (await (await fetch(`${server.issuer}/readyz`)).json()) as { stores: { store: string; ok: boolean }[] };
    assert.deepEqual(
      readyz.stores.find((s) => s.store === 'mongodb'),
      { store: 'mongodb', ok: false },
    );

    const res = await fetch(`${server.issuer}/interaction/whatever`, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 503);
    assert.match(await res.text(), /temporarily unavailable/i);
    assert.equal((await fetch(`${server.issuer}/healthz`)).status, 200);
    await assertScimUnavailable();

    await mongo.revive();
    await waitFor('readyz to recover', ready, 30_000);
    assert.ok(await signsIn(), 'sign-in works again after MongoDB is back');
  });
});
