// The SCIM store's contract (src/storage/scim/port.ts) on SQLite and MongoDB
// (FerretDB here): tokens found by their hash until revoked, per tenant; a
// userName unique in its tenant without case, also when two connections give
// it to two logins at once; externalIds kept per login; a login's values
// written only from the revision they are at, so of parallel writes from one
// read exactly one is made.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mongoConnections, sqliteConnections } from '../support/connections.ts';
import { NO_REVISION, type ScimStore, type ScimToken, type ScimUser } from '../../src/storage/scim/port.ts';
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

/** Sets the login's values from the revision they are at now: true when set, false when the name is another login's. */
async function set(store: ScimStore, user: Omit<ScimUser, 'revision'>): Promise<boolean> {
  const result = await store.setUserIf((await store.getUser(user.tenant, user.loginId))?.revision ?? NO_REVISION, user);
  assert.notEqual(result, 'changed', 'nothing else writes these values');
  return result !== 'taken';
}

const values = (u: ScimUser | null) => u && { userName: u.userName, externalId: u.externalId };

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
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'a', userName: 'Jane@Acme.test', externalId: 'x1' }), true);
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'b', userName: 'jane@acme.TEST', externalId: null }), false);
      assert.equal(await store!.getUser('acme', 'b'), null, 'a refused name changes nothing');
      assert.equal(await set(store!, { tenant: 'globex', loginId: 'g', userName: 'jane@acme.test', externalId: null }), true);
      assert.equal((await store!.findByUserName('acme', 'JANE@acme.test'))?.loginId, 'a');
      assert.equal((await store!.findByUserName('acme', 'JANE@acme.test'))?.userName, 'Jane@Acme.test', 'the case as given');
      assert.equal((await store!.findByUserName('globex', 'jane@acme.test'))?.loginId, 'g');
      // Renaming frees the old name; the same login may keep its own name.
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'a', userName: 'jane.doe', externalId: 'x1' }), true);
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'a', userName: 'JANE.DOE', externalId: 'x1' }), true);
      assert.equal(await store!.findByUserName('acme', 'jane@acme.test'), null);
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'b', userName: 'jane@acme.test', externalId: null }), true);
      // Logins without a name never clash.
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'c', userName: null, externalId: 'x1' }), true);
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'd', userName: null, externalId: null }), true);
      assert.deepEqual(
        (await store!.findByExternalId('acme', 'x1')).map((u) => u.loginId),
        ['a', 'c'],
      );
      assert.deepEqual(await store!.findByExternalId('acme', 'X1'), [], 'externalId is exact');
      assert.deepEqual((await store!.getUsers('acme', ['a', 'b', 'zz'])).map((u) => u.loginId).sort(), ['a', 'b']);
      await store!.removeUser('acme', 'a');
      assert.equal(await store!.getUser('acme', 'a'), null);
      assert.equal(await store!.findByUserName('acme', 'jane.doe'), null);
      assert.equal(await set(store!, { tenant: 'acme', loginId: 'e', userName: 'jane.doe', externalId: null }), true, 'a removed login frees its name');
    });

    it('gives a userName to one of two logins named at once over separate connections', async () => {
      const stores = await h.open(4);
      for (let round = 0; round < 5; round++) {
        const userName = `race-${round}@acme.test`;
        const results = await Promise.all(stores.map((s, i) => s.setUserIf(NO_REVISION, { tenant: 'acme', loginId: `r${round}-${i}`, userName, externalId: null })));
        const won = results.map((r) => r !== 'taken');
        assert.deepEqual(
          results.filter((r) => r !== 'taken'),
          [{ revision: 1 }],
          `one winner in round ${round}: ${JSON.stringify(results)}`,
        );
        const holder = await stores[0]!.findByUserName('acme', userName);
        assert.equal(holder?.loginId, `r${round}-${won.indexOf(true)}`);
      }
    });

    it("moves a login's revision on with every write, and writes only from the revision the values are at", async () => {
      const [store] = await h.open(1);
      const user = { tenant: 'acme', loginId: 'rev', userName: 'rev@acme.test', externalId: 'x-rev' };
      assert.deepEqual(await store!.setUserIf(NO_REVISION, user), { revision: 1 });
      assert.equal((await store!.getUser('acme', 'rev'))?.revision, 1);
      assert.equal(await store!.setUserIf(NO_REVISION, { ...user, userName: 'other@acme.test' }), 'changed', 'a login that has values is not made again');
      assert.deepEqual(await store!.setUserIf(1, { ...user, userName: 'renamed@acme.test' }), { revision: 2 });
      assert.equal(await store!.setUserIf(1, { ...user, userName: 'stale@acme.test', externalId: null }), 'changed', 'a write from an old read');
      assert.deepEqual(values(await store!.getUser('acme', 'rev')), { userName: 'renamed@acme.test', externalId: 'x-rev' }, 'a refused write changes nothing');
      assert.equal(await store!.findByUserName('acme', 'stale@acme.test'), null, 'nor holds the name it asked for');
      assert.equal(await store!.findByUserName('acme', 'rev@acme.test'), null, 'the old name is free');
      assert.deepEqual(await store!.setUserIf(2, { ...user, userName: 'renamed@acme.test' }), { revision: 3 }, 'the same values still move it on');
      assert.equal(await store!.setUserIf(2, { ...user, userName: 'renamed@acme.test' }), 'changed');
      assert.deepEqual(await store!.setUserIf(7, user), 'changed', 'a revision it never had');
      // A name held by another login refuses as `taken`, and the revision stays.
      assert.ok(await set(store!, { tenant: 'acme', loginId: 'holder', userName: 'held@acme.test', externalId: null }));
      assert.equal(await store!.setUserIf(3, { ...user, userName: 'HELD@acme.test' }), 'taken');
      assert.equal((await store!.getUser('acme', 'rev'))?.revision, 3);
      assert.deepEqual(
        (await store!.getUsers('acme', ['rev'])).map((u) => u.revision),
        [3],
      );
      await store!.removeUser('acme', 'rev');
      assert.equal(await store!.getUser('acme', 'rev'), null);
      assert.deepEqual(await store!.setUserIf(NO_REVISION, user), { revision: 1 }, 'a removed login has none');
    });

    it("makes exactly one of parallel writes of a login's values from one revision, over separate connections", async () => {
      const stores = await h.open(4);
      for (let round = 0; round < 10; round++) {
        const loginId = `cas-${round}`;
        assert.ok(await set(stores[0]!, { tenant: 'acme', loginId, userName: `cas-${round}@acme.test`, externalId: null }));
        // Two writers a connection, so that writers share connections too; half of them change nothing.
        const writers = [...stores, ...stores].map((s, i) =>
          s.setUserIf(1, { tenant: 'acme', loginId, userName: i % 2 ? `cas-${round}@acme.test` : `cas-${round}-${i}@acme.test`, externalId: `x-${i}` }),
        );
        const results = await Promise.all(writers);
        const winners = results.flatMap((r, i) => (r === 'changed' ? [] : [{ r, i }]));
        assert.equal(winners.length, 1, `one writer wins round ${round}: ${JSON.stringify(results)}`);
        assert.deepEqual(winners[0]!.r, { revision: 2 });
        const i = winners[0]!.i;
        assert.deepEqual(values(await stores[1]!.getUser('acme', loginId)), { userName: i % 2 ? `cas-${round}@acme.test` : `cas-${round}-${i}@acme.test`, externalId: `x-${i}` });
        for (let j = 0; j < 8; j++) {
          if (j % 2 || j === i) continue;
          assert.equal(await stores[0]!.findByUserName('acme', `cas-${round}-${j}@acme.test`), null, `a losing writer's name (${j}) is not held`);
        }
      }
    });

    it('makes a new login once when several connections name it at once (a retried create)', async () => {
      const stores = await h.open(4);
      for (let round = 0; round < 5; round++) {
        const user = { tenant: 'acme', loginId: `same-${round}`, userName: `same-${round}@acme.test`, externalId: `x-${round}` };
        const results = await Promise.all(stores.map((s) => s.setUserIf(NO_REVISION, user)));
        assert.deepEqual(
          results.filter((r) => r !== 'changed'),
          [{ revision: 1 }],
          JSON.stringify(results),
        );
        assert.deepEqual(await stores[1]!.getUser('acme', user.loginId), { ...user, revision: 1 });
      }
    });
  });
}
