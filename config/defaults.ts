/**
 * Latchkey's configuration, with every default in one place.
 *
 * Each value can be overridden by the environment variable named beside it
 * (see `config/index.ts` and docs/configuration.md). Values are validated at
 * start; a bad value stops the process with a message naming the variable.
 */
export const defaults = {
  /** `PORT` — the HTTP port. */
  port: 3000,
  /** `ISSUER` — the public base URL; default `http://localhost:PORT`. */
  issuer: undefined as string | undefined,
  /** `DATA_DIR` — the embedded store (SQLite) and development keys live here. */
  dataDir: './data',
  /** `MONGODB_URI` — when set, accounts and audit live in MongoDB. */
  mongodbUri: undefined as string | undefined,
  /** `MONGODB_DB` — the database name (default: the URI's, else `latchkey`). */
  mongodbDb: undefined as string | undefined,
  /** `REDIS_URL` — when set, provider state and attempt counters live in Redis. */
  redisUrl: undefined as string | undefined,
  /**
   * `REDIS_CLUSTER_NODES` — comma-separated `host:port` seeds of a Redis
   * Cluster; when set, provider state and counters use the cluster (instead of
   * `REDIS_URL`).
   */
  redisClusterNodes: undefined as { host: string; port: number }[] | undefined,
  /** `REDIS_PREFIX` — the prefix of every Redis key Latchkey writes. */
  redisPrefix: 'latchkey:',
  /** `NODE_ENV` — `production` refuses development keys. */
  env: 'development' as 'development' | 'production' | 'test',
  /** `LOG_LEVEL` — pino level. */
  logLevel: 'info',
  /** `TRUST_PROXY` — trust `X-Forwarded-*` headers from a reverse proxy. */
  trustProxy: false,
  /** `DEMO` — create the demo tenant on an empty store (`true`/`false`). */
  demo: true,

  keys: {
    /** `LATCHKEY_JWKS` — private signing keys as a JWKS JSON (`{"keys":[…]}`). */
    jwks: undefined as { keys: Record<string, unknown>[] } | undefined,
    /** `LATCHKEY_COOKIE_KEYS` — comma-separated secrets that sign cookies (first signs, all verify). */
    cookieKeys: undefined as string[] | undefined,
    /**
     * `LATCHKEY_ENCRYPTION_KEYS` — comma-separated `kid:base64key` (32-byte keys)
     * encrypting TOTP secrets; the first encrypts, all decrypt (rotation).
     */
    encryptionKeys: undefined as { kid: string; key: Buffer }[] | undefined,
    /** `LATCHKEY_PEPPER` — a server-side secret mixed into PIN hashes. */
    pepper: undefined as string | undefined,
  },

  /** Password and PIN hashing: argon2id at or above OWASP's minimum (m=19 MiB, t=2, p=1). */
  argon2: {
    /** `ARGON2_MEMORY_KIB` */
    memoryCost: 19456,
    /** `ARGON2_TIME_COST` */
    timeCost: 2,
    parallelism: 1,
  },

  /**
   * Attempt limits (SPEC §7): after `threshold` consecutive failures a lock that
   * doubles up to `maxLockMs`; at `maxFailures` a login's or identity's key is
   * frozen until its owner or an operator unlocks it (docs/security.md).
   */
  lock: {
    /** `LOCK_THRESHOLD` */
    threshold: 5,
    /** `LOCK_BASE_MS` — the first lock. */
    baseLockMs: 60_000,
    /** `LOCK_MAX_MS` — the longest lock. */
    maxLockMs: 3_600_000,
    /** `LOCK_MAX_FAILURES` — consecutive failures that freeze a key; at most 100 (NIST SP 800-63B §5.2.2). */
    maxFailures: 100,
    /** A counter left alone this long is forgotten (a frozen one never is). */
    idleResetMs: 24 * 3_600_000,
  },

  pin: {
    /** `PIN_MIN_LENGTH` */
    minLength: 6,
    maxLength: 12,
  },

  /** The account pages (docs/account.md). */
  account: {
    /**
     * `ACCOUNT_REAUTH_SECONDS` — a sensitive change (a policy, a reset, a new
     * PIN, app or password) asks for the password and factor again when the
     * last sign-in is older than this.
     */
    reauthSeconds: 900,
  },

  /**
   * The in-process copies of clients, tenants, logins and upstreams, on when
   * accounts live in MongoDB and Redis is configured (docs/storage.md). A
   * copy is used only while its version token in Redis is unchanged, so a
   * write through any process is seen by all at once.
   */
  accountCache: {
    /** `ACCOUNT_CACHE_SECONDS` — the longest a copy is kept (0 turns the cache off). */
    ttlSeconds: 60,
    /** The most entries kept; the oldest go first. */
    maxEntries: 10_000,
  },

  /** Lifetimes in seconds. */
  ttl: {
    interaction: 3600,
    session: 14 * 24 * 3600,
    authorizationCode: 60,
    accessToken: 3600,
    idToken: 3600,
    refreshToken: 14 * 24 * 3600,
    grant: 14 * 24 * 3600,
    clientCredentials: 600,
    /**
     * A sign-in finished in the journey but not yet resumed at `/auth/:uid`
     * (the browser holds the redirect) is refused after this long and the
     * person signs in again.
     */
    signInResult: 300,
  },
};

export type Defaults = typeof defaults;
