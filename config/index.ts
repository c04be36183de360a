/**
 * Loads the configuration from the environment over `defaults`, validates it,
 * and (outside production) fills missing key material with development keys
 * kept in `DATA_DIR/dev-keys.json`. The only module that reads `process.env`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { defaults } from './defaults.ts';
import { privateDir, privateFile } from './private-files.ts';
import { parseRange, type TrustProxy } from '../src/web/proxy.ts';
import { ALLOWED_NAME } from '../src/web/egress.ts';

export { defaults } from './defaults.ts';

export interface Config {
  port: number;
  issuer: string;
  /** Whether `ISSUER` was given (not the `http://localhost:PORT` default): a tool that is not the server cannot know the server's otherwise. */
  issuerGiven: boolean;
  dataDir: string;
  mongodbUri: string | undefined;
  mongodbDb: string | undefined;
  redisUrl: string | undefined;
  redisClusterNodes: { host: string; port: number }[] | undefined;
  redisPrefix: string;
  env: 'development' | 'production' | 'test';
  logLevel: string;
  trustProxy: TrustProxy;
  /** `OUTBOUND_ALLOW`: the special-use ranges and host names outgoing requests may reach (src/web/egress.ts). */
  outboundAllow: string[];
  demo: boolean;
  keys: {
    jwks: { keys: Record<string, unknown>[] };
    cookieKeys: string[];
    encryptionKeys: { kid: string; key: Buffer }[];
    pepper: string;
    /** True when any key came from the development key file. */
    development: boolean;
  };
  argon2: typeof defaults.argon2;
  lock: typeof defaults.lock;
  addressLimit: typeof defaults.addressLimit;
  knownBrowser: typeof defaults.knownBrowser;
  pin: typeof defaults.pin;
  account: typeof defaults.account;
  api: typeof defaults.api;
  upstream: typeof defaults.upstream;
  accountCache: typeof defaults.accountCache;
  audit: typeof defaults.audit;
  ttl: typeof defaults.ttl;
  mail: {
    /** `SMTP_URL`, or undefined: messages go to the log (or nowhere, with `MAIL=off`). */
    smtpUrl: string | undefined;
    from: string;
    /** False with `MAIL=off`: nothing is sent or logged but the message's kind. */
    enabled: boolean;
    resetLinkMinutes: number;
    inviteLinkHours: number;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const url = z.string().url();

const jwksSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown()).refine((k) => typeof k.d === 'string', 'every key must be private (have "d")')).min(1) });

const encryptionKeysSchema = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(
        z.string().transform((part, ctx) => {
          const [kid, b64] = part.split(':');
          const key = Buffer.from(b64 ?? '', 'base64');
          if (!kid || !/^[A-Za-z0-9_-]{1,32}$/.test(kid) || key.length !== 32) {
            ctx.addIssue({ code: 'custom', message: 'each entry must be kid:base64 of 32 bytes' });
            return z.NEVER;
          }
          return { kid, key };
        }),
      )
      .min(1),
  );

const envSchema = z.object({
  PORT: int(0, 65535).optional(),
  ISSUER: url.optional(),
  DATA_DIR: z.string().min(1).optional(),
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
    .optional(),
  MONGODB_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,63}$/)
    .optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean),
    )
    .pipe(
      z
        .array(
          z.string().transform((node, ctx) => {
            const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(node);
            if (!m || Number(m[2]) > 65535) {
              ctx.addIssue({ code: 'custom', message: `"${node}" is not host:port` });
              return z.NEVER;
            }
            return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
          }),
        )
        .min(1),
    )
    .optional(),
  REDIS_PREFIX: z.string().min(1).max(64).optional(),
  NODE_ENV: z.enum(['development', 'production', 'test']).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  TRUST_PROXY: z
    .string()
    .transform((s, ctx): TrustProxy => {
      const text = s.trim().toLowerCase();
      if (['false', 'no', '0'].includes(text)) return false;
      if (['true', 'yes'].includes(text)) {
        ctx.addIssue({
          code: 'custom',
          message:
            "true would believe any client's X-Forwarded-For; set the number of proxies in front of Latchkey (e.g. TRUST_PROXY=1) or their address ranges (e.g. TRUST_PROXY=10.0.0.0/8)",
        });
        return z.NEVER;
      }
      if (/^[0-9]+$/.test(text)) {
        const hops = Number(text);
        if (hops > 10) ctx.addIssue({ code: 'custom', message: 'at most 10 proxy hops' });
        return hops;
      }
      const ranges = text
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean);
      const bad = ranges.filter((r) => !parseRange(r));
      if (!ranges.length || bad.length) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a number of proxy hops or a comma-separated list of proxy address ranges (CIDR); not a range: ${bad.join(', ') || text}`,
        });
        return z.NEVER;
      }
      return ranges;
    })
    .optional(),
  OUTBOUND_ALLOW: z
    .string()
    .transform((s, ctx) => {
      const entries = s
        .split(',')
        .map((e) => e.trim().toLowerCase())
        .filter(Boolean);
      if (entries.length === 1 && entries[0] === 'none') return [];
      // `none` stands alone: beside ranges it would read as a host name.
      const bad = entries.filter((e) => e === 'none' || (!parseRange(e) && !ALLOWED_NAME.test(e.replace(/\.$/, ''))));
      if (!entries.length || bad.length) {
        ctx.addIssue({ code: 'custom', message: `must be none or a comma-separated list of address ranges (10.1.2.0/24, ::1) and host names; not one: ${bad.join(', ') || s}` });
        return z.NEVER;
      }
      return entries;
    })
    .optional(),
  DEMO: bool.optional(),
  LATCHKEY_JWKS: z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(jwksSchema)
    .optional(),
  LATCHKEY_COOKIE_KEYS: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().min(32, 'each cookie key needs at least 32 characters')).min(1))
    .optional(),
  LATCHKEY_ENCRYPTION_KEYS: encryptionKeysSchema.optional(),
  LATCHKEY_PEPPER: z.string().min(32, 'needs at least 32 characters').optional(),
  ARGON2_MEMORY_KIB: int(19456, 4 * 1024 * 1024).optional(),
  ARGON2_TIME_COST: int(2, 20).optional(),
  LOCK_THRESHOLD: int(1, 100).optional(),
  LOCK_BASE_MS: int(1, 86_400_000).optional(),
  LOCK_MAX_MS: int(1, 86_400_000).optional(),
  LOCK_MAX_FAILURES: int(1, 100).optional(),
  ADDRESS_MAX_FAILURES: int(1, 100_000).optional(),
  ADDRESS_WINDOW_SECONDS: int(1, 86_400).optional(),
  PIN_MIN_LENGTH: int(4, 12).optional(),
  ACCOUNT_REAUTH_SECONDS: int(1, 86_400).optional(),
  API_RATE_LIMIT: int(1, 1_000_000).optional(),
  API_RATE_WINDOW_SECONDS: int(1, 86_400).optional(),
  ACCOUNT_CACHE_SECONDS: int(0, 3600).optional(),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\/[^/?#]+/, 'must be smtp://host:port or smtps://user:pass@host:port')
    .refine((v) => URL.canParse(v), 'must be a URL')
    .optional(),
  MAIL_FROM: z.string().min(3).max(320).regex(/@/, 'must contain an address').optional(),
  MAIL: z.enum(['on', 'off']).optional(),
  UPSTREAM_UNLINK_ON: z
    .string()
    .transform((s) => [
      ...new Set(
        s
          .split(',')
          .map((v) => v.trim())
          .filter((v) => v && v !== 'none'),
      ),
    ])
    .pipe(z.array(z.enum(['password', 'reset'], { message: 'use password, reset, both (comma-separated) or none' })))
    .optional(),
  AUDIT_RETENTION_DAYS: int(1, 36_500).optional(),
});

type Env = Record<string, string | undefined>;

/** Reads and validates the configuration. Throws ConfigError naming each bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const relevant = Object.fromEntries(Object.keys(envSchema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = envSchema.safeParse(relevant);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const port = e.PORT ?? defaults.port;
  const dataDir = resolve(e.DATA_DIR ?? defaults.dataDir);
  const nodeEnv = e.NODE_ENV ?? defaults.env;
  const lock = {
    ...defaults.lock,
    threshold: e.LOCK_THRESHOLD ?? defaults.lock.threshold,
    baseLockMs: e.LOCK_BASE_MS ?? defaults.lock.baseLockMs,
    maxLockMs: e.LOCK_MAX_MS ?? defaults.lock.maxLockMs,
    maxFailures: e.LOCK_MAX_FAILURES ?? defaults.lock.maxFailures,
  };
  if (lock.maxLockMs < lock.baseLockMs) throw new ConfigError('invalid configuration:\n  LOCK_MAX_MS: must be at least LOCK_BASE_MS');
  if (lock.maxFailures < lock.threshold) throw new ConfigError('invalid configuration:\n  LOCK_MAX_FAILURES: must be at least LOCK_THRESHOLD');

  const given = {
    jwks: e.LATCHKEY_JWKS as Config['keys']['jwks'] | undefined,
    cookieKeys: e.LATCHKEY_COOKIE_KEYS,
    encryptionKeys: e.LATCHKEY_ENCRYPTION_KEYS,
    pepper: e.LATCHKEY_PEPPER,
  };
  const missing = Object.entries({
    LATCHKEY_JWKS: given.jwks,
    LATCHKEY_COOKIE_KEYS: given.cookieKeys,
    LATCHKEY_ENCRYPTION_KEYS: given.encryptionKeys,
    LATCHKEY_PEPPER: given.pepper,
  })
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  if (nodeEnv === 'production' && missing.length) {
    throw new ConfigError(`invalid configuration:\n  production refuses development keys; set ${missing.join(', ')} (see docs/configuration.md)`);
  }
  const issuer = (e.ISSUER ?? `http://localhost:${port}`).replace(/\/$/, '');
  if (nodeEnv === 'production') {
    // A published demo password and cookies over plain http have no place in production.
    if (e.DEMO === true) throw new ConfigError('invalid configuration:\n  DEMO: production refuses the demo tenant (its password is published); unset DEMO');
    if (!issuer.startsWith('https:') && !isLoopback(issuer)) {
      throw new ConfigError('invalid configuration:\n  ISSUER: production needs an https issuer (plain http is accepted for loopback addresses only)');
    }
  }
  if (nodeEnv === 'production' && !e.SMTP_URL && e.MAIL !== 'off') {
    throw new ConfigError('invalid configuration:\n  SMTP_URL: production needs a mail server for password resets, invitations and notices (or MAIL=off to run without mail)');
  }
  const dev = missing.length ? developmentKeys(dataDir) : undefined;

  return {
    port,
    issuer,
    issuerGiven: e.ISSUER !== undefined,
    dataDir,
    mongodbUri: e.MONGODB_URI,
    mongodbDb: e.MONGODB_DB,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    redisPrefix: e.REDIS_PREFIX ?? defaults.redisPrefix,
    env: nodeEnv,
    logLevel: e.LOG_LEVEL ?? (nodeEnv === 'test' ? 'warn' : defaults.logLevel),
    trustProxy: e.TRUST_PROXY ?? defaults.trustProxy,
    // A trial on one machine may post to a receiver beside it; production and tests open only what they are told.
    outboundAllow: e.OUTBOUND_ALLOW ?? defaults.outboundAllow ?? (nodeEnv === 'development' ? ['127.0.0.0/8', '::1'] : []),
    demo: e.DEMO ?? (nodeEnv === 'production' ? false : defaults.demo),
    keys: {
      jwks: given.jwks ?? dev!.jwks,
      cookieKeys: given.cookieKeys ?? dev!.cookieKeys,
      encryptionKeys: given.encryptionKeys ?? dev!.encryptionKeys,
      pepper: given.pepper ?? dev!.pepper,
      development: missing.length > 0,
    },
    argon2: {
      ...defaults.argon2,
      memoryCost: e.ARGON2_MEMORY_KIB ?? defaults.argon2.memoryCost,
      timeCost: e.ARGON2_TIME_COST ?? defaults.argon2.timeCost,
    },
    lock,
    addressLimit: {
      maxFailures: e.ADDRESS_MAX_FAILURES ?? defaults.addressLimit.maxFailures,
      windowMs: e.ADDRESS_WINDOW_SECONDS !== undefined ? e.ADDRESS_WINDOW_SECONDS * 1000 : defaults.addressLimit.windowMs,
    },
    knownBrowser: defaults.knownBrowser,
    pin: { ...defaults.pin, minLength: e.PIN_MIN_LENGTH ?? defaults.pin.minLength },
    account: { ...defaults.account, reauthSeconds: e.ACCOUNT_REAUTH_SECONDS ?? defaults.account.reauthSeconds },
    api: { rateLimit: e.API_RATE_LIMIT ?? defaults.api.rateLimit, rateWindowSeconds: e.API_RATE_WINDOW_SECONDS ?? defaults.api.rateWindowSeconds },
    upstream: { unlinkOn: e.UPSTREAM_UNLINK_ON ?? [...defaults.upstream.unlinkOn] },
    accountCache: { ...defaults.accountCache, ttlSeconds: e.ACCOUNT_CACHE_SECONDS ?? defaults.accountCache.ttlSeconds },
    audit: { ...defaults.audit, retentionDays: e.AUDIT_RETENTION_DAYS ?? defaults.audit.retentionDays },
    ttl: defaults.ttl,
    mail: {
      smtpUrl: e.SMTP_URL,
      from: e.MAIL_FROM ?? `Latchkey <no-reply@${new URL(issuer).hostname}>`,
      enabled: e.MAIL !== 'off',
      resetLinkMinutes: defaults.mail.resetLinkMinutes,
      inviteLinkHours: defaults.mail.inviteLinkHours,
    },
  };
}

/** `localhost`, 127.0.0.0/8 or [::1]: a test or a same-host set-up, never reached over a network. */
function isLoopback(issuer: string): boolean {
  const host = new URL(issuer).hostname;
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

interface DevKeyFile {
  jwks: { keys: Record<string, unknown>[] };
  cookieKeys: string[];
  encryptionKeys: { kid: string; key: string }[];
  pepper: string;
}

/** Development key material, generated once and kept in DATA_DIR so restarts keep sessions and secrets. */
function developmentKeys(dataDir: string): Omit<Config['keys'], 'development'> {
  const path = join(dataDir, 'dev-keys.json');
  let file: DevKeyFile;
  if (existsSync(path)) {
    privateFile(path);
    file = JSON.parse(readFileSync(path, 'utf8')) as DevKeyFile;
  } else {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `dev-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' };
    const { privateKey: rsa } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaJwk = { ...rsa.export({ format: 'jwk' }), kid: `dev-rsa-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
    file = {
      // RS256 first: the OIDC default algorithm every relying party supports.
      jwks: { keys: [rsaJwk, jwk] },
      cookieKeys: [randomBytes(32).toString('base64url')],
      encryptionKeys: [{ kid: 'dev1', key: randomBytes(32).toString('base64') }],
      pepper: randomBytes(32).toString('base64url'),
    };
    privateDir(dataDir);
    writeFileSync(path, JSON.stringify(file, null, 2), { mode: 0o600 });
  }
  return {
    jwks: file.jwks,
    cookieKeys: file.cookieKeys,
    encryptionKeys: file.encryptionKeys.map((k) => ({ kid: k.kid, key: Buffer.from(k.key, 'base64') })),
    pepper: file.pepper,
  };
}

/** Every environment variable the configuration reads (docs/configuration.md lists each one). */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.keys(envSchema.shape);
