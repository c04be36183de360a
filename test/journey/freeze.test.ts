// The freeze (NIST SP 800-63B §5.2.2): after the most consecutive
// failures a login's PIN or code, or an identity's password, refuses every
// further attempt, with a page that tells no more than the lockout does, until
// the tenant's owner unlocks it on the Users page (or resets the factor) or an
// operator runs `npm run cli -- unlock EMAIL`. Scaled down here: the lock
// starts at the 2nd failure (3 s) and the freeze comes at the 3rd; the default
// 100 is proven in test/limits.test.ts. Each password guess comes from an
// address of its own (TRUST_PROXY), so per-IP locks stay out of the story.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, submitLogin, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import {
  addPerson,
  auditOf,
  choosePin,
  codeFor,
  currentStep,
  errorOf,
  factorFixture,
  hasForm,
  linkApp,
  reachFactor,
  secretOf,
  submitFactor,
  wrongCode,
  type Person,
  savedCodes,
} from '../support/factors.ts';
import { noticeOf, onAccountPage, signedIn, submit } from '../account/support.ts';
import { runCli } from '../support/cli.ts';

const LOCK_MS = 3000;
const LIMITS = { LOCK_THRESHOLD: '2', LOCK_MAX_FAILURES: '3', LOCK_BASE_MS: String(LOCK_MS), LOCK_MAX_MS: String(LOCK_MS), TRUST_PROXY: '1' };
const PIN = '907146';
const OWNER = { email: 'owner@acme.test' };
const FROZEN = /too many failed attempts, so this is blocked until it is unlocked\. Please contact the owner/;

let addresses = 0;
const freshAddress = () => `203.0.113.${(addresses++ % 250) + 1}`;

/** `npm run cli -- ARGS` against the server's stores. */
const cli = (server: TestServer, args: string[]) => runCli(args, server.env);

/** The form around the button `testid` on `page`, posted with its CSRF token. */
function pressButton(browser: Browser, page: Page, testid: string): Promise<Page> {
  const form = new RegExp(`<form[^>]*action="([^"]+)"[^>]*>(?:(?!</form>)[^])*data-testid="${testid}"`).exec(page.html);
  assert.ok(form, `no button ${testid} on ${page.url}`);
  return browser.post(form[1]!.replace(/&amp;/g, '&'), { csrf: csrfOf(page) });
}

for (const setup of SETUPS) {
  describe(`the freeze after the most consecutive failures (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    // Locks are waited out by moving the app's clock on.
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), env: LIMITS, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    /** One password sign-in attempt in a browser of its own, from an address of its own. */
    async function passwordAttempt(email: string, password = 'not the password'): Promise<Page> {
      const browser = new Browser(server.issuer);
      const login = await browser.get((await rp.authorize()).url);
      return browser.post(actionOf(login, 'login-form'), { email, password, csrf: csrfOf(login) }, { 'x-forwarded-for': freshAddress() });
    }

    /** The owner's Users page, signed in. */
    const usersPage = () => signedIn(server, OWNER, '/account/users');

    it('freezes a password at the 3rd failure: known or unknown email, the same 429 page, no Retry-After, the right password refused', async () => {
      const person = await addPerson(server, 'staff');
      const nobody = `nobody-${Date.now()}@acme.test`;
      for (const email of [person.email, person.email, nobody, nobody]) assert.equal((await passwordAttempt(email)).status, 400);
      clock.advance(LOCK_MS);
      const known = await passwordAttempt(person.email);
      const unknown = await passwordAttempt(nobody);
      for (const page of [known, unknown]) {
        assert.equal(page.status, 429);
        assert.match(errorOf(page), FROZEN);
        assert.equal(page.headers.get('retry-after'), null, 'no wait lifts it');
        assert.ok(!testIds(page).includes('retry-after'));
        assert.ok(hasForm(page, 'login-form'), 'the login page, as for a lockout');
      }
      assert.deepEqual(testIds(known), testIds(unknown), "a known email's freeze looks like an unknown one's");
      assert.equal(errorOf(known), errorOf(unknown));

      const right = await passwordAttempt(person.email, PASSWORD);
      assert.equal(right.status, 429, 'the right password too');
      assert.match(errorOf(right), FROZEN);
      clock.advance(LOCK_MS);
      assert.equal((await passwordAttempt(person.email, PASSWORD)).status, 429, 'and still after the longest lock');
      const locked = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'signin.locked', limit: 500 });
      assert.equal(locked.filter((e) => e.detail?.frozen === true).length, 4, 'the freezes and each refusal after them');
    });

    it('freezes a PIN at the 3rd failure; the owner sees the lock, then the freeze, and unlocks it: the right PIN passes again', async () => {
      const person = await addPerson(server, 'nurse');
      const [nurse] = person.logins as [string];
      await choosePin(server, rp, person, PIN);
      const owner = await usersPage();
      assert.ok(!testIds(owner.page).includes(`unlock-${nurse}`), 'nothing to unlock yet');

      const { browser, page, pending } = await reachFactor(server, rp, person);
      let answer = await submitFactor(browser, page, 'enter-pin-form', { pin: '111111' });
      answer = await submitFactor(browser, answer, 'enter-pin-form', { pin: '111111' });
      assert.equal(answer.status, 429, 'the 2nd failure starts a lock');
      const whileLocked = await owner.browser.get('/account/users');
      assert.equal(textOf(whileLocked, `lock-${nurse}`), 'Locked for a while');
      assert.ok(testIds(whileLocked).includes(`unlock-${nurse}`), 'a temporary lock can be lifted too');

      clock.advance(LOCK_MS);
      answer = await submitFactor(browser, answer, 'enter-pin-form', { pin: '111111' });
      assert.equal(answer.status, 429);
      assert.match(errorOf(answer), FROZEN);
      assert.equal(answer.headers.get('retry-after'), null);
      answer = await submitFactor(browser, answer, 'enter-pin-form', { pin: PIN });
      assert.equal(answer.status, 429, 'the right PIN is refused while frozen');
      assert.match(errorOf(answer), FROZEN);
      assert.deepEqual(
        (await auditOf(server, nurse, 'factor.pin.locked')).map((e) => e.detail?.frozen),
        [true, true, undefined],
        'the freeze and the refusal after it, newest first',
      );

      const frozen = await owner.browser.get('/account/users');
      assert.equal(textOf(frozen, `lock-${nurse}`), 'Blocked after failed attempts');
      const confirm = await pressButton(owner.browser, frozen, `unlock-${nurse}`);
      assert.ok(testIds(confirm).includes('confirm-reset-form'), `asks for confirmation first: ${confirm.status}`);
      assert.match(confirm.html, /Unlock sign-in\?/);
      answer = await submitFactor(browser, answer, 'enter-pin-form', { pin: PIN });
      assert.equal(answer.status, 429, 'nothing changed before confirming');
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /has been unlocked/);
      assert.ok(!testIds(done).includes(`lock-${nurse}`) && !testIds(done).includes(`unlock-${nurse}`));
      const [unlocked] = await auditOf(server, nurse, 'login.unlocked');
      assert.deepEqual(unlocked?.detail, { by: 'acme-owner', pin: 'frozen' });
      assert.ok(unlocked?.ip);

      answer = await submitFactor(browser, answer, 'enter-pin-form', { pin: PIN });
      assert.ok(callbackReached(answer), `the right PIN passes again: ${answer.status} ${errorOf(answer)}`);
      assert.ok((await rp.callback(answer.url, pending)).access_token);
    });

    it("an owner's reset of the authenticator app also lifts a frozen code and a frozen password: the user links an app again", async () => {
      const person = await addPerson(server, 'manager');
      const [manager] = person.logins as [string];
      const { secret } = await linkApp(server, rp, person);
      const { browser, page } = await reachFactor(server, rp, person);
      const bad = await wrongCode(secret);
      let answer = await submitFactor(browser, page, 'enter-code-form', { code: bad });
      answer = await submitFactor(browser, answer, 'enter-code-form', { code: bad });
      for (let i = 0; i < 2; i++) await passwordAttempt(person.email);
      clock.advance(LOCK_MS);
      answer = await submitFactor(browser, answer, 'enter-code-form', { code: bad });
      assert.match(errorOf(answer), FROZEN);
      assert.match(errorOf(await passwordAttempt(person.email)), FROZEN);

      const owner = await usersPage();
      assert.equal(textOf(owner.page, `lock-${manager}`), 'Blocked after failed attempts');
      const confirm = await pressButton(owner.browser, owner.page, `reset-totp-${manager}`);
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.match(noticeOf(done), /authenticator app has been reset/);
      assert.ok(!testIds(done).includes(`lock-${manager}`), 'no lock left');
      assert.equal((await auditOf(server, manager, 'factor.totp.reset')).length, 1);
      assert.deepEqual((await auditOf(server, manager, 'login.unlocked'))[0]?.detail, { by: 'acme-owner', via: 'reset-authenticator', password: 'frozen', totp: 'frozen' });

      const again = new Browser(server.issuer);
      let next = await again.get((await rp.authorize()).url);
      next = await submitLogin(again, next, person.email, PASSWORD);
      assert.ok(hasForm(next, 'link-authenticator-form'), `the password works and the app is linked again: ${next.status} ${errorOf(next)}`);
      next = await savedCodes(again, await submitFactor(again, next, 'link-authenticator-form', { code: await codeFor(secretOf(next), currentStep()) }));
      assert.ok(callbackReached(next), `the new app's code is accepted: ${next.status} ${errorOf(next)}`);
    });

    it("an owner's unlock lifts only the tenant's own keys: the password of a person who also signs in to another tenant stays frozen until the operator unlocks it, audited in both", async () => {
      const { accounts } = server.latchkey.stores;
      const person = await addPerson(server, 'staff');
      const [mine] = person.logins as [string];
      const theirs = `${mine}-beta`;
      await accounts.upsertTenant({ id: 'beta', name: 'Beta', owners: [], userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }] });
      await accounts.upsertLogin({ id: theirs, tenant: 'beta', email: person.email, userType: 'staff', firstName: 'Pat', lastName: 'Doe' });
      for (let i = 0; i < 2; i++) await passwordAttempt(person.email);
      clock.advance(LOCK_MS);
      assert.match(errorOf(await passwordAttempt(person.email)), FROZEN);
      const told = (tenant: string, login: string) => accounts.listAudit({ tenant, login, type: 'password.locked', limit: 10 }).then((events) => events.map((e) => e.detail));
      for (const [tenant, login] of [
        ['acme', mine],
        ['beta', theirs],
      ] as const) {
        assert.deepEqual(await told(tenant, login), [{ frozen: true }, { retryAfterSeconds: LOCK_MS / 1000 }], `the lock and the freeze are in ${tenant}'s audit log`);
      }

      const owner = await usersPage();
      assert.equal(textOf(owner.page, `lock-${mine}`), 'Blocked after failed attempts');
      const done = await submit(owner.browser, await pressButton(owner.browser, owner.page, `unlock-${mine}`), 'confirm-reset-form');
      assert.match(noticeOf(done), /only the operator can unlock/);
      assert.equal(textOf(done, `lock-${mine}`), 'Blocked after failed attempts', "the password's freeze is not the owner's to lift");
      assert.deepEqual((await auditOf(server, mine, 'login.unlocked'))[0]?.detail, { by: 'acme-owner', kept: { password: 'frozen' } });
      assert.match(errorOf(await passwordAttempt(person.email, PASSWORD)), FROZEN, 'the right password is still refused');

      const run = await cli(server, ['unlock', person.email]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        run.stdout.trim().split('\n').sort(),
        [`${person.email}: password was frozen, unlocked`, `login acme/${mine}: no factor locked`, `login beta/${theirs}: no factor locked`].sort(),
      );
      for (const [tenant, login] of [
        ['acme', mine],
        ['beta', theirs],
      ] as const) {
        // The CLI runs on the system clock, behind the app's moved one: found by who unlocked, not by time.
        const events = await accounts.listAudit({ tenant, login, type: 'login.unlocked', limit: 10 });
        assert.deepEqual(
          events.filter((e) => e.detail?.via === 'cli').map((e) => e.detail),
          [{ via: 'cli', password: 'frozen' }],
          `the operator's unlock is in ${tenant}'s audit log`,
        );
      }
      assert.ok(callbackReached(await passwordAttempt(person.email, PASSWORD)), 'the person signs in again');
    });

    it('an owner who froze their own password is unlocked by the operator: npm run cli -- unlock EMAIL', async () => {
      const person: Person = { email: OWNER.email, logins: ['acme-owner'] };
      for (let i = 0; i < 2; i++) await passwordAttempt(person.email);
      clock.advance(LOCK_MS);
      await passwordAttempt(person.email);
      assert.match(errorOf(await passwordAttempt(person.email, PASSWORD)), FROZEN, 'the owner cannot sign in to unlock themselves');

      const usage = await cli(server, ['unlock']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /npm run cli -- unlock EMAIL/);
      const notEmail = await cli(server, ['unlock', 'owner']);
      assert.equal(notEmail.code, 2);

      const run = await cli(server, ['unlock', 'Owner@Acme.test']);
      assert.equal(run.code, 0, run.stderr);
      assert.doesNotMatch(run.stderr, /without REDIS_URL/);
      assert.deepEqual(run.stdout.trim().split('\n'), ['owner@acme.test: password was frozen, unlocked', 'login acme/acme-owner: no factor locked']);
      assert.deepEqual((await auditOf(server, 'acme-owner', 'login.unlocked'))[0]?.detail, { via: 'cli', password: 'frozen' });
      const { page } = await signedIn(server, OWNER, '/account/users');
      assert.ok(onAccountPage(page, '/account/users'), 'the owner signs in again');

      if (setup === 'mongo+redis') {
        // The operator forgot REDIS_URL: the counters would be looked for in DATA_DIR's SQLite. Say so.
        const { REDIS_URL: _url, REDIS_PREFIX: _prefix, ...withoutRedis } = server.env;
        assert.match((await runCli(['unlock', OWNER.email], withoutRedis)).stderr, /MONGODB_URI is set without REDIS_URL/);
      }
      const nothing = await cli(server, ['unlock', OWNER.email]);
      assert.deepEqual(nothing.stdout.trim().split('\n'), ['owner@acme.test: password not locked', 'login acme/acme-owner: no factor locked']);
    });
  });
}
