// An invitation: the operator CLI (later the owner's pages) queues a mail with
// a one-time link; the invited person chooses a password and continues into
// the normal sign-in, setting up their login's second factor; on both store
// set-ups, with a real SMTP server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { SETUPS, startServer, submitLogin, type TestServer } from '../support/latchkey.ts';
import { factorFixture, hasForm, submitFactor, TENANT } from '../support/factors.ts';
import { runCli } from '../support/cli.ts';
import { linkOf, startSmtp, type TestSmtp } from '../support/smtp.ts';

const PASSWORD = 'my first passphrase 2026';
const visible = (page: Page) => page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
const hrefOf = (page: Page, testid: string) => new RegExp(`<a[^>]*href="([^"]+)"[^>]*data-testid="${testid}"`).exec(page.html)?.[1]?.replace(/&amp;/g, '&');

for (const setup of SETUPS) {
  describe(`invitation (${setup})`, () => {
    let server: TestServer;
    let smtp: TestSmtp;

    before(async () => {
      smtp = await startSmtp();
      server = await startServer(setup, { doc: factorFixture(), env: { SMTP_URL: smtp.url } });
    });
    after(async () => {
      await server.stop();
      await smtp.stop();
    });

    /** A person the owner added: a login, an identity without a password. */
    async function newPerson(userType = 'nurse') {
      const email = `new-${randomBytes(4).toString('hex')}@acme.test`;
      const { accounts } = server.latchkey.stores;
      await accounts.upsertIdentity({ email, passwordHash: null });
      const id = `${email.split('@')[0]}-${userType}`;
      await accounts.upsertLogin({ id, tenant: TENANT, email, userType, firstName: 'Nia', lastName: 'New' });
      return { email, login: id };
    }

    const invite = (email: string, tenant = TENANT) => runCli(['invite', email, '--tenant', tenant], { ...server.env, LOG_LEVEL: 'warn' });

    it('mails a link to choose a password, then the person signs in and sets up their PIN', async () => {
      const person = await newPerson('nurse');
      const cli = await invite(person.email);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /invitation for .* queued/);
      const mail = await smtp.next(person.email);
      assert.match(mail.subject ?? '', /Acme Care/);
      const link = linkOf(mail);
      assert.ok(link.startsWith(`${server.issuer}/invite/`), link);

      const browser = new Browser(server.issuer);
      const form = await browser.get(link);
      assert.ok(hasForm(form, 'reset-form'), visible(form));
      assert.match(visible(form), /Choose your password/);
      const done = await browser.post(actionOf(form, 'reset-form'), { password: PASSWORD, password_confirm: PASSWORD, csrf: csrfOf(form) });
      assert.equal(done.status, 200, visible(done));
      assert.ok(testIds(done).includes('continue-signin'));

      const login = await browser.get(hrefOf(done, 'continue-signin')!);
      assert.ok(testIds(login).includes('login-form'), `the sign-in, got ${login.status} ${login.url}`);
      assert.match(login.html, new RegExp(`name="email" value="${person.email}"`), 'the email is filled in');
      const factor = await submitLogin(browser, login, person.email, PASSWORD);
      assert.ok(hasForm(factor, 'choose-pin-form'), `the PIN is set up next, got ${factor.status} ${visible(factor).slice(0, 200)}`);
      const account = await submitFactor(browser, factor, 'choose-pin-form', { pin: '480913', pin_confirm: '480913' });
      assert.equal(new URL(account.url).pathname, '/account');
      assert.equal(account.status, 200);

      const again = await new Browser(server.issuer).get(link);
      assert.equal(again.status, 400);
      assert.match(visible(again), /already used/);
      const events = await server.latchkey.stores.accounts.listAudit({ tenant: TENANT, login: person.login, limit: 50 });
      assert.ok(events.some((e) => e.type === 'login.invited' && e.detail?.by === 'cli'));
      assert.ok(events.some((e) => e.type === 'password.invitation_accepted'));
    });

    it('sending again voids the earlier link; an expired one says so and asks for a new invitation', async () => {
      const person = await newPerson('employee');
      await invite(person.email);
      const first = linkOf(await smtp.next(person.email));
      await invite(person.email);
      const second = linkOf(await smtp.next(person.email));
      const browser = new Browser(server.issuer);
      const voided = await browser.get(first);
      assert.equal(voided.status, 400);
      assert.match(visible(voided), /newer invitation replaced it/);
      assert.equal((await browser.get(second)).status, 200);

      const token = randomBytes(32).toString('base64url');
      const identity = (await server.latchkey.stores.accounts.findIdentityByEmail(person.email))!;
      const past = new Date(Date.now() - 80 * 3_600_000);
      await server.latchkey.stores.links.create(createHash('sha256').update(token).digest('base64url'), {
        purpose: 'invite',
        identityId: identity.id,
        createdAt: past,
        expiresAt: new Date(past.getTime() + 72 * 3_600_000),
      });
      const expired = await browser.get(`/invite/${token}`);
      assert.equal(expired.status, 400);
      assert.match(visible(expired), /expired\. Ask your organisation to send a new one/);
      assert.equal((await browser.get(`/reset/${token}`)).status, 400, 'an invitation is no reset link');
    });

    it('the CLI refuses an email without a login in the tenant', async () => {
      const person = await newPerson('employee');
      const other = await invite(person.email, 'globex');
      assert.equal(other.code, 1);
      assert.match(other.stderr, /no login in tenant "globex"/);
      const unknown = await invite('nobody@acme.test');
      assert.equal(unknown.code, 1);
    });
  });
}
