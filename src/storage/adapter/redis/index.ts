import type { Cluster, Redis } from 'ioredis';
import { alreadyConsumed, type Adapter, type AdapterBackend, type AdapterPayload } from '../port.ts';
import { decodeModel, encodeModel, headerField } from './codec.ts';

// Models revoked together by grant, as in oidc-provider's memory adapter
// (an Interaction also carries a grantId but must survive a grant's revocation).
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

/**
 * The key family of each oidc-provider model (`${prefix}${code}:${id}`); a model not listed uses its
 * own name. Short, because every key and every grant-index member carries it. Index families: `u`
 * (Session by uid), `uc` (DeviceCode by user code), `gi` (a grant's tokens). They share the prefix
 * with the counters (`ctr`, `win`, `mark`) and the account cache (`cache-version`).
 */
export const REDIS_MODEL_CODES: Readonly<Record<string, string>> = {
  Session: 's',
  Grant: 'g',
  AccessToken: 'at',
  RefreshToken: 'rt',
  AuthorizationCode: 'ac',
  Interaction: 'i',
  ClientCredentials: 'cc',
  DeviceCode: 'dc',
  BackchannelAuthenticationRequest: 'ba',
  PushedAuthorizationRequest: 'par',
  PreAuthorizedCode: 'pac',
  ReplayDetection: 'rd',
  Client: 'c',
  InitialAccessToken: 'iat',
  RegistrationAccessToken: 'rat',
};

// The one field a model is also found by, and its index family.
// Index keys carry the first 32 characters of a uid, user code or grant id: oidc-provider's are 43
// random characters, so 32 (192 bits) keep them apart, and the model found is checked against the
// whole value anyway. (The scripts' `short` is the same.)
const short = (value: string) => value.slice(0, 32);

const LOOKUP: Readonly<Record<string, { field: 'uid' | 'userCode'; code: string }>> = {
  Session: { field: 'uid', code: 'u' },
  DeviceCode: { field: 'userCode', code: 'uc' },
};

// Layout. A model is one string `${prefix}${code}:${id}` (see codec.ts: a header with its grant, its
// uid or user code and whether it was consumed, then its deflated JSON). Index keys below use the
// first 32 characters of the uid, user code or grant id. Strings, not hashes: a hash
// whose field passes 64 bytes (hash-max-listpack-value) becomes a full hashtable, several hundred bytes
// more per model. `${prefix}u:${uid}` and `${prefix}uc:${userCode}` hold an id; `${prefix}gi:${grantId}`
// is a sorted set of `${code}:${id}` members scored by their expiry (ms, +inf for none), so expired
// members can be pruned and the set lives exactly as long as its longest member; members short enough
// (≤ 64 bytes, zset-max-listpack-value) that the set stays a compact listpack.
// Each operation is one script, one round trip, atomic. The scripts name further keys from the
// prefix they are given, so on Redis Cluster every key must be in one slot: a hash-tagged prefix such
// as `{latchkey}:` (src/storage/index.ts makes one). Sharding further would need the grant index split
// from the tokens.

// Shared by the scripts: a stored model's header fields (1 version, 2 flags, 3 consumed, 4 grantId,
// 5 lookup) and where it ends; drop an index entry only while it still points at this id.
const LUA_HELPERS = String.raw`
local function header(v)
  local e = string.find(v, '\30', 1, true)
  local f = {}
  for part in string.gmatch(string.sub(v, 1, e - 1) .. '\31', '([^\31]*)\31') do f[#f + 1] = part end
  return f, e
end
local function dropIfEqual(k, id) if redis.call('GET', k) == id then redis.call('DEL', k) end end
local function short(s) return string.sub(s, 1, 32) end
`;

// KEYS[1] the model; ARGV: prefix, member, id, value, TTL ms (-1: none), lookup family ('' none),
// new lookup value ('' none), new grantId ('' none).
const UPSERT = `${LUA_HELPERS}
local k, prefix, member, id, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])
local family, lookup, grantId = ARGV[6], ARGV[7], ARGV[8]
local old = redis.call('GET', k)
if old then
  local f = header(old)
  if family ~= '' and f[5] ~= '' and f[5] ~= lookup then dropIfEqual(prefix .. family .. ':' .. short(f[5]), id) end
  if f[4] ~= '' and f[4] ~= grantId then redis.call('ZREM', prefix .. 'gi:' .. short(f[4]), member) end
end
local function put(key, value)
  if ttl >= 0 then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
end
put(k, ARGV[4])
if lookup ~= '' then put(prefix .. family .. ':' .. short(lookup), id) end
if grantId ~= '' then
  -- The server's clock, so that the scores and the set's PEXPIREAT agree with the keys' own TTLs.
  local gk = prefix .. 'gi:' .. short(grantId)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local score = '+inf'
  if ttl >= 0 then score = string.format('%.0f', now + ttl) end
  redis.call('ZREMRANGEBYSCORE', gk, '-inf', string.format('%.0f', now))
  redis.call('ZADD', gk, score, member)
  local top = redis.call('ZRANGE', gk, -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then redis.call('PERSIST', gk) else redis.call('PEXPIREAT', gk, top[2]) end
end
return 1`;

// KEYS[1] the model; ARGV: prefix, member, id, lookup family ('' none).
const DESTROY = `${LUA_HELPERS}
local k, prefix, member, id, family = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local old = redis.call('GET', k)
if not old then return 0 end
local f = header(old)
if family ~= '' and f[5] ~= '' then dropIfEqual(prefix .. family .. ':' .. short(f[5]), id) end
if f[4] ~= '' then redis.call('ZREM', prefix .. 'gi:' .. short(f[4]), member) end
redis.call('DEL', k)
return 1`;

// KEYS[1] the model; ARGV: epoch seconds, prefix, member. 1 when this call consumed the model, 0 when
// it was consumed before or is gone. KEEPTTL: the model keeps its expiry, to catch a replay. It leaves
// its grant's index: consumed, it can issue nothing more (oidc-provider refuses it and revokes the
// grant), and a rotated refresh token would otherwise stay in the set for the token's whole life.
const CONSUME = String.raw`${LUA_HELPERS}
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local f, e = header(v)
if f[3] ~= '' then return 0 end
redis.call('SET', KEYS[1], table.concat({ f[1], f[2], ARGV[1], f[4], f[5] }, '\31') .. string.sub(v, e), 'KEEPTTL')
if f[4] ~= '' then redis.call('ZREM', ARGV[2] .. 'gi:' .. short(f[4]), ARGV[3]) end
return 1`;

// KEYS[1] the lookup key; ARGV[1] the model's key without its id. → { id, value } or nil.
const FIND_VIA = `
local id = redis.call('GET', KEYS[1])
if not id then return false end
local v = redis.call('GET', ARGV[1] .. id)
if not v then return false end
return { id, v }`;

// KEYS[1] the grant index; ARGV[1] prefix. A DeviceCode's user-code entry goes with it.
const REVOKE = `${LUA_HELPERS}
local prefix = ARGV[1]
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local mk = prefix .. m
  if string.sub(m, 1, 3) == 'dc:' then
    local v = redis.call('GET', mk)
    if v then
      local f = header(v)
      if f[5] ~= '' then dropIfEqual(prefix .. 'uc:' .. short(f[5]), string.sub(m, 4)) end
    end
  end
  redis.call('DEL', mk)
end
redis.call('DEL', KEYS[1])
return 1`;

interface Scripts {
  latchkeyAdapterUpsert(key: string, ...args: (string | number | Buffer)[]): Promise<number>;
  latchkeyAdapterDestroy(key: string, ...args: string[]): Promise<number>;
  latchkeyAdapterConsume(key: string, consumed: number, prefix: string, member: string): Promise<number>;
  latchkeyAdapterFindViaBuffer(key: string, modelPrefix: string): Promise<[Buffer, Buffer] | null>;
  latchkeyAdapterRevoke(key: string, prefix: string): Promise<number>;
}

/**
 * oidc-provider storage in Redis through the caller's ioredis client (which
 * the caller also quits). Every key starts with `opts.prefix`; TTLs are
 * Redis's own, so an expired model is never returned.
 */
export function createRedisAdapterBackend(redis: Redis | Cluster, opts: { prefix: string }): AdapterBackend {
  const { prefix } = opts;
  redis.defineCommand('latchkeyAdapterUpsert', { numberOfKeys: 1, lua: UPSERT });
  redis.defineCommand('latchkeyAdapterDestroy', { numberOfKeys: 1, lua: DESTROY });
  redis.defineCommand('latchkeyAdapterConsume', { numberOfKeys: 1, lua: CONSUME });
  redis.defineCommand('latchkeyAdapterFindVia', { numberOfKeys: 1, lua: FIND_VIA });
  redis.defineCommand('latchkeyAdapterRevoke', { numberOfKeys: 1, lua: REVOKE });
  const scripts = redis as unknown as Scripts;

  function factory(model: string): Adapter {
    const code = REDIS_MODEL_CODES[model] ?? model;
    const keyPrefix = `${prefix}${code}:`;
    const key = (id: string) => keyPrefix + id;
    const member = (id: string) => `${code}:${id}`;
    const lookup = LOOKUP[model];
    const grantable = GRANTABLE.has(model);
    const decode = (id: string, value: Buffer) => decodeModel(value, id, model, lookup?.field) as AdapterPayload;

    async function find(id: string): Promise<AdapterPayload | undefined> {
      const value = await redis.getBuffer(key(id));
      return value == null ? undefined : decode(id, value);
    }

    async function destroy(id: string): Promise<void> {
      await scripts.latchkeyAdapterDestroy(key(id), prefix, member(id), id, lookup?.code ?? '');
    }

    // The lookup key may outlive or predate the model it names, so the model must still agree.
    async function findVia(family: string, field: 'uid' | 'userCode', value: string) {
      const found = await scripts.latchkeyAdapterFindViaBuffer(`${prefix}${family}:${short(value)}`, keyPrefix);
      if (!found) return undefined;
      const payload = decode(found[0].toString(), found[1]);
      return payload[field] === value ? payload : undefined;
    }

    return {
      async upsert(id, payload, expiresIn) {
        const ttlMs = typeof expiresIn === 'number' ? Math.round(expiresIn * 1000) : -1;
        if (typeof expiresIn === 'number' && ttlMs <= 0) return destroy(id);
        const value = encodeModel({ payload, id, model, lookup: lookup?.field, grantable });
        const lookupValue = lookup ? headerField(payload[lookup.field]) : '';
        const grantId = grantable ? headerField(payload.grantId) : '';
        await scripts.latchkeyAdapterUpsert(key(id), prefix, member(id), id, value, ttlMs, lookup?.code ?? '', lookupValue, grantId);
      },
      find,
      async findByUid(uid) {
        return model === 'Session' ? findVia('u', 'uid', uid) : undefined;
      },
      async findByUserCode(userCode) {
        return model === 'DeviceCode' ? findVia('uc', 'userCode', userCode) : undefined;
      },
      async consume(id) {
        if ((await scripts.latchkeyAdapterConsume(key(id), Math.floor(Date.now() / 1000), prefix, member(id))) !== 1) throw alreadyConsumed(model);
      },
      destroy,
      async revokeByGrantId(grantId) {
        await scripts.latchkeyAdapterRevoke(`${prefix}gi:${short(grantId)}`, prefix);
      },
    };
  }

  const SCAN_COUNT = 500;
  return {
    factory,
    async *scan(model) {
      const keyPrefix = `${prefix}${REDIS_MODEL_CODES[model] ?? model}:`;
      const pattern = `${keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
      // A cluster keeps every key of the prefix in one slot, but which node holds it is the cluster's business.
      const nodes = 'nodes' in redis && typeof redis.nodes === 'function' ? (redis as Cluster).nodes('master') : [redis as Redis];
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
          cursor = next;
          const values = keys.length ? await node.mgetBuffer(...keys) : [];
          for (let i = 0; i < keys.length; i++) {
            const value = values[i];
            if (value) yield decodeModel(value, keys[i]!.slice(keyPrefix.length), model, LOOKUP[model]?.field) as AdapterPayload;
          }
        } while (cursor !== '0');
      }
    },
    async ping() {
      await redis.ping();
    },
    async close() {},
  };
}
