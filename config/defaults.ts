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
  /**
   * `ISSUER` — the public base URL; default `http://localhost:PORT`. Production
   * requires https (loopback addresses excepted); an https issuer gets HSTS.
   */
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
  /** `NODE_ENV` — `production` refuses development keys, the demo tenant and an http issuer. */
  env: 'development' as 'development' | 'production' | 'test',
  /** `LOG_LEVEL` — pino level. */
  logLevel: 'info',
  /**
   * `TRUST_PROXY` — the reverse proxies in front of Latchkey: a number of
   * proxy hops (`1` for one load balancer) or a comma-separated list of their
   * address ranges (`10.0.0.0/8,fd00::/8`). The client's address is then the
   * rightmost entry of `X-Forwarded-For` that no trusted proxy wrote, and
   * `X-Forwarded-Proto` says whether the request came over https. `false`
   * (the default): no header is believed. `true` is refused: it would take
   * the client's own claim.
   */
  trustProxy: false as false | number | string[],
  /**
   * `OUTBOUND_ALLOW` — what outgoing requests to URLs a tenant or an app chose
   * (webhook receivers, upstream providers, back-channel logout URIs, client
   * key sets) may reach although it is special-use (loopback, private,
   * link-local, …): comma-separated address ranges (`10.1.2.0/24`, `::1`) and
   * exact host names (`hooks.internal`), or `none`. Default: loopback outside
   * production and tests (`127.0.0.0/8,::1`), nothing in production.
   */
  outboundAllow: undefined as string[] | undefined,
  /**
   * `DEMO` — create the demo tenant on an empty store (`true`/`false`). Off by
   * default in production, where `DEMO=true` is refused: its password is published.
   */
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
   * Attempt limits (docs/security.md): after `threshold` consecutive failures a lock that
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

  /**
   * The sliding window of failed password attempts per client address
   * (IPv6: per /64), counted up front and never cleared by a success. Loose on
   * purpose: it slows down one address guessing across many accounts, while
   * the people behind one office router stay far below it. A browser that
   * signed in as the identity before is not held to it (docs/security.md).
   */
  addressLimit: {
    /** `ADDRESS_MAX_FAILURES` — failures per address within the window. */
    maxFailures: 100,
    /** `ADDRESS_WINDOW_SECONDS` (as ms here) — the window. */
    windowMs: 15 * 60_000,
  },

  /**
   * Known browsers: a browser that signed in as an identity gets a random
   * cookie (only its hash is stored), and its password attempts count on a
   * counter of its own instead of the account's (docs/security.md).
   */
  knownBrowser: {
    /** How long a browser stays known after its last sign-in, in ms. */
    ttlMs: 180 * 24 * 3_600_000,
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

  api: {
    /**
     * `API_RATE_LIMIT` — requests one client may make to the management API
     * (docs/api.md) per `API_RATE_WINDOW_SECONDS`; more are answered 429 with
     * `Retry-After`. Counted in the counters store, so shared by every process.
     */
    rateLimit: 600,
    /** `API_RATE_WINDOW_SECONDS` — the sliding window of `API_RATE_LIMIT`. */
    rateWindowSeconds: 60,
  },

  /** Sign-in with upstream OpenID providers (docs/upstream.md). */
  upstream: {
    /**
     * `UPSTREAM_UNLINK_ON` — comma-separated events that remove every upstream
     * account linked to the person (each is confirmed with the password again
     * at its next sign-in): `password` (the person changes their password),
     * `reset` (an owner resets their authenticator app or PIN). `none` keeps
     * the links.
     */
    unlinkOn: ['password', 'reset'] as ('password' | 'reset')[],
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

  /**
   * Mail (docs/mail.md): `SMTP_URL` (e.g. `smtp://mailpit:1025`,
   * `smtps://user:pass@host:465`) and `MAIL_FROM` (default
   * `Latchkey <no-reply@ISSUER's host>`). Without `SMTP_URL` messages and their
   * links are written to the log (the embedded trial); production refuses to
   * start without it unless `MAIL=off`, which sends nothing.
   */
  mail: {
    smtpUrl: undefined as string | undefined,
    from: undefined as string | undefined,
    /** A password-reset link works this long, once. */
    resetLinkMinutes: 30,
    /** An invitation link works this long, once. */
    inviteLinkHours: 72,
  },

  /** The audit log (docs/security.md). */
  audit: {
    /** `AUDIT_RETENTION_DAYS` — events older than this are deleted by a sweep every minute. */
    retentionDays: 365,
    /** Of each kind of event without a login, at most this many rows a minute per process; the rest are counted in one summary row. */
    anonymousPerMinute: 20,
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
