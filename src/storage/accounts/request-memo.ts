/**
 * One read per request of the records nearly every step reads: a client, a
 * tenant, a login, a login's session cut-off and a tenant's upstreams
 * (docs/storage.md, "One read per request").
 *
 * A password sign-in's requests asked for the same client nine times and the
 * same login three times (the journey's pages, the provider's policy checks,
 * `loadExistingGrant`, `findAccount`): each a store read, or with MongoDB a
 * version-token round trip to Redis through the account cache.
 *
 * Only in front of MongoDB (`createStores`): a SQLite read (7–10 µs here)
 * costs what the memo's copy of its answer does (`structuredClone`, 5–10 µs),
 * so there the memo only added work.
 *
 * Within one request (`inRequestScope`) the first answer is kept and later
 * reads get a copy of it. Every write through the store, but an audit row or
 * a login's grant record, forgets what the request kept, so a request reads
 * its own writes. What a request sees is what it would have
 * seen reading everything at its first read: a write by another process
 * during the request shows from the next request on. Outside a request
 * (workers, the CLI) nothing is kept.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AccountStore } from './port.ts';

/** A request's reads, by method and arguments: each a copy of the first answer. */
type Scope = Map<string, Promise<unknown>>;

const scopes = new AsyncLocalStorage<Scope>();
let keptAnswers = 0;

/** How many reads, in this process so far, were answered with what their request had read already (bench/round-trips.ts). */
export const answeredFromRequest = () => keptAnswers;

/** Runs `fn` (a request's handling) with its own reads kept once. */
export function inRequestScope<T>(fn: () => T): T {
  return scopes.run(new Map(), fn);
}

/** Read once per request, answered with a copy after that. */
const KEPT = new Set<keyof AccountStore>(['getClient', 'getTenant', 'getLogin', 'loginSessionsNotBefore', 'listUpstreams', 'getUpstream']);

/** Calls that change no record kept here (reads, the audit, grant records): they neither keep nor forget. Every other method forgets what the request kept. */
const LEAVES_KEPT = new Set<keyof AccountStore>([
  'init',
  'ping',
  'close',
  'isEmpty',
  'listTenants',
  'findIdentityByEmail',
  'getIdentity',
  'listLoginsForEmail',
  'listLoginsForEmailAllTenants',
  'listLogins',
  'searchLogins',
  'listClients',
  'listAudit',
  'findIdentityByUpstream',
  'getUpstreamByHandle',
  'listUpstreamLinks',
  'appendAudit',
  'addLoginGrant',
]);

/** `inner` with its hot reads kept once per request scope. */
export function keptPerRequest(inner: AccountStore): AccountStore {
  const store = { ...inner } as Record<string, unknown>;
  for (const name of Object.keys(inner) as (keyof AccountStore)[]) {
    const method = inner[name] as unknown;
    if (typeof method !== 'function') continue;
    const call = async (args: unknown[]) => (method as (...a: unknown[]) => Promise<unknown>).apply(inner, args);
    if (KEPT.has(name)) {
      store[name] = async (...args: unknown[]) => {
        const scope = scopes.getStore();
        if (!scope) return call(args);
        const key = `${name}\0${JSON.stringify(args)}`;
        const kept = scope.get(key);
        if (kept) {
          keptAnswers++;
          return structuredClone(await kept);
        }
        const read = call(args);
        // The copy is what later reads get: the first caller may change the object it was given.
        const copy = read.then((value) => structuredClone(value));
        scope.set(key, copy);
        copy.catch(() => {
          if (scope.get(key) === copy) scope.delete(key);
        });
        return read;
      };
    } else if (!LEAVES_KEPT.has(name)) {
      store[name] = async (...args: unknown[]) => {
        const scope = scopes.getStore();
        if (!scope) return call(args);
        // Before, and after: a read that ran while the write did may have kept what it replaced.
        scope.clear();
        try {
          return await call(args);
        } finally {
          scope.clear();
        }
      };
    }
  }
  return store as unknown as AccountStore;
}
