// The authenticator-app second factor with a real
// relying party, on the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser } from '../support/browser.ts';
import { TOTP, stepAt } from '../../src/factors/totp/code.ts';
import { SETUPS, callbackReached, relyingParty, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import {
  SHORT_LOCKS,
  addPerson,
  auditOf,
  codeFor,
  currentStep,
  errorOf,
  factorFixture,
  hasForm,
  linkApp,
  otpauthOf,
  reachFactor,
  secretOf,
  submitFactor,
  wrongCode,
  savedCodes,
} from '../support/factors.ts';

for (const setup of SETUPS) {
  describe(`authenticator app (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), env: SHORT_LOCKS, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const loginOf = (id: string) => server.latchkey.stores.accounts.getLogin(id);

    it('links the app at the first sign-in: QR code, grouped key, otpauth link, active only after a correct code', async () => {
      const person = await addPerson(server, 'manager');
      const [login] = person.logins as [string];
      const { browser, page, pending } = await reachFactor(server, rp, person);
      assert.equal(page.status, 200);
      assert.ok(hasForm(page, 'link-authenticator-form'));

      const qr = /<img[^>]*src="data:image\/svg\+xml;base64,([^"]+)"[^>]*data-testid="totp-qr"/.exec(page.html);
      assert.ok(qr, 'an inline QR image');
      assert.match(Buffer.from(qr[1]!, 'base64').toString(), /^<svg/);
      assert.match(/data-testid="totp-secret">([^<]*)</.exec(page.html)![1]!, /^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/);
      const secret = secretOf(page);
      assert.equal(
        otpauthOf(page),
        `otpauth://totp/Acme%20Care:${encodeURIComponent(person.email)}%20(Manager)?secret=${secret}&issuer=Acme%20Care&algorithm=SHA1&digits=6&period=30`,
      );
      assert.match(page.html, /<input[^>]*name="code"[^>]*inputmode="numeric"[^>]*autocomplete="one-time-code"/);
      assert.match(page.html, /<label for="code">/);

      const wrong = await savedCodes(browser, await submitFactor(browser, page, 'link-authenticator-form', { code: await wrongCode(secret) }));
      assert.equal(wrong.status, 400);
      assert.ok(hasForm(wrong, 'link-authenticator-form'), 'the same page again');
      assert.match(errorOf(wrong), /not correct/);
      assert.equal(secretOf(wrong), secret, 'the same key until it is confirmed');
      assert.equal((await loginOf(login))!.factors.totp, undefined, 'not linked before a correct code');

      const again = await browser.get(`/interaction/${/\/interaction\/([^/"]+)/.exec(page.html)![1]}`);
      assert.equal(secretOf(again), secret, 'reloading the page keeps the key');

      const step = Math.floor(Date.now() / 30_000);
      const done = await savedCodes(browser, await submitFactor(browser, again, 'link-authenticator-form', { code: await codeFor(secret, step) }));
      assert.ok(callbackReached(done), `expected the RP callback, got ${done.status} ${errorOf(done)}`);
      const tokens = await rp.callback(done.url, pending);
      const claims = tokens.claims()!;
      assert.equal(claims.sub, login);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(claims.acr, 'urn:latchkey:acr:totp');
      const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, login);
      assert.equal(info.sub, claims.sub);
      assert.equal(info.user_type, 'manager');
      for (const [claim, value] of Object.entries(info)) if (claim in claims) assert.deepEqual(value, claims[claim], `userinfo ${claim}`);

      const state = (await loginOf(login))!.factors.totp!;
      assert.match(String(state.secret), /^v1\./);
      assert.ok(!JSON.stringify(state).includes(secret), 'the stored secret is sealed');
      assert.equal(state.step, step, "the confirming code's step is recorded");
      assert.equal(state.account, `${person.email} (Manager)`);

      const [linked] = await auditOf(server, login, 'factor.totp.linked');
      assert.equal(linked?.outcome, 'success');
      assert.ok(linked?.ip, 'the audit event has the IP');
      assert.equal(linked?.userAgent, 'node');
      const failed = await auditOf(server, login, 'factor.totp.failed');
      assert.equal(failed.length, 1);
      const all = JSON.stringify(await auditOf(server, login));
      assert.ok(!all.includes(secret), 'no secret in the audit log');
    });

    it('asks a linked login for its 6-digit code at later sign-ins', async () => {
      const person = await addPerson(server, 'manager');
      const { secret, step } = await linkApp(server, rp, person);
      const { browser, page, pending } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'enter-code-form'), `expected the code page, got ${page.status}`);
      assert.match(page.html, /<input[^>]*name="code"[^>]*inputmode="numeric"[^>]*autocomplete="one-time-code"/);
      const code = await codeFor(secret, step + 1);
      const done = await submitFactor(browser, page, 'enter-code-form', { code: `${code.slice(0, 3)} ${code.slice(3)}` });
      assert.ok(callbackReached(done), `expected the RP callback, got ${done.status} ${errorOf(done)}`);
      const claims = (await rp.callback(done.url, pending)).claims()!;
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(claims.acr, 'urn:latchkey:acr:totp');
      assert.equal((await auditOf(server, person.logins[0]!, 'factor.totp.verified')).length, 1);
    });

    it('refuses a wrong code with 400 and a clear message on the same page', async () => {
      const person = await addPerson(server, 'manager');
      const { secret } = await linkApp(server, rp, person);
      const { browser, page } = await reachFactor(server, rp, person);
      for (const code of [await wrongCode(secret), '12345', 'abcdef']) {
        const refused = await submitFactor(browser, page, 'enter-code-form', { code });
        assert.equal(refused.status, 400, code);
        assert.ok(hasForm(refused, 'enter-code-form'));
        assert.match(errorOf(refused), /code/i);
        assert.match(refused.html, /role="alert"/);
      }
      const failed = await auditOf(server, person.logins[0]!, 'factor.totp.failed');
      assert.equal(failed.length, 1, 'malformed codes are refused without counting');
      assert.equal(failed[0]!.outcome, 'failure');
    });

    it('accepts a code once: the confirming code and a used code are refused as replays', async () => {
      const person = await addPerson(server, 'manager');
      const [login] = person.logins as [string];
      const { secret, step } = await linkApp(server, rp, person);

      const first = await reachFactor(server, rp, person);
      const enrolmentCode = await submitFactor(first.browser, first.page, 'enter-code-form', { code: await codeFor(secret, step) });
      assert.equal(enrolmentCode.status, 400, 'the code that confirmed the link is used up');
      assert.match(errorOf(enrolmentCode), /already been used/);

      const code = await codeFor(secret, step + 1);
      const passed = await submitFactor(first.browser, first.page, 'enter-code-form', { code });
      assert.ok(callbackReached(passed));

      const second = await reachFactor(server, rp, person);
      const replay = await submitFactor(second.browser, second.page, 'enter-code-form', { code });
      assert.equal(replay.status, 400);
      assert.ok(hasForm(replay, 'enter-code-form'));
      assert.match(errorOf(replay), /already been used/);
      assert.equal((await auditOf(server, login, 'factor.totp.replay')).length, 2);
      assert.equal((await loginOf(login))!.factors.totp!.step, step + 1);
    });

    it('8 browsers submitting one fresh code at once: exactly one passes', async () => {
      const person = await addPerson(server, 'manager');
      const [login] = person.logins as [string];
      const { secret, step } = await linkApp(server, rp, person);
      const sessions = [];
      for (let i = 0; i < 8; i++) sessions.push(await reachFactor(server, rp, person));
      for (const s of sessions) assert.ok(hasForm(s.page, 'enter-code-form'));
      const code = await codeFor(secret, step + 1);
      const results = await Promise.all(sessions.map((s) => submitFactor(s.browser, s.page, 'enter-code-form', { code })));
      assert.equal(results.filter(callbackReached).length, 1, results.map((r) => r.status).join(','));
      for (const r of results.filter((p) => !callbackReached(p))) assert.ok([400, 429].includes(r.status), String(r.status));
      assert.equal((await auditOf(server, login, 'factor.totp.verified')).length, 1);
    });

    it('locks after 5 failures (429 + Retry-After), refuses the right code while locked, and unlocks after the wait', async () => {
      const person = await addPerson(server, 'manager');
      const [login] = person.logins as [string];
      const { secret, step } = await linkApp(server, rp, person);
      const { browser, page } = await reachFactor(server, rp, person);
      const bad = await wrongCode(secret);
      for (let i = 1; i <= 4; i++) assert.equal((await submitFactor(browser, page, 'enter-code-form', { code: bad })).status, 400, `failure ${i}`);
      const fifth = await submitFactor(browser, page, 'enter-code-form', { code: bad });
      assert.equal(fifth.status, 429);
      assert.equal(fifth.headers.get('retry-after'), '2');
      assert.match(fifth.html, /data-testid="retry-after"/);

      const right = await codeFor(secret, step + 1);
      const locked = await submitFactor(browser, page, 'enter-code-form', { code: right });
      assert.equal(locked.status, 429, 'the right code is refused while locked');
      assert.ok(Number(locked.headers.get('retry-after')) >= 1);
      assert.ok(hasForm(locked, 'enter-code-form'));
      assert.equal((await loginOf(login))!.factors.totp!.step, step, 'a refused code is not used up');
      assert.ok((await auditOf(server, login, 'factor.totp.locked')).length >= 2);

      clock.advance(Number(locked.headers.get('retry-after')) * 1000);
      const unlocked = await submitFactor(browser, page, 'enter-code-form', { code: right });
      assert.ok(callbackReached(unlocked), `expected the RP callback after the lock, got ${unlocked.status} ${errorOf(unlocked)}`);
      assert.equal(await server.latchkey.stores.counters.peek(`totp:${login}`, Date.now()), null, 'a success resets the count');
    });

    it("keeps each login's app apart, with different labels for two logins of one person of the same type name", async () => {
      const person = await addPerson(server, 'manager', 'manager');
      const [a, b] = person.logins as [string, string];
      const first = await reachFactor(server, rp, person, a);
      const labelA = otpauthOf(first.page);
      assert.ok(labelA.includes(encodeURIComponent(`(Manager, ${a})`)), labelA);
      await savedCodes(
        first.browser,
        await submitFactor(first.browser, first.page, 'link-authenticator-form', { code: await codeFor(secretOf(first.page), Math.floor(Date.now() / 30_000)) }),
      );
      assert.ok((await loginOf(a))!.factors.totp);

      const second = await reachFactor(server, rp, person, b);
      assert.ok(hasForm(second.page, 'link-authenticator-form'), 'the sibling login links its own app');
      const labelB = otpauthOf(second.page);
      assert.ok(labelB.includes(encodeURIComponent(`(Manager, ${b})`)), labelB);
      assert.notEqual(new URL(labelA).pathname, new URL(labelB).pathname);
      assert.notEqual(secretOf(second.page), secretOf(first.page));
      assert.equal((await loginOf(b))!.factors.totp, undefined);
    });

    it('counts code guesses across all the app logins of one identity: two logins do not give 5 tries each', async () => {
      const person = await addPerson(server, 'manager', 'manager');
      const [first, second] = person.logins as [string, string];
      const { secret } = await linkApp(server, rp, person, first);
      await linkApp(server, rp, person, second);
      const bad = await wrongCode(secret);
      const atFirst = await reachFactor(server, rp, person, first);
      let one = atFirst.page;
      for (let i = 0; i < 3; i++) {
        one = await submitFactor(atFirst.browser, one, 'enter-code-form', { code: bad });
        assert.equal(one.status, 400);
      }
      const atSecond = await reachFactor(server, rp, person, second);
      let two = await submitFactor(atSecond.browser, atSecond.page, 'enter-code-form', { code: bad });
      assert.equal(two.status, 400);
      two = await submitFactor(atSecond.browser, two, 'enter-code-form', { code: bad });
      assert.equal(two.status, 429, "the identity's 5th failure, the second login's 2nd, starts the lock");
      one = await submitFactor(atFirst.browser, one, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
      assert.equal(one.status, 429, "the first login's right code waits for the lock too");
    });

    it("forgets a login's app on reset, so it links again at the next sign-in", async () => {
      const person = await addPerson(server, 'manager');
      const [login] = person.logins as [string];
      const { browser } = await linkApp(server, rp, person);
      await server.latchkey.factors.get('totp').reset(login);
      assert.equal((await loginOf(login))!.factors.totp, undefined);
      const page = await browser.get((await rp.authorize()).url);
      assert.ok(!callbackReached(page), 'the session no longer satisfies the policy');
      const again = await reachFactor(server, rp, person, login, new Browser(server.issuer));
      assert.ok(hasForm(again.page, 'link-authenticator-form'));
    });
  });

  describe(`the authenticator app's time step follows the app's clock (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it("three steps on, the code of the system clock's step is refused and the code of the app clock's step passes", async () => {
      const person = await addPerson(server, 'manager');
      const { secret } = await linkApp(server, rp, person);
      const { browser, page, pending } = await reachFactor(server, rp, person);
      clock.advance(3 * TOTP.periodSeconds * 1000);
      const systemStep = currentStep();
      const appStep = stepAt(clock.now());
      assert.ok(appStep - systemStep >= 3, 'beyond the tolerance of one step');
      const stale = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, systemStep) });
      assert.equal(stale.status, 400, "the system clock's code is too old for the app");
      const right = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, appStep) });
      assert.ok(callbackReached(right), `${right.status} ${errorOf(right)}`);
      assert.equal((await rp.callback(right.url, pending)).claims()!.acr, 'urn:latchkey:acr:totp');
    });
  });
}
