// A forgotten password, end to end with a real SMTP server and a real relying
// party: the login page's link, the same answer for every email, a one-time
// link by mail that sets a new password, ends every other session and token,
// and never skips the second factor; on both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, signIn, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, errorOf, factorFixture, hasForm, reachFactor, submitFactor } from '../support/factors.ts';
import { linkOf, startSmtp, type TestSmtp } from '../support/smtp.ts';
import { createLogger } from '../../src/log.ts';
import { createMailer, createTransport } from '../../src/mail/mailer.ts';

const NEW_PASSWORD = 'a brand new passphrase 42';
const PIN = '480913';

const hrefOf = (page: Page, testid: string) => {
  const m = new RegExp(`<a[^>]*href="([^"]+)"[^>]*data-testid="${testid}"`).exec(page.html);
  assert.ok(m, `no link ${testid} on ${page.url}`);
  return m[1]!.replace(/&amp;/g, '&');
};
const visible = (page: Page) => page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

for (const setup of SETUPS) {
  describe(`forgot password (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let smtp: TestSmtp;

    before(async () => {
      smtp = await startSmtp();
      server = await startServer(setup, { doc: factorFixture(), env: { SMTP_URL: smtp.url, MAIL_FROM: 'Acme sign-in <id@acme.test>' } });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await smtp.stop();
    });

    /** The login page → "Forgot your password?" → the email submitted; the page that answers. */
    async function requestReset(email: string, browser = new Browser(server.issuer)) {
      const login = await browser.get((await rp.authorize()).url);
      const form = await browser.get(hrefOf(login, 'forgot-link'));
      assert.ok(hasForm(form, 'forgot-form'), `no forgot form: ${form.status}`);
      return browser.post(actionOf(form, 'forgot-form'), { email, csrf: csrfOf(form) });
    }

    async function resetWith(link: string, password = NEW_PASSWORD) {
      const browser = new Browser(server.issuer);
      const form = await browser.get(link);
      assert.ok(hasForm(form, 'reset-form'), `no reset form: ${form.status} ${visible(form).slice(0, 300)}`);
      return { browser, done: await browser.post(actionOf(form, 'reset-form'), { password, password_confirm: password, csrf: csrfOf(form) }) };
    }

    it('mails a known person a one-time link that sets a new password; the old one stops working', async () => {
      const person = await addPerson(server, 'employee');
      const answer = await requestReset(person.email.toUpperCase());
      assert.equal(answer.status, 200);
      assert.ok(testIds(answer).includes('forgot-sent'));
      const mail = await smtp.next(person.email);
      assert.match(mail.subject ?? '', /Acme Care/);
      assert.equal(mail.from?.value[0]?.address, 'id@acme.test');
      assert.ok(mail.html && mail.text, 'an HTML and a text part');
      const link = linkOf(mail);
      assert.ok(link.startsWith(`${server.issuer}/reset/`), link);
      assert.ok((mail.html as string).includes(link), 'the same link in the HTML part');

      const { done } = await resetWith(link);
      assert.equal(done.status, 200, visible(done));
      assert.ok(testIds(done).includes('reset-done'));

      const old = await signIn(new Browser(server.issuer), rp, { email: person.email });
      assert.equal(old.page.status, 400, 'the old password is refused');
      const fresh = await signIn(new Browser(server.issuer), rp, { email: person.email, password: NEW_PASSWORD });
      assert.ok(callbackReached(fresh.page), `the new password signs in: ${fresh.page.status} ${errorOf(fresh.page)}`);

      const notice = await smtp.next(person.email);
      assert.match(notice.text ?? '', /reset with a link/, 'the person is told their password was reset');
      const [login] = person.logins;
      const events = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login, limit: 50 });
      assert.ok(events.some((e) => e.type === 'password.reset_requested'));
      assert.ok(events.some((e) => e.type === 'password.reset' && e.detail?.loginsSignedOut === 1));
    });

    it('a link works once; an earlier link is voided by a newer one; an expired link says so', async () => {
      const person = await addPerson(server, 'employee');
      await requestReset(person.email);
      const first = linkOf(await smtp.next(person.email));
      await requestReset(person.email);
      const second = linkOf(await smtp.next(person.email));
      assert.notEqual(first, second);

      const browser = new Browser(server.issuer);
      const voided = await browser.get(first);
      assert.equal(voided.status, 400);
      assert.match(visible(voided), /newer link replaced it/);
      const { done } = await resetWith(second);
      assert.equal(done.status, 200);
      const again = await browser.get(second);
      assert.equal(again.status, 400);
      assert.match(visible(again), /already used/);
      const reposted = await browser.post(second, { password: 'yet another passphrase 7', password_confirm: 'yet another passphrase 7', csrf: 'x' });
      assert.equal(reposted.status, 400, 'posting a used link changes nothing');
      assert.ok(callbackReached((await signIn(new Browser(server.issuer), rp, { email: person.email, password: NEW_PASSWORD })).page));

      const token = randomBytes(32).toString('base64url');
      const identity = (await server.latchkey.stores.accounts.findIdentityByEmail(person.email))!;
      const past = new Date(Date.now() - 3_600_000);
      await server.latchkey.stores.links.create(createHash('sha256').update(token).digest('base64url'), {
        purpose: 'reset',
        identityId: identity.id,
        createdAt: past,
        expiresAt: new Date(past.getTime() + 1_800_000),
      });
      const expired = await browser.get(`/reset/${token}`);
      assert.equal(expired.status, 400);
      assert.match(visible(expired), /expired/);
      for (const bad of ['nope', 'a'.repeat(43), `${token.slice(0, 42)}%00`]) assert.equal((await browser.get(`/reset/${bad}`)).status, 400, bad);
    });

    it('answers a known and an unknown email alike, and mails only the known one', async () => {
      const person = await addPerson(server, 'employee');
      const unknown = `nobody-${randomBytes(4).toString('hex')}@acme.test`;
      const known = await requestReset(person.email);
      const stranger = await requestReset(unknown);
      assert.equal(known.status, stranger.status);
      assert.equal(
        visible(known)
          .replaceAll(person.email, 'EMAIL')
          .replace(/interaction\/[^/"]+/g, ''),
        visible(stranger)
          .replaceAll(unknown, 'EMAIL')
          .replace(/interaction\/[^/"]+/g, ''),
      );
      await smtp.next(person.email);
      await server.latchkey.mailer.drain();
      assert.equal(smtp.to(unknown).length, 0);
      assert.equal(await server.latchkey.stores.outbox.pending(), 0);
    });

    it('refuses a weak or mismatched new password without using the link', async () => {
      const person = await addPerson(server, 'employee');
      await requestReset(person.email);
      const link = linkOf(await smtp.next(person.email));
      const browser = new Browser(server.issuer);
      const form = await browser.get(link);
      for (const [password, confirm] of [
        ['short', 'short'],
        ['password123', 'password123'],
        [NEW_PASSWORD, `${NEW_PASSWORD}!`],
      ]) {
        const refused = await browser.post(actionOf(form, 'reset-form'), { password: password!, password_confirm: confirm!, csrf: csrfOf(form) });
        assert.equal(refused.status, 400, password);
        assert.ok(hasForm(refused, 'reset-form'), 'the form again, with the error');
      }
      const forged = await browser.post(actionOf(form, 'reset-form'), { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD, csrf: 'forged' });
      assert.equal(forged.status, 403);
      const { done } = await resetWith(link);
      assert.equal(done.status, 200, 'the link still works after refused attempts');
    });

    it("ends other browsers' sessions and refresh tokens, and the next sign-in still asks the PIN", async () => {
      const person = await addPerson(server, 'nurse');
      const { browser: other, page, pending } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'choose-pin-form'));
      const back = await submitFactor(other, page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
      const tokens = await rp.callback(back.url, pending);
      assert.ok(tokens.refresh_token);
      assert.match((await smtp.next(person.email)).subject ?? '', /PIN code was set up/, 'the notice of the new PIN');

      await requestReset(person.email);
      await resetWith(linkOf(await smtp.next(person.email)));

      await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'the refresh token from before is refused');
      const sso = await other.get((await rp.authorize()).url);
      assert.ok(testIds(sso).includes('login-form'), 'the other browser signs in again');
      const next = await submitLogin(other, sso, person.email, NEW_PASSWORD);
      assert.ok(hasForm(next, 'enter-pin-form'), 'the PIN is asked after a reset, as always');
      assert.ok(callbackReached(await submitFactor(other, next, 'enter-pin-form', { pin: PIN })));
    });
  });
}

describe('the outbox when the mail server is down', () => {
  for (const setup of SETUPS) {
    it(`keeps the message and delivers it once after the server is back, with two app processes draining (${setup})`, async () => {
      const smtp = await startSmtp();
      const first = await startServer(setup, { doc: factorFixture(), env: { SMTP_URL: smtp.url } });
      const { MONGODB_DB, REDIS_PREFIX, DATA_DIR } = first.env;
      const second = await startServer(setup, {
        doc: null,
        env: { SMTP_URL: smtp.url, DATA_DIR: DATA_DIR!, ...(MONGODB_DB ? { MONGODB_URI: first.env.MONGODB_URI!, MONGODB_DB, REDIS_PREFIX: REDIS_PREFIX! } : {}) },
      });
      try {
        const person = await addPerson(first, 'employee');
        await smtp.down();
        const browser = new Browser(first.issuer);
        const rp = await relyingParty(first.issuer);
        const login = await browser.get((await rp.authorize()).url);
        const form = await browser.get(hrefOf(login, 'forgot-link'));
        const answer = await browser.post(actionOf(form, 'forgot-form'), { email: person.email, csrf: csrfOf(form) });
        assert.equal(answer.status, 200, 'the person is answered while the mail server is down');
        for (let i = 0; i < 50 && (await first.latchkey.stores.outbox.pending()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(await first.latchkey.mailer.drain(), 0, 'not delivered while down');
        assert.equal(await first.latchkey.stores.outbox.pending(), 1, 'kept in the outbox');

        await smtp.up();
        // Past the retry time, both processes drain at once.
        const later = () => new Date(Date.now() + 10 * 60_000);
        const log = createLogger('silent');
        const mailers = [first, second].map((s) => createMailer({ outbox: s.latchkey.stores.outbox, transport: createTransport(s.latchkey.config.mail, log), log, now: later }));
        try {
          await Promise.all(mailers.flatMap((m) => [m.drain(), m.drain()]));
        } finally {
          for (const m of mailers) m.close();
        }
        const mail = await smtp.next(person.email);
        assert.ok(linkOf(mail).includes('/reset/'));
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(smtp.to(person.email).length, 1, 'delivered once');
        assert.equal(await first.latchkey.stores.outbox.pending(), 0);
      } finally {
        await second.stop();
        await first.stop();
        await smtp.stop();
      }
    });
  }
});
