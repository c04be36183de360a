// The PIN second factor with a real relying party,
// on the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import argon2 from 'argon2';
import { Browser } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, addPerson, auditOf, choosePin, errorOf, factorFixture, hasForm, reachFactor, submitFactor } from '../support/factors.ts';

const PIN = '907146';

for (const setup of SETUPS) {
  describe(`PIN (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), env: SHORT_LOCKS, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const loginOf = (id: string) => server.latchkey.stores.accounts.getLogin(id);

    it('asks for a new PIN twice at the first sign-in and refuses a mismatch or a weak PIN with a clear message', async () => {
      const person = await addPerson(server, 'nurse');
      const [login] = person.logins as [string];
      const { browser, page, pending } = await reachFactor(server, rp, person);
      assert.equal(page.status, 200);
      assert.ok(hasForm(page, 'choose-pin-form'));
      for (const name of ['pin', 'pin_confirm']) {
        assert.match(page.html, new RegExp(`<input[^>]*name="${name}"[^>]*inputmode="numeric"[^>]*autocomplete="new-password"`));
        assert.match(page.html, new RegExp(`<label for="${name}">`));
      }

      const refusals: [string, string, RegExp][] = [
        [PIN, '907147', /not the same/],
        ['12345', '12345', /at least 6 digits/],
        ['90714a', '90714a', /digits only/],
        ['444444', '444444', /one digit repeated/],
        ['234567', '234567', /sequence/],
        ['876543', '876543', /sequence/],
      ];
      for (const [pin, confirm, message] of refusals) {
        const refused = await submitFactor(browser, page, 'choose-pin-form', { pin, pin_confirm: confirm });
        assert.equal(refused.status, 400, pin);
        assert.ok(hasForm(refused, 'choose-pin-form'), 'the same page again');
        assert.match(errorOf(refused), message);
        assert.ok(!refused.html.includes(`value="${pin}"`), 'the PIN is not echoed back');
      }
      assert.equal((await loginOf(login))!.factors.pin, undefined, 'nothing stored');

      const done = await submitFactor(browser, page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
      assert.ok(callbackReached(done), `expected the RP callback, got ${done.status} ${errorOf(done)}`);
      const tokens = await rp.callback(done.url, pending);
      const claims = tokens.claims()!;
      assert.equal(claims.sub, login);
      assert.deepEqual(claims.amr, ['pwd', 'pin']);
      assert.equal(claims.acr, 'urn:latchkey:acr:pin');
      const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, login);
      assert.equal(info.sub, claims.sub);
      assert.equal(info.user_type, 'nurse');
      for (const [claim, value] of Object.entries(info)) if (claim in claims) assert.deepEqual(value, claims[claim], `userinfo ${claim}`);

      const hash = String((await loginOf(login))!.factors.pin!.hash);
      assert.match(hash, /^\$argon2id\$v=19\$[mtp=\d,]+\$/);
      const param = (name: string) => Number(new RegExp(`[$,]${name}=(\\d+)`).exec(hash)?.[1]);
      assert.ok(param('m') >= 19456 && param('t') >= 2 && param('p') >= 1, "at least OWASP's argon2id parameters");
      const { hasher } = server.latchkey;
      assert.equal(await hasher.verify(hash, PIN, { pepper: true }), true);
      assert.equal(await hasher.verify(hash, PIN), false, 'the hash is peppered: useless without the server-side secret');

      const [set] = await auditOf(server, login, 'factor.pin.set');
      assert.equal(set?.outcome, 'success');
      assert.ok(set?.ip);
      assert.ok(!JSON.stringify(await auditOf(server, login)).includes(PIN), 'no PIN in the audit log');
    });

    it('asks for the PIN at later sign-ins', async () => {
      const person = await addPerson(server, 'nurse');
      await choosePin(server, rp, person, PIN);
      const { page, browser, pending } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'enter-pin-form'), `expected the PIN page, got ${page.status}`);
      assert.match(page.html, /<input[^>]*name="pin"[^>]*inputmode="numeric"/);
      const done = await submitFactor(browser, page, 'enter-pin-form', { pin: PIN });
      assert.ok(callbackReached(done), `expected the RP callback, got ${done.status} ${errorOf(done)}`);
      const claims = (await rp.callback(done.url, pending)).claims()!;
      assert.deepEqual(claims.amr, ['pwd', 'pin']);
      assert.equal(claims.acr, 'urn:latchkey:acr:pin');
      assert.equal((await auditOf(server, person.logins[0]!, 'factor.pin.verified')).length, 1);
    });

    it('rehashes a PIN stored with stronger parameters to the configured ones at the next sign-in', async () => {
      const person = await addPerson(server, 'nurse');
      const [login] = person.logins as [string];
      const { config, hasher } = server.latchkey;
      const stronger = await argon2.hash(PIN, {
        type: argon2.argon2id,
        memoryCost: config.argon2.memoryCost * 2,
        timeCost: config.argon2.timeCost + 1,
        parallelism: 1,
        secret: Buffer.from(config.keys.pepper),
      });
      await server.latchkey.stores.accounts.setFactorState(login, 'pin', { hash: stronger, setAt: '2026-01-01T00:00:00.000Z' });
      const { page, browser } = await reachFactor(server, rp, person);
      const done = await submitFactor(browser, page, 'enter-pin-form', { pin: PIN });
      assert.ok(callbackReached(done), `expected the RP callback, got ${done.status} ${errorOf(done)}`);
      const state = (await loginOf(login))!.factors.pin as { hash: string; setAt: string };
      assert.notEqual(state.hash, stronger);
      assert.equal(hasher.needsRehash(state.hash), false, state.hash);
      assert.equal(state.setAt, '2026-01-01T00:00:00.000Z', 'the rest of the state is kept');
      // The new hash still takes the same PIN.
      const again = await reachFactor(server, rp, person);
      assert.ok(callbackReached(await submitFactor(again.browser, again.page, 'enter-pin-form', { pin: PIN })));
    });

    it('refuses a wrong PIN with 400 and a clear message on the same page', async () => {
      const person = await addPerson(server, 'nurse');
      await choosePin(server, rp, person, PIN);
      const { page, browser } = await reachFactor(server, rp, person);
      const refused = await submitFactor(browser, page, 'enter-pin-form', { pin: '907147' });
      assert.equal(refused.status, 400);
      assert.ok(hasForm(refused, 'enter-pin-form'));
      assert.match(errorOf(refused), /PIN is not correct/);
      const [failed] = await auditOf(server, person.logins[0]!, 'factor.pin.failed');
      assert.equal(failed?.outcome, 'failure');
      assert.equal(failed?.userAgent, 'node');
    });

    it('locks after 5 failures (429 + Retry-After), refuses the right PIN while locked, and unlocks after the wait', async () => {
      const person = await addPerson(server, 'nurse');
      const [login] = person.logins as [string];
      await choosePin(server, rp, person, PIN);
      const { page, browser, pending } = await reachFactor(server, rp, person);
      for (let i = 1; i <= 4; i++) assert.equal((await submitFactor(browser, page, 'enter-pin-form', { pin: '111111' })).status, 400, `failure ${i}`);
      const fifth = await submitFactor(browser, page, 'enter-pin-form', { pin: '111111' });
      assert.equal(fifth.status, 429);
      assert.equal(fifth.headers.get('retry-after'), '2');
      assert.match(fifth.html, /Try again in 2 seconds/);

      const locked = await submitFactor(browser, page, 'enter-pin-form', { pin: PIN });
      assert.equal(locked.status, 429, 'the right PIN is refused while locked');
      assert.ok(hasForm(locked, 'enter-pin-form'));
      assert.equal((await auditOf(server, login, 'factor.pin.failed')).length, 5);
      assert.equal((await auditOf(server, login, 'factor.pin.locked')).length, 2);

      clock.advance(Number(locked.headers.get('retry-after')) * 1000);
      const unlocked = await submitFactor(browser, page, 'enter-pin-form', { pin: PIN });
      assert.ok(callbackReached(unlocked), `expected the RP callback after the lock, got ${unlocked.status} ${errorOf(unlocked)}`);
      assert.equal((await rp.callback(unlocked.url, pending)).claims()!.acr, 'urn:latchkey:acr:pin');
      assert.equal(await server.latchkey.stores.counters.peek(`pin:${login}`, Date.now()), null, 'a success resets the count');
    });

    it('doubles the lock with each further failure', async () => {
      const person = await addPerson(server, 'nurse');
      await choosePin(server, rp, person, PIN);
      const { page, browser } = await reachFactor(server, rp, person);
      let last = page;
      for (let i = 1; i <= 5; i++) last = await submitFactor(browser, page, 'enter-pin-form', { pin: '111111' });
      assert.equal(last.headers.get('retry-after'), '2');
      clock.advance(2000);
      const sixth = await submitFactor(browser, page, 'enter-pin-form', { pin: '111111' });
      assert.equal(sixth.status, 429);
      assert.equal(sixth.headers.get('retry-after'), '4');
    });

    it('30 parallel wrong PINs: at most 5 are evaluated, and the right PIN is then refused while locked', async () => {
      const person = await addPerson(server, 'nurse');
      const [login] = person.logins as [string];
      await choosePin(server, rp, person, PIN);
      const { page, browser } = await reachFactor(server, rp, person);
      const started = clock.now();
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => submitFactor(browser, page, 'enter-pin-form', { pin: String(500000 + i * 1237) })));
      // The 30 take turns on the sign-in's lease, which on a loaded machine takes longer than the 2-second lock:
      // the app's clock goes back to when they were sent, so the lock still has all of its length ahead.
      const took = clock.now() - started;
      clock.advance(-took);
      try {
        // 409 (`signin_busy`): a request that waited its 5 s for the sign-in's lease, as a heavily loaded machine
        // can make one of 30 wait, and was answered without evaluating anything.
        for (const r of results) assert.ok([400, 409, 429].includes(r.status), String(r.status));
        assert.ok(results.filter((r) => r.status !== 409).length >= 5, 'enough were evaluated to reach the lock');
        const counter = await server.latchkey.stores.counters.peek(`pin:${login}`, clock.now());
        assert.ok(counter && counter.failures <= 5, `evaluated ${counter?.failures}`);
        assert.ok(counter.lockedUntil > clock.now());
        const right = await submitFactor(browser, page, 'enter-pin-form', { pin: PIN });
        assert.equal(right.status, 429);
        assert.ok(Number(right.headers.get('retry-after')) >= 1);
        const failed = await auditOf(server, login, 'factor.pin.failed');
        assert.ok(failed.length <= 5, `${failed.length} factor.pin.failed events`);
        assert.equal(failed.length, counter.failures);
      } finally {
        clock.advance(took);
      }
    });

    it('counts PIN guesses across all the PIN logins of one identity: two logins do not give 5 tries each', async () => {
      const person = await addPerson(server, 'nurse', 'nurse');
      const [first, second] = person.logins as [string, string];
      await choosePin(server, rp, person, PIN, first);
      await choosePin(server, rp, person, PIN, second);
      const atFirst = await reachFactor(server, rp, person, first);
      let one = atFirst.page;
      for (let i = 0; i < 3; i++) {
        one = await submitFactor(atFirst.browser, one, 'enter-pin-form', { pin: '111111' });
        assert.equal(one.status, 400);
      }
      const atSecond = await reachFactor(server, rp, person, second);
      let two = await submitFactor(atSecond.browser, atSecond.page, 'enter-pin-form', { pin: '111111' });
      assert.equal(two.status, 400);
      two = await submitFactor(atSecond.browser, two, 'enter-pin-form', { pin: '111111' });
      assert.equal(two.status, 429, "the identity's 5th failure, the second login's 2nd, starts the lock");
      two = await submitFactor(atSecond.browser, two, 'enter-pin-form', { pin: PIN });
      assert.equal(two.status, 429, 'the right PIN waits for the lock');
      one = await submitFactor(atFirst.browser, one, 'enter-pin-form', { pin: PIN });
      assert.equal(one.status, 429, 'on the first login too');
      assert.equal((await auditOf(server, second, 'factor.pin.locked')).length, 2);
    });

    it("forgets a login's PIN on reset, so it chooses one again at the next sign-in", async () => {
      const person = await addPerson(server, 'nurse');
      const [login] = person.logins as [string];
      await choosePin(server, rp, person, PIN);
      await server.latchkey.factors.get('pin').reset(login);
      assert.equal((await loginOf(login))!.factors.pin, undefined);
      const { page } = await reachFactor(server, rp, person, login, new Browser(server.issuer));
      assert.ok(hasForm(page, 'choose-pin-form'));
    });
  });
}
