// A set-up page says why it asks again: after the owner reset the factor, or
// since the user type's policy asks for it — with the date, in the page's
// language; a first set-up says nothing more. On both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, csrfOf, textOf } from '../support/browser.ts';
import { SETUPS, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, choosePin, hasForm, reachFactor } from '../support/factors.ts';
import { accountFixture, savePolicy, signedIn, submit } from '../account/support.ts';

const today = (lang: 'en-GB' | 'nl-NL') => new Date().toLocaleDateString(lang, { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });

for (const setup of SETUPS) {
  describe(`why a set-up page asks (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: accountFixture() });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it('a first set-up says nothing more', async () => {
      const person = await addPerson(server, 'nurse');
      const { page } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'choose-pin-form'));
      assert.equal(textOf(page, 'setup-reason'), undefined);
    });

    it("after the owner's reset: the date of the reset, in English and Dutch", async () => {
      const person = await addPerson(server, 'nurse');
      const [nurse] = person.logins as [string];
      await choosePin(server, rp, person, '480913');
      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/users');
      const confirm = await owner.browser.post(`/account/users/${nurse}/reset-pin`, { csrf: csrfOf(owner.page) });
      assert.equal((await submit(owner.browser, confirm, 'confirm-reset-form')).status, 200);
      const { page } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'choose-pin-form'));
      assert.equal(textOf(page, 'setup-reason'), `Your organisation reset your PIN on ${today('en-GB')}: choose a new one to sign in.`);
      const dutch = await signIn(new Browser(server.issuer), rp, { email: person.email, login: nurse }, { ui_locales: 'nl' });
      assert.equal(textOf(dutch.page, 'setup-reason'), `Je organisatie heeft je pincode op ${today('nl-NL')} gereset: kies een nieuwe om in te loggen.`);
    });

    it("since the user type's policy asks for it", async () => {
      const person = await addPerson(server, 'staff');
      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/security');
      const saved = await savePolicy(owner.browser, owner.page, { staff: 'totp' });
      assert.equal(saved.status, 200);
      const { page } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'link-authenticator-form'));
      assert.equal(textOf(page, 'setup-reason'), `Since ${today('en-GB')} your organisation asks Staff logins for a code from an authenticator app: link one to sign in.`);
    });
  });
}
