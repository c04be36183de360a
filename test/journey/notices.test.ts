// Security notices by mail, through a real SMTP server, on both store set-ups:
// a factor set up, failed attempts that lock a login (one mail an hour, however
// many attempts), an owner's reset — each tells the person, and none delays
// or fails the action it reports.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, csrfOf } from '../support/browser.ts';
import { SETUPS, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, addPerson, choosePin, hasForm, reachFactor, submitFactor } from '../support/factors.ts';
import { accountFixture, signedIn, submit } from '../account/support.ts';
import { startSmtp, type TestSmtp } from '../support/smtp.ts';

const PIN = '480913';

for (const setup of SETUPS) {
  describe(`security notices (${setup})`, () => {
    let server: TestServer;
    let smtp: TestSmtp;
    let rp: RelyingParty;

    before(async () => {
      smtp = await startSmtp();
      server = await startServer(setup, { doc: accountFixture(), env: { SMTP_URL: smtp.url, ...SHORT_LOCKS } });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await smtp.stop();
    });

    it('tells the person when their PIN is set up', async () => {
      const person = await addPerson(server, 'nurse');
      await choosePin(server, rp, person, PIN);
      const mail = await smtp.next(person.email);
      assert.match(mail.subject ?? '', /PIN code was set up/);
      assert.match(mail.text ?? '', /Acme Care/);
    });

    it('tells the person once an hour that failed attempts locked their login', async () => {
      const person = await addPerson(server, 'nurse');
      await choosePin(server, rp, person, PIN);
      await smtp.next(person.email);
      const { browser, page } = await reachFactor(server, rp, person);
      let current = page;
      for (let i = 0; i < 7; i++) {
        assert.ok(hasForm(current, 'enter-pin-form'), `attempt ${i + 1}: the PIN page`);
        current = await submitFactor(browser, current, 'enter-pin-form', { pin: '111111' });
      }
      assert.equal(current.status, 429, 'locked');
      const mail = await smtp.next(person.email);
      assert.match(mail.subject ?? '', /locked your login/);
      await server.latchkey.mailer.drain();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(smtp.to(person.email).filter((m) => /locked/.test(m.subject ?? '')).length, 1, 'one lock notice, however many refused attempts');
    });

    it("speaks the language of the person's last sign-in", async () => {
      const person = await addPerson(server, 'nurse');
      const [nurse] = person.logins as [string];
      const browser = new Browser(server.issuer);
      const { page } = await signIn(browser, rp, { email: person.email, login: nurse }, { ui_locales: 'nl' });
      assert.ok(hasForm(page, 'choose-pin-form'));
      await submitFactor(browser, page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
      await smtp.next(person.email);
      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/users');
      const confirm = await owner.browser.post(`/account/users/${nurse}/reset-pin`, { csrf: csrfOf(owner.page) });
      await submit(owner.browser, confirm, 'confirm-reset-form');
      const mail = await smtp.next(person.email);
      assert.match(mail.subject ?? '', /^Je organisatie heeft je /);
      assert.match(mail.text ?? '', /Acme Care/);
    });

    it('tells the person when the owner reset their PIN, and the reset is not held up by it', async () => {
      const person = await addPerson(server, 'nurse');
      const [nurse] = person.logins as [string];
      await choosePin(server, rp, person, PIN);
      await smtp.next(person.email);
      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/users');
      const confirm = await owner.browser.post(`/account/users/${nurse}/reset-pin`, { csrf: csrfOf(owner.page) });
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.equal(done.status, 200);
      const mail = await smtp.next(person.email);
      assert.match(mail.subject ?? '', /reset your PIN code/);
      assert.match(mail.text ?? '', /set it up again/);
    });
  });
}
