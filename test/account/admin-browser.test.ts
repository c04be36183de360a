// The owner runs the tenant in a real browser (Debian's Chromium through
// playwright-core), from the navigation: creates, renames and deletes a user
// type; adds and removes an owner; connects, tests and removes a sign-in
// provider; registers an application and gives it a new secret. After each,
// a real sign-in (openid-client or the HTTP browser) shows the effect. No
// script of ours runs: plain forms under the CSP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { Browser, actionOf, csrfOf, testIds, textOf } from '../support/browser.ts';
import { PASSWORD, REDIRECT_URI, SETUPS, callbackReached, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, hasForm, reachFactor, submitFactor } from '../support/factors.ts';
import { launchChromium, withoutChromium } from '../support/chromium.ts';
import { startUpstream, visitUpstream, type TestUpstream } from '../support/upstream.ts';
import { accountFixture, accountSignIn, signedIn } from './support.ts';

const UPSTREAM_CLIENT = { client_id: 'latchkey-acme', client_secret: 'upstream-client-secret-acme-1' };

for (const setup of SETUPS) {
  describe(`the owner's tenant pages in Chromium (${setup})`, { skip: withoutChromium }, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let corp: TestUpstream;
    let chromium: Awaited<ReturnType<typeof launchChromium>>;
    let context: BrowserContext;
    let page: Page;
    const cspViolations: string[] = [];

    before(async () => {
      server = await startServer(setup, { doc: accountFixture() });
      rp = await relyingParty(server.issuer);
      corp = await startUpstream({ clients: [{ ...UPSTREAM_CLIENT, redirect_uris: [`${server.issuer}/upstream/corp/callback`] }] });
      chromium = await launchChromium();
      context = await chromium.newContext({ viewport: { width: 1100, height: 900 } });
      context.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
      });
      page = await context.newPage();
      await page.goto(`${server.issuer}/account`);
      await page.getByLabel('Email address').fill('owner@acme.test');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByTestId('login-submit').click();
      await page.getByTestId('profile').waitFor();
    });
    after(async () => {
      await context?.close();
      await chromium?.close();
      await corp?.stop();
      await server?.stop();
    });

    const accounts = () => server.latchkey.stores.accounts;
    const acme = async () => (await accounts().getTenant('acme'))!;

    it('creates, renames and deletes a user type; a person of the new type chooses its PIN at sign-in', async () => {
      await page.getByTestId('nav-user-types').click();
      await page.getByTestId('user-types').waitFor();
      await page.getByLabel('Name', { exact: true }).fill('Night nurse');
      await page.getByLabel('Second factor').selectOption({ label: 'PIN code' });
      await page.getByTestId('add-user-type').click();
      await page.getByTestId('notice').waitFor();
      await page.getByTestId('user-type-night-nurse').waitFor();
      assert.deepEqual((await acme()).userTypes.at(-1), { id: 'night-nurse', name: 'Night nurse', secondFactor: 'pin' });
      const person = await addPerson(server, 'night-nurse');
      assert.ok(hasForm((await reachFactor(server, rp, person)).page, 'choose-pin-form'), 'the new type asks for its PIN');

      await page.getByTestId('rename-type-night-nurse').click();
      await page.getByLabel('New name').fill('Night shift');
      await page.getByTestId('rename-user-type').click();
      await page.getByTestId('notice').waitFor();
      assert.equal(await page.getByTestId('user-type-night-nurse').locator('th').textContent(), 'Night shift');
      const own = await accountSignIn(server, { email: person.email });
      const profile = await submitFactor(own.browser, own.page, 'choose-pin-form', { pin: '480913', pin_confirm: '480913' });
      assert.equal(textOf(profile, 'profile-user-type'), 'Night shift', 'the person sees the new name');

      await accounts().deleteLogin(person.logins[0]!);
      await page.reload();
      await page.getByTestId('remove-type-night-nurse').click();
      await page.getByTestId('confirm-remove-type').click();
      await page.getByTestId('notice').waitFor();
      assert.equal(await page.getByTestId('user-type-night-nurse').count(), 0);
      assert.ok(!(await acme()).userTypes.some((t) => t.id === 'night-nurse'));
    });

    it('adds an owner, who then runs the owner pages, and takes them off again', async () => {
      await page.getByTestId('nav-owners').click();
      await page.getByLabel('Email address of the login').fill('jane@acme.test');
      await page.getByTestId('add-owner').click();
      await page.getByTestId('owner-jane-acme').waitFor();
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' }, '/account/users');
      assert.ok(testIds(jane.page).includes('users'), 'Jane now sees the Users page');

      await page.getByTestId('remove-owner-jane-acme').click();
      await page.getByTestId('confirm-remove-owner').click();
      await page.getByTestId('notice').waitFor();
      assert.deepEqual((await acme()).owners, ['acme-owner']);
      assert.equal((await jane.browser.get('/account/users')).status, 403, 'no longer');
      assert.equal(await page.getByTestId('remove-owner-acme-owner').count(), 0, 'the last owner has no remove button');
    });

    it('connects a sign-in provider, tests it, signs someone in through it, and removes it', async () => {
      await page.getByTestId('nav-providers').click();
      await page.getByLabel('Name on the login button').fill('Corp ID');
      await page.getByLabel('Id (optional: made from the name)').fill('corp');
      await page.getByLabel('Issuer').fill(corp.issuer);
      await page.getByLabel('Client id').fill(UPSTREAM_CLIENT.client_id);
      await page.getByLabel('Client secret').fill(UPSTREAM_CLIENT.client_secret);
      await page.getByTestId('add-provider').click();
      await page.getByTestId('provider-corp').waitFor();
      assert.equal(await page.getByTestId('redirect-uri-corp').textContent(), `${server.issuer}/upstream/corp/callback`);
      await page.getByTestId('test-provider-corp').click();
      assert.equal(await page.getByTestId('test-result').getAttribute('data-ok'), 'yes');

      corp.user = { sub: 'corp-jane', email: 'jane@acme.test', email_verified: true };
      const person = new Browser(server.issuer);
      const pending = await rp.authorize();
      const login = await person.get(pending.url);
      const sent = await person.post(actionOf(login, 'upstream-form'), { upstream: 'corp', csrf: csrfOf(login) });
      const back = await person.get(await visitUpstream(corp, sent.url));
      const done = await person.post(actionOf(back, 'upstream-confirm-form'), { password: PASSWORD, csrf: csrfOf(back) });
      assert.ok(callbackReached(done), `signed in through the new provider: ${done.status}`);

      await page.getByTestId('remove-provider-corp').click();
      await page.getByTestId('confirm-remove-provider').click();
      await page.getByTestId('no-providers').waitFor();
      const after = await new Browser(server.issuer).get((await rp.authorize()).url);
      assert.ok(!/name="upstream"/.test(after.html), 'the button is gone from the login page');
    });

    it('registers an application (its secret shown once) that signs people in, and gives it a new secret', async () => {
      await page.getByTestId('nav-applications').click();
      await page.getByLabel('Name', { exact: true }).fill('Rota');
      await page.getByLabel('Redirect URIs (one per line)').fill(REDIRECT_URI);
      await page.getByLabel('Whose app is it?').selectOption('yes');
      await page.getByTestId('register-app').click();
      await page.getByTestId('secret-once').waitFor();
      const clientId = (await page.getByTestId('client-id').textContent())!;
      const secret = (await page.getByTestId('client-secret').textContent())!;
      const app = await relyingParty(server.issuer, clientId, secret);
      const first = await signIn(new Browser(server.issuer), app, { email: 'jane@acme.test', login: 'jane-acme' });
      assert.equal((await app.callback(first.page.url, first.pending)).claims()!.sub, 'jane-acme', 'the new app signs Jane in');

      await page.getByTestId('back-to-apps').click();
      await page.getByTestId(`rotate-${clientId}`).click();
      await page.getByTestId('confirm-app').click();
      await page.getByTestId('secret-once').waitFor();
      const rotated = (await page.getByTestId('client-secret').textContent())!;
      assert.notEqual(rotated, secret);
      const old = await signIn(new Browser(server.issuer), app, { email: 'jane@acme.test', login: 'jane-acme' });
      await assert.rejects(app.callback(old.page.url, old.pending), 'the old secret no longer redeems a code');
      const renewed = await relyingParty(server.issuer, clientId, rotated);
      const next = await signIn(new Browser(server.issuer), renewed, { email: 'jane@acme.test', login: 'jane-acme' });
      assert.equal((await renewed.callback(next.page.url, next.pending)).claims()!.sub, 'jane-acme', 'the new secret does');
      assert.deepEqual(cspViolations, [], 'nothing blocked by the Content Security Policy');
    });
  });
}
