/**
 * Provider state stored under a hash of its id, so a dump of the store yields
 * no usable token: an opaque access token, refresh token, authorization code
 * or session id *is* the model's id (`jti`).
 *
 * Wraps a backend: every id is replaced by its SHA-256 (base64url) before it
 * reaches the store, and the payload is stored without the id. `find(id)` puts
 * the id it was asked for back.
 *
 * A model also found by a lookup field — a Session by `uid`, a DeviceCode by
 * `userCode` — cannot come back with its id, which is not stored. It comes
 * back with a *handle* instead: `~<the id's whole hash>.<MAC>`, the MAC under
 * a key of the server and bound to the model. `upsert`, `destroy` and
 * `consume` take a handle for the id (signing out destroys the Session found
 * by uid; oidc-provider saves the DeviceCode found by user code); `find`
 * refuses one, so a handle is never a cookie or a token, and one cannot be
 * made from a dump without the key. `idHash` gives the id's hash for an id or
 * a handle alike (the sessions index keys its records by it). Such a model
 * stores its whole hash as `jti`, which the Redis codec keeps as the 11
 * characters its key leaves out.
 *
 * Stored before handles, a Session or DeviceCode kept its id sealed
 * (AES-256-GCM under the same key): those still open to the id itself.
 *
 * An Interaction's copy of its session id (`session.cookie`, which
 * oidc-provider writes but never reads) is stored hashed.
 */
import { createHash, createHmac } from 'node:crypto';
import { constantTimeEqual } from '../../crypto/equal.ts';
import { createSecretBox } from '../../crypto/secretbox.ts';
import type { AdapterBackend, AdapterPayload, StoredAdapter } from './port.ts';

const FOUND_BY_LOOKUP = new Set(['Session', 'DeviceCode']);

export const hashId = (id: string) => createHash('sha256').update(id).digest('base64url');

/** A stored id of 32 characters: 192 bits of the hash, the Redis adapter's (each key and index entry carries one). */
export const SHORT_STORED_ID = 32;

const HASH_CHARS = 43;
const HASH = /^[A-Za-z0-9_-]{43}$/;
// '~' is outside nanoid's alphabet, oidc-provider's ids'.
const HANDLE = /^~([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{22})$/;
// The sealed ids of before handles: `v1.<kid>.…` (src/crypto/secretbox.ts).
const SEALED = 'v1.';

/** The hash of a model's id, given the id or a handle to it (the handle is not checked here: the adapter checks it). */
export function idHash(id: string): string {
  return HANDLE.exec(id)?.[1] ?? hashId(id);
}

/**
 * `key`: 32 bytes of the server's, for the handles' MAC (and to open the sealed ids of before them).
 * `storedIdChars`: how much of the hash (base64url, 43 characters) is the stored id; less keeps Redis
 * keys short, and 32 characters (192 bits) still leave ids that neither collide nor can be found
 * from the store. The SQLite store keeps all 43, as it always has.
 */
export function withHashedIds(backend: AdapterBackend, key: Buffer, { storedIdChars = HASH_CHARS }: { storedIdChars?: number } = {}): AdapterBackend {
  const box = createSecretBox([{ kid: 'adapter', key }]);
  const handleKey = createHmac('sha256', key).update('latchkey.adapter.handle').digest();
  const mac = (model: string, hash: string) => createHmac('sha256', handleKey).update(`${model}\0${hash}`).digest().subarray(0, 16).toString('base64url');
  const handleOf = (model: string, hash: string) => `~${hash}.${mac(model, hash)}`;
  const stored = (hash: string) => hash.slice(0, storedIdChars);
  backend.keyGrantsBy?.((grantId) => stored(hashId(grantId)));

  /** The id's hash: of a handle made for this model, or of an id. A handle that is not one of ours throws. */
  function hashOf(id: string, model: string): string {
    if (!id.startsWith('~')) return hashId(id);
    const m = HANDLE.exec(id);
    if (!m || !constantTimeEqual(m[2]!, mac(model, m[1]!))) throw new Error(`Hashed adapter: not a handle to a ${model}`);
    return m[1]!;
  }

  // What a lookup returns as `jti`: a handle, or the id a sealed one opens to (undefined: neither).
  function opened(payload: AdapterPayload | undefined, model: string): AdapterPayload | undefined {
    if (!payload || typeof payload.jti !== 'string') return payload;
    if (HASH.test(payload.jti)) return { ...payload, jti: handleOf(model, payload.jti) };
    if (!payload.jti.startsWith(SEALED)) return undefined;
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

  function factory(model: string): StoredAdapter {
    const inner = backend.factory(model);
    const lookedUp = FOUND_BY_LOOKUP.has(model);

    // The stored `jti` stands where the caller's was: the whole hash when a lookup must return a handle, else the stored id.
    function storedPayload(hash: string, payload: AdapterPayload): AdapterPayload {
      const out: AdapterPayload = { ...payload };
      if (payload.jti !== undefined) out.jti = lookedUp ? hash : stored(hash);
      const session = payload.session as { cookie?: unknown } | undefined;
      if (session && typeof session.cookie === 'string') out.session = { ...session, cookie: hashId(session.cookie) };
      return out;
    }

    const fromLookup = (payload: AdapterPayload | undefined) => opened(payload, model);

    return {
      async upsert(id, payload, expiresIn) {
        const hash = hashOf(id, model);
        return inner.upsert(stored(hash), storedPayload(hash, payload), expiresIn);
      },
      async find(id) {
        if (id.startsWith('~')) return undefined;
        const payload = await inner.find(stored(hashId(id)));
        return payload && payload.jti !== undefined ? { ...payload, jti: id } : payload;
      },
      async findByUid(uid) {
        return fromLookup((await inner.findByUid(uid)) || undefined);
      },
      async findByUserCode(userCode) {
        return fromLookup((await inner.findByUserCode(userCode)) || undefined);
      },
      async consume(id) {
        await inner.consume(stored(hashOf(id, model)));
      },
      async destroy(id) {
        await inner.destroy(stored(hashOf(id, model)));
      },
      revokeByGrantId: (grantId) => inner.revokeByGrantId(grantId),
    };
  }

  return { factory, scan, ping: () => backend.ping(), close: () => backend.close() };
}
