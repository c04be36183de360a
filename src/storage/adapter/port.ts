/**
 * The provider adapter port: oidc-provider's storage for sessions,
 * interactions, authorization codes, tokens and grants.
 *
 * The contract is oidc-provider's own `Adapter` (see
 * node_modules/oidc-provider/lib/adapters/memory_adapter.js): one adapter
 * instance per model name; `upsert(id, payload, expiresIn)` stores with a TTL
 * in seconds; `find`, `findByUid` (Session), `findByUserCode` (DeviceCode)
 * return the payload or undefined (never an expired one); `consume` sets
 * `payload.consumed` to the epoch seconds atomically and only once: of
 * parallel calls exactly one resolves, every other (and any call for a model
 * already consumed, expired or gone) rejects with `alreadyConsumed()`;
 * `destroy` removes (a Grant's may take its tokens too: oidc-provider
 * destroys a grant only together with `revokeByGrantId`, in parallel, in
 * either order). A Session or Grant destroyed stays destroyed: `upsert` of its
 * id afterwards stores nothing and resolves false, while the model would have
 * lived and at most `DESTROYED_KEPT_MS` (oidc-provider saves a session and its
 * grant at the end of every request that loaded them, so a request in flight
 * when a session is ended would otherwise bring both back).
 * `revokeByGrantId` removes every model stored with that
 * `grantId` (one already consumed may stay until it expires: it issues nothing
 * more, and a replay of it is still refused).
 *
 * Implementations: `sqlite/` (embedded) and `redis/` (production), each
 * wrapped by `hashed-ids.ts` (ids stored hashed); wrapped so, both pass
 * `test/storage/adapter.contract.test.ts`.
 */
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';

export type { Adapter, AdapterPayload } from 'oidc-provider';

/** oidc-provider's adapter as the backends give it: `upsert` tells whether it stored anything. */
export interface StoredAdapter extends Omit<Adapter, 'upsert'> {
  /** False when the id was destroyed for good (a Session or Grant: see above) and nothing was stored. */
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<boolean>;
}

/** The models whose destroyed ids are kept, so that no later save brings them back. */
export const DESTROYED_FOR_GOOD: ReadonlySet<string> = new Set(['Session', 'Grant']);

/**
 * How long at most a destroyed Session's or Grant's id is kept: far longer
 * than any request that loaded it can still run (the server's request timeout
 * is minutes), and short, since it only has to outlast those.
 */
export const DESTROYED_KEPT_MS = 3_600_000;

/** The adapter for oidc-provider, which expects `upsert` to resolve with nothing. */
export function forProvider(adapter: StoredAdapter): Adapter {
  return {
    ...adapter,
    async upsert(id, payload, expiresIn) {
      await adapter.upsert(id, payload, expiresIn);
    },
  };
}

export interface AdapterBackend {
  /** oidc-provider calls this with each model name (`Session`, `AccessToken`, …). */
  factory(name: string): StoredAdapter;
  /**
   * Every live stored payload of the model `name`, in no order: for a
   * start-up's look at what is stored (the sessions index's catching up), not
   * for a request. Through `withHashedIds` a model found by a lookup field (a
   * Session) comes with its id in `jti`; any other with the stored hash.
   */
  scan(name: string): AsyncIterable<AdapterPayload>;
  /**
   * How a wrapper stores a Grant's id (`withHashedIds`: its hash), for a
   * backend that keeps a grant's index of tokens in the grant's own record
   * and must find that record from a token's `grantId`. Called once, before
   * any model is stored; a backend that indexes otherwise leaves it out.
   */
  keyGrantsBy?(storedId: (grantId: string) => string): void;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What a losing `consume` rejects with. oidc-provider checks `consumed` on the
 * model it read before calling `consume`, so parallel redemptions of one code
 * or refresh token all pass that check: only the adapter can tell them apart.
 * The token endpoint answers this error with `invalid_grant`.
 */
export function alreadyConsumed(model: string): Error {
  return new errors.InvalidGrant(`${model} already consumed`);
}
