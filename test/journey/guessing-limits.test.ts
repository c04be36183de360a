// Guessing limits that hold and cannot be turned against people: behind one
// trusted proxy hop the client's address is the rightmost X-Forwarded-For
// entry, whatever the client writes to its left; each address gets a loose
// sliding window of failures that parallel guesses cannot overrun and a
// success does not clear; one person's typos do not lock out the colleagues
// behind the same router; parallel correct sign-ins all pass; and a browser
// that signed in as the person before keeps signing in after a stranger froze
// the account for every other browser. On the embedded store and on MongoDB +
// Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Browser, actionOf, csrfOf, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, errorOf, factorFixture } from '../support/factors.ts';
import { signedIn } from '../account/support.ts';

/** A small window, so a test fills it with a handful of requests. */
const WINDOW = 8;
const FROZEN = /too many failed attempts, so this is blocked until it is unlocked/;

let addresses = 0;
const freshAddress = () => `203.0.${113 + Math.floor(addresses / 250)}.${(addresses++ % 250) + 1}`;
const forged = () => `${10 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.1`;
const nobody = () => `nobody-${randomBytes(4).toString('hex')}@acme.test`;

for (const setup of SETUPS) {
  describe(`guessing limits per address (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), env: { TRUST_PROXY: '1', ADDRESS_MAX_FAILURES: String(WINDOW) } });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    /** One password attempt from a new browser, with the X-Forwarded-For the proxy passes on. */
    async function attempt(email: string, password: string, forwardedFor: string, browser = new Browser(server.issuer)): Promise<Page> {
      const login = await browser.get((await rp.authorize()).url);
      return browser.post(actionOf(login, 'login-form'), { email, password, csrf: csrfOf(login) }, { 'x-forwarded-for': forwardedFor });
    }

    const failures = async () => server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'signin.password', limit: 500 });

    it('takes the rightmost X-Forwarded-For entry (one trusted hop): a forged one to its left changes neither the audit nor the limit', async () => {
      const client = freshAddress();
      const first = await attempt(nobody(), 'not the password', `${forged()}, ${client}`);
      assert.equal(first.status, 400);
      assert.equal((await failures())[0]?.ip, client, 'the audit shows the address the proxy saw');
      for (let i = 1; i < WINDOW; i++) assert.equal((await attempt(nobody(), 'not the password', `${forged()},${forged()}, ${client}`)).status, 400);
      const refused = await attempt(nobody(), 'not the password', `${forged()}, ${client}`);
      assert.equal(refused.status, 429, 'a new forged address each time did not reset the window');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      const person = await addPerson(server, 'employee');
      assert.equal(
        (await attempt(person.email, PASSWORD, `${client}, ${freshAddress()}`)).status,
        303,
        'a forged entry naming the throttled address does not count against the sender either',
      );
    });

    it("a success from the address (the guesser's own account) does not reset its window", async () => {
      const client = freshAddress();
      const own = await addPerson(server, 'employee');
      for (let i = 0; i < WINDOW - 1; i++) assert.equal((await attempt(nobody(), 'not the password', client)).status, 400);
      for (let i = 0; i < 2; i++) assert.ok(callbackReached(await attempt(own.email, PASSWORD, client)), 'the own account signs in');
      assert.equal((await attempt(nobody(), 'not the password', client)).status, 400, 'the last failure the window holds');
      const refused = await attempt(nobody(), 'not the password', client);
      assert.equal(refused.status, 429);
      assert.match(errorOf(refused), /Too many failed attempts. Please wait/);
    });

    it("of parallel wrong passwords from one address, only the window's worth are evaluated; the rest get 429", async () => {
      const client = freshAddress();
      const pages = await Promise.all(Array.from({ length: WINDOW + 12 }, () => attempt(nobody(), 'not the password', client)));
      assert.deepEqual(pages.map((p) => p.status).sort(), [...Array(WINDOW).fill(400), ...Array(12).fill(429)]);
    });

    it("one person's five typos do not stop a colleague behind the same address from signing in", async () => {
      const office = freshAddress();
      const [typist, colleague] = [await addPerson(server, 'employee'), await addPerson(server, 'employee')];
      for (let i = 0; i < 5; i++) assert.equal((await attempt(typist.email, 'not the password', office)).status, 400);
      assert.equal((await attempt(typist.email, PASSWORD, office)).status, 429, "the typist's own account is locked for a while");
      const page = await attempt(colleague.email, PASSWORD, office);
      assert.ok(callbackReached(page), `the colleague signs in: ${page.status} ${errorOf(page)}`);
    });

    it('12 parallel correct sign-ins of one identity all succeed', async () => {
      const person = await addPerson(server, 'employee');
      const client = freshAddress();
      const pages = await Promise.all(Array.from({ length: 12 }, () => attempt(person.email, PASSWORD, client)));
      assert.deepEqual(
        pages.map((p) => (callbackReached(p) ? 'signed in' : `${p.status} ${errorOf(p)}`)),
        Array(12).fill('signed in'),
      );
    });
  });

  describe(`known browsers (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    const MAX = 100;

    before(async () => {
      // The lock starts at the freeze, so 100 failures need no waiting between them.
      server = await startServer(setup, { doc: factorFixture(), env: { TRUST_PROXY: '1', LOCK_THRESHOLD: String(MAX), LOCK_MAX_FAILURES: String(MAX) } });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    /** A password attempt in `browser` (a new one by default) from an address of its own, asking for the password even when signed in. */
    async function attempt(email: string, password: string, browser = new Browser(server.issuer)): Promise<Page> {
      const login = await browser.get((await rp.authorize({ prompt: 'login' })).url);
      return browser.post(actionOf(login, 'login-form'), { email, password, csrf: csrfOf(login) }, { 'x-forwarded-for': freshAddress() });
    }

    it("a stranger's 100 failures freeze the account for unknown browsers, but the person's own browser still signs in; the owner is told", async () => {
      const person = await addPerson(server, 'employee');
      const [login] = person.logins as [string];
      const own = new Browser(server.issuer);
      assert.ok(callbackReached(await attempt(person.email, PASSWORD, own)), 'an earlier sign-in makes the browser known');
      assert.ok(own.cookieNames().includes('lk_browser'));

      for (let batch = 0; batch < MAX / 10; batch++) {
        const pages = await Promise.all(Array.from({ length: 10 }, () => attempt(person.email, 'not the password')));
        for (const p of pages) assert.ok(p.status === 400 || (p.status === 429 && FROZEN.test(errorOf(p))), `${p.status} ${errorOf(p)}`);
      }
      const stranger = await attempt(person.email, PASSWORD);
      assert.equal(stranger.status, 429, 'the right password from an unknown browser is refused: the account is frozen for them');
      assert.match(errorOf(stranger), FROZEN);

      const madeUp = new Browser(server.issuer);
      madeUp.setCookie('lk_browser', randomBytes(32).toString('base64url'));
      const withMadeUpCookie = await attempt(person.email, PASSWORD, madeUp);
      assert.equal(withMadeUpCookie.status, 429, 'a made-up cookie is an unknown browser');

      const colleague = await addPerson(server, 'employee');
      const theirs = new Browser(server.issuer);
      assert.ok(callbackReached(await attempt(colleague.email, PASSWORD, theirs)), "a colleague's browser is known for the colleague");
      assert.equal((await attempt(person.email, PASSWORD, theirs)).status, 429, 'a browser known for another identity is an unknown browser for this one');

      assert.equal((await attempt(person.email, 'not the password', own)).status, 400, "the own browser's typo counts on its own key");
      const mine = await attempt(person.email, PASSWORD, own);
      assert.ok(callbackReached(mine), `the person's own browser signs in: ${mine.status} ${errorOf(mine)}`);

      const told = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login, type: 'password.locked', limit: 10 });
      assert.deepEqual(
        told.map((e) => e.detail),
        [{ frozen: true }],
        "the freeze is in the audit log of the person's login",
      );
      const users = await signedIn(server, { email: 'owner@acme.test' }, '/account/users');
      assert.equal(textOf(users.page, `lock-${login}`), 'Blocked after failed attempts', "and on the owner's Users page");
    });
  });
}
