import type Database from 'better-sqlite3';
import { lockDurationMs } from '../port.ts';
import type { CounterStore, LockPolicy, TakeResult } from '../port.ts';

const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 500;

interface Row {
  failures: number;
  locked_until: number;
  expires_at: number;
  frozen: number;
}

/**
 * Attempt counters in the SQLite table `attempt_counters` of the database the
 * caller opened (and closes). `take` runs in a BEGIN IMMEDIATE transaction, so
 * it stays atomic across every connection and process sharing the file.
 */
export function createSqliteCounterStore(db: Database.Database): CounterStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS attempt_counters (
      key TEXT PRIMARY KEY,
      failures INTEGER NOT NULL,
      locked_until INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      frozen INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS attempt_counters_expires_at ON attempt_counters (expires_at);
  `);
  // A file from before frozen keys existed; IMMEDIATE, so two processes starting at once add it once.
  db.transaction(() => {
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('attempt_counters')").all();
    if (!columns.some((c) => c.name === 'frozen')) db.exec('ALTER TABLE attempt_counters ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0');
  }).immediate();

  const stmt = {
    get: db.prepare<[string], Row>(
      'SELECT failures, locked_until, expires_at, frozen FROM attempt_counters WHERE key = ?',
    ),
    put: db.prepare<[string, number, number, number, number]>(
      `INSERT INTO attempt_counters (key, failures, locked_until, expires_at, frozen) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET
         failures = excluded.failures, locked_until = excluded.locked_until,
         expires_at = excluded.expires_at, frozen = excluded.frozen`,
    ),
    reset: db.prepare<[string]>('DELETE FROM attempt_counters WHERE key = ?'),
    sweep: db.prepare<[number]>(
      `DELETE FROM attempt_counters WHERE key IN (
         SELECT key FROM attempt_counters WHERE expires_at <= ? AND frozen = 0 LIMIT ${SWEEP_BATCH})`,
    ),
    ping: db.prepare('SELECT 1'),
  };

  const live = (key: string, now: number): Row | undefined => {
    const row = stmt.get.get(key);
    return row && (row.frozen || row.expires_at > now) ? row : undefined;
  };

  const take = db.transaction((key: string, policy: LockPolicy, now: number): TakeResult => {
    const row = live(key, now);
    if (row && (row.frozen || row.locked_until > now)) {
      return { allowed: false, failures: row.failures, lockedUntil: row.locked_until, frozen: !!row.frozen };
    }
    const failures = (row?.failures ?? 0) + 1;
    const lock = lockDurationMs(policy, failures);
    const lockedUntil = lock > 0 ? now + lock : 0;
    const frozen = failures >= policy.maxFailures;
    stmt.put.run(key, failures, lockedUntil, now + policy.idleResetMs, frozen ? 1 : 0);
    return { allowed: true, failures, lockedUntil, frozen };
  });

  const sweep = setInterval(() => {
    try {
      stmt.sweep.run(Date.now());
    } catch {
      // Busy with another process or closed by the owner: the next sweep will do.
    }
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  return {
    async take(key, policy, now) {
      return take.immediate(key, policy, now);
    },
    async reset(key) {
      stmt.reset.run(key);
    },
    async peek(key, now) {
      const row = live(key, now);
      return row ? { failures: row.failures, lockedUntil: row.locked_until, frozen: !!row.frozen } : null;
    },
    async ping() {
      stmt.ping.get();
    },
    async close() {
      clearInterval(sweep);
    },
  };
}
