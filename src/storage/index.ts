/**
 * Chooses and opens the storage backends from the configuration:
 * `MONGODB_URI` → MongoDB for accounts and audit, else SQLite;
 * `REDIS_URL` → Redis for provider state and attempt counters, else SQLite.
 * The only module that knows which backend is in use.
 */
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MongoClient, MongoNetworkError, MongoNotConnectedError, MongoServerSelectionError, MongoTopologyClosedError } from 'mongodb';
import { Cluster, Redis } from 'ioredis';
import type { Config } from '../../config/index.ts';
import { privateDir, privateFile } from '../../config/private-files.ts';
import type { Logger } from '../log.ts';
import type { AccountStore } from './accounts/port.ts';
import type { AdapterBackend } from './adapter/port.ts';
import type { CounterStore } from './counters/port.ts';
import { createSqliteAccountStore } from './accounts/sqlite/index.ts';
import { createMongoAccountStore } from './accounts/mongo/index.ts';
import { createSqliteAdapterBackend } from './adapter/sqlite/index.ts';
import { createRedisAdapterBackend } from './adapter/redis/index.ts';
import { SHORT_STORED_ID, withHashedIds } from './adapter/hashed-ids.ts';
import { createSqliteCounterStore } from './counters/sqlite/index.ts';
import { createRedisCounterStore } from './counters/redis/index.ts';
import { ReadCache, cachedAccountStore, type CacheStats } from './accounts/cache.ts';
import { createRedisCacheVersions } from './accounts/redis-versions.ts';
import { keptPerRequest } from './accounts/request-memo.ts';
import type { OutboxStore } from './outbox/port.ts';
import type { LinkStore } from './links/port.ts';
import { createSqliteOutboxStore } from './outbox/sqlite/index.ts';
import { createMongoOutboxStore } from './outbox/mongo/index.ts';
import { createSqliteLinkStore } from './links/sqlite/index.ts';
import { createMongoLinkStore } from './links/mongo/index.ts';
import type { WebhookStore } from './webhooks/port.ts';
import { createSqliteWebhookStore } from './webhooks/sqlite/index.ts';
import { createMongoWebhookStore } from './webhooks/mongo/index.ts';
import type { ScimStore } from './scim/port.ts';
import { createSqliteScimStore } from './scim/sqlite/index.ts';
import { createMongoScimStore } from './scim/mongo/index.ts';
import type { SessionStore } from './sessions/port.ts';
import { createSqliteSessionStore } from './sessions/sqlite/index.ts';
import { createMongoSessionStore } from './sessions/mongo/index.ts';

export interface Stores {
  accounts: AccountStore;
  adapter: AdapterBackend;
  counters: CounterStore;
  /** Mail waiting to be delivered (beside the accounts). */
  outbox: OutboxStore;
  /** One-time links mailed to people (beside the accounts). */
  links: LinkStore;
  /** Webhook subscriptions and their deliveries (beside the accounts). */
  webhooks: WebhookStore;
  /** SCIM tokens and what directories say about logins (beside the accounts). */
  scim: ScimStore;
  /** The index of each login's sessions and the back-channel logouts waiting to go (beside the accounts). */
  sessions: SessionStore;
  /** Which backend serves each port (for logs and /readyz). */
  kinds: { accounts: 'sqlite' | 'mongodb'; provider: 'sqlite' | 'redis' | 'redis-cluster' };
  /** The account cache (MongoDB accounts with Redis; docs/storage.md), or null when off. */
  accountCache: { stats(): CacheStats } | null;
  /** The store known to be unreachable right now (connection state; no I/O), or null. */
  down(): string | null;
  /** The store an error says is unreachable, or null when the error is something else. */
  unavailableStore(err: unknown): string | null;
  /** Each configured store and whether it answers. */
  check(): Promise<{ store: string; ok: boolean; error?: string }[]>;
  close(): Promise<void>;
}

/**
 * MongoDB accounts behind the account cache, its version tokens in `redis`
 * (docs/storage.md): a MongoDB read costs the app ten times a Redis one.
 */
export function withAccountCache(accounts: AccountStore, redis: Redis | Cluster, config: Pick<Config, 'accountCache' | 'redisPrefix'>) {
  const cache = new ReadCache(createRedisCacheVersions(redis, config.redisPrefix), {
    ttlMs: config.accountCache.ttlSeconds * 1000,
    maxEntries: config.accountCache.maxEntries,
  });
  // Redis may come back without the tokens (it keeps nothing on disk): start afresh whenever the connection drops.
  for (const event of ['close', 'reconnecting', 'end', '-node', 'node error']) redis.on(event, () => cache.clear());
  return { accounts: cachedAccountStore(accounts, cache), cache };
}

/**
 * Opens the SQLite file used by the embedded backends, in a private
 * `DATA_DIR` (0700) and private files (0600): SQLite gives the -wal and -shm
 * files the mode of the database file.
 */
export function openSqlite(dataDir: string): Database.Database {
  privateDir(dataDir);
  const path = join(dataDir, 'latchkey.db');
  privateFile(path, true);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  for (const suffix of ['-wal', '-shm']) privateFile(`${path}${suffix}`);
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * The longest a Redis command may take before it fails as an outage (a 503):
 * Redis answers in well under a millisecond, so seconds mean it is gone.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 2_500;

/** The key sealing the ids of provider models found by a lookup field, derived from the pepper. */
export function adapterIdKey(pepper: string): Buffer {
  return createHmac('sha256', pepper).update('latchkey adapter ids v1').digest();
}

export async function createStores(config: Config, log: Logger): Promise<Stores> {
  const useRedis = !!(config.redisUrl || config.redisClusterNodes);
  const needSqlite = !config.mongodbUri || !useRedis;
  const sqlite = needSqlite ? openSqlite(config.dataDir) : null;

  let mongo: MongoClient | null = null;
  let mongoDown = false;
  let accounts: AccountStore;
  let outbox: OutboxStore;
  let links: LinkStore;
  let webhooks: WebhookStore;
  let scim: ScimStore;
  let sessions: SessionStore;
  if (config.mongodbUri) {
    mongo = new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 3000, connectTimeoutMS: 3000, heartbeatFrequencyMS: 2000 });
    mongo.on('serverHeartbeatFailed', () => {
      if (!mongoDown) log.warn('mongodb unreachable');
      mongoDown = true;
    });
    mongo.on('serverHeartbeatSucceeded', () => {
      if (mongoDown) log.info('mongodb reachable again');
      mongoDown = false;
    });
    await mongo.connect();
    const db = mongo.db(config.mongodbDb ?? (mongo.options.dbName || 'latchkey'));
    accounts = createMongoAccountStore(db, { log });
    outbox = createMongoOutboxStore(db);
    links = createMongoLinkStore(db);
    webhooks = createMongoWebhookStore(db);
    scim = createMongoScimStore(db);
    sessions = createMongoSessionStore(db);
  } else {
    accounts = createSqliteAccountStore(sqlite!, { log });
    outbox = createSqliteOutboxStore(sqlite!);
    links = createSqliteLinkStore(sqlite!);
    webhooks = createSqliteWebhookStore(sqlite!);
    scim = createSqliteScimStore(sqlite!);
    sessions = createSqliteSessionStore(sqlite!);
  }
  await accounts.init();
  await outbox.init();
  await links.init();
  await webhooks.init();
  await scim.init();
  await sessions.init();

  let redis: Redis | Cluster | null = null;
  let adapter: AdapterBackend;
  let counters: CounterStore;
  if (useRedis) {
    // Fail fast while disconnected (a clear 503) instead of queueing requests; ioredis keeps reconnecting.
    // A Redis that stops answering on a connection that stays open (a dead host behind a proxy or NAT)
    // fails the command after REDIS_COMMAND_TIMEOUT_MS instead of holding the request until Redis returns.
    const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, connectTimeout: 3000, commandTimeout: REDIS_COMMAND_TIMEOUT_MS };
    const retry = (times: number) => Math.min(times * 200, 2000);
    redis = config.redisClusterNodes
      ? new Cluster(config.redisClusterNodes, { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: retry, redisOptions: options })
      : new Redis(config.redisUrl!, { ...options, retryStrategy: retry });
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis error'));
    await redis.connect();
    // The adapter's transactions span several keys, which a cluster allows only
    // within one hash slot: its keys share a hash tag. Counters use one key per
    // call, so theirs spread over the cluster.
    const adapterPrefix = config.redisClusterNodes && !/\{.+\}/.test(config.redisPrefix) ? `{${config.redisPrefix.replace(/:$/, '')}}:` : config.redisPrefix;
    adapter = createRedisAdapterBackend(redis, { prefix: adapterPrefix });
    counters = createRedisCounterStore(redis, { prefix: config.redisPrefix });
  } else {
    adapter = createSqliteAdapterBackend(sqlite!);
    counters = createSqliteCounterStore(sqlite!);
  }

  // Provider state under hashed ids (src/storage/adapter/hashed-ids.ts), whichever backend holds it;
  // shorter in Redis, where every key and index entry carries one.
  adapter = withHashedIds(adapter, adapterIdKey(config.keys.pepper), { storedIdChars: redis ? SHORT_STORED_ID : undefined });

  let cache: ReadCache | null = null;
  if (mongo && redis && config.accountCache.ttlSeconds > 0) ({ accounts, cache } = withAccountCache(accounts, redis, config));
  // With MongoDB a request reads each hot record once (src/storage/accounts/request-memo.ts; the app opens
  // the scope): a read there is a round trip. A SQLite read costs what the memo's copy of its answer does.
  if (mongo) accounts = keptPerRequest(accounts);
  const accountCache = cache;

  const probe = async (store: string, fn: () => Promise<void>) => {
    try {
      await fn();
      return { store, ok: true };
    } catch (err) {
      return { store, ok: false, error: (err as Error).message };
    }
  };

  const redisClient = redis;
  const mongoError = (err: unknown) =>
    err instanceof MongoNetworkError || err instanceof MongoServerSelectionError || err instanceof MongoNotConnectedError || err instanceof MongoTopologyClosedError;
  const redisError = (err: unknown) => {
    const e = err as { name?: unknown; message?: unknown; code?: unknown };
    return (
      e?.name === 'MaxRetriesPerRequestError' ||
      (typeof e?.message === 'string' && /Connection is closed|Stream isn't writeable|enableOfflineQueue|Command timed out/.test(e.message)) ||
      e?.code === 'ECONNREFUSED'
    );
  };

  return {
    accounts,
    adapter,
    counters,
    outbox,
    links,
    webhooks,
    scim,
    sessions,
    down() {
      if (mongo && mongoDown) return 'mongodb';
      if (redisClient && redisClient.status !== 'ready') return 'redis';
      return null;
    },
    unavailableStore(err) {
      if (mongo && mongoError(err)) return 'mongodb';
      if (redisClient && redisError(err)) return 'redis';
      return null;
    },
    accountCache: accountCache && { stats: () => accountCache.stats() },
    kinds: { accounts: mongo ? 'mongodb' : 'sqlite', provider: config.redisClusterNodes ? 'redis-cluster' : redis ? 'redis' : 'sqlite' },
    check: () => Promise.all([probe(mongo ? 'mongodb' : 'sqlite', () => accounts.ping()), ...(redis ? [probe('redis', () => adapter.ping())] : [])]),
    async close() {
      await adapter.close();
      await counters.close();
      await accounts.close();
      if (redis) await redis.quit().catch(() => redis!.disconnect());
      if (mongo) await mongo.close();
      sqlite?.close();
    },
  };
}
