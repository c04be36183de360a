// The account cache (src/storage/accounts/cache.ts) on its real parts: the
// MongoDB account store (FerretDB) and version tokens in Redis. The contract
// suite (accounts.contract.test.ts) runs the whole port through it; this file
// checks what the contract cannot see: that copies are used, when they are not,
// and what happens while Redis is away.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { Redis } from 'ioredis';
import type { AccountStore, Client } from '../../src/storage/accounts/port.ts';
import { createMongoAccountStore } from '../../src/storage/accounts/mongo/index.ts';
import { ReadCache } from '../../src/storage/accounts/cache.ts';
import { withAccountCache } from '../../src/storage/index.ts';
import { startMongo, type TestMongo } from '../support/mongo.ts';
import { startOwnRedis, testRedisPrefix, testRedisUrl, type OwnRedis } from '../support/redis.ts';

const client = (clientId: string, secret = 'first-secret'): Client => ({
  clientId,
  tenant: 'acme',
  firstParty: true,
  metadata: { client_id: clientId, client_secret: secret, redirect_uris: ['https://app.example/cb'] },
});

let mongo: TestMongo;
let mongoClient: MongoClient;
let dbCount = 0;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  mongo = await startMongo();
  mongoClient = new MongoClient(mongo.uri);
  await mongoClient.connect();
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await mongoClient?.close();
  await mongo?.stop();
});

/** The MongoDB store of a fresh database, with its reads counted: every count is a real round trip. */
async function countedStore() {
  const inner = createMongoAccountStore(mongoClient.db(`${mongo.dbName}_${++dbCount}`));
  await inner.init();
  const reads = { getClient: 0, getLogin: 0 };
  const counted: AccountStore = {
    ...inner,
    getClient: (id) => (reads.getClient++, inner.getClient(id)),
    getLogin: (id) => (reads.getLogin++, inner.getLogin(id)),
  };
  return { inner, counted, reads };
}

/** An app process's cache as src/storage/index.ts builds it: its own Redis connection (the app's options) and copies. */
async function process_(store: AccountStore, redisUrl: string, prefix: string, options: { ttlSeconds?: number; maxEntries?: number } = {}) {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => 100 });
  redis.on('error', () => {});
  cleanups.push(() => redis.disconnect());
  await new Promise((resolve) => redis.once('ready', resolve));
  const { accounts, cache } = withAccountCache(store, redis, {
    redisPrefix: prefix,
    accountCache: { ttlSeconds: options.ttlSeconds ?? 60, maxEntries: options.maxEntries ?? 1000 },
  });
  return { redis, cache, store: accounts };
}

describe('account cache', () => {
  it('answers from its copy while the version token is unchanged, and copies both ways', async () => {
    const { counted, reads } = await countedStore();
    const { store, cache } = await process_(counted, testRedisUrl(), testRedisPrefix());
    await store.upsertClient(client('web'));
    const first = await store.getClient('web');
    first!.metadata.client_secret = 'changed by a caller';
    const second = await store.getClient('web');
    assert.equal(reads.getClient, 1, 'the second read is a copy');
    assert.equal(second!.metadata.client_secret, 'first-secret', 'a caller changing a returned object changes nothing cached');
    assert.deepEqual({ hits: cache.stats().hits, misses: cache.stats().misses }, { hits: 1, misses: 1 });
  });

  it('a write through another process is seen at once: a rotated secret, a disabled login', async () => {
    const { counted, reads } = await countedStore();
    const prefix = testRedisPrefix();
    const a = await process_(counted, testRedisUrl(), prefix);
    const b = await process_(counted, testRedisUrl(), prefix);
    await a.store.upsertTenant({ id: 'acme', name: 'Acme', owners: [], userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }] });
    await a.store.upsertClient(client('web'));
    await a.store.upsertLogin({ id: 'l1', tenant: 'acme', email: 'l1@example.com', userType: 'staff', firstName: 'L', lastName: 'One' });
    // B holds copies.
    assert.equal((await b.store.getClient('web'))!.metadata.client_secret, 'first-secret');
    assert.equal((await b.store.getLogin('l1'))!.disabled, false);
    await b.store.getClient('web');
    await b.store.getLogin('l1');
    assert.equal(b.cache.stats().hits, 2);

    await a.store.upsertClient(client('web', 'rotated-secret'));
    await a.store.upsertLogin({ id: 'l1', tenant: 'acme', email: 'l1@example.com', userType: 'staff', firstName: 'L', lastName: 'One', disabled: true });
    assert.equal((await b.store.getClient('web'))!.metadata.client_secret, 'rotated-secret');
    assert.equal((await b.store.getLogin('l1'))!.disabled, true);
    assert.equal(reads.getClient, 2, 'B read the store again for the client, once');

    // An owner's reset (the session cut-off) and a factor change, likewise.
    const t = new Date(Math.ceil(Date.now() / 1000) * 1000);
    assert.equal(await b.store.loginSessionsNotBefore('l1'), null);
    assert.equal(await a.store.endLoginSessions('l1', t), true);
    assert.equal((await b.store.loginSessionsNotBefore('l1'))?.getTime(), t.getTime());
    await a.store.setFactorState('l1', 'pin', { hash: 'h1' });
    assert.deepEqual((await b.store.getLogin('l1'))!.factors, { pin: { hash: 'h1' } });
  });

  it('keeps no copy of an unknown id, so guessing ids cannot fill it', async () => {
    const { counted, reads } = await countedStore();
    const { store, cache } = await process_(counted, testRedisUrl(), testRedisPrefix());
    assert.equal(await store.getClient('nobody'), null);
    assert.equal(await store.getClient('nobody'), null);
    assert.equal(reads.getClient, 2);
    assert.equal(cache.stats().entries, 0);
  });

  it('reads the store again once a copy is older than the TTL', async () => {
    const { counted, reads } = await countedStore();
    const { store } = await process_(counted, testRedisUrl(), testRedisPrefix(), { ttlSeconds: 1 });
    await store.upsertClient(client('web'));
    await store.getClient('web');
    await store.getClient('web');
    assert.equal(reads.getClient, 1);
    await new Promise((r) => setTimeout(r, 1100));
    await store.getClient('web');
    assert.equal(reads.getClient, 2);
  });

  it('keeps at most maxEntries copies, dropping the oldest', async () => {
    const { counted, reads } = await countedStore();
    const { store, cache } = await process_(counted, testRedisUrl(), testRedisPrefix(), { maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) await store.upsertClient(client(id));
    for (const id of ['a', 'b', 'c']) await store.getClient(id);
    assert.equal(cache.stats().entries, 2);
    await store.getClient('c');
    await store.getClient('b');
    assert.equal(reads.getClient, 3, 'b and c are kept');
    await store.getClient('a');
    assert.equal(reads.getClient, 4, 'a was dropped');
  });

  it('version tokens outlive copies, so an expired token never vouches for a stale copy', () => {
    const cache = new ReadCache({ current: async () => '', renew: async () => {} }, { ttlMs: 60_000, maxEntries: 1 });
    assert.ok(cache.tokenLifetimeMs > 60_000);
  });

  describe('while Redis is away', () => {
    let own: OwnRedis;
    before(async () => {
      own = await startOwnRedis();
    });
    after(async () => {
      await own?.stop();
    });

    it('reads go to the store, a write fails loudly, and nothing stale is served after Redis returns empty', async () => {
      const { inner, counted, reads } = await countedStore();
      const prefix = testRedisPrefix();
      const a = await process_(counted, own.url, prefix);
      const b = await process_(counted, own.url, prefix);
      // Written without a token (as by an import long ago): B's copy is vouched for by "no token".
      await inner.upsertClient(client('web'));
      await b.store.getClient('web');
      await b.store.getClient('web');
      assert.equal(reads.getClient, 1, 'B holds a copy');

      await own.kill();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await b.store.getClient('web'))!.metadata.client_secret, 'first-secret');
      assert.equal(b.cache.stats().bypassed, 1, 'read from the store, not the copy');
      // The write reaches MongoDB, but its token cannot be renewed: the caller is told.
      await assert.rejects(a.store.upsertClient(client('web', 'rotated-while-down')));
      assert.equal((await inner.getClient('web'))!.metadata.client_secret, 'rotated-while-down');
      assert.equal((await b.store.getClient('web'))!.metadata.client_secret, 'rotated-while-down');

      // Redis comes back with no tokens at all, so "no token" again: B's copy from before must be gone.
      await own.revive();
      for (let i = 0; i < 50 && b.redis.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(b.redis.status, 'ready');
      assert.equal((await b.store.getClient('web'))!.metadata.client_secret, 'rotated-while-down');
    });
  });
});
