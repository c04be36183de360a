// The sign-in journey's first part (email and password, the login choice, consent) with a real
// relying party (openid-client), on the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import argon2 from 'argon2';
import { importDocument } from '../../src/import/index.ts';
import { Browser, actionOf, csrfOf, testIds } from '../support/browser.ts';
import { SETUPS, callbackReached, fixture, relyingParty, signIn, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';

for (const setup of SETUPS) {
  describe(`password sign-in (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup);
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it('advertises the acr values weakest first, PKCE S256 and the claims in discovery', async () => {
      const meta = rp.config.serverMetadata();
      assert.deepEqual(meta.acr_values_supported, ['urn:latchkey:acr:1fa', 'urn:latchkey:acr:pin', 'urn:latchkey:acr:totp', 'urn:latchkey:acr:passkey']);
      assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
      for (const claim of ['tenant', 'user_type', 'email', 'given_name', 'family_name']) assert.ok(meta.claims_supported?.includes(claim), claim);
    });

    it('signs in a person with one login: no selection page, claims, amr and acr', async () => {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email: 'Bob@ACME.test' });
      assert.ok(callbackReached(page), `expected the RP callback, got ${page.status} ${page.url}`);
      const tokens = await rp.callback(page.url, pending);
      const claims = tokens.claims()!;
      assert.equal(claims.sub, 'bob-emp');
      assert.deepEqual(claims.amr, ['pwd']);
      assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
      assert.equal(claims.email, 'bob@acme.test');
      assert.equal(claims.email_verified, true);
      assert.equal(claims.name, 'Bob Baker');
      assert.equal(claims.given_name, 'Bob');
      assert.equal(claims.family_name, 'Baker');
      assert.equal(claims.tenant, 'acme');
      assert.equal(claims.user_type, 'employee');
      const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, 'bob-emp');
      assert.equal(info.user_type, 'employee');
      assert.equal(info.tenant, 'acme');
    });

    it('rehashes a password imported with stronger parameters to the configured ones at the next sign-in', async () => {
      const { config, hasher, stores } = server.latchkey;
      const password = 'a stronger imported password';
      const stronger = await argon2.hash(password, { type: argon2.argon2id, memoryCost: config.argon2.memoryCost * 2, timeCost: config.argon2.timeCost + 1, parallelism: 1 });
      await importDocument(
        {
          identities: [{ email: 'strong@acme.test', passwordHash: stronger }],
          tenants: [
            { ...fixture().tenants![0]!, logins: [{ id: 'strong-emp', email: 'strong@acme.test', userType: 'employee', firstName: 'Sam', lastName: 'Strong' }], clients: [] },
          ],
        },
        { accounts: stores.accounts, hasher, config },
      );
      const { page } = await signIn(new Browser(server.issuer), rp, { email: 'strong@acme.test', password });
      assert.ok(callbackReached(page), `expected the RP callback, got ${page.status} ${page.url}`);
      const stored = (await stores.accounts.findIdentityByEmail('strong@acme.test'))!.passwordHash!;
      assert.notEqual(stored, stronger);
      assert.equal(hasher.needsRehash(stored), false, stored);
      assert.ok(await hasher.verify(stored, password));
    });

    it('asks a person with two logins to choose, and the chosen login is the subject', async () => {
      const browser = new Browser(server.issuer);
      const pending = await rp.authorize();
      let page = await browser.get(pending.url);
      page = await submitLogin(browser, page, 'jane@acme.test', 'correct horse battery staple');
      assert.equal(page.status, 200);
      assert.ok(testIds(page).includes('select-form'));
      assert.match(page.html, /Jane Doe<\/span> — <span class="type">Employee/);
      assert.match(page.html, /Jane Doe<\/span> — <span class="type">Manager/);
      page = await browser.post(actionOf(page, 'select-form'), { login: 'jane-mgr', csrf: csrfOf(page) });
      assert.ok(callbackReached(page));
      const claims = (await rp.callback(page.url, pending)).claims()!;
      assert.equal(claims.sub, 'jane-mgr');
      assert.equal(claims.user_type, 'manager');
    });

    it("refuses a login that is not one of the identity's (400) and keeps the choice open", async () => {
      const browser = new Browser(server.issuer);
      const pending = await rp.authorize();
      let page = await browser.get(pending.url);
      page = await submitLogin(browser, page, 'jane@acme.test', 'correct horse battery staple');
      const action = actionOf(page, 'select-form');
      const csrf = csrfOf(page);
      const refused = await browser.post(action, { login: 'bob-emp', csrf });
      assert.equal(refused.status, 400);
      page = await browser.post(action, { login: 'jane-emp', csrf });
      assert.ok(callbackReached(page));
      assert.equal((await rp.callback(page.url, pending)).claims()!.sub, 'jane-emp');
    });

    it('answers a wrong password and an unknown email identically, with one argon2 verification each', async () => {
      const browser = new Browser(server.issuer);
      // Count the verifications each answer costs: the same work is what makes the same time (a timer
      // would measure the machine's load as much as the code).
      const hasher = server.latchkey.hasher;
      const calls: string[] = [];
      const { verify, dummyVerify } = hasher;
      hasher.verify = (...args) => (calls.push('verify'), verify.apply(hasher, args));
      hasher.dummyVerify = (...args) => (calls.push('dummy'), dummyVerify.apply(hasher, args));
      const attempt = async (email: string, password: string) => {
        const pending = await rp.authorize();
        const page = await browser.get(pending.url);
        calls.length = 0;
        const res = await submitLogin(browser, page, email, password);
        return { res, verifications: [...calls], csrf: csrfOf(page) };
      };
      try {
        const wrong = await attempt('bob@acme.test', 'not the password');
        const unknown = await attempt('nobody@acme.test', 'not the password');
        assert.equal(wrong.res.status, 400);
        assert.equal(unknown.res.status, 400);
        const normalize = (html: string, csrf: string, email: string) =>
          html
            .replaceAll(csrf, 'CSRF')
            .replace(/\/interaction\/[^/"]+/g, '/interaction/UID')
            .replaceAll(email, 'EMAIL');
        assert.equal(normalize(wrong.res.html, wrong.csrf, 'bob@acme.test'), normalize(unknown.res.html, unknown.csrf, 'nobody@acme.test'));
        assert.match(wrong.res.html, /The email address or password is not correct/);
        assert.deepEqual(wrong.verifications, ['verify'], 'a wrong password: one verification of the stored hash');
        assert.deepEqual(unknown.verifications, ['dummy'], 'an unknown email: one verification of the dummy hash, made with the same parameters');
      } finally {
        hasher.verify = verify;
        hasher.dummyVerify = dummyVerify;
      }
    });

    it("shows a clear error page when the identity has no login in the client's tenant", async () => {
      const browser = new Browser(server.issuer);
      const pending = await rp.authorize();
      const page = await submitLogin(browser, await browser.get(pending.url), 'gina@globex.test', 'correct horse battery staple');
      assert.equal(page.status, 403);
      assert.match(page.html, /no access to this application/);
      assert.ok(!callbackReached(page));
    });

    it("does not reuse a session of another tenant's login for this tenant's client", async () => {
      const browser = new Browser(server.issuer);
      const globex = await relyingParty(server.issuer, 'globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d');
      const first = await signIn(browser, globex, { email: 'gina@globex.test' });
      assert.ok(callbackReached(first.page));
      const pending = await rp.authorize();
      const page = await browser.get(pending.url);
      assert.ok(testIds(page).includes('login-form'), 'the acme client must ask for a sign-in');
    });

    it('refuses a replayed authorization code', async () => {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email: 'bob@acme.test' });
      await rp.callback(page.url, pending);
      await assert.rejects(rp.callback(page.url, pending), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    });

    it('issues a refresh token that works', async () => {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email: 'bob@acme.test' });
      const tokens = await rp.callback(page.url, pending);
      assert.ok(tokens.refresh_token);
      const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
      assert.ok(refreshed.access_token);
      assert.equal(refreshed.claims()!.sub, 'bob-emp');
      assert.equal(refreshed.claims()!.acr, 'urn:latchkey:acr:1fa');
    });

    it("asks a third-party client's user for consent, then returns a code", async () => {
      const partner = await relyingParty(server.issuer, 'partner', 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d');
      const browser = new Browser(server.issuer);
      const { page: consent, pending } = await signIn(browser, partner, { email: 'bob@acme.test' });
      assert.ok(testIds(consent).includes('consent-form'), `expected consent, got ${consent.status} ${consent.url}`);
      assert.match(consent.html, /Partner App/);
      const page = await browser.post(actionOf(consent, 'consent-form'), { csrf: csrfOf(consent) });
      assert.ok(callbackReached(page));
      assert.equal((await partner.callback(page.url, pending)).claims()!.sub, 'bob-emp');
    });

    it('keeps the session across a server restart', async () => {
      const browser = new Browser(server.issuer);
      const first = await signIn(browser, rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(first.page));
      await server.restart();
      const pending = await rp.authorize();
      const page = await browser.get(pending.url);
      assert.ok(callbackReached(page), `expected single sign-on after restart, got ${page.status}`);
      assert.equal((await rp.callback(page.url, pending)).claims()!.sub, 'bob-emp');
    });

    it('signs out through RP-initiated logout', async () => {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email: 'bob@acme.test' });
      const tokens = await rp.callback(page.url, pending);
      const logout = await browser.get(oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token! }).href);
      assert.equal(logout.status, 200);
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(logout.html)?.[1];
      assert.ok(xsrf, 'logout confirmation form');
      const done = await browser.post(/action="([^"]+)"/.exec(logout.html)![1]!, { xsrf, logout: 'yes' });
      assert.equal(done.status, 200);
      const again = await browser.get((await rp.authorize()).url);
      assert.ok(testIds(again).includes('login-form'), 'signed out: the next authorization asks for a sign-in');
    });
  });
}
