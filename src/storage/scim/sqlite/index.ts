import type Database from 'better-sqlite3';
import { NO_REVISION, type ScimStore, type ScimToken, type ScimUser } from '../port.ts';

interface TokenRow {
  id: string;
  tenant: string;
  label: string;
  hash: string;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
}

interface UserRow {
  tenant: string;
  login_id: string;
  user_name: string | null;
  external_id: string | null;
  revision: number;
}

const toToken = (r: TokenRow): ScimToken => ({
  id: r.id,
  tenant: r.tenant,
  label: r.label,
  hash: r.hash,
  createdAt: new Date(r.created_at),
  createdBy: r.created_by,
  revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
});
const toUser = (r: UserRow): ScimUser => ({ tenant: r.tenant, loginId: r.login_id, userName: r.user_name, externalId: r.external_id, revision: r.revision });

/**
 * SCIM in the SQLite tables `scim_tokens` and `scim_users`; a unique index on
 * (tenant, lower-cased userName) keeps names unique, and a login's row is
 * written in one statement conditional on its `revision`.
 */
export function createSqliteScimStore(db: Database.Database): ScimStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS scim_tokens (
      id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      label TEXT NOT NULL,
      hash TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      revoked_at INTEGER
    );
    CREATE INDEX IF NOT EXISTS scim_tokens_tenant ON scim_tokens (tenant, created_at);
    CREATE TABLE IF NOT EXISTS scim_users (
      tenant TEXT NOT NULL,
      login_id TEXT NOT NULL,
      user_name TEXT,
      user_name_key TEXT,
      external_id TEXT,
      revision INTEGER NOT NULL DEFAULT 1,
      PRIMARY KEY (tenant, login_id)
    );
    CREATE UNIQUE INDEX IF NOT EXISTS scim_users_name ON scim_users (tenant, user_name_key);
    CREATE INDEX IF NOT EXISTS scim_users_external ON scim_users (tenant, external_id);
  `);
  // Rows written before revisions were kept start at the first.
  if (
    !db
      .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('scim_users')")
      .all()
      .some((c) => c.name === 'revision')
  ) {
    db.exec('ALTER TABLE scim_users ADD COLUMN revision INTEGER NOT NULL DEFAULT 1');
  }
  const stmt = {
    addToken: db.prepare<[string, string, string, string, number, string]>('INSERT INTO scim_tokens (id, tenant, label, hash, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)'),
    findToken: db.prepare<[string], TokenRow>('SELECT * FROM scim_tokens WHERE hash = ? AND revoked_at IS NULL'),
    listTokens: db.prepare<[string], TokenRow>('SELECT * FROM scim_tokens WHERE tenant = ? ORDER BY created_at, id'),
    revoke: db.prepare<[number, string, string]>('UPDATE scim_tokens SET revoked_at = ? WHERE tenant = ? AND id = ? AND revoked_at IS NULL'),
    getUser: db.prepare<[string, string], UserRow>('SELECT * FROM scim_users WHERE tenant = ? AND login_id = ?'),
    byName: db.prepare<[string, string], UserRow>('SELECT * FROM scim_users WHERE tenant = ? AND user_name_key = ?'),
    byExternal: db.prepare<[string, string], UserRow>('SELECT * FROM scim_users WHERE tenant = ? AND external_id = ? ORDER BY login_id'),
    // Only the conflict on the login's key is let pass: another login's name still fails on the name's index.
    insertUser: db.prepare<[string, string, string | null, string | null, string | null]>(
      `INSERT INTO scim_users (tenant, login_id, user_name, user_name_key, external_id, revision) VALUES (?, ?, ?, ?, ?, 1)
       ON CONFLICT (tenant, login_id) DO NOTHING`,
    ),
    updateUser: db.prepare<[string | null, string | null, string | null, string, string, number]>(
      `UPDATE scim_users SET user_name = ?, user_name_key = ?, external_id = ?, revision = revision + 1
       WHERE tenant = ? AND login_id = ? AND revision = ?`,
    ),
    removeUser: db.prepare<[string, string]>('DELETE FROM scim_users WHERE tenant = ? AND login_id = ?'),
  };

  return {
    async init() {},
    async addToken(t) {
      stmt.addToken.run(t.id, t.tenant, t.label, t.hash, t.createdAt.getTime(), t.createdBy);
    },
    async findToken(hash) {
      const row = stmt.findToken.get(hash);
      return row ? toToken(row) : null;
    },
    async listTokens(tenant) {
      return stmt.listTokens.all(tenant).map(toToken);
    },
    async revokeToken(tenant, id, now) {
      return stmt.revoke.run(now.getTime(), tenant, id).changes === 1;
    },
    async getUser(tenant, loginId) {
      const row = stmt.getUser.get(tenant, loginId);
      return row ? toUser(row) : null;
    },
    async getUsers(tenant, loginIds) {
      if (!loginIds.length) return [];
      const rows = db.prepare<string[], UserRow>(`SELECT * FROM scim_users WHERE tenant = ? AND login_id IN (${loginIds.map(() => '?').join(',')})`).all(tenant, ...loginIds);
      return rows.map(toUser);
    },
    async findByUserName(tenant, userName) {
      const row = stmt.byName.get(tenant, userName.toLowerCase());
      return row ? toUser(row) : null;
    },
    async findByExternalId(tenant, externalId) {
      return stmt.byExternal.all(tenant, externalId).map(toUser);
    },
    async setUserIf(revision, u) {
      const key = u.userName === null ? null : u.userName.toLowerCase();
      try {
        const written =
          revision === NO_REVISION
            ? stmt.insertUser.run(u.tenant, u.loginId, u.userName, key, u.externalId)
            : stmt.updateUser.run(u.userName, key, u.externalId, u.tenant, u.loginId, revision);
        return written.changes === 1 ? { revision: revision + 1 } : 'changed';
      } catch (e) {
        if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') return 'taken';
        throw e;
      }
    },
    async removeUser(tenant, loginId) {
      stmt.removeUser.run(tenant, loginId);
    },
  };
}
