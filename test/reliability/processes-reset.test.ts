// Several app processes (docs/deployment.md): an owner's reset made
// on one process takes effect on the other. Two `npm start` processes share
// MongoDB + Redis behind one issuer and a round-robin balancer; the test
// steers the balancer so the owner's reset is served by process A and the
// user's next steps by process B. There the user must link the app (or choose
// a PIN) again, their old provider session no longer signs them in, and their
// refresh token is refused (docs/account.md, "Ending a login's sessions").
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ImportDocument } from '../../src/import/index.ts';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { startMongo, type TestMongo } from '../support/mongo.ts';
import { testRedisPrefix, testRedisUrl } from '../support/redis.ts';
import { tempDir } from '../support/tmp.ts';
import { PASSWORD, REDIRECT_URI, callbackReached, relyingParty, submitLogin, type RelyingParty } from '../support/latchkey.ts';
import { codeFor, currentStep, hasForm, secretOf, submitFactor, savedCodes } from '../support/factors.ts';
import { hiddenFields } from '../account/support.ts';
import { seed, sharedKeys, startBalancer, startProcess, type AppProcess, type Balancer } from '../support/processes.ts';

const PIN = '482913';
const FORM = 'application/x-www-form-urlencoded';
const BASIC = `Basic ${Buffer.from('portal:s3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d').toString('base64')}`;

function resetFixture(): ImportDocument {
  return {
    identities: ['owner@acme.test', 'tim@acme.test', 'nina@acme.test'].map((email) => ({ email, password: PASSWORD })),
    tenants: [
      {
        id: 'acme',
        name: 'Acme Care',
        owner: 'acme-owner',
        userTypes: [
          { id: 'owner', name: 'Owner', secondFactor: 'none' },
          { id: 'guard', name: 'Guard', secondFactor: 'totp' },
          { id: 'nurse', name: 'Nurse', secondFactor: 'pin' },
        ],
        logins: [
          { id: 'acme-owner', email: 'owner@acme.test', userType: 'owner', firstName: 'Olga', lastName: 'Owner' },
          { id: 'tim-guard', email: 'tim@acme.test', userType: 'guard', firstName: 'Tim', lastName: 'Doe' },
          { id: 'nina-nurse', email: 'nina@acme.test', userType: 'nurse', firstName: 'Nina', lastName: 'Doe' },
        ],
        clients: [{ client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: [REDIRECT_URI], first_party: true }],
      },
    ],
  };
}

describe('a reset on one app process takes effect on the other (MongoDB + Redis)', () => {
  let mongo: TestMongo;
  let balancer: Balancer;
  let apps: AppProcess[] = [];
  let ports: number[] = [];
  let issuer = '';
  let rp: RelyingParty;
  let owner: Browser;
  const dir = tempDir('lk-procs-reset-');

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
      REDIS_PREFIX: testRedisPrefix(),
      ...sharedKeys(),
    };
    await seed(env, resetFixture());
    apps = await Promise.all([startProcess(env), startProcess(env)]);
    ports = apps.map((a) => a.port);
    balancer.backends.push(...ports);
    rp = await relyingParty(issuer);
    // The owner signs in to the account pages (through the balancer, on both processes).
    owner = new Browser(issuer);
    const login = await owner.get('/account');
    const page = await submitLogin(owner, login, 'owner@acme.test', PASSWORD);
    assert.equal(new URL(page.url).pathname, '/account', `the owner's account page, got ${page.status} ${page.url}`);
  });
  after(async () => {
    await balancer?.close();
    await Promise.all(apps.map((a) => a.terminate()));
    await mongo?.stop();
    dir.remove();
  });

  const A = () => ports[0]!;
  const B = () => ports[1]!;

  /** Makes the balancer send the next request to `port`: it goes round the two in turn, so a health check moves it on. */
  async function steer(port: number) {
    if (ports[balancer.served.length % ports.length] !== port) await fetch(`${issuer}/healthz`);
    assert.equal(ports[balancer.served.length % ports.length], port);
  }

  /** Which process served the first request after `mark`. */
  const servedAt = (mark: number) => balancer.served[mark];

  /** A refresh-token grant sent straight to one process's port. */
  async function refreshAt(port: number, refreshToken: string) {
    const res = await fetch(`http://127.0.0.1:${port}/token`, {
      method: 'POST',
      headers: { authorization: BASIC, 'content-type': FORM },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    return { status: res.status, body: (await res.json()) as { error?: string; refresh_token?: string; id_token?: string } };
  }

  async function introspectAt(port: number, token: string) {
    const res = await fetch(`http://127.0.0.1:${port}/token/introspection`, {
      method: 'POST',
      headers: { authorization: BASIC, 'content-type': FORM },
      body: new URLSearchParams({ token }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { active: boolean }).active;
  }

  /** The owner's reset of `loginId`, its confirmation posted to process A. */
  async function resetOnA(loginId: string, kind: 'reset-authenticator' | 'reset-pin') {
    const confirm = await owner.get(`/account/users/${loginId}/${kind}`);
    assert.ok(testIds(confirm).includes('confirm-reset-form'), `the confirmation page, got ${confirm.status} ${confirm.url}`);
    await steer(A());
    const mark = balancer.served.length;
    const done = await owner.post(actionOf(confirm, 'confirm-reset-form'), hiddenFields(confirm, 'confirm-reset-form'));
    assert.equal(servedAt(mark), A(), 'the reset was served by process A');
    assert.equal(done.status, 200);
    assert.equal(new URL(done.url).pathname, '/account/users');
  }

  /** The first sign-in of a login with a factor to set up: password, then the factor page (returned). */
  async function toFactorPage(browser: Browser, email: string, onPort?: number) {
    const pending = await rp.authorize();
    const login = await browser.get(pending.url);
    assert.ok(testIds(login).includes('login-form'), `the login page, got ${login.status} ${login.url}`);
    // The password is answered with a redirect to the interaction; the page the redirect leads to
    // (where the login's factor state is read) is served by `onPort` when given.
    const answered = await browser.request(actionOf(login, 'login-form'), {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({ email, password: PASSWORD, csrf: csrfOf(login) }),
    });
    assert.equal(answered.status, 303, `the password passed: ${answered.status}`);
    if (onPort) await steer(onPort);
    const mark = balancer.served.length;
    const page = await browser.follow(answered);
    if (onPort) assert.equal(servedAt(mark), onPort, 'the factor page was served by the steered process');
    return { pending, page };
  }

  async function finish(page: Page, pending: { verifier: string; state: string }, sub: string) {
    assert.ok(callbackReached(page), `the callback, got ${page.status} ${page.url}`);
    const tokens = await rp.callback(page.url, pending);
    assert.equal(tokens.claims()!.sub, sub);
    assert.ok(tokens.refresh_token, 'a refresh token');
    return tokens;
  }

  /** The old browser's provider session, asked on process B, no longer signs in: the login page again. */
  async function assertSessionEndedOnB(browser: Browser) {
    const pending = await rp.authorize();
    await steer(B());
    const mark = balancer.served.length;
    const page = await browser.get(pending.url);
    assert.equal(servedAt(mark), B());
    assert.ok(!callbackReached(page), 'no code from the old session');
    assert.ok(testIds(page).includes('login-form'), `the login page, got ${page.status} ${page.url}`);
  }

  it("resets Tim's authenticator app on A: on B his refresh token is refused and his next sign-in links the app again", async () => {
    const tim = new Browser(issuer);
    const first = await toFactorPage(tim, 'tim@acme.test');
    assert.ok(hasForm(first.page, 'link-authenticator-form'), 'the first sign-in links the app');
    const oldSecret = secretOf(first.page);
    const linked = await savedCodes(tim, await submitFactor(tim, first.page, 'link-authenticator-form', { code: await codeFor(oldSecret, currentStep()) }));
    const tokens = await finish(linked, first.pending, 'tim-guard');
    // Before the reset the refresh token works on B (keep the newest, should it rotate).
    const fine = await refreshAt(B(), tokens.refresh_token!);
    assert.equal(fine.status, 200, JSON.stringify(fine.body));
    const refreshToken = fine.body.refresh_token ?? tokens.refresh_token!;

    await resetOnA('tim-guard', 'reset-authenticator');

    const refused = await refreshAt(B(), refreshToken);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_grant');
    assert.equal(await introspectAt(B(), refreshToken), false, 'B says the refresh token is no longer active');
    await assertSessionEndedOnB(tim);

    const next = await toFactorPage(tim, 'tim@acme.test', B());
    assert.ok(hasForm(next.page, 'link-authenticator-form'), `B asks to link the app again, got ${next.page.status} ${next.page.url}`);
    const newSecret = secretOf(next.page);
    assert.notEqual(newSecret, oldSecret, 'a new key');
    const relinked = await savedCodes(tim, await submitFactor(tim, next.page, 'link-authenticator-form', { code: await codeFor(newSecret, currentStep()) }));
    const again = await finish(relinked, next.pending, 'tim-guard');
    assert.deepEqual(again.claims()!.amr, ['pwd', 'otp', 'mfa']);
  });

  it("resets Nina's PIN on A: on B her refresh token is refused and her next sign-in chooses a PIN again", async () => {
    const nina = new Browser(issuer);
    const first = await toFactorPage(nina, 'nina@acme.test');
    assert.ok(hasForm(first.page, 'choose-pin-form'), 'the first sign-in chooses a PIN');
    const chosen = await submitFactor(nina, first.page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
    const tokens = await finish(chosen, first.pending, 'nina-nurse');
    const fine = await refreshAt(B(), tokens.refresh_token!);
    assert.equal(fine.status, 200, JSON.stringify(fine.body));
    const refreshToken = fine.body.refresh_token ?? tokens.refresh_token!;

    await resetOnA('nina-nurse', 'reset-pin');

    const refused = await refreshAt(B(), refreshToken);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_grant');
    assert.equal(await introspectAt(B(), refreshToken), false);
    await assertSessionEndedOnB(nina);

    const next = await toFactorPage(nina, 'nina@acme.test', B());
    assert.ok(hasForm(next.page, 'choose-pin-form'), `B asks to choose a PIN again, got ${next.page.status} ${next.page.url}`);
    assert.ok(!hasForm(next.page, 'enter-pin-form'), 'the old PIN is not asked for');
    const rechosen = await submitFactor(nina, next.page, 'choose-pin-form', { pin: '730461', pin_confirm: '730461' });
    const again = await finish(rechosen, next.pending, 'nina-nurse');
    assert.deepEqual(again.claims()!.amr, ['pwd', 'pin']);
  });
});
