/**
 * The account cache's version tokens in Redis (see `./cache.ts`): one short
 * string key per record written recently, `<prefix>cache-version:<record>`,
 * expiring on its own, so Redis holds tokens only for the records written
 * within the last cache lifetime.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { CacheVersions } from './cache.ts';

export function createRedisCacheVersions(redis: Redis | Cluster, prefix: string): CacheVersions {
  const keyOf = (record: string) => `${prefix}cache-version:${record}`;
  return {
    async current(record) {
      return (await redis.get(keyOf(record))) ?? '';
    },
    async renew(records, lifetimeMs) {
      // One command per key: in a cluster they may live in different slots.
      await Promise.all(records.map((record) => redis.set(keyOf(record), randomBytes(9).toString('base64url'), 'PX', lifetimeMs)));
    },
  };
}
