// An application's secret is no way past the tenant owner's protections,
// also not sideways: unlocking or resetting a factor of another login of the
// owner's email leaves the identity's locks, which guard the owner's password,
// in place (the owner's page, a person, still lifts them), and so are the
// identity's upstream links, which the owner's sign-in uses; and an application
// may not change the second factor of a user type an owner has, which would
// take the owner's own factor away. A refusal changes nothing. Both store
// set-ups.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SETUPS, startServer, testClock, type TestClock, type TestServer } from '../support/latchkey.ts';
import { PROVISIONER, apiClient, apiFixture, tokenFor } from './support.ts';
import { passwordKey } from '../../src/limits.ts';

for (const setup of SETUPS) {
  describe(`the management API and the owner's protections (${setup})`, () => {
    let server: TestServer;
    let clock: TestClock;
    let token: string;
    let call: ReturnType<typeof apiClient>;

    before(async () => {
      const doc = apiFixture();
      const acme = doc.tenants![0]!;
      // The owner also has an employee login (one email, several logins), and a user type with a second factor.
      acme.logins!.push({ id: 'olga-emp', email: 'owner@acme.test', userType: 'employee', firstName: 'Olga', lastName: 'Owner' });
      acme.userTypes!.find((t) => t.id === 'owner')!.secondFactor = 'totp';
      clock = testClock();
      server = await startServer(setup, { doc, now: clock.now });
      call = apiClient(server.issuer);
      token = await tokenFor(server.issuer, PROVISIONER);
    });
    after(() => server.stop());
    beforeEach(() => clock.advance(61_000));

    const ownersPassword = passwordKey('owner@acme.test');
    async function lockOwnersPassword() {
      for (let i = 0; i < 5; i++) await server.latchkey.limiter.run({ targets: [ownersPassword] }, async () => false);
      assert.equal(await server.latchkey.limiter.state(ownersPassword), 'locked');
    }

    it("unlocking the owner's other login lifts its own locks, not the identity's that guard the owner", async () => {
      await lockOwnersPassword();
      assert.equal((await call(token, 'POST', '/logins/acme-owner/unlock')).status, 403);
      const sibling = await call(token, 'POST', '/logins/olga-emp/unlock');
      assert.equal(sibling.status, 200);
      assert.equal(await server.latchkey.limiter.state(ownersPassword), 'locked', JSON.stringify(sibling.body));
    });

    it("resetting a factor of the owner's other login does not lift them either", async () => {
      await lockOwnersPassword();
      assert.equal((await call(token, 'POST', '/logins/olga-emp/factors/totp/reset')).status, 200);
      assert.equal(await server.latchkey.limiter.state(ownersPassword), 'locked');
    });

    it("resetting a factor of the owner's other login leaves the owner's upstream links, and says so in the audit", async () => {
      const accounts = server.latchkey.stores.accounts;
      const identity = (await accounts.findIdentityByEmail('owner@acme.test'))!;
      const link = { issuer: 'https://upstream.example', subject: 'owner-sub', identityId: identity.id };
      await accounts.linkUpstream(link);
      assert.equal((await call(token, 'POST', '/logins/olga-emp/factors/totp/reset')).status, 200);
      assert.deepEqual(await accounts.listUpstreamLinks(identity.id), [link]);
      const [reset] = await accounts.listAudit({ tenant: 'acme', login: 'olga-emp', type: 'factor.totp.reset' });
      assert.deepEqual(reset!.detail, { client: PROVISIONER.id, upstreamKept: 1 });
      assert.deepEqual(await accounts.listAudit({ tenant: 'acme', type: 'upstream.unlinked' }), []);
    });

    it("may not change the factor of the owner's user type, nor its name in the same request; other types it may", async () => {
      for (const secondFactor of ['none', 'pin']) {
        const refused = await call(token, 'PATCH', '/user-types/owner', { body: { name: 'Boss', secondFactor } });
        assert.equal(refused.status, 403, secondFactor);
        assert.match(refused.body.detail, /owner of the organisation has this user type/);
      }
      const owner = (await server.latchkey.stores.accounts.getTenant('acme'))!.userTypes.find((t) => t.id === 'owner');
      assert.deepEqual(owner, { id: 'owner', name: 'Owner', secondFactor: 'totp' }, 'nothing changed');
      assert.equal((await call(token, 'PATCH', '/user-types/owner', { body: { name: 'Owners' } })).status, 200, 'renaming it is harmless');
      assert.equal((await call(token, 'PATCH', '/user-types/manager', { body: { secondFactor: 'pin' } })).status, 200);
    });
  });
}
