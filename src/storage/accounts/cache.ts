/**
 * A read cache in front of the account store for what nearly every request
 * reads and hardly anything writes: clients, tenants, logins, a login's
 * session cut-off and a tenant's upstream providers (docs/storage.md, "The
 * account cache").
 *
 * Why: a MongoDB round trip costs the app about 0.4–0.5 CPU-ms in the driver
 * and the kernel, a Redis one about 0.05; a password sign-in read those
 * records 12 times, a refresh grant 3 times (docs/performance.md).
 *
 * How it stays exact across app processes: every cached record has a version
 * token in a shared store (Redis, `./redis-versions.ts`). A write through any
 * process gives the record a new token once the write is done; a read first
 * asks for the token (one Redis round trip) and uses its copy only when the
 * token is the one the copy was read under. So a write is seen by every
 * process as soon as it returns, as without the cache. When the token cannot
 * be read (Redis down), the read goes to the store, and when the connection
 * to Redis drops every copy is forgotten (Redis may come back without its
 * tokens). Tokens live a little longer than copies, so a token expiring
 * cannot make a stale copy look current.
 *
 * Entries are copies (structuredClone) both ways: a caller that changes a
 * returned object changes nothing here. Unknown ids are not cached, so
 * guessing ids cannot fill it.
 */
import type { AccountStore } from './port.ts';

/** Version tokens of cached records, shared by every app process. */
export interface CacheVersions {
  /** The current token of `key` (`''` when it has none). Rejects when unknown (the store is unreachable). */
  current(key: string): Promise<string>;
  /** Gives each key a new token that lasts at least `lifetimeMs`. */
  renew(keys: string[], lifetimeMs: number): Promise<void>;
}

export interface CacheStats {
  /** Reads answered from a copy (its token still current). */
  hits: number;
  /** Reads that went to the store (no copy, an expired one, or a new token). */
  misses: number;
  /** Reads that went to the store because the token could not be read. */
  bypassed: number;
  entries: number;
}

export interface ReadCacheOptions {
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}

/** Tokens outlive copies by this much (and 10 %), so a copy never meets its token's expiry. */
const TOKEN_MARGIN_MS = 5000;

export class ReadCache {
  readonly #entries = new Map<string, { value: unknown; token: string; expires: number }>();
  readonly #stats = { hits: 0, misses: 0, bypassed: 0 };
  /** Bumped by `clear`: a read that began before it keeps nothing. */
  #generation = 0;
  readonly #versions: CacheVersions;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(versions: CacheVersions, { ttlMs, maxEntries, now = Date.now }: ReadCacheOptions) {
    this.#versions = versions;
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  /** How long a new token lasts: longer than any copy read under the old one. */
  get tokenLifetimeMs(): number {
    return Math.ceil(this.#ttlMs * 1.1) + TOKEN_MARGIN_MS;
  }

  /** The current value of `key`: the copy when its token is current, else `load()`'s (kept when not null, or when `cacheNull`). */
  async read<T>(key: string, load: () => Promise<T>, cacheNull = false): Promise<T> {
    let token: string;
    try {
      token = await this.#versions.current(key);
    } catch {
      this.#stats.bypassed++;
      return load();
    }
    const hit = this.#entries.get(key);
    if (hit && hit.token === token && hit.expires > this.#now()) {
      this.#stats.hits++;
      return structuredClone(hit.value) as T;
    }
    this.#stats.misses++;
    const generation = this.#generation;
    // Read after the token: if a write lands in between, its new token makes this copy stale at once.
    const value = await load();
    if (generation !== this.#generation) return value;
    if (value !== null || cacheNull) {
      this.#entries.delete(key);
      this.#entries.set(key, { value: structuredClone(value), token, expires: this.#now() + this.#ttlMs });
      if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    } else {
      this.#entries.delete(key);
    }
    return value;
  }

  /** After a write: new tokens for `keys` (every process), and this process's copies dropped. */
  async changed(keys: string[]): Promise<void> {
    for (const key of keys) this.#entries.delete(key);
    await this.#versions.renew(keys, this.tokenLifetimeMs);
  }

  /**
   * Forgets every copy. Called when the connection to the tokens' store drops:
   * the store may come back without its tokens (a Redis restart keeps nothing),
   * and a write made meanwhile could not renew its token.
   */
  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }

  stats(): CacheStats {
    return { ...this.#stats, entries: this.#entries.size };
  }
}

export const cacheKeys = {
  client: (id: string) => `client:${id}`,
  tenant: (id: string) => `tenant:${id}`,
  login: (id: string) => `login:${id}`,
  cutoff: (id: string) => `cutoff:${id}`,
  upstreams: (tenant: string) => `upstreams:${tenant}`,
  upstream: (tenant: string, id: string) => `upstream:${JSON.stringify([tenant, id])}`,
};

/** `inner` with its hot reads cached in `cache`; every write that changes a cached record renews its token. */
export function cachedAccountStore(inner: AccountStore, cache: ReadCache): AccountStore {
  const read = <T>(key: string, load: () => Promise<T>, cacheNull = false) => cache.read(key, load, cacheNull);
  // Renewed even when the write failed: it may have reached the store all the same. When the renewal
  // itself fails, the write's caller gets that error: other processes may hold the old record.
  async function writing<T>(keys: string[], write: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await write();
    } catch (err) {
      await cache.changed(keys).catch(() => {});
      throw err;
    }
    await cache.changed(keys);
    return result;
  }
  // Async throughout, so bad input (a key that cannot be built) rejects like the store itself would.
  return {
    ...inner,
    getClient: async (id) => read(cacheKeys.client(id), () => inner.getClient(id)),
    getTenant: async (id) => read(cacheKeys.tenant(id), () => inner.getTenant(id)),
    getLogin: async (id) => read(cacheKeys.login(id), () => inner.getLogin(id)),
    // Most logins were never reset, so "none" is the answer worth keeping; it is asked only of logins that exist.
    loginSessionsNotBefore: async (id) => read(cacheKeys.cutoff(id), () => inner.loginSessionsNotBefore(id), true),
    // Every login page shows the tenant's upstream buttons.
    listUpstreams: async (tenant) => read(cacheKeys.upstreams(tenant), () => inner.listUpstreams(tenant)),
    getUpstream: async (tenant, id) => read(cacheKeys.upstream(tenant, id), () => inner.getUpstream(tenant, id)),

    upsertClient: async (client) => writing([cacheKeys.client(client.clientId)], () => inner.upsertClient(client)),
    upsertTenant: async (tenant) => writing([cacheKeys.tenant(tenant.id)], () => inner.upsertTenant(tenant)),
    setStepUpEnrollment: async (tenantId, allowed) => writing([cacheKeys.tenant(tenantId)], () => inner.setStepUpEnrollment(tenantId, allowed)),
    setSessionPolicy: async (tenantId, policy) => writing([cacheKeys.tenant(tenantId)], () => inner.setSessionPolicy(tenantId, policy)),
    setUserTypeFactor: async (tenantId, userTypeId, factor) => writing([cacheKeys.tenant(tenantId)], () => inner.setUserTypeFactor(tenantId, userTypeId, factor)),
    addUserType: async (tenantId, type) => writing([cacheKeys.tenant(tenantId)], () => inner.addUserType(tenantId, type)),
    renameUserType: async (tenantId, userTypeId, name) => writing([cacheKeys.tenant(tenantId)], () => inner.renameUserType(tenantId, userTypeId, name)),
    deleteUserType: async (tenantId, userTypeId) => writing([cacheKeys.tenant(tenantId)], () => inner.deleteUserType(tenantId, userTypeId)),
    addOwner: async (tenantId, loginId) => writing([cacheKeys.tenant(tenantId)], () => inner.addOwner(tenantId, loginId)),
    removeOwner: async (tenantId, loginId) => writing([cacheKeys.tenant(tenantId)], () => inner.removeOwner(tenantId, loginId)),
    deleteClient: async (clientId) => writing([cacheKeys.client(clientId)], () => inner.deleteClient(clientId)),
    deleteUpstream: async (tenant, id) => writing([cacheKeys.upstreams(tenant), cacheKeys.upstream(tenant, id)], () => inner.deleteUpstream(tenant, id)),
    upsertLogin: async (login) => writing([cacheKeys.login(login.id)], () => inner.upsertLogin(login)),
    createLogin: async (login) => writing([cacheKeys.login(login.id)], () => inner.createLogin(login)),
    deleteLogin: async (loginId, expected) => writing([cacheKeys.login(loginId)], () => inner.deleteLogin(loginId, expected)),
    updateLoginIf: async (expected, next) => writing([cacheKeys.login(expected.id)], () => inner.updateLoginIf(expected, next)),
    setLoginDisabled: async (loginId, disabled) => writing([cacheKeys.login(loginId)], () => inner.setLoginDisabled(loginId, disabled)),
    setFactorState: async (loginId, factorId, state) => writing([cacheKeys.login(loginId)], () => inner.setFactorState(loginId, factorId, state)),
    replaceFactorHash: async (loginId, factorId, current, next) => writing([cacheKeys.login(loginId)], () => inner.replaceFactorHash(loginId, factorId, current, next)),
    compareAndSetFactorState: async (loginId, factorId, expected, next) =>
      writing([cacheKeys.login(loginId)], () => inner.compareAndSetFactorState(loginId, factorId, expected, next)),
    advanceFactorStep: async (loginId, factorId, step) => writing([cacheKeys.login(loginId)], () => inner.advanceFactorStep(loginId, factorId, step)),
    upsertUpstream: async (upstream) => writing([cacheKeys.upstreams(upstream.tenant), cacheKeys.upstream(upstream.tenant, upstream.id)], () => inner.upsertUpstream(upstream)),
    endLoginSessions: async (loginId, notBefore) => writing([cacheKeys.cutoff(loginId), cacheKeys.login(loginId)], () => inner.endLoginSessions(loginId, notBefore)),
  };
}
