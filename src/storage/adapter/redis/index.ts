import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { alreadyConsumed, type Adapter, type AdapterBackend, type AdapterPayload } from '../port.ts';

// Models revoked together by grant, as in oidc-provider's memory adapter
// (an Interaction also carries a grantId but must survive a grant's revocation).
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

// Keys: `${prefix}${model}:${id}` is a hash { payload: JSON, consumed?, uid?, userCode?, grantId? };
// `${prefix}uid:${uid}` and `${prefix}userCode:${code}` hold an id; `${prefix}grant:${grantId}` is a
// sorted set of `${model}:${id}` members scored by their expiry (ms, +inf for none), so expired members
// can be pruned and the set lives exactly as long as its longest member. Members leave the prefix out:
// at most 64 bytes (zset-max-listpack-value), a grant's set keeps Redis's compact listpack encoding
// (~0.2 KB) instead of a skiplist (~1.4 KB). Sets written with full keys as members are still read.
// Redis Cluster: operations span several keys (MULTI, multi-key DEL), so they need one slot. Moving to a
// cluster only needs a hash-tagged prefix such as `{latchkey}:`; sharding further would need the grant
// index split from the tokens.

// 1 when this call consumed the model, 0 when it was consumed before or is gone.
const CONSUME = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'consumed', ARGV[1])`;

const DEL_IF_EQUAL = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

// ARGV[1] member, ARGV[2] its TTL in ms or -1 for none. Uses the server clock so that the member
// scores and the set's PEXPIREAT agree with the token keys' own TTLs.
const GRANT_ADD = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local score = '+inf'
if ttl >= 0 then score = string.format('%.0f', now + ttl) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
redis.call('ZADD', KEYS[1], score, ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] == 'inf' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], top[2])
end
return 1`;

interface Scripts {
  latchkeyAdapterConsume(key: string, consumed: number): Promise<number>;
}

interface ChainScripts {
  latchkeyAdapterDelIfEqual(key: string, value: string): ChainableCommander;
  latchkeyAdapterGrantAdd(grantKey: string, member: string, ttlMs: number): ChainableCommander;
}

async function run(chain: ChainableCommander): Promise<void> {
  const results = await chain.exec();
  if (!results) throw new Error('Redis transaction aborted');
  for (const [err] of results) if (err) throw err;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * oidc-provider storage in Redis through the caller's ioredis client (which
 * the caller also quits). Every key starts with `opts.prefix`; TTLs are
 * Redis's own, so an expired model is never returned.
 */
export function createRedisAdapterBackend(redis: Redis | Cluster, opts: { prefix: string }): AdapterBackend {
  const { prefix } = opts;
  redis.defineCommand('latchkeyAdapterConsume', { numberOfKeys: 1, lua: CONSUME });
  redis.defineCommand('latchkeyAdapterDelIfEqual', { numberOfKeys: 1, lua: DEL_IF_EQUAL });
  redis.defineCommand('latchkeyAdapterGrantAdd', { numberOfKeys: 1, lua: GRANT_ADD });
  const scripts = redis as unknown as Scripts;

  const uidKey = (uid: string) => `${prefix}uid:${uid}`;
  const userCodeKey = (userCode: string) => `${prefix}userCode:${userCode}`;
  const grantKey = (grantId: string) => `${prefix}grant:${grantId}`;
  /** A grant-set member (`Model:id`, or a full key as written before) → the model's key and id. */
  const memberKey = (member: string): { key: string; id: string } => {
    const colon = member.indexOf(':');
    if (GRANTABLE.has(member.slice(0, colon))) return { key: `${prefix}${member}`, id: member.slice(colon + 1) };
    return { key: member, id: member.slice(member.indexOf(':', prefix.length) + 1) };
  };

  function multi(): ChainableCommander & ChainScripts {
    return redis.multi() as ChainableCommander & ChainScripts;
  }

  // Index entries are dropped only while they still point at this id.
  function dropIndexes(chain: ChainableCommander & ChainScripts, id: string, uid: string | null | undefined, userCode: string | null | undefined): void {
    if (uid) chain.latchkeyAdapterDelIfEqual(uidKey(uid), id);
    if (userCode) chain.latchkeyAdapterDelIfEqual(userCodeKey(userCode), id);
  }

  function factory(model: string): Adapter {
    const key = (id: string) => `${prefix}${model}:${id}`;
    const member = (id: string) => `${model}:${id}`;

    async function find(id: string): Promise<AdapterPayload | undefined> {
      const [payload, consumed] = await redis.hmget(key(id), 'payload', 'consumed');
      if (payload == null) return undefined;
      const parsed = JSON.parse(payload) as AdapterPayload;
      if (consumed != null) parsed.consumed = Number(consumed);
      return parsed;
    }

    async function destroy(id: string): Promise<void> {
      const k = key(id);
      const [uid, userCode, grantId] = await redis.hmget(k, 'uid', 'userCode', 'grantId');
      const chain = multi();
      chain.del(k);
      dropIndexes(chain, id, uid, userCode);
      if (grantId) chain.zrem(grantKey(grantId), member(id), k);
      await run(chain);
    }

    // The lookup keys may outlive or predate the model they name, so the model must still agree.
    async function findVia(indexKey: string, field: 'uid' | 'userCode', value: string) {
      const id = await redis.get(indexKey);
      if (id == null) return undefined;
      const payload = await find(id);
      return payload && payload[field] === value ? payload : undefined;
    }

    return {
      async upsert(id, payload, expiresIn) {
        const ttlMs = typeof expiresIn === 'number' ? Math.round(expiresIn * 1000) : undefined;
        if (ttlMs !== undefined && ttlMs <= 0) return destroy(id);

        const k = key(id);
        const [prevUid, prevUserCode, prevGrantId] = await redis.hmget(k, 'uid', 'userCode', 'grantId');
        const uid = model === 'Session' ? text(payload.uid) : undefined;
        const userCode = text(payload.userCode);
        const grantId = GRANTABLE.has(model) ? text(payload.grantId) : undefined;

        const fields: Record<string, string> = { payload: JSON.stringify(payload) };
        if (uid) fields.uid = uid;
        if (userCode) fields.userCode = userCode;
        if (grantId) fields.grantId = grantId;
        if (typeof payload.consumed === 'number') fields.consumed = String(payload.consumed);

        const chain = multi();
        dropIndexes(chain, id, prevUid !== uid ? prevUid : null, prevUserCode !== userCode ? prevUserCode : null);
        if (prevGrantId && prevGrantId !== grantId) chain.zrem(grantKey(prevGrantId), member(id), k);
        chain.del(k).hset(k, fields);
        if (ttlMs !== undefined) chain.pexpire(k, ttlMs);
        if (uid) {
          if (ttlMs !== undefined) chain.set(uidKey(uid), id, 'PX', ttlMs);
          else chain.set(uidKey(uid), id);
        }
        if (userCode) {
          if (ttlMs !== undefined) chain.set(userCodeKey(userCode), id, 'PX', ttlMs);
          else chain.set(userCodeKey(userCode), id);
        }
        if (grantId) chain.latchkeyAdapterGrantAdd(grantKey(grantId), member(id), ttlMs ?? -1);
        await run(chain);
      },
      find,
      async findByUid(uid) {
        return findVia(uidKey(uid), 'uid', uid);
      },
      async findByUserCode(userCode) {
        return findVia(userCodeKey(userCode), 'userCode', userCode);
      },
      async consume(id) {
        if ((await scripts.latchkeyAdapterConsume(key(id), Math.floor(Date.now() / 1000))) !== 1) throw alreadyConsumed(model);
      },
      destroy,
      async revokeByGrantId(grantId) {
        const gk = grantKey(grantId);
        const members = (await redis.zrange(gk, 0, -1)).map(memberKey);
        const chain = multi();
        if (members.length) {
          const lookups = redis.pipeline();
          for (const { key: k } of members) lookups.hmget(k, 'uid', 'userCode');
          const found = (await lookups.exec()) ?? [];
          members.forEach(({ id }, i) => {
            const [, values] = found[i] ?? [];
            const [uid, userCode] = (values as (string | null)[] | undefined) ?? [];
            dropIndexes(chain, id, uid, userCode);
          });
          chain.del(...members.map((m) => m.key));
        }
        chain.del(gk);
        await run(chain);
      },
    };
  }

  return {
    factory,
    async ping() {
      await redis.ping();
    },
    async close() {},
  };
}
