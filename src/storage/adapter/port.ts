/**
 * The provider adapter port: oidc-provider's storage for sessions,
 * interactions, authorization codes, tokens and grants.
 *
 * The contract is oidc-provider's own `Adapter` (see
 * node_modules/oidc-provider/lib/adapters/memory_adapter.js): one adapter
 * instance per model name; `upsert(id, payload, expiresIn)` stores with a TTL
 * in seconds; `find`, `findByUid` (Session), `findByUserCode` (DeviceCode)
 * return the payload or undefined (never an expired one); `consume` sets
 * `payload.consumed` to the epoch seconds atomically; `destroy` removes;
 * `revokeByGrantId` removes every model stored with that `grantId`.
 *
 * Implementations: `sqlite/` (embedded) and `redis/` (production). Both pass
 * `test/storage/adapter.contract.test.ts`.
 */
import type { Adapter } from 'oidc-provider';

export type { Adapter, AdapterPayload } from 'oidc-provider';

export interface AdapterBackend {
  /** oidc-provider calls this with each model name (`Session`, `AccessToken`, …). */
  factory(name: string): Adapter;
  ping(): Promise<void>;
  close(): Promise<void>;
}
