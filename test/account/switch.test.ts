// Finding My Account and switching logins: once signed in, the account pages
// and the journey's and start pages name the login in use and link to My
// Account; a person with several logins switches from the header without
// the password again, but never past the other login's own second factor,
// only with the form's CSRF token, only in the browser that asked, and
// without the switch counting as a fresh sign-in, however long after the
// password it comes. Both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, relyingParty, startServer, submitLogin, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { codeFor, currentStep, savedCodes, secretOf } from '../support/factors.ts';
import { accountFixture, signedIn } from './support.ts';

const JANE = { email: 'jane@acme.test', login: 'jane-acme' };

/** Acme's Jane also has a manager login (an authenticator app) of her own name, told apart by its last name. */
function fixture() {
  const doc = accountFixture();
  doc.tenants![0]!.logins!.push({ id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager', firstName: 'Jane', lastName: 'Doe (Manager)' });
  return doc;
}

/** The account session cookie's claims (signed, base64url JSON). */
function accountSession(browser: Browser): { sub: string; authTime: number; amr: string[]; acr: string } {
  return JSON.parse(Buffer.from(browser.cookieValue('latchkey_account')!, 'base64url').toString('utf8'));
}

/**
 * Follows a switch to where it stops: oidc-provider ends the old login's
 * session with an auto-submitting form (its inline script does it in a
 * browser); this submits that form as the script would.
 */
async function follow(browser: Browser, page: Page): Promise<Page> {
  for (let i = 0; i < 10; i++) {
    page = await browser.follow(page);
    const form = /<form method="post" action="([^"]+)">([^]*?)<\/form>/.exec(page.html);
    if (!form || !/end-session|session\/end/.test(form[1]!)) return page;
    const fields = Object.fromEntries([...form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    page = await browser.post(new URL(form[1]!, page.url).href, fields);
  }
  return page;
}

async function switchTo(browser: Browser, page: Page, login: string, fields: Record<string, string> = {}) {
  const res = await browser.post(actionOf(page, 'switch-form'), { csrf: csrfOf(page), login, ...fields });
  return res;
}

for (const setup of SETUPS) {
  describe(`My Account and switching logins (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    // The app's clock; moved on only by the last test.
    const clock = testClock();
    before(async () => {
      server = await startServer(setup, { doc: fixture(), now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());
    const accounts = () => server.latchkey.stores.accounts;

    it('names the login in use at the top of every page once signed in, with My Account', async () => {
      const browser = new Browser(server.issuer);
      const start = await browser.get('/');
      assert.ok(!testIds(start).includes('my-account'), 'not signed in: no My Account');
      const { page } = await signedIn(server, JANE);
      assert.equal(textOf(page, 'signed-in-as'), 'Jane Doe — Employee');
      assert.match(page.html, /<a class="my-account" href="\/account" aria-current="page" data-testid="my-account">My Account<\/a>/);
      const dutch = await (await signedIn(server, JANE)).browser.request('/account', { headers: { 'accept-language': 'nl' } });
      assert.match(dutch.html, /data-testid="my-account">Mijn account<\/a>/);

      // The same browser on the start page and on a journey page of an app: the provider's session names the login.
      const { browser: b } = await signedIn(server, JANE);
      const home = await b.get('/');
      assert.equal(textOf(home, 'signed-in-as'), 'Jane Doe — Employee');
      assert.match(home.html, /<a class="my-account" href="\/account" data-testid="my-account">My Account<\/a>/);
      const consentless = await b.get((await rp.authorize({ prompt: 'login' })).url);
      assert.ok(testIds(consentless).includes('login-form'));
      assert.equal(textOf(consentless, 'signed-in-as'), 'Jane Doe — Employee');
      // A login disabled meanwhile is named nowhere.
      await accounts().setLoginDisabled('jane-acme', true);
      assert.ok(!testIds(await b.get('/')).includes('signed-in-as'));
      await accounts().setLoginDisabled('jane-acme', false);
    });

    it('switches to a sibling login without the password, but asks its own second factor', async () => {
      const { browser, page } = await signedIn(server, JANE);
      const options = [...page.html.matchAll(/<option value="([^"]+)">([^<]+)<\/option>/g)].map((m) => [m[1], m[2]]);
      assert.deepEqual(options, [
        ['jane-mgr', 'Jane Doe (Manager) — Manager'],
        ['jane-globex', 'Jane Doe — Staff (Globex)'],
      ]);
      const first = accountSession(browser);

      // To the manager login: its authenticator app is set up first; the password is never asked.
      let next = await follow(browser, await switchTo(browser, page, 'jane-mgr'));
      assert.ok(!testIds(next).includes('login-form'), 'no password again');
      assert.ok(testIds(next).includes('link-authenticator-form'), `the manager's own factor: ${next.status} ${next.url}`);
      const secret = secretOf(next);
      next = await follow(
        browser,
        await savedCodes(browser, await browser.post(actionOf(next, 'link-authenticator-form'), { code: await codeFor(secret, currentStep()), csrf: csrfOf(next) })),
      );
      assert.equal(new URL(next.url).pathname, '/account', `${next.status} ${next.url}`);
      assert.equal(textOf(next, 'signed-in-as'), 'Jane Doe (Manager) — Manager');
      const manager = accountSession(browser);
      assert.equal(manager.sub, 'jane-mgr');
      assert.equal(manager.authTime, first.authTime, "the password's time: a switch is no fresh sign-in");
      assert.ok(manager.amr.includes('otp') && manager.amr.includes('pwd'));
      const [event] = await accounts().listAudit({ tenant: 'acme', login: 'jane-mgr', type: 'signin.success', limit: 1 });
      assert.equal(event!.detail?.switchedFrom, 'jane-acme');

      // Back to the employee login (no factor), then to the manager again: the code is asked every time.
      next = await follow(browser, await switchTo(browser, next, 'jane-acme'));
      assert.equal(textOf(next, 'signed-in-as'), 'Jane Doe — Employee');
      next = await follow(browser, await switchTo(browser, next, 'jane-mgr'));
      assert.ok(testIds(next).includes('enter-code-form'), `the code again: ${next.status} ${next.url}`);
    });

    it('refuses a switch without the CSRF token, from another site, to a login that is not a sibling, or with a forged or borrowed ticket', async () => {
      const { browser, page } = await signedIn(server, JANE);
      assert.equal((await browser.post('/account/switch', { login: 'jane-globex' })).status, 403, 'no token');
      assert.equal((await browser.post('/account/switch', { login: 'jane-globex', csrf: 'x'.repeat(32) })).status, 403, 'a wrong token');
      assert.equal((await browser.post('/account/switch', { login: 'jane-globex', csrf: csrfOf(page) }, { origin: 'https://evil.example' })).status, 403, 'another origin');
      for (const login of ['gina-owner', 'acme-owner', 'nobody', 'jane-acme']) {
        const res = await switchTo(browser, page, login);
        assert.equal(res.status, 400, login);
        assert.ok(testIds(res).includes('error-message'));
      }
      assert.equal(accountSession(browser).sub, 'jane-acme', 'still the same login');

      // The ticket works only for the session it names: another browser (even one signed in) gets the password page.
      const res = await browser.request(actionOf(page, 'switch-form'), {
        method: 'POST',
        body: new URLSearchParams({ csrf: csrfOf(page), login: 'jane-globex' }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(res.status, 303);
      const auth = new URL(res.headers.get('location')!, server.issuer).href;
      assert.match(auth, /latchkey_switch=/);
      const stranger = new Browser(server.issuer);
      assert.ok(testIds(await stranger.get(auth)).includes('login-form'), 'a stranger: the password');
      const gina = await signedIn(server, { email: 'gina@globex.test' });
      assert.ok(testIds(await gina.browser.get(auth)).includes('login-form'), "another person's session: the password");
      const forged = auth.replace(/latchkey_switch=([^&]+)/, (_m, v: string) => `latchkey_switch=${v.slice(0, -4)}AAAA`);
      const other = await signedIn(server, JANE);
      assert.ok(testIds(await other.browser.get(forged)).includes('login-form'), 'a forged ticket: the password');
      // And for a relying party's own request the parameter means nothing.
      const { url } = await rp.authorize({ prompt: 'login', latchkey_switch: new URL(auth).searchParams.get('latchkey_switch')! });
      assert.ok(testIds(await browser.get(url)).includes('login-form'), "an app's request: the password");
    });

    // It moves the app's clock on for the tests after it (they read it: `server.latchkey.now()`).
    it('switches long after the password (past the held-result limit and the re-authentication window), still no fresh sign-in', async () => {
      const { browser, page } = await signedIn(server, JANE);
      const first = accountSession(browser);
      const { account, ttl } = server.latchkey.config;
      clock.advance((Math.max(account.reauthSeconds, ttl.signInResult) + 60) * 1000);

      // The switch's journey finished just now: it signs in, though the password it keeps is older than ttl.signInResult.
      const next = await follow(browser, await switchTo(browser, page, 'jane-globex'));
      assert.ok(!testIds(next).includes('login-form'), `no password again: ${next.status} ${next.url}`);
      assert.equal(new URL(next.url).pathname, '/account', `${next.status} ${next.url}`);
      assert.equal(textOf(next, 'signed-in-as'), 'Jane Doe — Staff');
      const switched = accountSession(browser);
      assert.equal(switched.sub, 'jane-globex');
      assert.equal(switched.authTime, first.authTime, "the password's time");

      // Which is older than the re-authentication window: a new password needs the password again.
      const res = await browser.request('/account/profile/password');
      assert.equal(res.status, 303);
      assert.match(res.headers.get('location') ?? '', /^\/account\/signin\?reauth=1/);
    });

    it('does not switch to a login ended or disabled since the password was given', async () => {
      const { browser, page } = await signedIn(server, JANE);
      await accounts().endLoginSessions('jane-globex', new Date(server.latchkey.now() + 1000));
      const res = await follow(browser, await switchTo(browser, page, 'jane-globex'));
      assert.ok(testIds(res).includes('login-form'), `its sessions were ended after the sign-in: the password again (${res.status} ${res.url})`);
      const after = await submitLogin(browser, res, JANE.email, PASSWORD);
      assert.ok(testIds(after).includes('select-form') || new URL(after.url).pathname === '/account');
    });
  });
}
