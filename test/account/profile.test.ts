// The profile page for every login: who is signed in and
// the factor in force, recent sign-ins, changing the PIN (the sign-in's rules
// and attempt limits), linking the authenticator app again, and changing the
// password. On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, testIds, textOf } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, signIn, startServer, submitLogin, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, auditOf, choosePin, codeFor, currentStep, addPerson, hasForm, reachFactor, secretOf, submitFactor, wrongCode, savedCodes } from '../support/factors.ts';
import { accountFixture, accountSignIn, errorOf, noticeOf, onAccountPage, submit } from './support.ts';

const PIN = '907146';
const NEW_PIN = '583920';

for (const setup of SETUPS) {
  describe(`account profile (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: accountFixture(), env: SHORT_LOCKS, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const counter = (key: string) => server.latchkey.stores.counters.peek(key, Date.now());

    /** A person of `type` with the factor set up, signed in to /account (factor included). */
    async function atProfile(type: 'nurse' | 'manager' | 'employee') {
      const person = await addPerson(server, type);
      const [login] = person.logins as [string];
      let secret = '';
      let step = 0;
      if (type === 'nurse') await choosePin(server, rp, person, PIN);
      const { browser, page } = await accountSignIn(server, { email: person.email });
      let profile = page;
      if (type === 'nurse') profile = await submitFactor(browser, page, 'enter-pin-form', { pin: PIN });
      if (type === 'manager') {
        // The app is linked at this first sign-in, so one more code of this 30-second window is left for the test.
        secret = secretOf(page);
        step = currentStep();
        profile = await savedCodes(browser, await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secret, step) }));
      }
      assert.ok(onAccountPage(profile), `signed in to the profile: ${profile.status} ${profile.url} ${errorOf(profile)}`);
      return { person, login, browser, profile, secret, step };
    }

    it('shows name, email, user type, the factor in force and the recent sign-ins; no owner pages for a user', async () => {
      const { login, profile } = await atProfile('nurse');
      assert.equal(textOf(profile, 'profile-name'), 'Pat Doe');
      assert.match(textOf(profile, 'profile-email') ?? '', /^p-[0-9a-f]+@acme\.test$/);
      assert.equal(textOf(profile, 'profile-user-type'), 'Nurse');
      assert.equal(textOf(profile, 'profile-factor'), 'PIN code');
      assert.ok(testIds(profile).includes('change-pin-link') && testIds(profile).includes('change-password-link'));
      assert.ok(!testIds(profile).includes('change-totp-link'), 'no app to link again');
      assert.ok(!testIds(profile).includes('nav-security'));
      const rows = [...profile.html.matchAll(/data-testid="sign-in"><td><time datetime="([^"]+)" data-local>([^<]+)<\/time><\/td><td[^>]*>([^<]*)<\/td>/g)];
      assert.equal(rows.length, 2, 'the application sign-in and this one');
      assert.deepEqual(
        rows.map((r) => r[3]),
        ['password, PIN', 'password, PIN'],
      );
      assert.match(rows[0]![2]!, /^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d:\d\d UTC$/, 'the time in words, in UTC until the browser says its zone');
      assert.equal((await auditOf(server, login, 'account.signin')).length, 1);
    });

    it("changes the PIN: the current PIN is checked and counted, the new one follows the sign-in's rules", async () => {
      const { person, login, browser } = await atProfile('nurse');
      let page = await browser.get('/account/profile/pin');
      assert.ok(hasForm(page, 'change-pin-form'));
      for (const name of ['current_pin', 'pin', 'pin_confirm']) assert.match(page.html, new RegExp(`<label for="${name}">`), `a label for ${name}`);
      const hashBefore = (await accounts().getLogin(login))!.factors.pin!.hash;

      const weak: [string, string, RegExp][] = [
        ['123456', '123456', /sequence/],
        ['444444', '444444', /one digit repeated/],
        ['12345', '12345', /at least 6 digits/],
        [NEW_PIN, '583921', /not the same/],
      ];
      for (const [pin, confirm, message] of weak) {
        const refused = await submit(browser, page, 'change-pin-form', { current_pin: PIN, pin, pin_confirm: confirm });
        assert.equal(refused.status, 400, pin);
        assert.match(errorOf(refused), message);
      }
      assert.equal(await counter(`pin:${login}`), null, 'a refused new PIN spends no attempt');

      const wrong = await submit(browser, page, 'change-pin-form', { current_pin: '111222', pin: NEW_PIN, pin_confirm: NEW_PIN });
      assert.equal(wrong.status, 400);
      assert.match(errorOf(wrong), /not your current PIN/);
      assert.equal((await counter(`pin:${login}`))?.failures, 1, 'the wrong current PIN is counted, like at the sign-in');
      assert.equal((await accounts().getLogin(login))!.factors.pin!.hash, hashBefore, 'nothing changed');
      const [failed] = await auditOf(server, login, 'factor.pin.failed');
      assert.deepEqual(failed?.detail, { stage: 'change' });

      const same = await submit(browser, page, 'change-pin-form', { current_pin: PIN, pin: PIN, pin_confirm: PIN });
      assert.equal(same.status, 400);
      assert.match(errorOf(same), /same as your current one/);

      page = await submit(browser, page, 'change-pin-form', { current_pin: PIN, pin: NEW_PIN, pin_confirm: NEW_PIN });
      assert.ok(onAccountPage(page), `${page.status} ${errorOf(page)}`);
      assert.match(noticeOf(page), /PIN has been changed/);
      assert.equal(await counter(`pin:${login}`), null, 'the right PIN clears the failures');
      const [changed] = await auditOf(server, login, 'factor.pin.changed');
      assert.equal(changed?.outcome, 'success');
      assert.ok(!JSON.stringify(await auditOf(server, login)).includes(NEW_PIN), 'no PIN in the audit log');

      const next = await reachFactor(server, rp, person);
      const old = await submitFactor(next.browser, next.page, 'enter-pin-form', { pin: PIN });
      assert.equal(old.status, 400, 'the old PIN no longer works');
      assert.ok(callbackReached(await submitFactor(next.browser, next.page, 'enter-pin-form', { pin: NEW_PIN })), 'the new PIN does');
    });

    it("locks the PIN change after too many wrong current PINs, sharing the sign-in's limit", async () => {
      const { person, login, browser } = await atProfile('nurse');
      const page = await browser.get('/account/profile/pin');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await submit(browser, page, 'change-pin-form', { current_pin: '111222', pin: NEW_PIN, pin_confirm: NEW_PIN })).status);
      assert.deepEqual(statuses, [400, 400, 400, 400, 429, 429]);
      const locked = await submit(browser, page, 'change-pin-form', { current_pin: PIN, pin: NEW_PIN, pin_confirm: NEW_PIN });
      assert.equal(locked.status, 429, 'even the right PIN waits');
      assert.ok(locked.headers.get('retry-after'));
      const signInNow = await reachFactor(server, rp, person);
      assert.equal((await submitFactor(signInNow.browser, signInNow.page, 'enter-pin-form', { pin: PIN })).status, 429, 'the sign-in is locked too: one limit');
      assert.ok((await auditOf(server, login, 'factor.pin.locked')).length >= 1);
      clock.advance(2000);
      const done = await submit(browser, page, 'change-pin-form', { current_pin: PIN, pin: NEW_PIN, pin_confirm: NEW_PIN });
      assert.ok(onAccountPage(done), `after the lock: ${done.status} ${errorOf(done)}`);
    });

    it('links the authenticator app again: a code from the current app first, then a new key replaces the old', async () => {
      const { person, login, browser, profile, secret, step } = await atProfile('manager');
      assert.equal(textOf(profile, 'profile-factor'), 'Authenticator app');
      let page = await browser.get('/account/profile/authenticator');
      assert.ok(hasForm(page, 'relink-verify-form'), 'the current app first');
      assert.ok(!testIds(page).includes('totp-secret'), 'no new key before the current code');

      const wrong = await submit(browser, page, 'relink-verify-form', { code: await wrongCode(secret) });
      assert.equal(wrong.status, 400);
      assert.equal((await counter(`totp:${login}`))?.failures, 1, 'counted');
      const replay = await submit(browser, page, 'relink-verify-form', { code: await codeFor(secret, step) });
      assert.equal(replay.status, 400, 'a code already used is refused');

      page = await submit(browser, page, 'relink-verify-form', { code: await codeFor(secret, step + 1) });
      assert.ok(hasForm(page, 'relink-link-form'), `then the new QR code: ${page.status} ${errorOf(page)}`);
      assert.ok(testIds(page).includes('totp-qr') && testIds(page).includes('totp-link'));
      const newSecret = secretOf(page);
      assert.notEqual(newSecret, secret);
      assert.equal(secretOf(await browser.get('/account/profile/authenticator')), newSecret, 'the same new key on reload');
      const oldState = (await accounts().getLogin(login))!.factors.totp;

      const bad = await submit(browser, page, 'relink-link-form', { code: await codeFor(secret, currentStep()) });
      assert.equal(bad.status, 400, 'a code of the old key does not link the new one');
      assert.deepEqual((await accounts().getLogin(login))!.factors.totp, oldState, 'the old app still works until the new one is linked');

      page = await submit(browser, page, 'relink-link-form', { code: await codeFor(newSecret, currentStep()) });
      assert.ok(onAccountPage(page), `${page.status} ${errorOf(page)}`);
      assert.match(noticeOf(page), /linked again/);
      assert.notEqual((await accounts().getLogin(login))!.factors.totp!.secret, oldState!.secret);
      assert.equal((await auditOf(server, login, 'factor.totp.relinked')).length, 1);

      const next = await reachFactor(server, rp, person);
      assert.equal(
        (await submitFactor(next.browser, next.page, 'enter-code-form', { code: await codeFor(secret, currentStep() + 1) })).status,
        400,
        'the old key no longer signs in',
      );
      assert.ok(callbackReached(await submitFactor(next.browser, next.page, 'enter-code-form', { code: await codeFor(newSecret, currentStep() + 1) })), 'the new key does');
    });

    it('changes the password: the current one first; at least 8 characters, not a common password, entered twice', async () => {
      const { person, login, browser } = await atProfile('employee');
      let page = await browser.get('/account/profile/password');
      assert.ok(hasForm(page, 'change-password-form'));
      const NEW = 'violet kettle marathon';
      const refusals: [Record<string, string>, RegExp, number][] = [
        [{ current_password: PASSWORD, password: 'short', password_confirm: 'short' }, /at least 8 characters/, 400],
        [{ current_password: PASSWORD, password: 'password1', password_confirm: 'password1' }, /most common passwords/, 400],
        [{ current_password: PASSWORD, password: 'Iloveyou', password_confirm: 'Iloveyou' }, /most common passwords/, 400],
        [{ current_password: PASSWORD, password: person.email, password_confirm: person.email }, /email address/, 400],
        [{ current_password: PASSWORD, password: NEW, password_confirm: `${NEW}!` }, /not the same/, 400],
        [{ current_password: 'not my password', password: NEW, password_confirm: NEW }, /current password is not correct/, 400],
        [{ current_password: PASSWORD, password: PASSWORD, password_confirm: PASSWORD }, /same as your current one/, 400],
      ];
      for (const [fields, message, status] of refusals) {
        const refused = await submit(browser, page, 'change-password-form', fields);
        assert.equal(refused.status, status, fields.password);
        assert.match(errorOf(refused), message);
        assert.ok(!refused.html.includes(fields.password!) || fields.password === person.email, 'no password echoed');
      }
      const [failure] = await auditOf(server, login, 'password.changed');
      assert.equal(failure?.outcome, 'failure');

      // Another browser signed in with the old password, and an application holds its tokens.
      const other = new Browser(server.issuer);
      const before = await signIn(other, rp, { email: person.email });
      assert.ok(callbackReached(before.page));
      const tokens = await rp.callback(before.page.url, before.pending);
      assert.ok(tokens.refresh_token, 'the application holds a refresh token');

      page = await submit(browser, page, 'change-password-form', { current_password: PASSWORD, password: NEW, password_confirm: NEW });
      assert.ok(onAccountPage(page), `${page.status} ${errorOf(page)}`);
      assert.match(noticeOf(page), /password has been changed/);
      const [changed] = await auditOf(server, login, 'password.changed');
      assert.equal(changed?.outcome, 'success');
      assert.equal(changed?.detail?.loginsSignedOut, 1);

      // Everything that came from the old password has ended; the page it was changed on goes on.
      await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'the refresh token stops working');
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token is no longer active');
      const again = await rp.authorize();
      assert.ok(testIds(await other.get(again.url)).includes('login-form'), "the other browser's single sign-on session must sign in again");
      const still = await browser.get('/account');
      assert.ok(onAccountPage(still), `this browser stays signed in to the account pages: ${still.status} ${still.url}`);
      assert.ok(!JSON.stringify(await auditOf(server, login)).includes(NEW), 'no password in the audit log');

      const oldTry = await rp.authorize();
      const loginPage = await new Browser(server.issuer).get(oldTry.url);
      assert.equal((await submitLogin(new Browser(server.issuer), loginPage, person.email, PASSWORD)).status, 400, 'the old password no longer works');
      const fresh = await signIn(new Browser(server.issuer), rp, { email: person.email, password: NEW });
      assert.ok(callbackReached(fresh.page), 'the new one does');
    });

    it('a password changed elsewhere while the new one is hashed is not written over: the page says so and the other password stays', async () => {
      const { person, browser } = await atProfile('employee');
      const page = await browser.get('/account/profile/password');
      const MINE = 'amber lantern orchard';
      const THEIRS = 'copper meadow whistle';
      const { hasher } = server.latchkey;
      const { hash } = hasher;
      // A reset link used from another device lands while this page hashes its new password.
      hasher.hash = async (plain, opts) => {
        const made = await hash.call(hasher, plain, opts);
        if (plain === MINE) {
          hasher.hash = hash;
          const identity = (await accounts().findIdentityByEmail(person.email))!;
          assert.ok(await accounts().setPasswordHashIf(identity.id, identity.passwordHash, await hash.call(hasher, THEIRS)));
        }
        return made;
      };
      try {
        const refused = await submit(browser, page, 'change-password-form', { current_password: PASSWORD, password: MINE, password_confirm: MINE });
        assert.equal(refused.status, 409, errorOf(refused));
        assert.match(errorOf(refused), /changed elsewhere just now/);
      } finally {
        hasher.hash = hash;
      }
      const stored = (await accounts().findIdentityByEmail(person.email))!.passwordHash!;
      assert.equal(await hasher.verify(stored, THEIRS), true, 'the password set meanwhile stays');
      assert.equal(await hasher.verify(stored, MINE), false, "this page's is not written over it");
    });

    it('refuses bad input on the account forms with a 4xx and changes nothing', async () => {
      const { login, browser } = await atProfile('nurse');
      const page = await browser.get('/account/profile/pin');
      const state = (await accounts().getLogin(login))!.factors;
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
      const enc = encodeURIComponent;
      const bodies: [string, string, string, number[]][] = [
        ['/account/profile/pin', `csrf=${enc(csrf)}&current_pin=${PIN}&current_pin=${PIN}&pin=${NEW_PIN}&pin_confirm=${NEW_PIN}`, 'application/x-www-form-urlencoded', [400]],
        ['/account/profile/pin', `csrf=${enc(csrf)}&current_pin[$ne]=1&pin=${NEW_PIN}&pin_confirm=${NEW_PIN}`, 'application/x-www-form-urlencoded', [400]],
        ['/account/profile/pin', `csrf=${enc(csrf)}&current_pin=${'9'.repeat(200)}&pin=${NEW_PIN}&pin_confirm=${NEW_PIN}`, 'application/x-www-form-urlencoded', [400]],
        ['/account/profile/pin', JSON.stringify({ csrf, current_pin: PIN, pin: NEW_PIN, pin_confirm: NEW_PIN }), 'application/json', [415]],
        ['/account/profile/password', `csrf=${enc(csrf)}&current_password[]=x&password=abc&password_confirm=abc`, 'application/x-www-form-urlencoded', [400]],
        ['/account/profile/authenticator', `csrf=${enc(csrf)}&code=123456`, 'application/x-www-form-urlencoded', [400]],
        ['/account/users/x/reset-pin', `csrf=${enc(csrf)}&confirm=yes`, 'application/x-www-form-urlencoded', [403]],
      ];
      for (const [path, body, type, statuses] of bodies) {
        const res = await browser.postRaw(path, body, type);
        assert.ok(statuses.includes(res.status), `${path} ${body.slice(0, 60)}: ${res.status}`);
      }
      assert.deepEqual((await accounts().getLogin(login))!.factors, state);
      assert.equal(await counter(`pin:${login}`), null, 'bad input spends no attempt');
      for (const path of ['/account/../account/audit', '/account/users/%00/reset-pin', '/account/signin?return_to=https://evil.example/']) {
        const res = await browser.get(path);
        assert.ok(res.status < 500, `${path}: ${res.status}`);
        assert.ok(!res.url.startsWith('https://evil.example'), 'never sent elsewhere');
      }
    });
  });
}
