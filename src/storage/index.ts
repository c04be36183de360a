/**
 * Chooses and opens the storage backends from the configuration:
 * `MONGODB_URI` → MongoDB for accounts and audit, else SQLite;
 * `REDIS_URL` → Redis for provider state and attempt counters, else SQLite.
 * The only module that knows which backend is in use.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import { Redis } from 'ioredis';
import type { Config } from '../../config/index.ts';
import type { Logger } from '../log.ts';
import type { AccountStore } from './accounts/port.ts';
import type { AdapterBackend } from './adapter/port.ts';
import type { CounterStore } from './counters/port.ts';
import { createSqliteAccountStore } from './accounts/sqlite/index.ts';
import { createMongoAccountStore } from './accounts/mongo/index.ts';
import { createSqliteAdapterBackend } from './adapter/sqlite/index.ts';
import { createRedisAdapterBackend } from './adapter/redis/index.ts';
import { createSqliteCounterStore } from './counters/sqlite/index.ts';
import { createRedisCounterStore } from './counters/redis/index.ts';

export interface Stores {
  accounts: AccountStore;
  adapter: AdapterBackend;
  counters: CounterStore;
  /** Which backend serves each port (for logs and /readyz). */
  kinds: { accounts: 'sqlite' | 'mongodb'; provider: 'sqlite' | 'redis' };
  /** Each configured store and whether it answers. */
  check(): Promise<{ store: string; ok: boolean; error?: string }[]>;
  close(): Promise<void>;
}

/** Opens the SQLite file used by the embedded backends. */
export function openSqlite(dataDir: string): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'latchkey.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}

export async function createStores(config: Config, log: Logger): Promise<Stores> {
  const needSqlite = !config.mongodbUri || !config.redisUrl;
  const sqlite = needSqlite ? openSqlite(config.dataDir) : null;

  let mongo: MongoClient | null = null;
  let accounts: AccountStore;
  if (config.mongodbUri) {
    mongo = new MongoClient(config.mongodbUri, { serverSelectionTimeoutMS: 5000, connectTimeoutMS: 5000 });
    await mongo.connect();
    accounts = createMongoAccountStore(mongo.db(config.mongodbDb ?? (mongo.options.dbName || 'latchkey')));
  } else {
    accounts = createSqliteAccountStore(sqlite!);
  }
  await accounts.init();

  let redis: Redis | null = null;
  let adapter: AdapterBackend;
  let counters: CounterStore;
  if (config.redisUrl) {
    redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: true });
    redis.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
    await redis.connect();
    adapter = createRedisAdapterBackend(redis, { prefix: config.redisPrefix });
    counters = createRedisCounterStore(redis, { prefix: config.redisPrefix });
  } else {
    adapter = createSqliteAdapterBackend(sqlite!);
    counters = createSqliteCounterStore(sqlite!);
  }

  const probe = async (store: string, fn: () => Promise<void>) => {
    try {
      await fn();
      return { store, ok: true };
    } catch (err) {
      return { store, ok: false, error: (err as Error).message };
    }
  };

  return {
    accounts,
    adapter,
    counters,
    kinds: { accounts: mongo ? 'mongodb' : 'sqlite', provider: redis ? 'redis' : 'sqlite' },
    check: () =>
      Promise.all([
        probe(mongo ? 'mongodb' : 'sqlite', () => accounts.ping()),
        ...(redis ? [probe('redis', () => adapter.ping())] : []),
      ]),
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
