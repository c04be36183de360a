// The SCIM store's contract (src/storage/scim/port.ts) on SQLite and MongoDB
// (FerretDB here): tokens found by their hash until revoked, per tenant; a
// userName unique in its tenant without case, also when two connections give
// it to two logins at once; externalIds kept per login.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mongoConnections, sqliteConnections } from '../support/connections.ts';
import type { ScimStore, ScimToken } from '../../src/storage/scim/port.ts';
import { createSqliteScimStore } from '../../src/storage/scim/sqlite/index.ts';
import { createMongoScimStore } from '../../src/storage/scim/mongo/index.ts';

interface Harness {
  open(n: number): Promise<ScimStore[]>;
  cleanup(): Promise<void>;
}

function sqliteHarness(): Harness {
  const connections = sqliteConnections();
  return { open: async (n) => (await connections.open(n)).map(createSqliteScimStore), cleanup: () => connections.cleanup() };
}

function mongoHarness(): Harness {
  const connections = mongoConnections();
  return {
    async open(n) {
      const stores = (await connections.open(n)).map(createMongoScimStore);
      await stores[0]!.init();
      return stores;
    },
    cleanup: () => connections.cleanup(),
  };
}

const token = (tenant: string, hash = `hmac-sha256.${randomUUID()}`): ScimToken => ({
  id: randomUUID(),
  tenant,
  label: 'Entra ID',
  hash,
  createdAt: new Date(),
  createdBy: 'acme-owner',
  revokedAt: null,
});

for (const [name, make] of [
  ['sqlite', sqliteHarness],
  ['mongodb', mongoHarness],
] as const) {
  describe(`scim store contract (${name})`, () => {
    let h: Harness;
    before(() => {
      h = make();
    });
    after(() => h.cleanup());

    it('finds a token by its hash until it is revoked, and revokes only in its own tenant', async () => {
      const [store] = await h.open(1);
      const t = token('acme');
      await store!.addToken(t);
      await store!.addToken(token('globex'));
      const found = await store!.findToken(t.hash);
      assert.equal(found?.id, t.id);
      assert.equal(found?.tenant, 'acme');
      assert.equal(await store!.findToken('hmac-sha256.unknown'), null);
      assert.deepEqual(
        (await store!.listTokens('acme')).map((x) => x.id),
        [t.id],
      );
      assert.equal(await store!.revokeToken('globex', t.id, new Date()), false, "another tenant's id");
      assert.ok(await store!.findToken(t.hash), 'still valid after a refused revoke');
      const at = new Date();
      assert.equal(await store!.revokeToken('acme', t.id, at), true);
      assert.equal(await store!.revokeToken('acme', t.id, new Date()), false, 'revoked once');
      assert.equal(await store!.findToken(t.hash), null);
      const listed = await store!.listTokens('acme');
      assert.equal(listed.length, 1, 'a revoked token stays listed');
      assert.equal(listed[0]!.revokedAt?.getTime(), at.getTime());
    });

    it('keeps a userName unique in its tenant without case, and lets another tenant use it', async () => {
      const [store] = await h.open(1);
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'a', userName: 'Jane@Acme.test', externalId: 'x1' }), true);
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'b', userName: 'jane@acme.TEST', externalId: null }), false);
      assert.equal(await store!.getUser('acme', 'b'), null, 'a refused name changes nothing');
      assert.equal(await store!.setUser({ tenant: 'globex', loginId: 'g', userName: 'jane@acme.test', externalId: null }), true);
      assert.equal((await store!.findByUserName('acme', 'JANE@acme.test'))?.loginId, 'a');
      assert.equal((await store!.findByUserName('acme', 'JANE@acme.test'))?.userName, 'Jane@Acme.test', 'the case as given');
      assert.equal((await store!.findByUserName('globex', 'jane@acme.test'))?.loginId, 'g');
      // Renaming frees the old name; the same login may keep its own name.
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'a', userName: 'jane.doe', externalId: 'x1' }), true);
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'a', userName: 'JANE.DOE', externalId: 'x1' }), true);
      assert.equal(await store!.findByUserName('acme', 'jane@acme.test'), null);
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'b', userName: 'jane@acme.test', externalId: null }), true);
      // Logins without a name never clash.
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'c', userName: null, externalId: 'x1' }), true);
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'd', userName: null, externalId: null }), true);
      assert.deepEqual(
        (await store!.findByExternalId('acme', 'x1')).map((u) => u.loginId),
        ['a', 'c'],
      );
      assert.deepEqual(await store!.findByExternalId('acme', 'X1'), [], 'externalId is exact');
      assert.deepEqual((await store!.getUsers('acme', ['a', 'b', 'zz'])).map((u) => u.loginId).sort(), ['a', 'b']);
      await store!.removeUser('acme', 'a');
      assert.equal(await store!.getUser('acme', 'a'), null);
      assert.equal(await store!.findByUserName('acme', 'jane.doe'), null);
      assert.equal(await store!.setUser({ tenant: 'acme', loginId: 'e', userName: 'jane.doe', externalId: null }), true, 'a removed login frees its name');
    });

    it('gives a userName to one of two logins named at once over separate connections', async () => {
      const stores = await h.open(4);
      for (let round = 0; round < 5; round++) {
        const userName = `race-${round}@acme.test`;
        const results = await Promise.all(stores.map((s, i) => s.setUser({ tenant: 'acme', loginId: `r${round}-${i}`, userName, externalId: null })));
        assert.equal(results.filter(Boolean).length, 1, `one winner in round ${round}: ${results}`);
        const holder = await stores[0]!.findByUserName('acme', userName);
        assert.equal(holder?.loginId, `r${round}-${results.indexOf(true)}`);
      }
    });

    it('names one login from several connections at once without an error (a retried create)', async () => {
      const stores = await h.open(4);
      for (let round = 0; round < 5; round++) {
        const user = { tenant: 'acme', loginId: `same-${round}`, userName: `same-${round}@acme.test`, externalId: `x-${round}` };
        assert.deepEqual(await Promise.all(stores.map((s) => s.setUser(user))), [true, true, true, true]);
        assert.deepEqual(await stores[1]!.getUser('acme', user.loginId), user);
      }
    });
  });
}
