// Relying parties' client secrets are stored as keyed hashes: the token
// endpoint checks a presented secret against the hash, and a secret stored in
// plain text before is hashed on the next start. On both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { importDocument } from '../../src/import/index.ts';
import { REDIRECT_URI, SETUPS, fixture, startServer, type TestServer } from '../support/latchkey.ts';

const LEGACY = { id: 'legacy-app', secret: 'legacy-plain-secret-0f3b8e2a9c4d7f1e6b5a' };

for (const setup of SETUPS) {
  describe(`client secrets at rest (${setup})`, () => {
    let server: TestServer;

    before(async () => {
      server = await startServer(setup);
    });
    after(() => server.stop());

    const clientCredentials = (id: string, secret: string) =>
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, string> }));

    it('authenticates a client by its hashed secret and refuses a wrong one', async () => {
      const { accounts } = server.latchkey.stores;
      const acme = fixture().tenants![0]!;
      const secret = 'machine-secret-7d2f9a4c1e8b3f6a0d5c9e2b7a4f';
      await importDocument(
        { tenants: [{ ...acme, logins: [], clients: [{ client_id: 'machine', client_secret: secret, redirect_uris: [REDIRECT_URI], grant_types: ['client_credentials'] }] }] },
        { accounts, hasher: server.latchkey.hasher, config: server.latchkey.config },
      );
      const stored = String((await accounts.getClient('machine'))!.metadata.client_secret);
      assert.notEqual(stored, secret);
      assert.ok(!stored.includes(secret));

      const ok = await clientCredentials('machine', secret);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.ok(ok.body.access_token);
      for (const wrong of [`${secret}x`, secret.slice(0, -1), stored]) {
        const refused = await clientCredentials('machine', wrong);
        assert.equal(refused.status, 401, wrong);
        assert.equal(refused.body.error, 'invalid_client');
      }
    });

    it('hashes a secret stored in plain text before at the next start, and it keeps working', async () => {
      const { accounts } = server.latchkey.stores;
      await accounts.upsertClient({
        clientId: LEGACY.id,
        tenant: 'acme',
        firstParty: false,
        metadata: { client_id: LEGACY.id, client_secret: LEGACY.secret, redirect_uris: [REDIRECT_URI], grant_types: ['client_credentials'] },
      });
      await server.restart();
      const stored = String((await server.latchkey.stores.accounts.getClient(LEGACY.id))!.metadata.client_secret);
      assert.notEqual(stored, LEGACY.secret);
      assert.match(stored, /^hmac-sha256\./);
      assert.equal((await clientCredentials(LEGACY.id, LEGACY.secret)).status, 200);
      assert.equal((await clientCredentials(LEGACY.id, 'legacy-plain-secret-0f3b8e2a9c4d7f1e6b5b')).status, 401);
    });
  });
}
