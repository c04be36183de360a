import type { Cluster, Redis } from 'ioredis';
import { alreadyConsumed, DESTROYED_FOR_GOOD, DESTROYED_KEPT_MS, type AdapterBackend, type AdapterPayload, type StoredAdapter } from '../port.ts';
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
// uid or user code and whether it was consumed, then its deflated JSON). Strings, not hashes: a hash
// whose field passes 64 bytes (hash-max-listpack-value) becomes a full hashtable, several hundred bytes
// more per model. Index keys use the first 32 characters of the uid or user code:
// `${prefix}u:${uid}` and `${prefix}uc:${userCode}` hold an id.
//
// A grant's index — which tokens to remove when it is revoked — lives in the grant's own record,
// `${prefix}g:${id}`, as a sixth header field: `${code}:${id}~${expiry, epoch s}` members, comma-
// separated (no `~`: never expires). One key a session fewer than a sorted set of its own. The
// grant's key is its stored id, which the scripts cannot compute (a hash, src/storage/adapter/
// hashed-ids.ts), so the caller names it (`keyGrantsBy`). A token stored before its grant makes a
// record with the index alone (no body), which is no Grant. The record lives as long as the longer
// of the grant and its last token; `find` refuses a Grant past its own `exp`. Every write to an index
// prunes it of members expired, gone or consumed (a consumed model issues nothing more: oidc-provider
// refuses it and revokes the grant), so a refresh token's rotations do not pile up in it.
// Destroying a grant removes the tokens its record names: oidc-provider destroys a grant and revokes
// its tokens in parallel, and the index must not go first. A grant with more than FOLDED_TOKENS live
// tokens keeps them in a sorted set `${prefix}gi:${grantId}` instead (scored by expiry, ms), as the
// layout before kept every grant's; revocation reads both.
//
// A destroyed Session or Grant leaves `0` under its key (no stored model starts so) until it would
// have expired, at most DESTROYED_KEPT_MS: the upsert script then stores nothing, so a request that
// loaded it before it was destroyed cannot bring it back by saving it at its end (port.ts).
//
// Each operation is one script, one round trip, atomic. The scripts name further keys from the
// prefix they are given, so on Redis Cluster every key must be in one slot: a hash-tagged prefix such
// as `{latchkey}:` (src/storage/index.ts makes one).

/**
 * How many live tokens a grant's own record names at most; past that they move to a sorted set
 * `${prefix}gi:${grantId}` (the first 32 characters), where each write is O(log n) rather than a read
 * of every member and a rewrite of the record. A signed-in session's grant names two.
 */
export const FOLDED_TOKENS = 32;

// Shared by the scripts: a stored model's header fields (1 version, 2 flags, 3 consumed, 4 grantId,
// 5 lookup, 6 a grant's index) and where it ends; drop an index entry only while it still points at
// this id; a grant's index pruned (with `skip` left out) and the latest expiry it keeps (seconds,
// math.huge for none); a grant's members removed with the models they name.
const LUA_HELPERS = String.raw`
local function header(v)
  local e = string.find(v, '\30', 1, true)
  local f = {}
  for part in string.gmatch(string.sub(v, 1, e - 1) .. '\31', '([^\31]*)\31') do f[#f + 1] = part end
  return f, e
end
local function withIndex(f, index, rest)
  return table.concat({ f[1], f[2], f[3], f[4], f[5], index }, '\31') .. rest
end
local function dropIfEqual(k, id) if redis.call('GET', k) == id then redis.call('DEL', k) end end
local function short(s) return string.sub(s, 1, 32) end
local function nowSeconds()
  local t = redis.call('TIME')
  return tonumber(t[1]), tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function pruned(index, prefix, now, skip)
  local kept, top = {}, 0
  for m in string.gmatch(index or '', '[^,]+') do
    -- (each member: its key is read to see whether it is gone or consumed)
    local name, exp = string.match(m, '^([^~]+)~?(%d*)$')
    if name and name ~= skip and (exp == '' or tonumber(exp) > now) then
      local v = redis.call('GET', prefix .. name)
      if v and v ~= '0' and header(v)[3] == '' then
        kept[#kept + 1] = m
        if exp == '' then top = math.huge elseif tonumber(exp) > top then top = tonumber(exp) end
      end
    end
  end
  return table.concat(kept, ','), top, #kept
end
-- A sorted set of a grant's tokens, scored by expiry (ms, +inf none), living as long as its last.
local function addToSet(gk, member, ttl, nowMs)
  local score = '+inf'
  if ttl >= 0 then score = string.format('%.0f', nowMs + ttl) end
  redis.call('ZREMRANGEBYSCORE', gk, '-inf', string.format('%.0f', nowMs))
  redis.call('ZADD', gk, score, member)
  local top = redis.call('ZRANGE', gk, -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then redis.call('PERSIST', gk) else redis.call('PEXPIREAT', gk, top[2]) end
end
local function removeMembers(index, prefix)
  for m in string.gmatch(index or '', '[^,]+') do
    local name = string.match(m, '^([^~]+)')
    local mk = prefix .. name
    if string.sub(name, 1, 3) == 'dc:' then
      local v = redis.call('GET', mk)
      if v and v ~= '0' then
        local f = header(v)
        if f[5] ~= '' then dropIfEqual(prefix .. 'uc:' .. short(f[5]), string.sub(name, 4)) end
      end
    end
    redis.call('DEL', mk)
  end
end
local function setFor(key, value, pttl)
  if pttl < 0 then redis.call('SET', key, value) else redis.call('SET', key, value, 'PX', pttl) end
end
`;

// KEYS[1] the model; ARGV: 1 prefix, 2 member, 3 id, 4 value, 5 TTL ms (-1: none), 6 lookup family
// ('' none), 7 new lookup value ('' none), 8 new grantId ('' none), 9 its grant's record key, 10 the
// grantId the model had before, if the caller knows it, 11 that grant's record key, 12 '1' for a Grant.
// → 1, 0 when the model was destroyed for good (nothing stored), or { 'regrant', grantId } when the
// model moves from a grant whose key the caller must name.
const UPSERT = String.raw`${LUA_HELPERS}
local LIMIT = ${FOLDED_TOKENS}
local k, prefix, member, id, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])
local family, lookup, grantId, grantKey = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local value = ARGV[4]
local now, nowMs = nowSeconds()
local old = redis.call('GET', k)
if old == '0' then return 0 end
if old then
  local f, e = header(old)
  if f[4] ~= '' and f[4] ~= grantId then
    if ARGV[10] ~= f[4] then return { 'regrant', f[4] } end
    redis.call('ZREM', prefix .. 'gi:' .. short(f[4]), member)
    local ov = redis.call('GET', ARGV[11])
    if ov and ov ~= '0' then
      local of, oe = header(ov)
      redis.call('SET', ARGV[11], withIndex(of, (pruned(of[6], prefix, now, member)), string.sub(ov, oe)), 'KEEPTTL')
    end
  end
  if family ~= '' and f[5] ~= '' and f[5] ~= lookup then dropIfEqual(prefix .. family .. ':' .. short(f[5]), id) end
  if ARGV[12] == '1' and (f[6] or '') ~= '' then
    -- A grant saved again keeps its tokens' index, and lives as long as the last of them.
    local index, top = pruned(f[6], prefix, now)
    if index ~= '' then
      local nf, ne = header(value)
      value = withIndex(nf, index, string.sub(value, ne))
      if top == math.huge then ttl = -1 elseif ttl >= 0 and top * 1000 - nowMs > ttl then ttl = top * 1000 - nowMs end
    end
  end
end
setFor(k, value, ttl)
if lookup ~= '' then setFor(prefix .. family .. ':' .. short(lookup), id, ttl) end
if grantId ~= '' then
  local entry = member
  if ttl >= 0 then entry = member .. '~' .. string.format('%.0f', math.ceil((nowMs + ttl) / 1000)) end
  local setKey = prefix .. 'gi:' .. short(grantId)
  local gv = redis.call('GET', grantKey)
  if gv == '0' or redis.call('EXISTS', setKey) == 1 then
    -- (a grant destroyed for good keeps no index in its record: its tokens, useless, are still revoked with it)
    addToSet(setKey, member, ttl, nowMs)
  elseif gv then
    local f, e = header(gv)
    local index, _, count = pruned(f[6], prefix, now, member)
    if count >= LIMIT then
      -- Many live tokens (a client refreshing often: each access token lives its hour): a sorted set of
      -- their own from now on, so a write stays O(log n) instead of rewriting and reading them all.
      for m in string.gmatch(index, '[^,]+') do
        local name, exp = string.match(m, '^([^~]+)~?(%d*)$')
        if exp == '' then addToSet(setKey, name, -1, nowMs) else addToSet(setKey, name, tonumber(exp) * 1000 - nowMs, nowMs) end
      end
      addToSet(setKey, member, ttl, nowMs)
      redis.call('SET', grantKey, withIndex(f, '', string.sub(gv, e)), 'KEEPTTL')
    else
      if index == '' then index = entry else index = index .. ',' .. entry end
      local pttl = redis.call('PTTL', grantKey)
      if pttl >= 0 and (ttl < 0 or ttl > pttl) then pttl = ttl end
      setFor(grantKey, withIndex(f, index, string.sub(gv, e)), pttl)
    end
  else
    setFor(grantKey, '1\31\31\31\31\31' .. entry .. '\30', ttl)
  end
end
return 1`;

// KEYS[1] the model; ARGV: prefix, member, id, lookup family ('' none), '1' to keep the id destroyed,
// for how long at most (ms). A grant goes with the tokens its record names (those in its sorted set go
// with its revocation, which oidc-provider runs beside).
const DESTROY = `${LUA_HELPERS}
local k, prefix, member, id, family = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local old = redis.call('GET', k)
if not old or old == '0' then return 0 end
local f = header(old)
if family ~= '' and f[5] ~= '' then dropIfEqual(prefix .. family .. ':' .. short(f[5]), id) end
if f[4] ~= '' then redis.call('ZREM', prefix .. 'gi:' .. short(f[4]), member) end
removeMembers(f[6], prefix)
if ARGV[5] == '1' then
  local pttl, most = redis.call('PTTL', k), tonumber(ARGV[6])
  if pttl < 0 or pttl > most then pttl = most end
  redis.call('SET', k, '0', 'PX', pttl)
else
  redis.call('DEL', k)
end
return 1`;

// KEYS[1] the model; ARGV: epoch seconds, prefix, member. 1 when this call consumed the model, 0 when it
// was consumed before or is gone. KEEPTTL: the model keeps its expiry, to catch a replay. A grant's
// record drops it at its next write; a grant's sorted set at once (a rotated refresh token would
// otherwise stay in it for its whole life).
const CONSUME = String.raw`${LUA_HELPERS}
local v = redis.call('GET', KEYS[1])
if not v or v == '0' then return 0 end
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
if not v or v == '0' then return false end
return { id, v }`;

// KEYS[1] the grant's record, KEYS[2] its sorted set (many tokens, or the layout before); ARGV[1] prefix. A DeviceCode's
// user-code entry goes with it. The grant itself stays (oidc-provider destroys it when it means to).
const REVOKE = `${LUA_HELPERS}
local prefix = ARGV[1]
local gv = redis.call('GET', KEYS[1])
if gv and gv ~= '0' then
  local f, e = header(gv)
  removeMembers(f[6], prefix)
  if e == #gv then redis.call('DEL', KEYS[1]) elseif (f[6] or '') ~= '' then redis.call('SET', KEYS[1], withIndex(f, '', string.sub(gv, e)), 'KEEPTTL') end
end
local old = redis.call('ZRANGE', KEYS[2], 0, -1)
if #old > 0 then removeMembers(table.concat(old, ','), prefix) end
redis.call('DEL', KEYS[2])
return 1`;

interface Scripts {
  latchkeyAdapterUpsert(key: string, ...args: (string | number | Buffer)[]): Promise<number | [string, string]>;
  latchkeyAdapterDestroy(key: string, ...args: string[]): Promise<number>;
  latchkeyAdapterConsume(key: string, consumed: number, prefix: string, member: string): Promise<number>;
  latchkeyAdapterFindViaBuffer(key: string, modelPrefix: string): Promise<[Buffer, Buffer] | null>;
  latchkeyAdapterRevoke(grantKey: string, legacyIndex: string, prefix: string): Promise<number>;
}

// A grant's record that holds its index alone (its tokens were stored before it): the header, no body.
const indexOnly = (value: Buffer) => value.indexOf(0x1e) === value.length - 1;
// What a Session or Grant destroyed for good leaves under its key.
const destroyedMark = (value: Buffer) => value.length === 1 && value[0] === 0x30;

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
  redis.defineCommand('latchkeyAdapterRevoke', { numberOfKeys: 2, lua: REVOKE });
  const scripts = redis as unknown as Scripts;
  // Unwrapped, a Grant is stored under its id; withHashedIds says how it stores one.
  let grantStoredId = (grantId: string) => grantId;
  const grantRecord = (grantId: string) => `${prefix}${REDIS_MODEL_CODES.Grant}:${grantStoredId(grantId)}`;

  function factory(model: string): StoredAdapter {
    const code = REDIS_MODEL_CODES[model] ?? model;
    const keyPrefix = `${prefix}${code}:`;
    const key = (id: string) => keyPrefix + id;
    const member = (id: string) => `${code}:${id}`;
    const lookup = LOOKUP[model];
    const grantable = GRANTABLE.has(model);
    const isGrant = model === 'Grant';
    const forGood = DESTROYED_FOR_GOOD.has(model) ? '1' : '';
    const decode = (id: string, value: Buffer) => decodeModel(value, id, model, lookup?.field) as AdapterPayload;

    async function find(id: string): Promise<AdapterPayload | undefined> {
      const value = await redis.getBuffer(key(id));
      if (value == null || destroyedMark(value) || (isGrant && indexOnly(value))) return undefined;
      const payload = decode(id, value);
      // A grant's record may outlive the grant, for the tokens it still names.
      if (isGrant && typeof payload.exp === 'number' && payload.exp * 1000 <= Date.now()) return undefined;
      return payload;
    }

    async function destroy(id: string): Promise<void> {
      await scripts.latchkeyAdapterDestroy(key(id), prefix, member(id), id, lookup?.code ?? '', forGood, String(DESTROYED_KEPT_MS));
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
        if (typeof expiresIn === 'number' && ttlMs <= 0) {
          await destroy(id);
          return true;
        }
        const value = encodeModel({ payload, id, model, lookup: lookup?.field, grantable });
        const lookupValue = lookup ? headerField(payload[lookup.field]) : '';
        const grantId = grantable ? headerField(payload.grantId) : '';
        const args = [prefix, member(id), id, value, ttlMs, lookup?.code ?? '', lookupValue, grantId, grantId ? grantRecord(grantId) : '', '', '', isGrant ? '1' : ''];
        // A model moving to another grant (oidc-provider never moves one): the script asks for the old grant's record.
        for (let tries = 0; tries < 3; tries++) {
          const done = await scripts.latchkeyAdapterUpsert(key(id), ...args);
          if (!Array.isArray(done)) return done === 1;
          args[9] = String(done[1]);
          args[10] = grantRecord(String(done[1]));
        }
        throw new Error(`Redis adapter: a ${model} kept moving between grants while it was saved`);
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
        await scripts.latchkeyAdapterRevoke(grantRecord(grantId), `${prefix}gi:${short(grantId)}`, prefix);
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
            if (value && !destroyedMark(value) && !indexOnly(value)) yield decodeModel(value, keys[i]!.slice(keyPrefix.length), model, LOOKUP[model]?.field) as AdapterPayload;
          }
        } while (cursor !== '0');
      }
    },
    keyGrantsBy(storedId) {
      grantStoredId = storedId;
    },
    async ping() {
      await redis.ping();
    },
    async close() {},
  };
}
