import type Database from 'better-sqlite3';
import { logoutId, type ClaimedLogout, type Logout, type SessionRecord, type SessionStore } from '../port.ts';

interface SessionRow {
  uid: string;
  key: string;
  login_id: string;
  tenant: string | null;
  clients: string;
  signed_in_at: number;
  last_seen_at: number;
  expires_at: number;
  user_agent: string | null;
  ip: string | null;
}

interface LogoutRow {
  id: string;
  client_id: string;
  sid: string;
  login_id: string;
  tenant: string | null;
  attempts: number;
  created_at: number;
  delivered_at: number | null;
  last_error: string | null;
}

const toSession = (r: SessionRow): SessionRecord => ({
  uid: r.uid,
  key: r.key,
  loginId: r.login_id,
  tenant: r.tenant ?? null,
  clients: JSON.parse(r.clients) as Record<string, string>,
  signedInAt: new Date(r.signed_in_at),
  lastSeenAt: new Date(r.last_seen_at),
  expiresAt: new Date(r.expires_at),
  userAgent: r.user_agent,
  ip: r.ip,
});

const toLogout = (r: LogoutRow): Logout => ({
  id: r.id,
  clientId: r.client_id,
  sid: r.sid,
  loginId: r.login_id,
  tenant: r.tenant,
  attempts: r.attempts,
  createdAt: new Date(r.created_at),
  deliveredAt: r.delivered_at === null ? null : new Date(r.delivered_at),
  lastError: r.last_error,
});

const toRow = (r: SessionRecord) => ({
  uid: r.uid,
  key: r.key,
  loginId: r.loginId,
  tenant: r.tenant,
  clients: JSON.stringify(r.clients),
  signedInAt: r.signedInAt.getTime(),
  lastSeenAt: r.lastSeenAt.getTime(),
  expiresAt: r.expiresAt.getTime(),
  userAgent: r.userAgent,
  ip: r.ip,
});

/**
 * The session index and the logout queue in the SQLite tables `sessions` and
 * `logouts`; `job_runs` holds the last window each periodic job was taken for. `claimLogouts` runs in a BEGIN IMMEDIATE transaction, so two
 * processes sharing the file never lease one logout at once.
 */
export function createSqliteSessionStore(db: Database.Database): SessionStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS sessions (
      uid TEXT PRIMARY KEY,
      key TEXT NOT NULL,
      login_id TEXT NOT NULL,
      clients TEXT NOT NULL,
      signed_in_at INTEGER NOT NULL,
      last_seen_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      user_agent TEXT,
      ip TEXT
    );
    CREATE INDEX IF NOT EXISTS sessions_login ON sessions (login_id, expires_at);
    CREATE INDEX IF NOT EXISTS sessions_key ON sessions (key);
    CREATE TABLE IF NOT EXISTS logouts (
      id TEXT PRIMARY KEY,
      client_id TEXT NOT NULL,
      sid TEXT NOT NULL,
      login_id TEXT NOT NULL,
      tenant TEXT,
      attempts INTEGER NOT NULL DEFAULT 0,
      due_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      delivered_at INTEGER,
      last_error TEXT
    );
    CREATE INDEX IF NOT EXISTS logouts_due ON logouts (delivered_at, due_at);
    CREATE TABLE IF NOT EXISTS job_runs (
      name TEXT PRIMARY KEY,
      run_window INTEGER NOT NULL
    );
  `);
  // A file made before the index kept the tenant gets the column; its records say null until saved again.
  if (!(db.prepare('PRAGMA table_info(sessions)').all() as { name: string }[]).some((c) => c.name === 'tenant')) db.exec('ALTER TABLE sessions ADD COLUMN tenant TEXT');
  db.exec(`
    CREATE INDEX IF NOT EXISTS sessions_tenant_signed_in ON sessions (tenant, signed_in_at);
    CREATE INDEX IF NOT EXISTS sessions_tenant_last_seen ON sessions (tenant, last_seen_at);
  `);
  const stmt = {
    record: db.prepare(
      `INSERT INTO sessions (uid, key, login_id, tenant, clients, signed_in_at, last_seen_at, expires_at, user_agent, ip)
       VALUES (@uid, @key, @loginId, @tenant, @clients, @signedInAt, @lastSeenAt, @expiresAt, @userAgent, @ip)
       ON CONFLICT (uid) DO UPDATE SET key = excluded.key, login_id = excluded.login_id, tenant = COALESCE(excluded.tenant, sessions.tenant), clients = excluded.clients,
         signed_in_at = excluded.signed_in_at, last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at,
         user_agent = COALESCE(excluded.user_agent, sessions.user_agent), ip = COALESCE(excluded.ip, sessions.ip)`,
    ),
    recordIfAbsent: db.prepare(
      `INSERT OR IGNORE INTO sessions (uid, key, login_id, tenant, clients, signed_in_at, last_seen_at, expires_at, user_agent, ip)
       VALUES (@uid, @key, @loginId, @tenant, @clients, @signedInAt, @lastSeenAt, @expiresAt, @userAgent, @ip)`,
    ),
    past: db.prepare<[string | null, string, number, number, number], SessionRow>(
      'SELECT * FROM sessions WHERE tenant IS ? AND uid > ? AND (signed_in_at < ? OR last_seen_at < ?) ORDER BY uid LIMIT ?',
    ),
    setTenant: db.prepare<[string, string]>('UPDATE sessions SET tenant = ? WHERE uid = ?'),
    claimRun: db.prepare<[string, number]>(
      'INSERT INTO job_runs (name, run_window) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET run_window = excluded.run_window WHERE job_runs.run_window < excluded.run_window',
    ),
    touch: db.prepare<[number, string]>('UPDATE sessions SET last_seen_at = ? WHERE uid = ?'),
    get: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE uid = ?'),
    list: db.prepare<[string, number], SessionRow>('SELECT * FROM sessions WHERE login_id = ? AND expires_at > ? ORDER BY last_seen_at DESC, uid'),
    remove: db.prepare<[string]>('DELETE FROM sessions WHERE uid = ?'),
    removeByKey: db.prepare<[string]>('DELETE FROM sessions WHERE key = ?'),
    sweepSessions: db.prepare<[number]>('DELETE FROM sessions WHERE expires_at < ?'),
    insertLogout: db.prepare<[string, string, string, string, string | null, number, number]>(
      'INSERT OR IGNORE INTO logouts (id, client_id, sid, login_id, tenant, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    due: db.prepare<[number, number], LogoutRow>('SELECT * FROM logouts WHERE delivered_at IS NULL AND due_at <= ? ORDER BY due_at, created_at LIMIT ?'),
    lease: db.prepare<[number, string, number]>('UPDATE logouts SET attempts = attempts + 1, due_at = ? WHERE id = ? AND attempts = ? AND delivered_at IS NULL'),
    delivered: db.prepare<[number, string, number]>('UPDATE logouts SET delivered_at = ?, last_error = NULL WHERE id = ? AND attempts = ? AND delivered_at IS NULL'),
    failed: db.prepare<[number, string, string, number]>('UPDATE logouts SET due_at = ?, last_error = ? WHERE id = ? AND attempts = ? AND delivered_at IS NULL'),
    find: db.prepare<[string], LogoutRow>('SELECT * FROM logouts WHERE id = ?'),
    pending: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM logouts WHERE delivered_at IS NULL'),
    sweepLogouts: db.prepare<[number]>('DELETE FROM logouts WHERE delivered_at IS NOT NULL AND delivered_at < ?'),
  };

  const enqueue = db.transaction((logouts: Parameters<SessionStore['enqueueLogouts']>[0], now: number) => {
    let added = 0;
    for (const l of logouts) added += stmt.insertLogout.run(logoutId(l.clientId, l.sid), l.clientId, l.sid, l.loginId, l.tenant, now, now).changes;
    return added;
  });

  const claim = db.transaction((now: number, leaseMs: number, limit: number): ClaimedLogout[] => {
    const claimed: ClaimedLogout[] = [];
    for (const row of stmt.due.all(now, limit)) {
      if (stmt.lease.run(now + leaseMs, row.id, row.attempts).changes !== 1) continue;
      claimed.push({ ...toLogout(row), attempts: row.attempts + 1, attempt: row.attempts + 1 });
    }
    return claimed;
  });

  return {
    async init() {},
    async recordSession(r) {
      stmt.record.run(toRow(r));
    },
    async recordSessionIfAbsent(r) {
      return stmt.recordIfAbsent.run(toRow(r)).changes > 0;
    },
    async sessionsPast(tenant, { signedInBefore, lastSeenBefore }, afterUid, limit) {
      return stmt.past.all(tenant, afterUid, signedInBefore.getTime(), lastSeenBefore?.getTime() ?? Number.MIN_SAFE_INTEGER, limit).map(toSession);
    },
    async setSessionTenant(uid, tenant) {
      stmt.setTenant.run(tenant, uid);
    },
    async claimRun(name, window) {
      return stmt.claimRun.run(name, window).changes > 0;
    },
    async touchSession(uid, at) {
      stmt.touch.run(at.getTime(), uid);
    },
    async getSession(uid) {
      const row = stmt.get.get(uid);
      return row ? toSession(row) : null;
    },
    async listSessions(loginId, now) {
      return stmt.list.all(loginId, now.getTime()).map(toSession);
    },
    async removeSession(uid) {
      return stmt.remove.run(uid).changes > 0;
    },
    async removeSessionByKey(key) {
      stmt.removeByKey.run(key);
    },
    async sweepSessions(before) {
      return stmt.sweepSessions.run(before.getTime()).changes;
    },
    async enqueueLogouts(logouts, now) {
      return enqueue.immediate(logouts, now.getTime());
    },
    async claimLogouts(now, leaseMs, limit) {
      return claim.immediate(now.getTime(), leaseMs, limit);
    },
    async logoutDelivered(id, attempt, now) {
      stmt.delivered.run(now.getTime(), id, attempt);
    },
    async logoutFailed(id, attempt, retryAt, error) {
      stmt.failed.run(retryAt.getTime(), error.slice(0, 500), id, attempt);
    },
    async findLogout(clientId, sid) {
      const row = stmt.find.get(logoutId(clientId, sid));
      return row ? toLogout(row) : null;
    },
    async pendingLogouts() {
      return stmt.pending.get()!.n;
    },
    async sweepLogouts(before) {
      return stmt.sweepLogouts.run(before.getTime()).changes;
    },
  };
}
