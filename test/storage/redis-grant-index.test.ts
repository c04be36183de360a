// The Redis adapter keeps a grant's index of tokens in the grant's own record (src/storage/adapter/redis/index.ts):
// one key a grant, an index that does not grow with a refresh token's rotations, a sorted set of its own for a grant with
// many live tokens, and the sorted sets of the layout before still honoured.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { hashId, SHORT_STORED_ID, withHashedIds } from '../../src/storage/adapter/hashed-ids.ts';
import { DESTROYED_KEPT_MS, type AdapterBackend } from '../../src/storage/adapter/port.ts';
import { createRedisAdapterBackend, FOLDED_TOKENS } from '../../src/storage/adapter/redis/index.ts';
import { describeStored } from '../../src/storage/adapter/redis/codec.ts';
import { testRedisPrefix, testRedisUrl } from '../support/redis.ts';

const stored = (id: string) => hashId(id).slice(0, SHORT_STORED_ID);
const epoch = () => Math.floor(Date.now() / 1000);

describe("the Redis adapter's grant index", () => {
  let redis: Redis;
  let prefix: string;
  let backend: AdapterBackend;
  const adapter = (model: string) => backend.factory(model);
  const grantRecord = async (grantId: string) => describeStored((await redis.getBuffer(`${prefix}g:${stored(grantId)}`)) ?? Buffer.alloc(0));
  const members = async (grantId: string) => (await grantRecord(grantId)).split('\n')[0]!.split('\x1f')[5]?.split(',').filter(Boolean) ?? [];

  before(() => {
    redis = new Redis(testRedisUrl());
    prefix = testRedisPrefix();
    backend = withHashedIds(createRedisAdapterBackend(redis, { prefix }), randomBytes(32), { storedIdChars: SHORT_STORED_ID });
  });
  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('is one key a grant: the record holds its tokens, and none of the sorted sets of before is made', async () => {
    const grantId = randomUUID();
    await adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant', clientId: 'c', accountId: 'a', exp: epoch() + 600 }, 600);
    const access = randomUUID();
    const refresh = randomUUID();
    await adapter('AccessToken').upsert(access, { jti: access, kind: 'AccessToken', grantId }, 60);
    await adapter('RefreshToken').upsert(refresh, { jti: refresh, kind: 'RefreshToken', grantId }, 1200);
    assert.deepEqual((await members(grantId)).map((m) => m.split('~')[0]).sort(), [`at:${stored(access)}`, `rt:${stored(refresh)}`]);
    assert.deepEqual(await redis.keys(`${prefix}gi:*`), []);
    // The record outlives the grant for as long as its last token.
    const ttl = await redis.pttl(`${prefix}g:${stored(grantId)}`);
    assert.ok(ttl > 600_000 && ttl <= 1_200_000, `${ttl} ms`);
  });

  it("does not grow with a refresh token's rotations: consumed and gone tokens leave it at the next write", async () => {
    const grantId = randomUUID();
    await adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant', clientId: 'c', accountId: 'a', exp: epoch() + 600 }, 600);
    let refresh = randomUUID();
    await adapter('RefreshToken').upsert(refresh, { jti: refresh, kind: 'RefreshToken', grantId }, 600);
    const destroyed = randomUUID();
    await adapter('AccessToken').upsert(destroyed, { jti: destroyed, kind: 'AccessToken', grantId }, 600);
    await adapter('AccessToken').destroy(destroyed);
    for (let i = 0; i < 20; i++) {
      await adapter('RefreshToken').consume(refresh);
      refresh = randomUUID();
      await adapter('RefreshToken').upsert(refresh, { jti: refresh, kind: 'RefreshToken', grantId }, 600);
    }
    assert.deepEqual(
      (await members(grantId)).map((m) => m.split('~')[0]),
      [`rt:${stored(refresh)}`],
    );
    await adapter('RefreshToken').revokeByGrantId(grantId);
    assert.equal(await adapter('RefreshToken').find(refresh), undefined);
    assert.ok(await adapter('Grant').find(grantId), 'revoking the tokens leaves the grant');
    // oidc-provider destroys a grant and revokes its tokens at once: the destroy, if first, takes them.
    const again = randomUUID();
    await adapter('AccessToken').upsert(again, { jti: again, kind: 'AccessToken', grantId }, 60);
    await adapter('Grant').destroy(grantId);
    assert.equal(await adapter('AccessToken').find(again), undefined);
    // What stays is the mark that keeps it destroyed (port.ts), for an hour at most.
    assert.equal(await redis.get(`${prefix}g:${stored(grantId)}`), '0');
    const kept = await redis.pttl(`${prefix}g:${stored(grantId)}`);
    assert.ok(kept > 0 && kept <= DESTROYED_KEPT_MS, `${kept} ms`);
  });

  it('moves a grant with many live tokens to a sorted set of its own, which revocation and a parallel destroy still reach', async () => {
    for (const destroyFirst of [true, false]) {
      const grantId = randomUUID();
      await adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant', clientId: 'c', accountId: 'a', exp: epoch() + 600 }, 600);
      // A client refreshing often: every access token lives its hour, each refresh token is used once.
      const access: string[] = [];
      let refresh = randomUUID();
      await adapter('RefreshToken').upsert(refresh, { jti: refresh, kind: 'RefreshToken', grantId }, 600);
      for (let i = 0; i < FOLDED_TOKENS + 8; i++) {
        await adapter('RefreshToken').consume(refresh);
        refresh = randomUUID();
        await adapter('RefreshToken').upsert(refresh, { jti: refresh, kind: 'RefreshToken', grantId }, 600);
        const at = randomUUID();
        access.push(at);
        await adapter('AccessToken').upsert(at, { jti: at, kind: 'AccessToken', grantId }, 3600);
      }
      const set = `${prefix}gi:${grantId.slice(0, 32)}`;
      assert.deepEqual(await members(grantId), [], "the grant's record names none any more");
      // Every live access token and the one live refresh token: the used ones left at their consume.
      assert.equal(await redis.zcard(set), access.length + 1);
      assert.ok((await redis.zscore(set, `rt:${stored(refresh)}`)) !== null);
      assert.ok(await adapter('Grant').find(grantId), 'the grant is itself');

      const revoke = adapter('AccessToken').revokeByGrantId(grantId);
      const destroy = adapter('Grant').destroy(grantId);
      await (destroyFirst ? Promise.all([destroy, revoke]) : Promise.all([revoke, destroy]));
      for (const at of access) assert.equal(await adapter('AccessToken').find(at), undefined);
      assert.equal(await adapter('RefreshToken').find(refresh), undefined);
      assert.equal(await redis.exists(set), 0);
    }
  });

  it('still revokes the tokens a sorted set of the layout before names', async () => {
    const grantId = randomUUID();
    const old = randomUUID();
    // A token as the layout before stored it: its grant's tokens in `gi:`, scored by expiry.
    await adapter('AccessToken').upsert(old, { jti: old, kind: 'AccessToken', grantId: randomUUID() }, 60);
    await redis.zadd(`${prefix}gi:${grantId.slice(0, 32)}`, Date.now() + 60_000, `at:${stored(old)}`);
    await adapter('AccessToken').revokeByGrantId(grantId);
    assert.equal(await adapter('AccessToken').find(old), undefined);
    assert.equal(await redis.exists(`${prefix}gi:${grantId.slice(0, 32)}`), 0);
  });
});
