// Refresh tokens only with offline_access granted: a first-party client by
// asking for it, a third-party one when the person allows it on the consent
// page; a public client's refresh token works once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { SETUPS, callbackReached, fixture, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';

const WITHOUT_OFFLINE = 'openid email profile';
const WITH_OFFLINE = 'openid email profile offline_access';

function withPublicClient() {
  const doc = fixture();
  doc.tenants![0]!.clients!.push({ client_id: 'spa', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true });
  return doc;
}

async function consentTo(browser: Browser, consent: Page): Promise<Page> {
  assert.ok(testIds(consent).includes('consent-form'), `expected consent, got ${consent.status} ${consent.url}`);
  return browser.post(actionOf(consent, 'consent-form'), { csrf: csrfOf(consent) });
}

for (const setup of SETUPS) {
  describe(`refresh tokens (${setup})`, () => {
    let server: TestServer;
    let portal: RelyingParty;
    let partner: RelyingParty;
    let spa: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: withPublicClient() });
      portal = await relyingParty(server.issuer);
      partner = await relyingParty(server.issuer, 'partner', 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d');
      spa = await relyingParty(server.issuer, 'spa', null);
    });
    after(() => server.stop());

    it('a first-party client that does not ask for offline_access gets none', async () => {
      const { page, pending } = await signIn(new Browser(server.issuer), portal, { email: 'bob@acme.test' }, { scope: WITHOUT_OFFLINE });
      assert.ok(callbackReached(page));
      const tokens = await portal.callback(page.url, pending);
      assert.ok(tokens.access_token);
      assert.equal(tokens.refresh_token, undefined);
    });

    it('a first-party client that asks for offline_access gets one without a consent page, also in a session that had none', async () => {
      const browser = new Browser(server.issuer);
      const first = await signIn(browser, portal, { email: 'bob@acme.test' }, { scope: WITHOUT_OFFLINE });
      assert.equal((await portal.callback(first.page.url, first.pending)).refresh_token, undefined);

      const pending = await portal.authorize({ scope: WITH_OFFLINE });
      const page = await browser.get(pending.url);
      assert.ok(callbackReached(page), `single sign-on, no consent page: ${page.status} ${page.url}`);
      const tokens = await portal.callback(page.url, pending);
      assert.ok(tokens.refresh_token, 'a refresh token');
      assert.match(tokens.scope ?? '', /\boffline_access\b/);
      assert.ok((await oidc.refreshTokenGrant(portal.config, tokens.refresh_token!)).access_token);
    });

    it('a third-party client that does not ask for offline_access gets none', async () => {
      const browser = new Browser(server.issuer);
      const { page: consent, pending } = await signIn(browser, partner, { email: 'bob@acme.test' }, { scope: WITHOUT_OFFLINE });
      assert.doesNotMatch(consent.html, /stay connected/);
      const page = await consentTo(browser, consent);
      assert.ok(callbackReached(page));
      assert.equal((await partner.callback(page.url, pending)).refresh_token, undefined);
    });

    it('a third-party client asking for offline_access without prompt=consent gets none', async () => {
      const browser = new Browser(server.issuer);
      const { page: consent, pending } = await signIn(browser, partner, { email: 'bob@acme.test' }, { scope: WITH_OFFLINE });
      assert.doesNotMatch(consent.html, /stay connected/);
      const page = await consentTo(browser, consent);
      assert.ok(callbackReached(page));
      assert.equal((await partner.callback(page.url, pending)).refresh_token, undefined);
    });

    it('a third-party client gets one when the consent page asked for offline_access and the person allowed it', async () => {
      const browser = new Browser(server.issuer);
      const { page: consent, pending } = await signIn(browser, partner, { email: 'bob@acme.test' }, { scope: WITH_OFFLINE, prompt: 'consent' });
      assert.match(consent.html, /To stay connected when you are not using it/, 'the consent page says so');
      const page = await consentTo(browser, consent);
      assert.ok(callbackReached(page));
      const tokens = await partner.callback(page.url, pending);
      assert.ok(tokens.refresh_token, 'a refresh token');
      assert.ok((await oidc.refreshTokenGrant(partner.config, tokens.refresh_token!)).access_token);
    });

    it("a public client's refresh token works once: each refresh gives a new one and the old one is refused", async () => {
      const { page, pending } = await signIn(new Browser(server.issuer), spa, { email: 'bob@acme.test' }, { scope: WITH_OFFLINE });
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      const tokens = await spa.callback(page.url, pending);
      assert.ok(tokens.refresh_token, 'a refresh token');
      const refreshed = await oidc.refreshTokenGrant(spa.config, tokens.refresh_token!);
      assert.ok(refreshed.refresh_token, 'a new refresh token');
      assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
      await assert.rejects(oidc.refreshTokenGrant(spa.config, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'the used one is refused');
    });

    it("a confidential client's refresh token works once too: each refresh hands out the next", async () => {
      const { page, pending } = await signIn(new Browser(server.issuer), portal, { email: 'bob@acme.test' }, { scope: WITH_OFFLINE });
      const tokens = await portal.callback(page.url, pending);
      const refreshed = await oidc.refreshTokenGrant(portal.config, tokens.refresh_token!);
      assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'a new refresh token');
      await assert.rejects(oidc.refreshTokenGrant(portal.config, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'the used one is refused');
    });
  });
}
