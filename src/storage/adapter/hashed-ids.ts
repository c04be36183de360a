/**
 * Provider state stored under a hash of its id, so a dump of the store yields
 * no usable token: an opaque access token, refresh token, authorization code
 * or session id *is* the model's id (`jti`).
 *
 * Wraps a backend: every id is replaced by its SHA-256 (base64url) before it
 * reaches the store, and the payload is stored without the id. `find(id)` puts
 * the id it was asked for back. A model also found by a lookup field — a
 * Session by `uid`, a DeviceCode by `userCode` — must come back with its id
 * (signing out destroys the Session found by uid), so its payload keeps the
 * id sealed (AES-256-GCM under a key of the server, bound to the model). An
 * Interaction's copy of its session id (`session.cookie`, which oidc-provider
 * writes but never reads) is stored hashed.
 */
import { createHash } from 'node:crypto';
import { createSecretBox } from '../../crypto/secretbox.ts';
import type { Adapter, AdapterBackend, AdapterPayload } from './port.ts';

const FOUND_BY_LOOKUP = new Set(['Session', 'DeviceCode']);

export const hashId = (id: string) => createHash('sha256').update(id).digest('base64url');

/** A stored id of 32 characters: 192 bits of the hash, the Redis adapter's (each key and index entry carries one). */
export const SHORT_STORED_ID = 32;

/**
 * `key`: 32 bytes of the server's, sealing the ids of models found by a lookup field.
 * `storedIdChars`: how much of the hash (base64url, 43 characters) is the stored id; less keeps Redis
 * keys short, and 32 characters (192 bits) still leave ids that neither collide nor can be found
 * from the store. The SQLite store keeps all 43, as it always has.
 */
export function withHashedIds(backend: AdapterBackend, key: Buffer, { storedIdChars = 43 }: { storedIdChars?: number } = {}): AdapterBackend {
  const box = createSecretBox([{ kid: 'adapter', key }]);
  const storedId = storedIdChars >= 43 ? hashId : (id: string) => hashId(id).slice(0, storedIdChars);

  function opened(payload: AdapterPayload | undefined, model: string): AdapterPayload | undefined {
    if (!payload || typeof payload.jti !== 'string') return payload;
    try {
      return { ...payload, jti: box.open(payload.jti, model) };
    } catch {
      return undefined;
    }
  }

  async function* scan(model: string): AsyncIterable<AdapterPayload> {
    for await (const payload of backend.scan(model)) {
      const out = FOUND_BY_LOOKUP.has(model) ? opened(payload, model) : payload;
      if (out) yield out;
    }
  }

  function factory(model: string): Adapter {
    const inner = backend.factory(model);
    const lookedUp = FOUND_BY_LOOKUP.has(model);

    // The stored `jti` stands where the caller's was: sealed when a lookup must return it, else the hash itself.
    function stored(id: string, hashed: string, payload: AdapterPayload): AdapterPayload {
      const out: AdapterPayload = { ...payload };
      if (payload.jti !== undefined) out.jti = lookedUp ? box.seal(id, model) : hashed;
      const session = payload.session as { cookie?: unknown } | undefined;
      if (session && typeof session.cookie === 'string') out.session = { ...session, cookie: hashId(session.cookie) };
      return out;
    }

    const fromLookup = (payload: AdapterPayload | undefined) => opened(payload, model);

    return {
      async upsert(id, payload, expiresIn) {
        const hashed = storedId(id);
        await inner.upsert(hashed, stored(id, hashed, payload), expiresIn);
      },
      async find(id) {
        const payload = await inner.find(storedId(id));
        return payload && payload.jti !== undefined ? { ...payload, jti: id } : payload;
      },
      async findByUid(uid) {
        return fromLookup((await inner.findByUid(uid)) || undefined);
      },
      async findByUserCode(userCode) {
        return fromLookup((await inner.findByUserCode(userCode)) || undefined);
      },
      consume: (id) => inner.consume(storedId(id)),
      destroy: (id) => inner.destroy(storedId(id)),
      revokeByGrantId: (grantId) => inner.revokeByGrantId(grantId),
    };
  }

  return { factory, scan, ping: () => backend.ping(), close: () => backend.close() };
}
