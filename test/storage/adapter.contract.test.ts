// The provider adapter contract (src/storage/adapter/port.ts), run against
// every implementation: what oidc-provider expects of its memory adapter.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Cluster, Redis } from 'ioredis';
import { errors } from 'oidc-provider';
import type { AdapterBackend, AdapterPayload, StoredAdapter } from '../../src/storage/adapter/port.ts';
import { createSqliteAdapterBackend } from '../../src/storage/adapter/sqlite/index.ts';
import { createRedisAdapterBackend } from '../../src/storage/adapter/redis/index.ts';
import { hashId, idHash, SHORT_STORED_ID, withHashedIds } from '../../src/storage/adapter/hashed-ids.ts';
import { createSecretBox } from '../../src/crypto/secretbox.ts';
import { describeStored } from '../../src/storage/adapter/redis/codec.ts';
import { testRedisPrefix, testRedisUrl } from '../support/redis.ts';
import { tempDir } from '../support/tmp.ts';
import { startRedisCluster } from '../support/redis-cluster.ts';

interface AdapterHarness {
  backend: AdapterBackend;
  /** The backend without the hashing wrapper, and how many characters of the hash its stored ids keep. */
  raw: AdapterBackend;
  storedIdChars: number;
  /** The same store through another connection, as another app process has it. */
  other: AdapterBackend;
  /** Everything the store holds for this harness, keys included, as text. */
  dump(): Promise<string>;
  cleanup(): Promise<void>;
}

// As src/storage/index.ts wraps every backend.
const KEY = randomBytes(32);
const hashed = (backend: AdapterBackend) => withHashedIds(backend, KEY);
// Redis keeps a shorter stored id, as src/storage/index.ts has it.
const hashedShort = (backend: AdapterBackend) => withHashedIds(backend, KEY, { storedIdChars: SHORT_STORED_ID });

async function dumpRedis(nodes: (Redis | Cluster)[], prefix: string): Promise<string> {
  const out: string[] = [];
  for (const redis of nodes.flatMap((n) => (n instanceof Cluster ? n.nodes('master') : [n]))) {
    for (const key of await redis.keys(`${prefix}*`)) {
      out.push(key);
      const type = await redis.type(key);
      if (type === 'string') out.push(describeStored((await redis.getBuffer(key)) ?? Buffer.alloc(0)));
      else if (type === 'hash') out.push(...Object.entries(await redis.hgetall(key)).flat());
      else if (type === 'zset') out.push(...(await redis.zrange(key, 0, -1)));
    }
  }
  return out.join('\n');
}

const epoch = () => Math.floor(Date.now() / 1000);
// What the token endpoint turns into invalid_grant.
const isAlreadyConsumed = (err: unknown) => err instanceof errors.InvalidGrant;
const newId = () => randomUUID();

/** What a lookup returns for the model stored under `id`: a handle to it, not the id, that `find` refuses. */
async function assertHandle(adapter: StoredAdapter, found: AdapterPayload | undefined | void, id: string, payload: AdapterPayload) {
  assert.ok(found && typeof found.jti === 'string');
  assert.deepEqual({ ...found, jti: id }, payload);
  assert.match(found.jti, /^~/);
  assert.ok(!found.jti.includes(id), 'the id is not in its handle');
  assert.equal(idHash(found.jti), hashId(id), "a handle carries its id's hash");
  assert.equal(idHash(id), hashId(id));
  assert.equal(await adapter.find(found.jti), undefined, 'a handle is never a token or a cookie');
}

function adapterContract(name: string, open: () => Promise<AdapterHarness>): void {
  describe(`adapter contract: ${name}`, () => {
    let harness: AdapterHarness;
    const adapter = (model: string) => harness.backend.factory(model);

    before(async () => {
      harness = await open();
    });
    after(async () => {
      await harness.cleanup();
    });

    it('answers ping', async () => {
      await harness.backend.ping();
    });

    it('round-trips a payload through upsert and find', async () => {
      const id = newId();
      const payload: AdapterPayload = {
        jti: id,
        kind: 'AccessToken',
        accountId: 'acc-1',
        clientId: 'client-1',
        grantId: newId(),
        scope: 'openid email',
        amr: [],
        claims: { userinfo: { email: { essential: true } } },
        extra: { note: 'ünïcødé / "quoted"', n: 1.5, big: 2 ** 40, empty: {} },
        iat: epoch(),
        exp: epoch() + 60,
      };
      await adapter('AccessToken').upsert(id, payload, 60);
      assert.deepEqual(await adapter('AccessToken').find(id), payload);
    });

    it('finds nothing for an unknown id, uid or user code', async () => {
      assert.equal(await adapter('AccessToken').find(newId()), undefined);
      assert.equal(await adapter('Session').findByUid(newId()), undefined);
      assert.equal(await adapter('DeviceCode').findByUserCode('NOPE-NOPE'), undefined);
    });

    it('keeps a model stored without expiresIn', async () => {
      const id = newId();
      await adapter('Client').upsert(id, { client_id: id, redirect_uris: ['https://rp.example/cb'] });
      assert.deepEqual(await adapter('Client').find(id), {
        client_id: id,
        redirect_uris: ['https://rp.example/cb'],
      });
    });

    it('finds a Session by uid', async () => {
      const id = newId();
      const uid = newId();
      const payload = { jti: id, uid, kind: 'Session', accountId: 'acc-1', loginTs: epoch() };
      await adapter('Session').upsert(id, payload, 60);
      await assertHandle(adapter('Session'), await adapter('Session').findByUid(uid), id, payload);
      assert.deepEqual(await adapter('Session').find(id), payload);
    });

    it('saves, consumes and destroys the Session a lookup found through its handle', async () => {
      const id = newId();
      const uid = newId();
      const payload = { jti: id, uid, kind: 'Session', accountId: 'acc-1', loginTs: epoch() };
      await adapter('Session').upsert(id, payload, 60);
      const { jti: handle } = (await adapter('Session').findByUid(uid))!;
      assert.ok(typeof handle === 'string');
      // As oidc-provider saves a model it loaded: its id, in the payload too, is the handle.
      await adapter('Session').upsert(handle, { ...payload, jti: handle, authorizations: { app: { sid: 's1' } } }, 60);
      assert.deepEqual(await adapter('Session').find(id), { ...payload, authorizations: { app: { sid: 's1' } } });
      await assertHandle(adapter('Session'), await adapter('Session').findByUid(uid), id, { ...payload, authorizations: { app: { sid: 's1' } } });
      await adapter('Session').destroy(handle);
      assert.equal(await adapter('Session').find(id), undefined);
      assert.equal(await adapter('Session').findByUid(uid), undefined);
    });

    it('refuses a handle it did not make for that model: forged, altered, or made for another', async () => {
      const id = newId();
      const uid = newId();
      const userCode = `UC-${newId().slice(0, 8)}`;
      await adapter('Session').upsert(id, { jti: id, uid, kind: 'Session', accountId: 'acc-1' }, 60);
      await adapter('DeviceCode').upsert(id, { jti: id, userCode, kind: 'DeviceCode', grantId: newId() }, 60);
      const handle = String((await adapter('Session').findByUid(uid))!.jti);
      const deviceHandle = String((await adapter('DeviceCode').findByUserCode(userCode))!.jti);
      const [hash, mac] = handle.slice(1).split('.') as [string, string];
      const forged = [`~${hash}.${'A'.repeat(22)}`, `~${hash}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`, `~${hashId(newId())}.${mac}`, deviceHandle, `~${hash}`];
      for (const bad of forged) {
        await assert.rejects(adapter('Session').destroy(bad), /not a handle/);
        await assert.rejects(adapter('Session').upsert(bad, { jti: bad, uid, kind: 'Session', accountId: 'mallory' }, 60), /not a handle/);
        await assert.rejects(adapter('Session').consume(bad), /not a handle/);
      }
      assert.equal((await adapter('Session').find(id))?.accountId, 'acc-1', 'the Session stands, unchanged');
      assert.ok(await adapter('DeviceCode').find(id));
    });

    it('still finds a Session stored with its id sealed, as before handles, with that id', async () => {
      const id = newId();
      const uid = newId();
      const box = createSecretBox([{ kid: 'adapter', key: KEY }]);
      const stored = hashId(id).slice(0, harness.storedIdChars);
      await harness.raw.factory('Session').upsert(stored, { jti: box.seal(id, 'Session'), uid, kind: 'Session', accountId: 'acc-1' }, 60);
      assert.deepEqual(await adapter('Session').findByUid(uid), { jti: id, uid, kind: 'Session', accountId: 'acc-1' });
      assert.deepEqual(await adapter('Session').find(id), { jti: id, uid, kind: 'Session', accountId: 'acc-1' });
      // Sealed for another model, it opens to nothing.
      await harness.raw.factory('Session').upsert(stored, { jti: box.seal(id, 'DeviceCode'), uid, kind: 'Session', accountId: 'acc-1' }, 60);
      assert.equal(await adapter('Session').findByUid(uid), undefined);
    });

    it('scans the live models of one name: a Session with its id, never an expired, destroyed or other one', async () => {
      const live = { jti: newId(), uid: newId(), kind: 'Session', accountId: 'acc-scan', loginTs: epoch() };
      const gone = { jti: newId(), uid: newId(), kind: 'Session', accountId: 'acc-scan', loginTs: epoch() };
      const expired = { jti: newId(), uid: newId(), kind: 'Session', accountId: 'acc-scan', loginTs: epoch() };
      await adapter('Session').upsert(live.jti, live, 60);
      await adapter('Session').upsert(gone.jti, gone, 60);
      await adapter('Session').destroy(gone.jti);
      await adapter('Session').upsert(expired.jti, expired, 1);
      await adapter('Interaction').upsert(newId(), { jti: newId(), kind: 'Interaction', accountId: 'acc-scan' }, 60);
      await sleep(1100);
      const scanned: AdapterPayload[] = [];
      for await (const payload of harness.other.scan('Session')) if (payload.accountId === 'acc-scan') scanned.push(payload);
      assert.equal(scanned.length, 1);
      await assertHandle(adapter('Session'), scanned[0], live.jti, live);
    });

    it('finds a DeviceCode by userCode', async () => {
      const id = newId();
      const userCode = `UC-${newId().slice(0, 8)}`;
      const payload = { jti: id, kind: 'DeviceCode', userCode, clientId: 'client-1', grantId: newId() };
      await adapter('DeviceCode').upsert(id, payload, 60);
      await assertHandle(adapter('DeviceCode'), await adapter('DeviceCode').findByUserCode(userCode), id, payload);
    });

    it('consume sets consumed to the epoch seconds, visible to find', async () => {
      const id = newId();
      const payload = { jti: id, kind: 'AuthorizationCode', grantId: newId(), scope: 'openid' };
      await adapter('AuthorizationCode').upsert(id, payload, 60);
      const t0 = epoch();
      await adapter('AuthorizationCode').consume(id);
      const t1 = epoch();
      const found = await adapter('AuthorizationCode').find(id);
      assert.ok(found);
      assert.equal(typeof found.consumed, 'number');
      assert.ok(Number.isInteger(found.consumed));
      assert.ok(found.consumed >= t0 && found.consumed <= t1, `consumed ${found.consumed} in [${t0}, ${t1}]`);
      assert.deepEqual({ ...found, consumed: undefined }, { ...payload, consumed: undefined });
    });

    it('consume of an unknown id creates nothing and rejects', async () => {
      const id = newId();
      await assert.rejects(adapter('RefreshToken').consume(id), isAlreadyConsumed);
      assert.equal(await adapter('RefreshToken').find(id), undefined);
    });

    it('consumes a model once: a second consume rejects and keeps the first time', async () => {
      const id = newId();
      const a = adapter('AuthorizationCode');
      await a.upsert(id, { jti: id, grantId: newId() }, 60);
      await a.consume(id);
      const first = (await a.find(id))?.consumed;
      await assert.rejects(a.consume(id), isAlreadyConsumed);
      assert.equal((await a.find(id))?.consumed, first);
    });

    it('lets exactly one of many parallel consumers win, also across connections', async () => {
      for (const model of ['AuthorizationCode', 'RefreshToken']) {
        const id = newId();
        await adapter(model).upsert(id, { jti: id, grantId: newId() }, 60);
        // Each consumer on its own adapter instance, half of them through the other connection.
        const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => (i % 2 ? harness.other : harness.backend).factory(model).consume(id)));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, model);
        for (const r of results) if (r.status === 'rejected') assert.ok(isAlreadyConsumed(r.reason), String(r.reason));
      }
    });

    it('stays consistent under parallel consume and find', async () => {
      const id = newId();
      const payload = { jti: id, kind: 'RefreshToken', grantId: newId(), accountId: 'acc-1', rotations: 0 };
      const a = adapter('RefreshToken');
      await a.upsert(id, payload, 60);
      const t0 = epoch();
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 2
            ? a.find(id)
            : a.consume(id).then(
                () => 'consumed' as const,
                (err: unknown) => (isAlreadyConsumed(err) ? ('consumed' as const) : Promise.reject(err)),
              ),
        ),
      );
      const t1 = epoch();
      for (const result of results) {
        if (result === 'consumed') continue;
        assert.ok(result, 'find during consume returns the model');
        if (result.consumed !== undefined) {
          assert.ok(result.consumed >= t0 && result.consumed <= t1);
        }
        assert.deepEqual({ ...result, consumed: undefined }, { ...payload, consumed: undefined });
      }
      const final = await a.find(id);
      assert.ok(final && typeof final.consumed === 'number' && final.consumed >= t0 && final.consumed <= t1);
    });

    it('stores no id in usable form: not in a key, a row or a payload', async () => {
      const grantId = newId();
      const ids: string[] = [];
      const token = () => {
        const id = randomBytes(32).toString('base64url');
        ids.push(id);
        return id;
      };
      const code = token();
      const refresh = token();
      const access = token();
      const session = token();
      const interaction = token();
      await adapter('AuthorizationCode').upsert(code, { jti: code, kind: 'AuthorizationCode', grantId }, 60);
      await adapter('RefreshToken').upsert(refresh, { jti: refresh, kind: 'RefreshToken', grantId }, 60);
      await adapter('AccessToken').upsert(access, { jti: access, kind: 'AccessToken', grantId }, 60);
      const uid = newId();
      await adapter('Session').upsert(session, { jti: session, uid, kind: 'Session', accountId: 'acc-1' }, 60);
      await adapter('Interaction').upsert(interaction, { jti: interaction, kind: 'Interaction', session: { uid, cookie: session, accountId: 'acc-1' } }, 60);
      await adapter('AuthorizationCode').consume(code);

      const dump = await harness.dump();
      for (const id of ids) assert.ok(!dump.includes(id), `id ${id.slice(0, 8)}… is in the store`);
      // Every model is still found by its id with its id, and a Session by uid with a handle to it.
      assert.equal((await adapter('RefreshToken').find(refresh))?.jti, refresh);
      assert.equal((await adapter('AuthorizationCode').find(code))?.jti, code);
      const found = await adapter('Session').findByUid(uid);
      assert.equal(idHash(String(found?.jti)), hashId(session));
      for (const id of ids) assert.ok(!String(found?.jti).includes(id));
      await adapter('AccessToken').revokeByGrantId(grantId);
      assert.equal(await adapter('AccessToken').find(access), undefined);
    });

    it('destroy removes the model and its lookups', async () => {
      const sessionId = newId();
      const uid = newId();
      await adapter('Session').upsert(sessionId, { jti: sessionId, uid, kind: 'Session' }, 60);
      const deviceId = newId();
      const userCode = `UC-${newId().slice(0, 8)}`;
      await adapter('DeviceCode').upsert(deviceId, { jti: deviceId, userCode, grantId: newId() }, 60);

      await adapter('Session').destroy(sessionId);
      await adapter('DeviceCode').destroy(deviceId);

      assert.equal(await adapter('Session').find(sessionId), undefined);
      assert.equal(await adapter('Session').findByUid(uid), undefined);
      assert.equal(await adapter('DeviceCode').find(deviceId), undefined);
      assert.equal(await adapter('DeviceCode').findByUserCode(userCode), undefined);
      await adapter('Session').destroy(newId());
    });

    it('a destroyed Session or Grant stays destroyed: saving it again, as a request that loaded it before does at its end, stores nothing', async () => {
      const sessionId = newId();
      const uid = newId();
      const grantId = newId();
      const session = { jti: sessionId, uid, kind: 'Session', accountId: 'acc-1', loginTs: epoch(), authorizations: { app: { sid: 's1', grantId } } };
      const grant = { jti: grantId, kind: 'Grant', accountId: 'acc-1', clientId: 'app', openid: { scope: 'openid' }, exp: epoch() + 60 };
      assert.equal(await adapter('Session').upsert(sessionId, session, 60), true);
      assert.equal(await adapter('Grant').upsert(grantId, grant, 60), true);
      const { jti: handle } = (await adapter('Session').findByUid(uid))!;

      await adapter('Session').destroy(sessionId);
      await adapter('Grant').destroy(grantId);
      // Another process's request, still holding what it loaded: by id, by the handle a lookup gave, with a token of the grant.
      assert.equal(await harness.other.factory('Session').upsert(sessionId, { ...session, authorizations: { app: { sid: 's1', grantId }, other: { sid: 's2' } } }, 60), false);
      assert.equal(await harness.other.factory('Session').upsert(String(handle), { ...session, jti: handle }, 60), false);
      assert.equal(await harness.other.factory('Grant').upsert(grantId, grant, 60), false);
      const access = newId();
      await adapter('AccessToken').upsert(access, { jti: access, kind: 'AccessToken', grantId, accountId: 'acc-1' }, 60);

      assert.equal(await adapter('Session').find(sessionId), undefined);
      assert.equal(await adapter('Session').findByUid(uid), undefined);
      assert.equal(await adapter('Grant').find(grantId), undefined);
      const scanned: AdapterPayload[] = [];
      for await (const payload of harness.backend.scan('Session')) if (payload.uid === uid) scanned.push(payload);
      assert.deepEqual(scanned, []);
      await assert.rejects(adapter('Session').consume(sessionId));
      await adapter('Session').destroy(sessionId);
      await adapter('AccessToken').revokeByGrantId(grantId);
      assert.equal(await adapter('AccessToken').find(access), undefined, 'a token of the destroyed grant is still revoked with it');
      assert.equal(await adapter('Session').find(sessionId), undefined);

      // Other models are stored again after a destroy, as before.
      const interaction = newId();
      await adapter('Interaction').upsert(interaction, { jti: interaction, kind: 'Interaction' }, 60);
      await adapter('Interaction').destroy(interaction);
      assert.equal(await adapter('Interaction').upsert(interaction, { jti: interaction, kind: 'Interaction' }, 60), true);
      assert.deepEqual(await adapter('Interaction').find(interaction), { jti: interaction, kind: 'Interaction' });
    });

    it('revokeByGrantId removes every token of the grant and none of another grant', async () => {
      const grantId = newId();
      const otherGrant = newId();
      const userCode = `UC-${newId().slice(0, 8)}`;
      const ours = {
        AccessToken: newId(),
        RefreshToken: newId(),
        AuthorizationCode: newId(),
        DeviceCode: newId(),
        BackchannelAuthenticationRequest: newId(),
      };
      const theirs = { AccessToken: newId(), RefreshToken: newId(), AuthorizationCode: newId() };
      for (const [model, id] of Object.entries(ours)) {
        const extra = model === 'DeviceCode' ? { userCode } : {};
        await adapter(model).upsert(id, { jti: id, kind: model, grantId, ...extra }, 60);
      }
      for (const [model, id] of Object.entries(theirs)) {
        await adapter(model).upsert(id, { jti: id, kind: model, grantId: otherGrant }, 60);
      }

      await adapter('AccessToken').revokeByGrantId(grantId);

      for (const [model, id] of Object.entries(ours)) {
        assert.equal(await adapter(model).find(id), undefined, `${model} of the revoked grant`);
      }
      assert.equal(await adapter('DeviceCode').findByUserCode(userCode), undefined);
      for (const [model, id] of Object.entries(theirs)) {
        assert.ok(await adapter(model).find(id), `${model} of another grant`);
      }
      await adapter('RefreshToken').revokeByGrantId(newId());
    });

    it('revokeByGrantId after a consume: the tokens are gone and the consumed code stays refused', async () => {
      const grantId = newId();
      const code = newId();
      const access = newId();
      const refresh = newId();
      await adapter('AuthorizationCode').upsert(code, { jti: code, kind: 'AuthorizationCode', grantId }, 60);
      await adapter('AuthorizationCode').consume(code);
      await adapter('AccessToken').upsert(access, { jti: access, kind: 'AccessToken', grantId }, 60);
      await adapter('RefreshToken').upsert(refresh, { jti: refresh, kind: 'RefreshToken', grantId }, 60);
      await adapter('RefreshToken').consume(refresh);

      await adapter('AuthorizationCode').revokeByGrantId(grantId);

      assert.equal(await adapter('AccessToken').find(access), undefined);
      await assert.rejects(adapter('AuthorizationCode').consume(code), isAlreadyConsumed);
      await assert.rejects(adapter('RefreshToken').consume(refresh), isAlreadyConsumed);
      // Whatever stays is marked consumed, so oidc-provider refuses it.
      for (const [model, id] of [
        ['AuthorizationCode', code],
        ['RefreshToken', refresh],
      ] as const) {
        const left = await adapter(model).find(id);
        assert.ok(left === undefined || typeof left.consumed === 'number', model);
      }
    });

    it('revokeByGrantId leaves models outside the grantable set (as the memory adapter does)', async () => {
      const grantId = newId();
      const interactionId = newId();
      const sessionId = newId();
      const tokenId = newId();
      await adapter('Interaction').upsert(interactionId, { jti: interactionId, kind: 'Interaction', grantId }, 60);
      await adapter('Session').upsert(sessionId, { jti: sessionId, uid: newId(), kind: 'Session' }, 60);
      await adapter('AccessToken').upsert(tokenId, { jti: tokenId, kind: 'AccessToken', grantId }, 60);

      await adapter('AccessToken').revokeByGrantId(grantId);

      assert.equal(await adapter('AccessToken').find(tokenId), undefined);
      assert.ok(await adapter('Interaction').find(interactionId));
      assert.ok(await adapter('Session').find(sessionId));
    });

    it('upsert over an existing id replaces the payload, its lookups and consumed', async () => {
      const id = newId();
      const oldUid = newId();
      const newUid = newId();
      const s = adapter('Session');
      await s.upsert(id, { jti: id, uid: oldUid, kind: 'Session', accountId: 'old', amr: ['pwd'] }, 60);
      await s.upsert(id, { jti: id, uid: newUid, kind: 'Session', accountId: 'new' }, 60);
      assert.deepEqual(await s.find(id), { jti: id, uid: newUid, kind: 'Session', accountId: 'new' });
      await assertHandle(s, await s.findByUid(newUid), id, { jti: id, uid: newUid, kind: 'Session', accountId: 'new' });
      assert.equal(await s.findByUid(oldUid), undefined);

      const codeId = newId();
      const c = adapter('AuthorizationCode');
      await c.upsert(codeId, { jti: codeId, grantId: newId(), scope: 'a' }, 60);
      await c.consume(codeId);
      const grantId = newId();
      await c.upsert(codeId, { jti: codeId, grantId, scope: 'b' }, 60);
      assert.deepEqual(await c.find(codeId), { jti: codeId, grantId, scope: 'b' });
    });

    it('upsert moving a token to another grant takes it out of the old grant', async () => {
      const id = newId();
      const first = newId();
      const second = newId();
      const a = adapter('AccessToken');
      await a.upsert(id, { jti: id, grantId: first }, 60);
      await a.upsert(id, { jti: id, grantId: second }, 60);
      await a.revokeByGrantId(first);
      assert.deepEqual(await a.find(id), { jti: id, grantId: second });
      await a.revokeByGrantId(second);
      assert.equal(await a.find(id), undefined);
    });

    it("revoking as oidc-provider does — every model's revokeByGrantId and the grant's destroy at once — leaves no token", async () => {
      for (const grantFirst of [true, false]) {
        const grantId = newId();
        const grant = { jti: grantId, kind: 'Grant', clientId: 'client-1', accountId: 'acc-1', exp: epoch() + 60 };
        await adapter('Grant').upsert(grantId, grant, 60);
        const tokens = { AuthorizationCode: newId(), AccessToken: newId(), RefreshToken: newId() };
        for (const [model, id] of Object.entries(tokens)) await adapter(model).upsert(id, { jti: id, kind: model, grantId }, 60);
        const revokes = Object.keys(tokens).map((model) => adapter(model).revokeByGrantId(grantId));
        const destroy = adapter('Grant').destroy(grantId);
        await Promise.all(grantFirst ? [destroy, ...revokes] : [...revokes, destroy]);
        for (const [model, id] of Object.entries(tokens)) assert.equal(await adapter(model).find(id), undefined, `${model}, the grant destroyed ${grantFirst ? 'first' : 'last'}`);
        assert.equal(await adapter('Grant').find(grantId), undefined);
      }
    });

    it('keeps a grant and its tokens apart: saved before, between and after them, the grant is itself and its tokens are revoked', async () => {
      const grantId = newId();
      const grant = { jti: grantId, kind: 'Grant', clientId: 'client-1', accountId: 'acc-1', exp: epoch() + 60, openid: { scope: 'openid' } };
      const early = newId();
      const late = newId();
      await adapter('AccessToken').upsert(early, { jti: early, kind: 'AccessToken', grantId }, 60);
      assert.equal(await adapter('Grant').find(grantId), undefined, 'a token stored first makes no grant');
      await adapter('Grant').upsert(grantId, grant, 60);
      await adapter('RefreshToken').upsert(late, { jti: late, kind: 'RefreshToken', grantId }, 60);
      const changed = { ...grant, openid: { scope: 'openid email' } };
      await adapter('Grant').upsert(grantId, changed, 60);
      assert.deepEqual(await adapter('Grant').find(grantId), changed);

      await adapter('AccessToken').revokeByGrantId(grantId);
      assert.equal(await adapter('AccessToken').find(early), undefined);
      assert.equal(await adapter('RefreshToken').find(late), undefined);
      assert.deepEqual(await adapter('Grant').find(grantId), changed, 'revoking its tokens leaves the grant');
      await adapter('Grant').destroy(grantId);
      assert.equal(await adapter('Grant').find(grantId), undefined);
    });

    it('isolates models by name', async () => {
      const id = newId();
      await adapter('AccessToken').upsert(id, { jti: id, kind: 'AccessToken' }, 60);
      await adapter('RefreshToken').upsert(id, { jti: id, kind: 'RefreshToken' }, 60);
      assert.equal(await adapter('AuthorizationCode').find(id), undefined);

      await adapter('AccessToken').consume(id);
      assert.equal(typeof (await adapter('AccessToken').find(id))?.consumed, 'number');
      assert.equal((await adapter('RefreshToken').find(id))?.consumed, undefined);

      await adapter('AccessToken').destroy(id);
      assert.equal(await adapter('AccessToken').find(id), undefined);
      assert.deepEqual(await adapter('RefreshToken').find(id), { jti: id, kind: 'RefreshToken' });
    });

    it('stops returning models once their TTL has passed (real time)', async () => {
      const grantId = newId();
      const tokenId = newId();
      const longRefresh = newId();
      const sessionId = newId();
      const uid = newId();
      const deviceId = newId();
      const userCode = `UC-${newId().slice(0, 8)}`;
      await adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant', exp: epoch() + 1 }, 1);
      await adapter('RefreshToken').upsert(longRefresh, { jti: longRefresh, grantId }, 60);
      await adapter('AccessToken').upsert(tokenId, { jti: tokenId, grantId }, 1);
      await adapter('Session').upsert(sessionId, { jti: sessionId, uid, kind: 'Session' }, 1);
      await adapter('DeviceCode').upsert(deviceId, { jti: deviceId, userCode, grantId: newId() }, 1);
      assert.ok(await adapter('AccessToken').find(tokenId));
      assert.ok(await adapter('Session').findByUid(uid));
      assert.ok(await adapter('DeviceCode').findByUserCode(userCode));

      await sleep(1_300);

      assert.equal(await adapter('AccessToken').find(tokenId), undefined);
      assert.equal(await adapter('Session').find(sessionId), undefined);
      assert.equal(await adapter('Session').findByUid(uid), undefined);
      assert.equal(await adapter('DeviceCode').find(deviceId), undefined);
      assert.equal(await adapter('DeviceCode').findByUserCode(userCode), undefined);
      await assert.rejects(adapter('AccessToken').consume(tokenId), isAlreadyConsumed);
      assert.equal(await adapter('AccessToken').find(tokenId), undefined);

      // The short-lived token and grant must not have cut the grant index short for the long token.
      assert.equal(await adapter('Grant').find(grantId), undefined);
      assert.ok(await adapter('RefreshToken').find(longRefresh));
      await adapter('AccessToken').revokeByGrantId(grantId);
      assert.equal(await adapter('RefreshToken').find(longRefresh), undefined);
    });
  });
}

adapterContract('sqlite', async () => {
  const dir = tempDir('lk-adapter-');
  const db = new Database(join(dir.path, 'latchkey.db'));
  db.pragma('journal_mode = WAL');
  const raw = createSqliteAdapterBackend(db);
  const backend = hashed(raw);
  const otherDb = new Database(join(dir.path, 'latchkey.db'));
  otherDb.pragma('busy_timeout = 5000');
  const other = hashed(createSqliteAdapterBackend(otherDb));
  return {
    backend,
    raw,
    storedIdChars: 43,
    other,
    async dump() {
      return (db.prepare('SELECT * FROM oidc_models').all() as Record<string, unknown>[]).map((r) => Object.values(r).join('\n')).join('\n');
    },
    async cleanup() {
      await backend.close();
      await other.close();
      otherDb.close();
      db.close();
      dir.remove();
    },
  };
});

adapterContract('redis', async () => {
  const redis = new Redis(testRedisUrl());
  const prefix = testRedisPrefix();
  const raw = createRedisAdapterBackend(redis, { prefix });
  const backend = hashedShort(raw);
  const otherRedis = new Redis(testRedisUrl());
  const other = hashedShort(createRedisAdapterBackend(otherRedis, { prefix }));
  return {
    backend,
    raw,
    storedIdChars: SHORT_STORED_ID,
    other,
    dump: () => dumpRedis([redis], prefix),
    async cleanup() {
      await backend.close();
      await otherRedis.quit();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    },
  };
});

// On a cluster the adapter's keys carry one hash tag (src/storage/index.ts
// wraps REDIS_PREFIX so), since its transactions span several keys.
adapterContract('redis-cluster', async () => {
  const cluster = await startRedisCluster();
  const redis = new Cluster(cluster.nodes);
  const prefix = `{${testRedisPrefix().slice(0, -1)}}:`;
  const raw = createRedisAdapterBackend(redis, { prefix });
  const backend = hashedShort(raw);
  const otherRedis = new Cluster(cluster.nodes);
  const other = hashedShort(createRedisAdapterBackend(otherRedis, { prefix }));
  return {
    backend,
    raw,
    storedIdChars: SHORT_STORED_ID,
    other,
    dump: () => dumpRedis([redis], prefix),
    async cleanup() {
      await backend.close();
      await otherRedis.quit();
      await redis.quit();
      await cluster.stop();
    },
  };
});
