import type Database from 'better-sqlite3';
import { concurrencyLimit, lockDurationMs } from '../port.ts';
import type { BeginResult, CounterRecord, CounterStore, LockPolicy, Settlement, WindowResult } from '../port.ts';

const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 500;

interface Row {
  failures: number;
  locked_until: number;
  expires_at: number;
  frozen: number;
}

/**
 * Attempt counters in the SQLite tables `attempt_counters` (failures and
 * locks), `attempt_slots` (attempts in flight), `attempt_windows` (per-address
 * sliding windows) of the database the caller opened (and closes). Every change runs in a BEGIN IMMEDIATE
 * transaction, so it stays atomic across every connection and process sharing
 * the file.
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
    CREATE TABLE IF NOT EXISTS attempt_slots (
      key TEXT NOT NULL,
      slot TEXT NOT NULL,
      expires_at INTEGER NOT NULL,
      PRIMARY KEY (key, slot)
    );
    CREATE INDEX IF NOT EXISTS attempt_slots_expires_at ON attempt_slots (expires_at);
    CREATE TABLE IF NOT EXISTS attempt_windows (
      key TEXT NOT NULL,
      slot TEXT NOT NULL,
      at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      PRIMARY KEY (key, slot)
    );
    CREATE INDEX IF NOT EXISTS attempt_windows_key_at ON attempt_windows (key, at);
    CREATE INDEX IF NOT EXISTS attempt_windows_expires_at ON attempt_windows (expires_at);
    -- Known browsers' marks lived here; their proofs are in the browser's cookie now (src/known-browsers.ts).
    DROP TABLE IF EXISTS attempt_marks;
  `);
  // A file from before frozen keys existed; IMMEDIATE, so two processes starting at once add it once.
  db.transaction(() => {
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('attempt_counters')").all();
    if (!columns.some((c) => c.name === 'frozen')) db.exec('ALTER TABLE attempt_counters ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0');
  }).immediate();

  const stmt = {
    get: db.prepare<[string], Row>('SELECT failures, locked_until, expires_at, frozen FROM attempt_counters WHERE key = ?'),
    put: db.prepare<[string, number, number, number, number]>(
      `INSERT INTO attempt_counters (key, failures, locked_until, expires_at, frozen) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET
         failures = excluded.failures, locked_until = excluded.locked_until,
         expires_at = excluded.expires_at, frozen = excluded.frozen`,
    ),
    reset: db.prepare<[string]>('DELETE FROM attempt_counters WHERE key = ?'),
    dropExpiredSlots: db.prepare<[string, number]>('DELETE FROM attempt_slots WHERE key = ? AND expires_at <= ?'),
    countSlots: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM attempt_slots WHERE key = ?'),
    holdSlot: db.prepare<[string, string, number]>('INSERT OR REPLACE INTO attempt_slots (key, slot, expires_at) VALUES (?, ?, ?)'),
    freeSlot: db.prepare<[string, string]>('DELETE FROM attempt_slots WHERE key = ? AND slot = ?'),
    resetSlots: db.prepare<[string]>('DELETE FROM attempt_slots WHERE key = ?'),
    dropOldPlaces: db.prepare<[string, number]>('DELETE FROM attempt_windows WHERE key = ? AND at <= ?'),
    countPlaces: db.prepare<[string], { n: number; oldest: number | null }>('SELECT COUNT(*) AS n, MIN(at) AS oldest FROM attempt_windows WHERE key = ?'),
    takePlace: db.prepare<[string, string, number, number]>('INSERT OR REPLACE INTO attempt_windows (key, slot, at, expires_at) VALUES (?, ?, ?, ?)'),
    releasePlace: db.prepare<[string, string]>('DELETE FROM attempt_windows WHERE key = ? AND slot = ?'),
    sweep: db.prepare<[number]>(
      `DELETE FROM attempt_counters WHERE key IN (
         SELECT key FROM attempt_counters WHERE expires_at <= ? AND frozen = 0 LIMIT ${SWEEP_BATCH})`,
    ),
    sweepSlots: db.prepare<[number]>(`DELETE FROM attempt_slots WHERE rowid IN (SELECT rowid FROM attempt_slots WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`),
    sweepPlaces: db.prepare<[number]>(`DELETE FROM attempt_windows WHERE rowid IN (SELECT rowid FROM attempt_windows WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`),
    ping: db.prepare('SELECT 1'),
  };

  const live = (key: string, now: number): Row | undefined => {
    const row = stmt.get.get(key);
    return row && (row.frozen || row.expires_at > now) ? row : undefined;
  };
  const recordOf = (row: Row | undefined): CounterRecord => ({ failures: row?.failures ?? 0, lockedUntil: row?.locked_until ?? 0, frozen: !!row?.frozen });

  const begin = db.transaction((key: string, slot: string, policy: LockPolicy, now: number, expiresAt: number): BeginResult => {
    const record = recordOf(live(key, now));
    stmt.dropExpiredSlots.run(key, now);
    const inFlight = stmt.countSlots.get(key)!.n;
    if (record.frozen) return { outcome: 'frozen', inFlight, ...record };
    if (record.lockedUntil > now) return { outcome: 'locked', inFlight, ...record };
    if (inFlight >= concurrencyLimit(policy, record.failures)) return { outcome: 'busy', inFlight, ...record };
    stmt.holdSlot.run(key, slot, expiresAt);
    return { outcome: 'admitted', inFlight: inFlight + 1, ...record };
  });

  const settle = db.transaction((key: string, slot: string, outcome: Settlement, policy: LockPolicy, now: number): CounterRecord => {
    stmt.freeSlot.run(key, slot);
    const row = live(key, now);
    if (outcome === 'abandon') return recordOf(row);
    if (outcome === 'success') {
      // The slots table keeps the other attempts in flight; only the failures are forgotten.
      if (row && !row.frozen) stmt.reset.run(key);
      return row?.frozen ? recordOf(row) : recordOf(undefined);
    }
    if (row?.frozen) return recordOf(row);
    const failures = (row?.failures ?? 0) + 1;
    const lock = lockDurationMs(policy, failures);
    const lockedUntil = lock > 0 ? now + lock : 0;
    const frozen = failures >= policy.maxFailures;
    stmt.put.run(key, failures, lockedUntil, now + policy.idleResetMs, frozen ? 1 : 0);
    return { failures, lockedUntil, frozen };
  });

  const windowTake = db.transaction((key: string, slot: string, limit: number, windowMs: number, now: number): WindowResult => {
    stmt.dropOldPlaces.run(key, now - windowMs);
    const { n, oldest } = stmt.countPlaces.get(key)!;
    if (n >= limit) return { allowed: false, count: n, retryAt: (oldest ?? now) + windowMs };
    stmt.takePlace.run(key, slot, now, now + windowMs);
    return { allowed: true, count: n + 1, retryAt: 0 };
  });

  const resetKey = db.transaction((key: string) => {
    stmt.reset.run(key);
    stmt.resetSlots.run(key);
  });

  const sweep = setInterval(() => {
    try {
      const now = Date.now();
      stmt.sweep.run(now);
      stmt.sweepSlots.run(now);
      stmt.sweepPlaces.run(now);
    } catch {
      // Busy with another process or closed by the owner: the next sweep will do.
    }
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  return {
    async begin(key, slot, policy, now, expiresAt) {
      return begin.immediate(key, slot, policy, now, expiresAt);
    },
    async settle(key, slot, outcome, policy, now) {
      return settle.immediate(key, slot, outcome, policy, now);
    },
    async reset(key) {
      resetKey.immediate(key);
    },
    async peek(key, now) {
      const row = live(key, now);
      return row ? recordOf(row) : null;
    },
    async windowTake(key, slot, limit, windowMs, now) {
      return windowTake.immediate(key, slot, limit, windowMs, now);
    },
    async windowRelease(key, slot) {
      stmt.releasePlace.run(key, slot);
    },
    async ping() {
      stmt.ping.get();
    },
    async close() {
      clearInterval(sweep);
    },
  };
}
