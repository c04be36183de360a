import type { Cluster, Redis } from 'ioredis';
import type { CounterStore, TakeResult } from '../port.ts';

// One hash per key: f = failures, l = lockedUntil (ms), e = expiry (ms) by the caller's clock,
// z = 1 once frozen. `e` makes expiry follow the `now` the caller passes, as the SQLite store does;
// PEXPIRE only reclaims the memory, and a frozen hash has none (PERSIST). The lock is lockDurationMs
// from ../port.ts, computed the same way here. ARGV[5] (maxFailures) 0 never freezes.
const TAKE = `
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local maxf = tonumber(ARGV[5])
local idle = tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'f', 'l', 'e', 'z')
local f, l = 0, 0
local frozen = h[4] == '1'
if frozen or (h[3] and tonumber(h[3]) > now) then
  f = tonumber(h[1]) or 0
  l = tonumber(h[2]) or 0
end
if frozen or l > now then
  return {0, f, string.format('%.0f', l), frozen and 1 or 0}
end
f = f + 1
l = 0
if f >= threshold then
  l = now + math.min(base * 2 ^ math.min(f - threshold, 30), max)
end
redis.call('HSET', KEYS[1], 'f', f, 'l', string.format('%.0f', l), 'e', string.format('%.0f', now + idle))
if maxf > 0 and f >= maxf then
  redis.call('HSET', KEYS[1], 'z', '1')
  redis.call('PERSIST', KEYS[1])
  return {1, f, string.format('%.0f', l), 1}
end
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(idle)))
return {1, f, string.format('%.0f', l), 0}`;

interface Scripts {
  latchkeyCounterTake(
    key: string,
    now: number,
    threshold: number,
    baseLockMs: number,
    maxLockMs: number,
    maxFailures: number,
    idleResetMs: number,
  ): Promise<[number, number, string, number]>;
}

/**
 * Attempt counters in Redis through the caller's ioredis client (which the
 * caller also quits): one hash `${prefix}ctr:${key}` per key, updated by a
 * single Lua script so every app process sees one atomic `take`. Single-key,
 * so it works unchanged on Redis Cluster.
 */
export function createRedisCounterStore(
  redis: Redis | Cluster,
  opts: { prefix: string },
): CounterStore {
  redis.defineCommand('latchkeyCounterTake', { numberOfKeys: 1, lua: TAKE });
  const scripts = redis as unknown as Scripts;
  const redisKey = (key: string) => `${opts.prefix}ctr:${key}`;

  return {
    async take(key, policy, now): Promise<TakeResult> {
      const [allowed, failures, lockedUntil, frozen] = await scripts.latchkeyCounterTake(
        redisKey(key),
        now,
        policy.threshold,
        policy.baseLockMs,
        policy.maxLockMs,
        Number.isFinite(policy.maxFailures) ? policy.maxFailures : 0,
        policy.idleResetMs,
      );
      return { allowed: allowed === 1, failures, lockedUntil: Number(lockedUntil), frozen: frozen === 1 };
    },
    async reset(key) {
      await redis.del(redisKey(key));
    },
    async peek(key, now) {
      const [f, l, e, z] = await redis.hmget(redisKey(key), 'f', 'l', 'e', 'z');
      const frozen = z === '1';
      if (f == null || (!frozen && (e == null || Number(e) <= now))) return null;
      return { failures: Number(f), lockedUntil: Number(l ?? 0), frozen };
    },
    async ping() {
      await redis.ping();
    },
    async close() {},
  };
}
