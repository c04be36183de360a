import type { Cluster, Redis } from 'ioredis';
import type { BeginResult, CounterRecord, CounterStore, Settlement } from '../port.ts';

// One hash per key: f = failures, l = lockedUntil (ms), e = expiry (ms) by the caller's clock,
// z = 1 once frozen, and one field `s:<slot>` per attempt in flight, its value the slot's expiry.
// `e` makes expiry follow the `now` the caller passes, as the SQLite store does; PEXPIRE only
// reclaims the memory, and a frozen hash has none (PERSIST). The lock is lockDurationMs and the
// number of slots concurrencyLimit, both from ../port.ts, computed the same way here.
const READ = `
local function fmt(n) return string.format('%.0f', n) end
local function record(now)
  local h = redis.call('HMGET', KEYS[1], 'f', 'l', 'e', 'z')
  local frozen = h[4] == '1'
  if frozen or (h[3] and tonumber(h[3]) > now) then
    return tonumber(h[1]) or 0, tonumber(h[2]) or 0, frozen
  end
  return 0, 0, false
end
`;

const BEGIN = `${READ}
local now = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local slot = 's:' .. ARGV[3]
local expiresAt = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])
local f, l, frozen = record(now)
local fields = redis.call('HGETALL', KEYS[1])
local inflight = 0
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 's:' then
    if tonumber(fields[i + 1]) <= now then redis.call('HDEL', KEYS[1], fields[i]) else inflight = inflight + 1 end
  end
end
local z = frozen and 1 or 0
if frozen then return {'frozen', inflight, f, fmt(l), z} end
if l > now then return {'locked', inflight, f, fmt(l), z} end
if inflight >= math.max(1, threshold - f) then return {'busy', inflight, f, fmt(l), z} end
redis.call('HSET', KEYS[1], slot, fmt(expiresAt))
redis.call('PEXPIRE', KEYS[1], fmt(math.ceil(idle)))
return {'admitted', inflight + 1, f, fmt(l), z}`;

const SETTLE = `${READ}
local slot = 's:' .. ARGV[1]
local outcome = ARGV[2]
local now = tonumber(ARGV[3])
local threshold = tonumber(ARGV[4])
local base = tonumber(ARGV[5])
local max = tonumber(ARGV[6])
local maxf = tonumber(ARGV[7])
local idle = tonumber(ARGV[8])
redis.call('HDEL', KEYS[1], slot)
local f, l, frozen = record(now)
if outcome == 'abandon' or frozen then return {f, fmt(l), frozen and 1 or 0} end
if outcome == 'success' then
  redis.call('HDEL', KEYS[1], 'f', 'l', 'e')
  return {0, '0', 0}
end
f = f + 1
l = 0
if f >= threshold then
  l = now + math.min(base * 2 ^ math.min(f - threshold, 30), max)
end
redis.call('HSET', KEYS[1], 'f', f, 'l', fmt(l), 'e', fmt(now + idle))
if maxf > 0 and f >= maxf then
  redis.call('HSET', KEYS[1], 'z', '1')
  redis.call('PERSIST', KEYS[1])
  return {f, fmt(l), 1}
end
redis.call('PEXPIRE', KEYS[1], fmt(math.ceil(idle)))
return {f, fmt(l), 0}`;

// A sorted set per window: member = place, score = when it was taken.
const WINDOW_TAKE = `
local slot = ARGV[1]
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, n, string.format('%.0f', (tonumber(oldest[2]) or now) + window)}
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), slot)
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(window)))
return {1, n + 1, '0'}`;

interface Scripts {
  latchkeyCounterBegin(
    key: string,
    now: number,
    threshold: number,
    slot: string,
    expiresAt: number,
    idleResetMs: number,
  ): Promise<[BeginResult['outcome'], number, number, string, number]>;
  latchkeyCounterSettle(
    key: string,
    slot: string,
    outcome: Settlement,
    now: number,
    threshold: number,
    baseLockMs: number,
    maxLockMs: number,
    maxFailures: number,
    idleResetMs: number,
  ): Promise<[number, string, number]>;
  latchkeyWindowTake(key: string, slot: string, limit: number, windowMs: number, now: number): Promise<[number, number, string]>;
}

/**
 * Attempt counters in Redis through the caller's ioredis client (which the
 * caller also quits): one hash `${prefix}ctr:${key}` per key, one sorted set
 * `${prefix}win:${key}` per window, each changed by a single Lua script so every app process sees one
 * atomic step. Every script touches one key, so it works unchanged on Redis
 * Cluster.
 */
export function createRedisCounterStore(redis: Redis | Cluster, opts: { prefix: string }): CounterStore {
  redis.defineCommand('latchkeyCounterBegin', { numberOfKeys: 1, lua: BEGIN });
  redis.defineCommand('latchkeyCounterSettle', { numberOfKeys: 1, lua: SETTLE });
  redis.defineCommand('latchkeyWindowTake', { numberOfKeys: 1, lua: WINDOW_TAKE });
  const scripts = redis as unknown as Scripts;
  const counterKey = (key: string) => `${opts.prefix}ctr:${key}`;
  const windowKey = (key: string) => `${opts.prefix}win:${key}`;

  return {
    async begin(key, slot, policy, now, expiresAt): Promise<BeginResult> {
      const [outcome, inFlight, failures, lockedUntil, frozen] = await scripts.latchkeyCounterBegin(counterKey(key), now, policy.threshold, slot, expiresAt, policy.idleResetMs);
      return { outcome, inFlight, failures, lockedUntil: Number(lockedUntil), frozen: frozen === 1 };
    },
    async settle(key, slot, outcome, policy, now): Promise<CounterRecord> {
      const [failures, lockedUntil, frozen] = await scripts.latchkeyCounterSettle(
        counterKey(key),
        slot,
        outcome,
        now,
        policy.threshold,
        policy.baseLockMs,
        policy.maxLockMs,
        Number.isFinite(policy.maxFailures) ? policy.maxFailures : 0,
        policy.idleResetMs,
      );
      return { failures, lockedUntil: Number(lockedUntil), frozen: frozen === 1 };
    },
    async reset(key) {
      await redis.del(counterKey(key));
    },
    async peek(key, now) {
      const [f, l, e, z] = await redis.hmget(counterKey(key), 'f', 'l', 'e', 'z');
      const frozen = z === '1';
      if (f == null || (!frozen && (e == null || Number(e) <= now))) return null;
      return { failures: Number(f), lockedUntil: Number(l ?? 0), frozen };
    },
    async windowTake(key, slot, limit, windowMs, now) {
      const [allowed, count, retryAt] = await scripts.latchkeyWindowTake(windowKey(key), slot, limit, windowMs, now);
      return { allowed: allowed === 1, count, retryAt: Number(retryAt) };
    },
    async windowRelease(key, slot) {
      await redis.zrem(windowKey(key), slot);
    },
    async ping() {
      await redis.ping();
    },
    async close() {},
  };
}
