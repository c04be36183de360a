// A mailed link that sets a password (a reset link, an invitation) works only
// while the password it was sent for is still the person's password. Once the
// password changed — on the account page, with another link, or any other
// way — every such link sent before is refused like a used one, so a link
// that leaked (a forwarded mail, a shared mailbox) cannot take the account
// over after the person changed their password. On both store set-ups, with
// a real SMTP server and a real relying party.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, signIn, startServer, seedPasswordHash, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, hasForm, TENANT } from '../support/factors.ts';
import { accountFixture, accountSignIn, errorOf, onAccountPage, submit } from '../account/support.ts';
import { linkOf, startSmtp, type TestSmtp } from '../support/smtp.ts';
import { sendInvitation } from '../../src/recovery/routes.ts';
import { routeDeps } from '../../src/services.ts';

const CHANGED = 'violet kettle marathon';
const STRANGER = 'a stranger chose this passphrase 9';

const visible = (page: Page) => page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
const hrefOf = (page: Page, testid: string) => {
  const m = new RegExp(`<a[^>]*href="([^"]+)"[^>]*data-testid="${testid}"`).exec(page.html);
  assert.ok(m, `no link ${testid} on ${page.url}`);
  return m[1]!.replace(/&amp;/g, '&');
};

for (const setup of SETUPS) {
  describe(`a password link after the password changed (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let smtp: TestSmtp;

    before(async () => {
      smtp = await startSmtp();
      server = await startServer(setup, { doc: accountFixture(), env: { SMTP_URL: smtp.url } });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await smtp.stop();
    });

    /** The login page's "Forgot your password?" for `email`; the link mailed. */
    async function resetLink(email: string) {
      const browser = new Browser(server.issuer);
      const login = await browser.get((await rp.authorize()).url);
      const form = await browser.get(hrefOf(login, 'forgot-link'));
      await browser.post(actionOf(form, 'forgot-form'), { email, csrf: csrfOf(form) });
      return linkOf(await smtp.next(email));
    }

    /** An invitation as the owner's pages and the CLI send it; the link mailed. */
    async function invitationLink(email: string) {
      assert.ok(await sendInvitation(routeDeps(server.latchkey), { email, tenantId: TENANT, by: 'cli' }));
      return linkOf(await smtp.next(email));
    }

    /** Opens the link in a fresh browser and, when it shows the form, sets `password`; the last page. */
    async function useLink(link: string, password: string) {
      const browser = new Browser(server.issuer);
      const form = await browser.get(link);
      if (!hasForm(form, 'reset-form')) return { form, answer: form };
      return { form, answer: await browser.post(actionOf(form, 'reset-form'), { password, password_confirm: password, csrf: csrfOf(form) }) };
    }

    const signsIn = async (email: string, password: string) => callbackReached((await signIn(new Browser(server.issuer), rp, { email, password })).page);

    /** The link's page says it was used and shows no form; posting it anyway changes nothing. */
    async function refused(link: string, email: string, why: string) {
      const { form, answer } = await useLink(link, STRANGER);
      assert.equal(form.status, 400, `${why}: the page of the link, ${visible(form).slice(0, 300)}`);
      assert.ok(!testIds(form).includes('reset-form'), `${why}: no form`);
      assert.match(visible(form), /already used/, why);
      const token = new URL(link).pathname;
      const posted = await new Browser(server.issuer).post(token, { password: STRANGER, password_confirm: STRANGER, csrf: 'x' });
      assert.equal(posted.status, 400, `${why}: posting it`);
      assert.equal(answer.status, 400);
      assert.equal(await signsIn(email, STRANGER), false, `${why}: the stranger's password does not sign in`);
    }

    it('a reset link sent before the person changed their password on the account page no longer works', async () => {
      const person = await addPerson(server, 'employee');
      const leaked = await resetLink(person.email);

      const { browser, page } = await accountSignIn(server, { email: person.email });
      assert.ok(onAccountPage(page), `${page.status} ${page.url}`);
      const form = await browser.get('/account/profile/password');
      const done = await submit(browser, form, 'change-password-form', { current_password: PASSWORD, password: CHANGED, password_confirm: CHANGED });
      assert.ok(onAccountPage(done), `password changed: ${done.status} ${errorOf(done)}`);

      await refused(leaked, person.email, 'the reset link from before the change');
      assert.ok(await signsIn(person.email, CHANGED), 'the password the person chose still signs in');
    });

    it('a reset link used while the password is changed elsewhere: the change made meanwhile is not written over', async () => {
      const person = await addPerson(server, 'employee');
      const link = await resetLink(person.email);
      const MINE = 'harbour violet compass';
      const { hasher } = server.latchkey;
      const { hash } = hasher;
      // The person changes the password on the account page while the link's new one is hashed.
      hasher.hash = async (plain, opts) => {
        const made = await hash.call(hasher, plain, opts);
        if (plain === MINE) {
          hasher.hash = hash;
          const identity = (await server.latchkey.stores.accounts.findIdentityByEmail(person.email))!;
          assert.ok(await server.latchkey.stores.accounts.setPasswordHashIf(identity.id, identity.passwordHash, await hash.call(hasher, CHANGED)));
        }
        return made;
      };
      let answer;
      try {
        ({ answer } = await useLink(link, MINE));
      } finally {
        hasher.hash = hash;
      }
      assert.equal(answer.status, 400, visible(answer).slice(0, 300));
      assert.match(visible(answer), /already used/);
      assert.ok(await signsIn(person.email, CHANGED), 'the password changed meanwhile signs in');
      assert.equal(await signsIn(person.email, MINE), false, "the link's does not");
    });

    it('an invitation still open when the password was reset with a newer reset link no longer works; the reset link is used once', async () => {
      const person = await addPerson(server, 'employee');
      const invitation = await invitationLink(person.email);
      const reset = await resetLink(person.email);
      const { answer } = await useLink(reset, CHANGED);
      assert.equal(answer.status, 200, `the person resets the password: ${visible(answer).slice(0, 300)}`);

      await refused(invitation, person.email, 'the invitation from before the reset');
      await refused(reset, person.email, 'the reset link itself, used');
      assert.ok(await signsIn(person.email, CHANGED));
    });

    it('a reset link sent before an invitation was accepted no longer works', async () => {
      const person = await addPerson(server, 'employee');
      const reset = await resetLink(person.email);
      const invitation = await invitationLink(person.email);
      const { answer } = await useLink(invitation, CHANGED);
      assert.equal(answer.status, 200, `the person chooses a password: ${visible(answer).slice(0, 300)}`);

      await refused(reset, person.email, 'the reset link from before the invitation was accepted');
      assert.ok(await signsIn(person.email, CHANGED));
    });

    it('an invitation to a person without a password stops working once they have one by another way (an import, the CLI)', async () => {
      const person = await addPerson(server, 'employee');
      const { accounts } = server.latchkey.stores;
      const identity = (await accounts.findIdentityByEmail(person.email))!;
      await accounts.upsertIdentity({ email: person.email, passwordHash: null });
      const invitation = await invitationLink(person.email);
      await accounts.setPasswordHash(identity.id, await seedPasswordHash(server.latchkey, CHANGED));

      await refused(invitation, person.email, 'the invitation sent while there was no password');
      assert.ok(await signsIn(person.email, CHANGED));
    });

    it('a link keeps working while the password it was sent for is unchanged', async () => {
      const person = await addPerson(server, 'employee');
      const invitation = await invitationLink(person.email);
      assert.equal(await signsIn(person.email, PASSWORD), true, 'a sign-in in between changes nothing');
      const { answer } = await useLink(invitation, CHANGED);
      assert.equal(answer.status, 200, visible(answer).slice(0, 300));
      assert.ok(await signsIn(person.email, CHANGED));
    });
  });
}
