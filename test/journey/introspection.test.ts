// Token introspection and revocation answer only a client that authenticates:
// anyone can name a public client, so naming one gets 401 and changes nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser } from '../support/browser.ts';
import { SETUPS, fixture, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';

function withPublicClient() {
  const doc = fixture();
  doc.tenants![0]!.clients!.push({ client_id: 'spa', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true });
  return doc;
}

for (const setup of SETUPS) {
  describe(`introspection and revocation (${setup})`, () => {
    let server: TestServer;
    let portal: RelyingParty;
    let spa: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: withPublicClient() });
      portal = await relyingParty(server.issuer);
      spa = await relyingParty(server.issuer, 'spa', null);
    });
    after(() => server.stop());

    async function tokensOf(rp: RelyingParty) {
      const { page, pending } = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
      return rp.callback(page.url, pending);
    }

    /** A form post as a public client: its client_id in the body, no secret. */
    async function asPublicClient(path: string, fields: Record<string, string>) {
      const res = await fetch(`${server.issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: 'spa', ...fields }),
      });
      const text = await res.text();
      return { status: res.status, type: res.headers.get('content-type') ?? '', body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    }

    it('refuses introspection to a public client (401), whatever the token', async () => {
      const own = await tokensOf(spa);
      const other = await tokensOf(portal);
      for (const token of [own.access_token, own.refresh_token!, other.access_token, 'not-a-token']) {
        const res = await asPublicClient('/token/introspection', { token });
        assert.equal(res.status, 401, token);
        assert.match(res.type, /^application\/json/);
        assert.equal(res.body.error, 'invalid_client');
        assert.equal(res.body.active, undefined, 'nothing about the token');
        assert.equal(res.body.sub, undefined, 'nothing about the token');
      }
    });

    it('refuses revocation to a public client (401), and the token keeps working', async () => {
      const own = await tokensOf(spa);
      for (const token of [own.refresh_token!, own.access_token, 'not-a-token']) {
        const res = await asPublicClient('/token/revocation', { token });
        assert.equal(res.status, 401, token);
        assert.equal(res.body.error, 'invalid_client');
      }
      assert.equal((await oidc.tokenIntrospection(portal.config, own.access_token)).active, true, 'the access token was not revoked');
      assert.ok((await oidc.refreshTokenGrant(spa.config, own.refresh_token!)).access_token, 'the refresh token was not revoked');
    });

    it('refuses a confidential client that leaves out its secret', async () => {
      const other = await tokensOf(portal);
      const res = await fetch(`${server.issuer}/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: 'portal', token: other.access_token }),
      });
      assert.equal(res.status, 401);
    });

    it('answers a confidential client with its secret: introspection, then revocation', async () => {
      const tokens = await tokensOf(portal);
      const info = await oidc.tokenIntrospection(portal.config, tokens.access_token);
      assert.equal(info.active, true);
      assert.equal(info.sub, 'bob-emp');
      await oidc.tokenRevocation(portal.config, tokens.refresh_token!);
      assert.equal((await oidc.tokenIntrospection(portal.config, tokens.refresh_token!)).active, false, 'revoked');
    });
  });
}
