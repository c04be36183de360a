// A sign-in whose first step passed before the login's sessions were ended
// (the password reset by its mailed link, or changed, or "sign out
// everywhere") cannot go on: someone who knew the old password and waits at
// the login choice or at a factor's set-up page must not finish it afterwards,
// nor set up a factor of their own. Such a sign-in starts again at the login
// page, which says why, in English and Dutch; the person's own sign-in with
// the new password goes through. Both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, signIn, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, factorFixture, hasForm, reachFactor, submitFactor } from '../support/factors.ts';
import { issueLink } from '../../src/recovery/routes.ts';

const NEW_PASSWORD = 'a brand new passphrase 42';
const ENDED = /password was changed or your sessions were signed out/;

for (const setup of SETUPS) {
  describe(`a sign-in begun before the login's sessions were ended (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: factorFixture() });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    /** The person resets the password with the link the forgot-password page mails. */
    async function resetByLink(email: string) {
      const identity = (await server.latchkey.stores.accounts.findIdentityByEmail(email))!;
      const link = await issueLink({ config: server.latchkey.config, links: server.latchkey.stores.links }, identity, 'reset', new Date());
      const own = new Browser(server.issuer);
      const form = await own.get(link);
      const reset = await own.post(actionOf(form, 'reset-form'), { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD, csrf: csrfOf(form) });
      assert.equal(reset.status, 200, 'the password was reset');
    }

    const tokensOf = async (page: { url: string }, pending: Parameters<RelyingParty['callback']>[1]) => (await rp.callback(page.url, pending)).claims()?.sub;

    it('waiting at the login choice with the old password: the choice after the reset starts the sign-in again', async () => {
      const person = await addPerson(server, 'employee', 'staff');
      const attacker = new Browser(server.issuer);
      const pending = await rp.authorize();
      let page = await attacker.get(pending.url);
      page = await submitLogin(attacker, page, person.email, PASSWORD);
      assert.ok(hasForm(page, 'select-form'), 'at the login choice');

      await resetByLink(person.email);
      const done = await attacker.post(actionOf(page, 'select-form'), { login: person.logins[0]!, csrf: csrfOf(page) });
      assert.ok(!callbackReached(done), `finished after the reset: tokens for ${callbackReached(done) ? await tokensOf(done, pending) : ''}`);
      assert.equal(done.status, 409);
      assert.ok(testIds(done).includes('login-form'), 'back at the login page');
      assert.match(done.html, ENDED);
      // And the sign-in's page is the login page from now on, not the choice.
      const shown = await attacker.get(actionOf(done, 'login-form').replace(/\/login$/, ''));
      assert.ok(hasForm(shown, 'login-form') && !hasForm(shown, 'select-form'));

      // The old password is no way back in; the new one is.
      const again = await submitLogin(attacker, shown, person.email, PASSWORD);
      assert.ok(!callbackReached(again) && !hasForm(again, 'select-form'), 'the old password is refused');
      const own = await signIn(new Browser(server.issuer), rp, { email: person.email, password: NEW_PASSWORD, login: person.logins[0]! });
      assert.ok(callbackReached(own.page), 'the person signs in with the new password');
    });

    it("waiting at a factor's set-up page: after the reset, neither the sign-in nor the factor it would set up goes through", async () => {
      const person = await addPerson(server, 'nurse');
      const { browser: attacker, page, pending } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'choose-pin-form'), 'at the choose-PIN page');

      await resetByLink(person.email);
      const PIN = '480913';
      const done = await submitFactor(attacker, page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
      assert.ok(!callbackReached(done), `finished after the reset: tokens for ${callbackReached(done) ? await tokensOf(done, pending) : ''}`);
      assert.ok(testIds(done).includes('login-form'), 'back at the login page');
      assert.match(done.html, ENDED);
      const login = await server.latchkey.stores.accounts.getLogin(person.logins[0]!);
      assert.equal(login?.factors.pin, undefined, 'no PIN was set up');
    });

    it('"sign out everywhere" stops a sign-in waiting at the factor, and says so in Dutch too', async () => {
      const person = await addPerson(server, 'nurse');
      const browser = new Browser(server.issuer, { 'accept-language': 'nl' });
      const { page } = await reachFactor(server, rp, person, person.logins[0]!, browser);
      assert.ok(hasForm(page, 'choose-pin-form'));

      await server.latchkey.sessions.endLoginSessions([person.logins[0]!]);
      const done = await submitFactor(browser, page, 'choose-pin-form', { pin: '480913', pin_confirm: '480913' });
      assert.ok(!callbackReached(done));
      assert.ok(testIds(done).includes('login-form'));
      assert.match(done.html, /zijn je sessies afgemeld/);
    });

    it('a sign-in whose first step passed after the sessions were ended goes through', async () => {
      const person = await addPerson(server, 'employee', 'staff');
      await server.latchkey.sessions.endLoginSessions([person.logins[0]!]);
      const { page } = await signIn(new Browser(server.issuer), rp, { email: person.email, login: person.logins[0]! });
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
    });
  });
}
