// Several app processes: two `npm start` processes with one
// configuration share MongoDB + Redis behind one issuer and a round-robin
// balancer. A journey started on one finishes on the other; attempt counters
// are shared; SIGTERM lets in-flight requests finish and exits 0.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Browser, actionOf, csrfOf } from '../support/browser.ts';
import { startMongo, type TestMongo } from '../support/mongo.ts';
import { testRedisPrefix, testRedisUrl } from '../support/redis.ts';
import { tempDir } from '../support/tmp.ts';
import { PASSWORD, callbackReached, fixture, relyingParty, signIn, submitLogin } from '../support/latchkey.ts';
import { seed, sharedKeys, startBalancer, startProcess, type AppProcess, type Balancer } from '../support/processes.ts';

describe('two app processes behind one issuer (MongoDB + Redis)', () => {
  let mongo: TestMongo;
  let balancer: Balancer;
  let apps: AppProcess[] = [];
  let issuer = '';
  const prefix = testRedisPrefix();
  const dir = tempDir('lk-procs-');

  before(async () => {
    mongo = await startMongo();
    balancer = await startBalancer();
    issuer = `http://127.0.0.1:${balancer.port}`;
    const env = {
      NODE_ENV: 'production',
      MAIL: 'off',
      ISSUER: issuer,
      DATA_DIR: dir.path,
      DEMO: 'false',
      MONGODB_URI: mongo.uri,
      MONGODB_DB: mongo.dbName,
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: prefix,
      ...sharedKeys(),
    };
    await seed(env, fixture());
    apps = await Promise.all([startProcess(env), startProcess(env)]);
    balancer.backends.push(...apps.map((a) => a.port));
  });
  after(async () => {
    await balancer?.close();
    await Promise.all(apps.map((a) => a.terminate()));
    await mongo.stop();
    dir.remove();
  });

  it('finishes on one process a journey started on the other', async () => {
    const rp = await relyingParty(issuer);
    const browser = new Browser(issuer);
    const before = balancer.served.length;
    const { page, pending } = await signIn(browser, rp, { email: 'jane@acme.test', login: 'jane-mgr' });
    assert.ok(callbackReached(page), `${page.status} ${page.url}`);
    const used = new Set(balancer.served.slice(before));
    assert.equal(used.size, 2, 'the journey crossed both processes');
    const tokens = await rp.callback(page.url, pending);
    assert.equal(tokens.claims()!.sub, 'jane-mgr');
  });

  it('shares the attempt counters: failures split over both processes hit one limit', async () => {
    const rp = await relyingParty(issuer);
    const browser = new Browser(issuer);
    const statuses: number[] = [];
    const backends: number[] = [];
    for (let i = 0; i < 6; i++) {
      const page = await browser.get((await rp.authorize()).url);
      const mark = balancer.served.length;
      statuses.push((await submitLogin(browser, page, 'bob@acme.test', `wrong-${i}`)).status);
      backends.push(balancer.served[mark]!);
    }
    assert.equal(new Set(backends).size, 2, 'the guesses were split over both processes');
    // Five failures are evaluated (the fifth starts the lock); the sixth is refused.
    assert.deepEqual(statuses, [400, 400, 400, 400, 400, 429]);
    const page = await browser.get((await rp.authorize()).url);
    assert.equal((await submitLogin(browser, page, 'bob@acme.test', PASSWORD)).status, 429, 'locked on every process, even for the right password');
  });

  // Last: it stops the first process.
  it('lets a request in flight finish on SIGTERM, then exits 0', async () => {
    const rp = await relyingParty(issuer);
    // The lockout test above locked this client IP: start from clean counters.
    const redis = new Redis(testRedisUrl());
    const keys = await redis.keys(`${prefix}ctr:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    const direct = `http://127.0.0.1:${apps[0]!.port}`;
    const browser = new Browser(direct);
    const page = await browser.get((await rp.authorize()).url.replace(issuer, direct));
    const inFlight = browser.request(actionOf(page, 'login-form'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: 'jane@acme.test', password: PASSWORD, csrf: csrfOf(page) }),
    });
    await new Promise((r) => setTimeout(r, 5));
    const code = apps[0]!.terminate();
    const answered = await inFlight;
    assert.equal(answered.status, 303, `the in-flight sign-in completed: ${answered.status} ${answered.html.slice(0, 300)}`);
    assert.equal(await code, 0);
    assert.ok(apps[0]!.logs.some((l) => l.includes('shutting down')));
    await assert.rejects(fetch(`${direct}/healthz`), 'no longer accepting connections');
  });
});
