// Authorization codes and refresh tokens are redeemed exactly once, also when
// one is sent many times at once: real parallel POSTs to the token endpoint.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser } from '../support/browser.ts';
import { REDIRECT_URI, SETUPS, callbackReached, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';

const CLIENT = { id: 'portal', secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d' };

for (const setup of SETUPS) {
  describe(`single-use codes and refresh tokens (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup);
      rp = await relyingParty(server.issuer, CLIENT.id, CLIENT.secret);
    });
    after(() => server.stop());

    async function token(form: Record<string, string>) {
      const res = await fetch(rp.config.serverMetadata().token_endpoint!, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams(form),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    }

    async function codeOfSignIn() {
      const { page, pending } = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(page), `expected the RP callback, got ${page.status} ${page.url}`);
      const code = new URL(page.url).searchParams.get('code');
      assert.ok(code);
      return { code, verifier: pending.verifier };
    }

    const fiveAtOnce = <T>(call: () => Promise<T>) => Promise.all(Array.from({ length: 5 }, call));

    it('redeems one authorization code sent five times at once exactly once', async () => {
      const { code, verifier } = await codeOfSignIn();
      const answers = await fiveAtOnce(() => token({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI }));
      const won = answers.filter((a) => a.status === 200);
      assert.equal(won.length, 1, JSON.stringify(answers.map((a) => a.status)));
      assert.ok(won[0]!.body.access_token && won[0]!.body.refresh_token);
      for (const a of answers.filter((x) => x.status !== 200)) {
        assert.equal(a.status, 400);
        assert.equal(a.body.error, 'invalid_grant');
      }
    });

    it('rotates one refresh token sent five times at once into one chain', async () => {
      const { code, verifier } = await codeOfSignIn();
      const first = await token({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI });
      assert.equal(first.status, 200);
      const answers = await fiveAtOnce(() => token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token! }));
      const won = answers.filter((a) => a.status === 200);
      assert.equal(won.length, 1, JSON.stringify(answers.map((a) => a.status)));
      for (const a of answers.filter((x) => x.status !== 200)) assert.equal(a.body.error, 'invalid_grant');
      assert.notEqual(won[0]!.body.refresh_token, first.body.refresh_token);
      // A loser that came after the winner was a reuse, which revokes the grant (oidc-provider's rule), so
      // whether the new token lives depends on timing; the spent one never works again.
      const again = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token! });
      assert.equal(again.body.error, 'invalid_grant');
    });
  });
}
