// A finished sign-in whose redirect back to the provider (`/auth/:uid`) is
// held: it counts from the moment its last step passed, so whatever ends the
// login's sessions meanwhile ends it too, and one held too long signs in again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, factorFixture, TENANT, type Person } from '../support/factors.ts';
import { signedIn, submit, onAccountPage } from '../account/support.ts';
import { defaults } from '../../config/index.ts';

const HELD_LIMIT_SECONDS = defaults.ttl.signInResult;

function fixture() {
  const doc = factorFixture();
  doc.tenants![0]!.clients!.push({
    client_id: 'partner',
    client_secret: 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d',
    client_name: 'Partner App',
    redirect_uris: ['http://127.0.0.1:8080/cb'],
  });
  return doc;
}

/** Signs in with the password and stops at the provider's 303 back to `/auth/:uid`, not following it. */
async function holdSignIn(browser: Browser, rp: RelyingParty, person: Person, params?: Record<string, string>) {
  const pending = await rp.authorize(params);
  const login = await browser.get(pending.url);
  const held = await browser.request(actionOf(login, 'login-form'), {
    method: 'POST',
    body: new URLSearchParams({ email: person.email, password: 'correct horse battery staple', csrf: csrfOf(login) }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(held.status, 303, `the sign-in finished: ${held.status} ${held.html.slice(0, 300)}`);
  assert.match(new URL(held.headers.get('location')!, held.url).pathname, /^\/auth\/[^/]+$/);
  return { held, pending };
}

const asksToSignIn = (page: Page) => testIds(page).includes('login-form') && !callbackReached(page);

for (const setup of SETUPS) {
  describe(`a held sign-in (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let partner: RelyingParty;
    let clockOffsetMs = 0;

    before(async () => {
      server = await startServer(setup, { doc: fixture(), now: () => Date.now() + clockOffsetMs });
      rp = await relyingParty(server.issuer);
      partner = await relyingParty(server.issuer, 'partner', 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d');
    });
    after(() => server.stop());

    /** After a refused resume the browser has no single sign-on session either. */
    async function assertSignedOut(browser: Browser) {
      assert.ok(asksToSignIn(await browser.get((await rp.authorize()).url)), 'the next authorization asks for a sign-in');
    }

    it('resumed unchanged, it gives tokens dated when the password passed', async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const passedBy = Math.ceil(Date.now() / 1000);
      const { held, pending } = await holdSignIn(browser, rp, person);
      const page = await browser.follow(held);
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      const claims = (await rp.callback(page.url, pending)).claims()!;
      assert.equal(claims.sub, person.logins[0]);
      assert.ok(claims.auth_time! <= passedBy, `auth_time ${claims.auth_time} is the finish, not later`);
    });

    it('ends when the password is changed before it is resumed', async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const { held } = await holdSignIn(browser, rp, person);

      const other = await signedIn(server, { email: person.email });
      const form = await other.browser.get('/account/profile/password');
      const NEW = 'violet kettle marathon';
      const changed = await submit(other.browser, form, 'change-password-form', { current_password: 'correct horse battery staple', password: NEW, password_confirm: NEW });
      assert.ok(onAccountPage(changed), `${changed.status}`);

      const page = await browser.follow(held);
      assert.ok(
        asksToSignIn(page),
        `expected a fresh sign-in, got ${page.status} ${page.url} ${page.html
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 600)}`,
      );
      await assertSignedOut(browser);
    });

    it("ends when an owner resets the login's factor before it is resumed", async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const { held } = await holdSignIn(browser, rp, person);

      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/users');
      const confirm = await owner.browser.post(`/account/users/${person.logins[0]}/reset-pin`, { csrf: csrfOf(owner.page) });
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.ok(onAccountPage(done, '/account/users'), `${done.status}`);

      const page = await browser.follow(held);
      assert.ok(
        asksToSignIn(page),
        `expected a fresh sign-in, got ${page.status} ${page.url} ${page.html
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 600)}`,
      );
      await assertSignedOut(browser);
    });

    it('ends when the login is disabled before it is resumed', async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const { held } = await holdSignIn(browser, rp, person);
      const { accounts } = server.latchkey.stores;
      const login = (await accounts.getLogin(person.logins[0]!))!;
      await accounts.upsertLogin({ ...login, disabled: true });

      const page = await browser.follow(held);
      assert.ok(
        asksToSignIn(page),
        `expected a fresh sign-in, got ${page.status} ${page.url} ${page.html
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 600)}`,
      );
      await assertSignedOut(browser);
    });

    it("goes through the factor when the login's type asks for one before it is resumed", async () => {
      const person = await addPerson(server, 'staff');
      const browser = new Browser(server.issuer);
      const { held } = await holdSignIn(browser, rp, person);
      await server.latchkey.stores.accounts.setUserTypeFactor(TENANT, 'staff', 'pin');
      try {
        const page = await browser.follow(held);
        assert.ok(
          asksToSignIn(page),
          `expected a fresh sign-in, got ${page.status} ${page.url} ${page.html
            .replace(/<[^>]+>/g, ' ')
            .replace(/\s+/g, ' ')
            .slice(0, 600)}`,
        );
        const next = await submitLogin(browser, page, person.email, 'correct horse battery staple');
        assert.ok(testIds(next).includes('choose-pin-form'), `the PIN the type now asks for: ${next.status} ${next.url}`);
      } finally {
        await server.latchkey.stores.accounts.setUserTypeFactor(TENANT, 'staff', 'none');
      }
    });

    it(`signs in again when it is resumed more than ${HELD_LIMIT_SECONDS} s after it finished`, async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const { held } = await holdSignIn(browser, rp, person);
      clockOffsetMs = (HELD_LIMIT_SECONDS + 1) * 1000;
      let page: Page;
      try {
        page = await browser.follow(held);
      } finally {
        clockOffsetMs = 0;
      }
      assert.ok(
        asksToSignIn(page),
        `expected a fresh sign-in, got ${page.status} ${page.url} ${page.html
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 600)}`,
      );
      await assertSignedOut(browser);

      const again = await holdSignIn(browser, rp, person);
      const done = await browser.follow(again.held);
      assert.ok(callbackReached(done), 'a fresh sign-in works');
      assert.equal((await rp.callback(done.url, again.pending)).claims()!.sub, person.logins[0]);
    });

    it('keeps the time through consent: a reset while the consent page is open ends it', async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const { held } = await holdSignIn(browser, partner, person);
      const consent = await browser.follow(held);
      assert.ok(testIds(consent).includes('consent-form'), `${consent.status} ${consent.url}`);

      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/users');
      const confirm = await owner.browser.post(`/account/users/${person.logins[0]}/reset-pin`, { csrf: csrfOf(owner.page) });
      assert.ok(onAccountPage(await submit(owner.browser, confirm, 'confirm-reset-form'), '/account/users'));

      const page = await browser.post(actionOf(consent, 'consent-form'), { csrf: csrfOf(consent) });
      // The reset ended the session itself, and the interaction with it: the page says so and points back
      // (a store without the sessions' index would ask for a sign-in instead). Either way no code is issued.
      const ended = page.status === 400 && page.html.includes('interaction_expired');
      assert.ok(asksToSignIn(page) || ended, `expected a fresh sign-in or the ended sign-in's page, got ${page.status} ${page.url}`);
      assert.ok(!callbackReached(page));
    });

    it('keeps the time through consent: unchanged, the consent gives tokens dated when the password passed, even after the limit', async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const passedBy = Math.ceil(Date.now() / 1000);
      const { held, pending } = await holdSignIn(browser, partner, person);
      const consent = await browser.follow(held);
      assert.ok(testIds(consent).includes('consent-form'), `${consent.status} ${consent.url}`);
      // Reading the consent page slowly is not holding a sign-in: its login was resumed in time.
      clockOffsetMs = (HELD_LIMIT_SECONDS + 1) * 1000;
      let page: Page;
      try {
        page = await browser.post(actionOf(consent, 'consent-form'), { csrf: csrfOf(consent) });
      } finally {
        clockOffsetMs = 0;
      }
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      const claims = (await partner.callback(page.url, pending)).claims()!;
      assert.equal(claims.sub, person.logins[0]);
      assert.ok(claims.auth_time! <= passedBy, `auth_time ${claims.auth_time} is the finish, not the consent`);
    });
  });
}
