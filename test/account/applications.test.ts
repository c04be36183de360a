// The owner registers the tenant's applications: redirect URIs checked, the
// secret shown once and stored hashed, first-party or not, a minimum sign-in
// level; a real relying party (openid-client) signs in with it. A new secret
// stops the old one at once; removing the app stops its tokens at once. Only
// the owner, with CSRF and a recent sign-in. Embedded store and MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, testIds, textOf, csrfOf } from '../support/browser.ts';
import { REDIRECT_URI, SETUPS, callbackReached, relyingParty, signIn, startServer, testClock, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS } from '../support/factors.ts';
import { accountFixture, errorOf, noticeOf, onAccountPage, signedIn, submit } from './support.ts';

const OWNER = { email: 'owner@acme.test' };
const JANE = { email: 'jane@acme.test', login: 'jane-acme' };

for (const setup of SETUPS) {
  describe(`the owner's applications (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();
    let app: { clientId: string; secret: string };
    let refreshToken: string;
    let accessToken: string;

    before(async () => {
      server = await startServer(setup, { doc: accountFixture(), env: SHORT_LOCKS, now: clock.now });
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const tenantAudit = async (type: string) => (await accounts().listAudit({ tenant: 'acme', type })).filter((e) => e.type === type);

    async function register(fields: Record<string, string>) {
      const { browser, page } = await signedIn(server, OWNER, '/account/applications');
      const done = await submit(browser, page, 'register-app-form', {
        name: 'Rota',
        redirect_uris: REDIRECT_URI,
        first_party: 'yes',
        min_acr: '',
        client_type: 'confidential',
        ...fields,
      });
      return { browser, page, done };
    }

    it('registers an app: the secret is shown once and stored hashed; a relying party signs in with it', async () => {
      const { browser, done } = await register({ redirect_uris: `${REDIRECT_URI}\n\n  ${REDIRECT_URI}  \nhttps://rota.example/cb` });
      assert.equal(done.status, 200, errorOf(done));
      const clientId = textOf(done, 'client-id')!;
      const secret = textOf(done, 'client-secret')!;
      assert.match(clientId, /^rota-[0-9a-f]{8}$/);
      assert.ok(secret.length >= 32, 'at least 32 characters');
      assert.equal(done.headers.get('cache-control'), 'no-store');
      const stored = (await accounts().getClient(clientId))!;
      assert.equal(stored.tenant, 'acme');
      assert.equal(stored.firstParty, true);
      assert.deepEqual(stored.metadata.redirect_uris, [REDIRECT_URI, 'https://rota.example/cb']);
      assert.match(String(stored.metadata.client_secret), /^hmac-sha256\./, 'hashed at rest');
      assert.ok(!JSON.stringify(stored).includes(secret));
      const list = await browser.get('/account/applications');
      assert.ok(testIds(list).includes(`app-${clientId}`));
      assert.ok(!list.html.includes(secret), 'never shown again');
      assert.deepEqual((await tenantAudit('client.added'))[0]?.detail, { by: 'acme-owner', app: clientId, firstParty: true, minAcr: null });

      const rp = await relyingParty(server.issuer, clientId, secret);
      const { page, pending } = await signIn(new Browser(server.issuer), rp, JANE);
      assert.ok(callbackReached(page), `first-party: no consent page (${page.status} ${page.url})`);
      const tokens = await rp.callback(page.url, pending);
      assert.equal(tokens.claims()!.sub, 'jane-acme');
      app = { clientId, secret };
      refreshToken = tokens.refresh_token!;
      accessToken = tokens.access_token;
      assert.ok(refreshToken, 'offline_access granted to a first-party app');
    });

    it("refuses bad redirect URIs, names and choices, storing nothing; a minimum level becomes the app's default_acr_values", async () => {
      const before = (await accounts().listClients('acme')).length;
      const cases: Record<string, string>[] = [
        { redirect_uris: 'http://evil.example/cb' },
        { redirect_uris: 'javascript:alert(1)' },
        { redirect_uris: 'https://rota.example/cb#x' },
        { redirect_uris: 'not a url' },
        { redirect_uris: '' },
        { redirect_uris: Array.from({ length: 21 }, (_, i) => `https://rota.example/${i}`).join('\n') },
        { name: '' },
        { name: 'Bad\u202ename' },
        { first_party: 'maybe' },
        { min_acr: 'urn:other' },
        { client_type: 'weird' },
      ];
      for (const fields of cases) {
        const { done } = await register(fields);
        assert.equal(done.status, 400, JSON.stringify(fields).slice(0, 80));
      }
      assert.equal((await accounts().listClients('acme')).length, before, 'nothing stored');

      const { done } = await register({ name: 'Pharmacy', min_acr: 'urn:latchkey:acr:pin' });
      const clientId = textOf(done, 'client-id')!;
      assert.deepEqual((await accounts().getClient(clientId))!.metadata.default_acr_values, ['urn:latchkey:acr:pin']);
      // Jane's type needs no factor and she has no PIN; the tenant does not let her set one up on the spot.
      const rp = await relyingParty(server.issuer, clientId, textOf(done, 'client-secret')!);
      const { page } = await signIn(new Browser(server.issuer), rp, JANE);
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      assert.equal(new URL(page.url).searchParams.get('error'), 'unmet_authentication_requirements', "the app's minimum is enforced");
    });

    it('a new secret stops the old one at once', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/applications');
      const confirm = await browser.post(`/account/applications/${app.clientId}/rotate`, { csrf: csrfOf(page) });
      assert.ok(testIds(confirm).includes('confirm-app-form'), `${confirm.status} ${errorOf(confirm)}`);
      const done = await submit(browser, confirm, 'confirm-app-form');
      const secret = textOf(done, 'client-secret')!;
      assert.ok(secret && secret !== app.secret);
      assert.deepEqual((await tenantAudit('client.secret_rotated'))[0]?.detail, { by: 'acme-owner', app: app.clientId });

      const old = await relyingParty(server.issuer, app.clientId, app.secret);
      await assert.rejects(oidc.refreshTokenGrant(old.config, refreshToken), (err: { error?: string }) => err.error === 'invalid_client', 'the old secret is refused');
      const current = await relyingParty(server.issuer, app.clientId, secret);
      const refreshed = await oidc.refreshTokenGrant(current.config, refreshToken);
      refreshToken = refreshed.refresh_token!;
      accessToken = refreshed.access_token;
      app.secret = secret;
      const none = (await accounts().listClients('acme')).find((c) => c.metadata.token_endpoint_auth_method === 'none');
      assert.equal(none, undefined, 'no public app here yet');
    });

    it('removes an app: its access and refresh tokens stop working at once', async () => {
      const rp = await relyingParty(server.issuer, app.clientId, app.secret);
      const before = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(before.status, 200, 'the access token works');
      const { browser, page } = await signedIn(server, OWNER, '/account/applications');
      const confirm = await browser.post(`/account/applications/${app.clientId}/remove`, { csrf: csrfOf(page) });
      assert.ok(testIds(confirm).includes('confirm-app-form'));
      assert.ok(await accounts().getClient(app.clientId), 'asked first');
      const done = await submit(browser, confirm, 'confirm-app-form');
      assert.ok(onAccountPage(done, '/account/applications'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /tokens no longer work/);
      assert.equal(await accounts().getClient(app.clientId), null);
      assert.deepEqual((await tenantAudit('client.removed'))[0]?.detail, { by: 'acme-owner', app: app.clientId });

      const after = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(after.status, 401, 'userinfo refuses its access token');
      await assert.rejects(oidc.refreshTokenGrant(rp.config, refreshToken), (err: { error?: string }) => err.error === 'invalid_client');
      const portal = await relyingParty(server.issuer);
      const introspected = await oidc.tokenIntrospection(portal.config, accessToken);
      assert.equal(introspected.active, false, 'another app of the tenant sees it inactive');
      const authorize = await new Browser(server.issuer).get(
        `${server.issuer}/auth?client_id=${app.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=x&code_challenge_method=S256`,
      );
      assert.equal(authorize.status, 400, 'no sign-in for it any more');
    });

    it('registers a public app without a secret (PKCE), which has no secret to rotate', async () => {
      const { browser, done } = await register({ name: 'Mobile', client_type: 'public' });
      const clientId = textOf(done, 'client-id')!;
      assert.ok(!testIds(done).includes('client-secret'));
      assert.equal((await accounts().getClient(clientId))!.metadata.token_endpoint_auth_method, 'none');
      const rp = await relyingParty(server.issuer, clientId, null);
      const { page, pending } = await signIn(new Browser(server.issuer), rp, JANE);
      assert.ok(callbackReached(page));
      assert.equal((await rp.callback(page.url, pending)).claims()!.sub, 'jane-acme');
      const list = await browser.get('/account/applications');
      assert.ok(!testIds(list).includes(`rotate-${clientId}`));
      assert.equal((await browser.post(`/account/applications/${clientId}/rotate`, { csrf: csrfOf(list), confirm: 'yes' })).status, 400);
    });

    it("refuses non-owners (403), forged forms (403) and another tenant's owner (403), and asks an old sign-in to sign in again", async () => {
      const before = await accounts().listClients('acme');
      const jane = await signedIn(server, JANE);
      const csrf = csrfOf(jane.page);
      for (const path of ['/account/applications', '/account/applications/portal/rotate', '/account/applications/portal/remove'])
        assert.equal((await jane.browser.get(path)).status, 403, path);
      for (const [path, fields] of [
        ['/account/applications', { name: 'X', redirect_uris: REDIRECT_URI, first_party: 'yes' }],
        ['/account/applications/portal/rotate', { confirm: 'yes' }],
        ['/account/applications/portal/remove', { confirm: 'yes' }],
      ] as const) {
        assert.equal((await jane.browser.post(path, { csrf, ...fields })).status, 403, path);
      }
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/applications');
      assert.ok(testIds(gina.page).includes('app-globex-app') && !testIds(gina.page).includes('app-portal'), "Globex's own only");
      assert.equal((await gina.browser.post('/account/applications/portal/remove', { csrf: csrfOf(gina.page), confirm: 'yes' })).status, 403);
      assert.equal((await gina.browser.post('/account/applications/portal/rotate', { csrf: csrfOf(gina.page), confirm: 'yes' })).status, 403);
      const { browser, page } = await signedIn(server, OWNER, '/account/applications');
      assert.equal((await browser.post('/account/applications/portal/remove', { confirm: 'yes' })).status, 403, 'no token');
      assert.equal((await browser.post('/account/applications/portal/remove', { csrf: csrfOf(page), confirm: 'yes' }, { origin: 'http://evil.example' })).status, 403);
      assert.deepEqual(await accounts().listClients('acme'), before);

      clock.advance(16 * 60_000);
      const old = await browser.post('/account/applications/portal/rotate', { csrf: csrfOf(page), confirm: 'yes' });
      assert.ok(testIds(old).includes('login-form'), `an old sign-in signs in again first: ${old.status}`);
      assert.deepEqual(await accounts().listClients('acme'), before, 'nothing changed yet');
    });
  });
}
