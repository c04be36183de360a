// The account pages for a tenant's owner: signing in to
// /account through the journey, Security settings, Users (reset an
// authenticator app or a PIN, which ends that login's sessions and grants),
// the Audit log, CSRF and cross-tenant refusals, and re-authentication before
// sensitive changes. On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, submitLogin, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, addPerson, auditOf, choosePin, codeFor, currentStep, hasForm, linkApp, reachFactor, secretOf, submitFactor, savedCodes } from '../support/factors.ts';
import { accountFixture, accountSignIn, errorOf, noticeOf, onAccountPage, savePolicy, signedIn, submit } from './support.ts';

const PIN = '907146';
const OWNER = { email: 'owner@acme.test' };

/** Sends a request and follows its redirects by hand, collecting every Set-Cookie line on the way. */
async function followCollectingCookies(browser: Browser, url: string, init: RequestInit = {}) {
  const lines: string[] = [];
  let page = await browser.request(url, init);
  for (let i = 0; i < 20 && page.status >= 300 && page.status < 400; i++) {
    lines.push(...page.headers.getSetCookie());
    page = await browser.request(new URL(page.headers.get('location')!, page.url).href);
  }
  lines.push(...page.headers.getSetCookie());
  return { page, lines };
}

for (const setup of SETUPS) {
  describe(`account pages for the owner (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: accountFixture(), env: SHORT_LOCKS });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const tenantAudit = (type: string) => accounts().listAudit({ tenant: 'acme', type, limit: 500 });

    it('signs in to /account through the journey, with a cookie of its own, and signs out of the provider too', async () => {
      const browser = new Browser(server.issuer);
      let page = await browser.get('/account/security');
      assert.ok(testIds(page).includes('login-form'), "not signed in: the provider's login page");
      assert.equal(textOf(page, 'tenant-name'), 'Latchkey account', 'the account client belongs to no tenant');
      const form = new URLSearchParams({ email: OWNER.email, password: PASSWORD, csrf: csrfOf(page) });
      const signedIn = await followCollectingCookies(browser, actionOf(page, 'login-form'), {
        method: 'POST',
        body: form,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      page = signedIn.page;
      assert.ok(onAccountPage(page, '/account/security'), `back where the person wanted to go: ${page.status} ${page.url}`);
      const cookie = signedIn.lines.find((l) => l.startsWith('latchkey_account='));
      assert.ok(cookie, 'the account pages have a session cookie of their own');
      assert.match(cookie, /path=\/account/i);
      assert.match(cookie, /httponly/i);
      assert.match(cookie, /samesite=lax/i);
      assert.ok(
        signedIn.lines.some((l) => l.startsWith('latchkey_account.sig=')),
        'signed',
      );

      const profile = await browser.get('/account');
      assert.equal(textOf(profile, 'profile-name'), 'Olga Owner');
      assert.equal(textOf(profile, 'profile-email'), 'owner@acme.test');
      assert.equal(textOf(profile, 'profile-user-type'), 'Owner');
      assert.equal(textOf(profile, 'profile-factor'), 'None');
      assert.ok(
        ['nav-security', 'nav-users', 'nav-audit'].every((t) => testIds(profile).includes(t)),
        'the owner sees the owner pages',
      );
      assert.ok((await auditOf(server, 'acme-owner', 'account.signin')).length >= 1);

      const sso = await rp.authorize();
      assert.ok(callbackReached(await browser.get(sso.url)), 'the provider session is shared with the applications');
      const out = await submit(browser, profile, 'signout-form');
      assert.equal(new URL(out.url).pathname, '/account/signed-out');
      assert.ok(!browser.cookieNames().includes('latchkey_account'), 'the account cookie is gone');
      assert.ok(testIds(await browser.get('/account')).includes('login-form'), 'signed out of the account pages');
      const after = await rp.authorize();
      assert.ok(testIds(await browser.get(after.url)).includes('login-form'), 'and out of the provider: an application asks to sign in again');
      assert.equal((await auditOf(server, 'acme-owner', 'account.signout')).length, 1);
    });

    it("shows the tenant's upstream providers on Security settings, read-only and without the secret", async () => {
      await accounts().upsertUpstream({
        tenant: 'acme',
        id: 'corp',
        name: 'Acme Corporate',
        issuer: 'https://login.acme.test',
        clientId: 'latchkey-rp',
        clientSecret: 'sealed-not-shown',
        scopes: ['openid', 'email'],
      });
      const { page } = await signedIn(server, OWNER, '/account/security');
      assert.ok(testIds(page).includes('upstream-corp'));
      assert.match(page.html, /Acme Corporate/);
      assert.match(page.html, /https:\/\/login\.acme\.test/);
      assert.ok(page.html.includes(`${server.issuer}/upstream/corp/callback`), 'the redirect URI to register');
      assert.ok(!page.html.includes('sealed-not-shown'), 'never the client secret');
      assert.doesNotMatch(page.html, /action="[^"]*upstream/, 'read-only: no form edits upstreams');
    });

    it('offers every login of the identity, in every tenant, labelled with the tenant; a non-owner gets 403 on the owner pages', async () => {
      const { browser, page } = await accountSignIn(server, { email: 'jane@acme.test' });
      assert.ok(testIds(page).includes('select-form'), `expected the login choice, got ${page.status} ${page.url}`);
      const labels = [...page.html.matchAll(/data-testid="login-([^"]+)"[^>]*>([\s\S]*?)<\/button>/g)].map((m) => [m[1], m[2]!.replace(/<[^>]+>/g, '')]);
      assert.deepEqual(labels, [
        ['jane-acme', 'Jane Doe — Employee (Acme Care)'],
        ['jane-globex', 'Jane Doe — Staff (Globex)'],
      ]);
      const profile = await browser.post(actionOf(page, 'select-form'), { login: 'jane-globex', csrf: csrfOf(page) });
      assert.ok(onAccountPage(profile), `${profile.status} ${profile.url}`);
      assert.equal(textOf(profile, 'tenant-name'), 'Globex');
      assert.equal(textOf(profile, 'profile-user-type'), 'Staff');
      assert.ok(!testIds(profile).some((t) => ['nav-security', 'nav-users', 'nav-audit'].includes(t)), 'no owner pages in the menu');
      for (const path of ['/account/security', '/account/users', '/account/audit', '/account/users/jane-globex/reset-pin']) {
        assert.equal((await browser.get(path)).status, 403, path);
      }
      const before = await accounts().getTenant('globex');
      const refused = await browser.post('/account/security', { csrf: csrfOf(profile), user_type: 'staff', second_factor: 'totp' });
      assert.equal(refused.status, 403);
      const reset = await browser.post('/account/users/jane-globex/reset-pin', { csrf: csrfOf(profile), confirm: 'yes' });
      assert.equal(reset.status, 403);
      assert.deepEqual(await accounts().getTenant('globex'), before, 'nothing changed');
    });

    it("lets the owner change a user type's factor: the next sign-in of that type asks for it", async () => {
      const person = await addPerson(server, 'staff');
      const [login] = person.logins as [string];
      const user = await reachFactor(server, rp, person);
      assert.ok(callbackReached(user.page), 'staff needs no factor yet');

      const { browser, page } = await signedIn(server, OWNER, '/account/security');
      assert.ok(testIds(page).includes('own-type-note'), "the page says what turning on the owner's own type means");
      assert.match(page.html, /<option value="none" selected>None<\/option>/);
      const saved = await savePolicy(browser, page, { staff: 'totp' });
      assert.ok(onAccountPage(saved, '/account/security'), `${saved.status} ${errorOf(saved)}`);
      assert.match(noticeOf(saved), /next sign-in/);
      assert.match(saved.html, /data-testid="policy-select-staff">[^]*?<option value="totp" selected>/);
      assert.equal((await accounts().getTenant('acme'))!.userTypes.find((t) => t.id === 'staff')!.secondFactor, 'totp');

      const pending = await rp.authorize();
      let next = await user.browser.get(pending.url);
      assert.ok(testIds(next).includes('login-form'), 'the session at 1fa signs in again');
      next = await submitLogin(user.browser, next, person.email, PASSWORD);
      assert.ok(hasForm(next, 'link-authenticator-form'), `the next sign-in of the type asks to link the app: ${next.status}`);

      const [event] = await tenantAudit('policy.changed');
      assert.equal(event?.login, 'acme-owner');
      assert.deepEqual(event?.detail, { by: 'acme-owner', userType: 'staff', from: 'none', to: 'totp' });
      assert.ok(event?.ip);
      assert.ok(login);

      const unchanged = await savePolicy(browser, page, { staff: 'totp' });
      assert.ok(onAccountPage(unchanged, '/account/security'));
      assert.equal((await tenantAudit('policy.changed')).length, 1, 'saving the same value records nothing');
      for (const [type, factor] of [
        ['nobody', 'pin'],
        ['staff', 'sms'],
        ['staff', ''],
      ]) {
        const bad = await browser.post('/account/security', { csrf: csrfOf(page), user_type: type!, second_factor: factor! });
        assert.equal(bad.status, 400, `${type}/${factor}`);
      }
      const arrays = await browser.post('/account/security', { csrf: csrfOf(page), user_type: ['staff', 'owner'], second_factor: 'none' });
      assert.equal(arrays.status, 400);
      assert.equal((await accounts().getTenant('acme'))!.userTypes.find((t) => t.id === 'staff')!.secondFactor, 'totp');
      await accounts().setUserTypeFactor('acme', 'staff', 'none');
    });

    it('lets the owner allow setting up a stronger factor when an app asks for one, and turn it off again', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/security');
      assert.ok(testIds(page).includes('step-up-form'));
      assert.match(page.html, /<option value="off" selected>/, 'off for a new tenant');
      const on = await submit(browser, page, 'step-up-form', { step_up_enrollment: 'on' });
      assert.ok(onAccountPage(on, '/account/security'), `${on.status} ${errorOf(on)}`);
      assert.match(noticeOf(on), /next sign-in/);
      assert.match(on.html, /<option value="on" selected>/);
      assert.equal((await accounts().getTenant('acme'))!.stepUpEnrollment, true);
      for (const value of ['yes', '', ['on', 'off']]) {
        const bad = await browser.post('/account/security/step-up', { csrf: csrfOf(on), step_up_enrollment: value });
        assert.equal(bad.status, 400, JSON.stringify(value));
      }
      assert.equal((await browser.post('/account/security/step-up', { csrf: csrfOf(on) })).status, 400, 'no value');
      assert.equal((await accounts().getTenant('acme'))!.stepUpEnrollment, true, 'a bad value changes nothing');
      const off = await submit(browser, on, 'step-up-form', { step_up_enrollment: 'off' });
      assert.ok(onAccountPage(off, '/account/security'));
      assert.equal((await accounts().getTenant('acme'))!.stepUpEnrollment, false);
      const events = await tenantAudit('policy.step_up_changed');
      assert.deepEqual(
        events.map((e) => [e.login, e.detail]),
        [
          ['acme-owner', { from: true, to: false }],
          ['acme-owner', { from: false, to: true }],
        ],
      );
      const refused = await browser.post('/account/security/step-up', { step_up_enrollment: 'on' });
      assert.equal(refused.status, 403, 'without the CSRF token');
      assert.equal((await accounts().getTenant('acme'))!.stepUpEnrollment, false);
    });

    it('refuses a state-changing POST without the CSRF token, with another one, or from another origin: 403, nothing changes', async () => {
      const person = await addPerson(server, 'nurse');
      const [nurse] = person.logins as [string];
      await choosePin(server, rp, person, PIN);
      const { browser, page } = await signedIn(server, OWNER, '/account/security');
      const other = await signedIn(server, OWNER);
      const csrf = csrfOf(page);
      const tenantBefore = await accounts().getTenant('acme');
      const pinBefore = (await accounts().getLogin(nurse))!.factors;
      const cases: [string, string, Record<string, string | string[]>, Record<string, string>][] = [
        ['no token', '/account/security', { user_type: 'employee', second_factor: 'pin' }, {}],
        ['an empty token', '/account/security', { csrf: '', user_type: 'employee', second_factor: 'pin' }, {}],
        ["another session's token", '/account/security', { csrf: csrfOf(other.page), user_type: 'employee', second_factor: 'pin' }, {}],
        ['two tokens', '/account/security', { csrf: [csrf, csrf], user_type: 'employee', second_factor: 'pin' }, {}],
        ['another origin', '/account/security', { csrf, user_type: 'employee', second_factor: 'pin' }, { origin: 'http://evil.example' }],
        ['a cross-site request', '/account/security', { csrf, user_type: 'employee', second_factor: 'pin' }, { 'sec-fetch-site': 'cross-site' }],
        ['a same-site request from a sibling host', '/account/security', { csrf, user_type: 'employee', second_factor: 'pin' }, { 'sec-fetch-site': 'same-site' }],
        ['an opaque origin the browser does not vouch for', '/account/security', { csrf, user_type: 'employee', second_factor: 'pin' }, { origin: 'null' }],
        ['a reset without token', `/account/users/${nurse}/reset-pin`, { confirm: 'yes' }, {}],
        ['a reset from another origin', `/account/users/${nurse}/reset-pin`, { csrf, confirm: 'yes' }, { origin: 'http://evil.example' }],
        [
          'a password change without token',
          '/account/profile/password',
          { current_password: PASSWORD, password: 'a much better passphrase', password_confirm: 'a much better passphrase' },
          {},
        ],
        ['a sign-out without token', '/account/signout', {}, {}],
      ];
      for (const [name, path, fields, headers] of cases) {
        const res = await browser.post(path, fields, headers);
        assert.equal(res.status, 403, name);
        assert.equal(textOf(res, 'error-code'), 'Error code: csrf', name);
      }
      const stranger = await new Browser(server.issuer).post('/account/security', { csrf, user_type: 'employee', second_factor: 'pin' });
      assert.equal(stranger.status, 403, 'no session: refused');
      assert.deepEqual(await accounts().getTenant('acme'), tenantBefore, 'no policy changed');
      assert.deepEqual((await accounts().getLogin(nurse))!.factors, pinBefore, 'no PIN reset');
      assert.equal((await tenantAudit('policy.changed')).filter((e) => e.detail?.userType === 'employee').length, 0);
      assert.equal((await auditOf(server, nurse, 'factor.pin.reset')).length, 0);
      assert.ok(onAccountPage(await browser.get('/account')), 'still signed in');
    });

    it("lists the tenant's users with their factor state, and never shows or changes another tenant's logins", async () => {
      const person = await addPerson(server, 'manager');
      const [manager] = person.logins as [string];
      await linkApp(server, rp, person);
      await accounts().setFactorState('gina-owner', 'pin', { hash: 'globex-pin', setAt: '2024-01-01' });
      const { browser, page } = await signedIn(server, OWNER, '/account/users');
      assert.ok(testIds(page).includes(`user-${manager}`));
      assert.equal(textOf(page, `factor-state-${manager}`), 'App linked, 10 recovery codes left');
      assert.equal(textOf(page, 'factor-state-jane-acme'), 'None');
      assert.ok(!testIds(page).includes('user-jane-globex') && !testIds(page).includes('user-gina-owner'), "no other tenant's logins");
      const button = new RegExp(
        `<form[^>]*action="/account/users/${manager}/reset/totp"[^>]*>[^]*?<button[^>]*data-testid="reset-totp-${manager}"[^>]*>(<svg[^]*?</svg>)<span class="visually-hidden">Reset authenticator app</span></button>`,
      );
      assert.match(page.html, button, 'a telephone icon button named "Reset authenticator app", posting to its own URL');
      assert.ok(!testIds(page).includes(`reset-pin-${manager}`), 'no PIN to reset: no button for it');
      assert.ok(!testIds(page).includes('reset-totp-jane-acme') && !testIds(page).includes('reset-pin-jane-acme'), 'nothing set up: no reset at all');

      const csrf = csrfOf(page);
      for (const kind of ['reset-authenticator', 'reset-pin', 'reset/totp', 'reset/pin']) {
        for (const target of ['gina-owner', 'jane-globex', 'no-such-login']) {
          assert.equal((await browser.get(`/account/users/${target}/${kind}`)).status, 403, `GET ${target} ${kind}`);
          assert.equal((await browser.post(`/account/users/${target}/${kind}`, { csrf })).status, 403, `POST ${target} ${kind}`);
          assert.equal((await browser.post(`/account/users/${target}/${kind}`, { csrf, confirm: 'yes' })).status, 403, `confirm ${target} ${kind}`);
        }
      }
      assert.equal((await browser.get('/account/audit?login=gina-owner')).status, 400, "no audit of another tenant's login");
      assert.deepEqual((await accounts().getLogin('gina-owner'))!.factors, { pin: { hash: 'globex-pin', setAt: '2024-01-01' } }, 'Globex unchanged');
      assert.equal((await accounts().listAudit({ tenant: 'globex', type: 'factor.pin.reset' })).length, 0);

      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/users');
      assert.ok(testIds(gina.page).includes('user-jane-globex') && !testIds(gina.page).includes(`user-${manager}`));
      const refused = await gina.browser.post(`/account/users/${manager}/reset-authenticator`, { csrf: csrfOf(gina.page), confirm: 'yes' });
      assert.equal(refused.status, 403, "Globex's owner cannot reset an Acme login");
      assert.ok((await accounts().getLogin(manager))!.factors.totp, 'still linked');
    });

    it("resets a user's authenticator app: their sessions and grants end, and the next sign-in links the app again with a new secret", async () => {
      const person = await addPerson(server, 'manager');
      const [manager] = person.logins as [string];
      const first = await reachFactor(server, rp, person);
      const oldSecret = secretOf(first.page);
      const linkStep = currentStep();
      const linked = await savedCodes(first.browser, await submitFactor(first.browser, first.page, 'link-authenticator-form', { code: await codeFor(oldSecret, linkStep) }));
      assert.ok(callbackReached(linked));
      const tokens = await rp.callback(linked.url, first.pending);
      assert.ok(tokens.refresh_token, 'the application holds a refresh token');
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, true);

      const owner = await signedIn(server, OWNER, '/account/users');
      const confirm = await owner.browser.post(actionOfButton(owner.page, `reset-totp-${manager}`), { csrf: csrfOf(owner.page) });
      assert.ok(testIds(confirm).includes('confirm-reset-form'), `the button asks for confirmation first: ${confirm.status}`);
      assert.ok((await accounts().getLogin(manager))!.factors.totp, 'nothing changed before confirming');
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /authenticator app has been reset/);
      assert.equal(textOf(done, `factor-state-${manager}`), 'None');
      assert.equal((await accounts().getLogin(manager))!.factors.totp, undefined);

      await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'the refresh token stops working');
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token is no longer active');
      await assert.rejects(oidc.fetchUserInfo(rp.config, tokens.access_token, manager));

      const pending = await rp.authorize();
      let page = await first.browser.get(pending.url);
      assert.ok(testIds(page).includes('login-form'), "the login's single sign-on session must sign in again");
      page = await submitLogin(first.browser, page, person.email, PASSWORD);
      assert.ok(hasForm(page, 'link-authenticator-form'), `the next sign-in links the app again: ${page.status}`);
      const newSecret = secretOf(page);
      assert.notEqual(newSecret, oldSecret, 'with a new secret');
      page = await savedCodes(first.browser, await submitFactor(first.browser, page, 'link-authenticator-form', { code: await codeFor(newSecret, currentStep()) }));
      assert.ok(callbackReached(page));
      const fresh = await rp.callback(page.url, pending);
      assert.equal(fresh.claims()!.acr, 'urn:latchkey:acr:totp');
      assert.ok((await oidc.refreshTokenGrant(rp.config, fresh.refresh_token!)).access_token, 'tokens of the new sign-in work');

      const [reset] = await auditOf(server, manager, 'factor.totp.reset');
      assert.equal(reset?.outcome, 'success');
      assert.equal(reset?.detail?.by, 'acme-owner');
      assert.equal((await auditOf(server, manager, 'factor.totp.linked')).length, 2);
    });

    it("resets a user's PIN: their sessions end, and the next sign-in chooses a PIN", async () => {
      const person = await addPerson(server, 'nurse');
      const [nurse] = person.logins as [string];
      const { browser: userBrowser } = await choosePin(server, rp, person, PIN);
      assert.ok(callbackReached(await userBrowser.get((await rp.authorize()).url)), 'single sign-on before the reset');

      const owner = await signedIn(server, OWNER, `/account/users/${nurse}/reset-pin`);
      assert.ok(testIds(owner.page).includes('confirm-reset-form'), 'a confirmation page without JavaScript');
      assert.match(textOf(owner.page, 'confirm-text') ?? '', /choose a new PIN/);
      const done = await submit(owner.browser, owner.page, 'confirm-reset-form');
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      assert.equal(textOf(done, `factor-state-${nurse}`), 'None');

      let page = await userBrowser.get((await rp.authorize()).url);
      assert.ok(testIds(page).includes('login-form'), 'the session must sign in again');
      page = await submitLogin(userBrowser, page, person.email, PASSWORD);
      assert.ok(hasForm(page, 'choose-pin-form'), `the next sign-in chooses a PIN: ${page.status}`);
      page = await submitFactor(userBrowser, page, 'choose-pin-form', { pin: '583920', pin_confirm: '583920' });
      assert.ok(callbackReached(page));
      const [reset] = await auditOf(server, nurse, 'factor.pin.reset');
      assert.equal(reset?.detail?.by, 'acme-owner');
    });

    it("shows the tenant's audit log newest first, paged, filtered by login and event type", async () => {
      const person = await addPerson(server, 'employee');
      const [login] = person.logins as [string];
      // A day ago: within the audit's retention, whose sweep runs every minute and would delete older events mid-test.
      const base = Math.floor((Date.now() - 86_400_000) / 60_000) * 60_000;
      for (let i = 0; i < 60; i++) {
        await accounts().appendAudit({
          tenant: 'acme',
          login,
          type: i % 2 ? 'factor.pin.failed' : 'signin.success',
          time: new Date(base + i * 60_000),
          ip: '10.0.0.1',
          userAgent: 'test',
          outcome: i % 2 ? 'failure' : 'success',
          detail: { i },
        });
      }
      await accounts().appendAudit({
        tenant: 'globex',
        login: 'gina-owner',
        type: 'signin.success',
        time: new Date(base + 3_600_000),
        ip: null,
        userAgent: null,
        outcome: 'success',
      });
      const { browser, page } = await signedIn(server, OWNER, '/account/audit');
      const rows = (p: Page) =>
        [...p.html.matchAll(/data-testid="audit-event" data-type="([^"]*)" data-login="([^"]*)" data-time="([^"]*)"/g)].map((m) => ({ type: m[1]!, login: m[2]!, time: m[3]! }));
      const all = rows(page);
      assert.equal(all[0]!.login, 'acme-owner', "the newest first: the owner's own sign-in");
      assert.deepEqual(
        all.map((r) => r.time),
        [...all.map((r) => r.time)].sort().reverse(),
        'newest first',
      );
      assert.ok(!all.some((r) => r.login === 'gina-owner'), "only this tenant's events");

      const first = await browser.get(`/account/audit?login=${login}`);
      const firstRows = rows(first);
      assert.equal(firstRows.length, 50);
      assert.ok(firstRows.every((r) => r.login === login));
      assert.equal(firstRows[0]!.time, new Date(base + 59 * 60_000).toISOString());
      const older = /href="([^"]+)" data-testid="audit-older"/.exec(first.html)?.[1]?.replace(/&amp;/g, '&');
      assert.ok(older, 'a link to older events');
      const second = await browser.get(older);
      assert.deepEqual(
        rows(second).map((r) => r.time),
        Array.from({ length: 10 }, (_, i) => new Date(base + (9 - i) * 60_000).toISOString()),
      );
      assert.ok(!testIds(second).includes('audit-older'), 'the last page');
      assert.ok(testIds(second).includes('audit-newest'));

      const typed = rows(await browser.get(`/account/audit?login=${login}&type=factor.pin.failed`));
      assert.equal(typed.length, 30);
      assert.ok(typed.every((r) => r.type === 'factor.pin.failed'));
      const anyone = rows(await browser.get('/account/audit?type=policy.changed'));
      assert.ok(anyone.every((r) => r.type === 'policy.changed'));
      for (const bad of ['?login=gina-owner', '?type=%24where', '?before=yesterday', '?login=a&login=b']) {
        assert.equal((await browser.get(`/account/audit${bad}`)).status, 400, bad);
      }
    });

    it('makes the owner set up a factor turned on for their own type at their next sign-in', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/security');
      const saved = await savePolicy(browser, page, { owner: 'pin' });
      assert.ok(onAccountPage(saved, '/account/security'));
      const users = await browser.get('/account/users');
      assert.ok(onAccountPage(users, '/account/users'), `the current session goes on: ${users.status} ${users.url}`);
      const next = await accountSignIn(server, OWNER);
      assert.ok(hasForm(next.page, 'choose-pin-form'), `the owner chooses a PIN at the next sign-in: ${next.page.status}`);
      const done = await submitFactor(next.browser, next.page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
      assert.ok(onAccountPage(done), `${done.status} ${errorOf(done)}`);
      assert.equal(textOf(done, 'profile-factor'), 'PIN code');
      await accounts().setUserTypeFactor('acme', 'owner', 'none');
    });

    // Last: its hundred and twenty logins would page the other tests' users off the first page.
    it("searches, filters, sorts and pages the users in the store, only ever in the owner's tenant", async () => {
      const n = 120;
      const id = (i: number) => `bulk-${String(i).padStart(3, '0')}`;
      for (let i = 0; i < n; i++) {
        await accounts().upsertLogin({
          id: id(i),
          tenant: 'acme',
          email: `${id(i)}@bulk.test`,
          userType: i % 3 ? 'staff' : 'nurse',
          firstName: `P${String((i * 7) % n).padStart(3, '0')}`,
          lastName: 'Bulkington',
          disabled: i % 10 === 0,
        });
      }
      await accounts().upsertLogin({ id: 'bulk-globex', tenant: 'globex', email: 'bulk-globex@bulk.test', userType: 'staff', firstName: 'P000', lastName: 'Bulkington' });
      const { browser } = await signedIn(server, OWNER, '/account/users');
      const rows = (p: Page) => [...p.html.matchAll(/<tr data-testid="user-([^"]+)"/g)].map((m) => m[1]!);
      const total = (p: Page) => Number(/data-testid="users-total" data-total="(\d+)"/.exec(p.html)?.[1]);
      const link = (p: Page, testid: string) => new RegExp(`href="([^"]+)" data-testid="${testid}"`).exec(p.html)?.[1]?.replace(/&amp;/g, '&');

      let page = await browser.get('/account/users?q=BULKINGTON');
      assert.equal(page.status, 200);
      assert.equal(total(page), n, 'the total of every page');
      const seen: string[] = [];
      for (let i = 0; ; i++) {
        assert.ok(rows(page).length <= 50, 'fifty a page');
        seen.push(...rows(page));
        const next = link(page, 'users-next');
        if (!next) break;
        assert.match(next, /q=BULKINGTON/, 'the search is kept from page to page');
        page = await browser.get(next);
        assert.ok(i < 5);
      }
      assert.equal(seen.length, n);
      assert.ok(!seen.includes('bulk-globex'), "never another tenant's login");
      const byFirst = Array.from({ length: n }, (_, i) => i)
        .sort((a, b) => ((a * 7) % n) - ((b * 7) % n))
        .map(id);
      assert.deepEqual(seen, byFirst, 'by name, across pages');
      assert.ok(link(page, 'users-previous'), 'the last page links back');

      const nurses = await browser.get('/account/users?q=bulk.test&user_type=nurse&state=disabled');
      const expected = Array.from({ length: n }, (_, i) => i)
        .filter((i) => i % 3 === 0 && i % 10 === 0)
        .map(id);
      assert.deepEqual(new Set(rows(nurses)), new Set(expected));
      assert.equal(total(nurses), expected.length);
      assert.ok(
        rows(nurses).every((r) => new RegExp(`data-testid="user-${r}"[^]*?\\(disabled\\)`).test(nurses.html)),
        'a disabled login is shown as such',
      );
      assert.match(nurses.html, /<option value="nurse" selected>Nurse<\/option>/, 'the filter shows what it filters by');

      const byEmail = await browser.get(link(await browser.get('/account/users?q=bulk-1'), 'sort-email')!);
      assert.deepEqual(rows(byEmail).slice(0, 2), ['bulk-100', 'bulk-101'], 'the heading sorts by its column');
      const backwards = await browser.get(link(byEmail, 'sort-email')!);
      assert.deepEqual(rows(backwards).slice(0, 2), ['bulk-119', 'bulk-118'], 'again: the other way round');
      assert.match(backwards.html, /aria-sort="descending"/);
      const one = await browser.get('/account/users?q=bulk-007%20p049');
      assert.deepEqual(rows(one), ['bulk-007'], 'every word must match');
      assert.ok(testIds(await browser.get('/account/users?q=%25')).includes('no-users'), 'a wildcard is a plain character');

      const bad = ['?state=locked', '?sort=password', '?order=up', '?page=0', '?page=x', '?q=a&q=b', '?user_type=boss', `?q=${'x'.repeat(129)}`, '?state=active&state=disabled'];
      for (const query of bad) assert.equal((await browser.get(`/account/users${query}`)).status, 400, query);
      assert.equal(rows(await browser.get('/account/users?q=bulkington&page=99')).length, 0, 'past the last page: nobody, not an error');
    });
  });

  describe(`re-authentication before sensitive changes (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: accountFixture('totp'), env: { ...SHORT_LOCKS, ACCOUNT_REAUTH_SECONDS: '3' }, now: clock.now });
    });
    after(() => server.stop());

    it('asks for the password and the factor again when the last sign-in is older than the limit, then the change goes through', async () => {
      const accounts = server.latchkey.stores.accounts;
      const signIn = await accountSignIn(server, OWNER);
      assert.ok(hasForm(signIn.page, 'link-authenticator-form'), "the owner's type asks for the app");
      const secret = secretOf(signIn.page);
      const step = currentStep();
      let page = await savedCodes(signIn.browser, await submitFactor(signIn.browser, signIn.page, 'link-authenticator-form', { code: await codeFor(secret, step) }));
      assert.ok(onAccountPage(page), `${page.status} ${errorOf(page)}`);
      const browser = signIn.browser;
      page = await browser.get('/account/security');
      clock.advance(4000);

      page = await savePolicy(browser, page, { employee: 'pin' });
      assert.ok(testIds(page).includes('login-form'), `an old sign-in signs in again first: ${page.status} ${page.url}`);
      assert.match(page.html, /name="email" value="owner@acme.test"/, 'for the same person');
      assert.equal((await accounts.getTenant('acme'))!.userTypes.find((t) => t.id === 'employee')!.secondFactor, 'none', 'nothing changed yet');
      page = await submitLogin(browser, page, OWNER.email, PASSWORD);
      assert.ok(hasForm(page, 'enter-code-form'), `the factor again, not only the password: ${page.status}`);
      page = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, step + 1) });
      assert.ok(onAccountPage(page, '/account/security'), `back on the page: ${page.status} ${page.url} ${errorOf(page)}`);
      assert.match(noticeOf(page), /signed in again/);
      page = await savePolicy(browser, page, { employee: 'pin' });
      assert.ok(onAccountPage(page, '/account/security'), `${page.status} ${errorOf(page)}`);
      assert.equal((await accounts.getTenant('acme'))!.userTypes.find((t) => t.id === 'employee')!.secondFactor, 'pin');

      clock.advance(4000);
      const confirm = await browser.get('/account/users/jane-acme/reset-pin');
      assert.ok(testIds(confirm).includes('login-form'), "a reset's confirmation also asks to sign in again first");
      assert.equal((await browser.get('/account/security')).status, 200, 'reading a page needs no new sign-in');
    });
  });
}

/** The form action of the button marked `testid` (its own form). */
function actionOfButton(page: Page, testid: string): string {
  const form = new RegExp(`<form[^>]*action="([^"]+)"[^>]*>(?:(?!</form>)[^])*data-testid="${testid}"`).exec(page.html);
  assert.ok(form, `no form around ${testid}`);
  return form[1]!.replace(/&amp;/g, '&');
}
