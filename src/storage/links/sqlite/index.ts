import type Database from 'better-sqlite3';
import type { LinkPurpose, LinkStore, OneTimeLink } from '../port.ts';

interface Row {
  purpose: LinkPurpose;
  identity_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  password_fingerprint: string | null;
}

const toLink = (row: Row): OneTimeLink => ({
  purpose: row.purpose,
  identityId: row.identity_id,
  createdAt: new Date(row.created_at),
  expiresAt: new Date(row.expires_at),
  ...(row.password_fingerprint === null ? {} : { passwordFingerprint: row.password_fingerprint }),
});

/** One-time links in the SQLite table `one_time_links`; `use` is one conditional UPDATE (unused, unexpired, the password's fingerprint). Voided links stay until they expire. */
export function createSqliteLinkStore(db: Database.Database): LinkStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS one_time_links (
      token_hash TEXT PRIMARY KEY,
      purpose TEXT NOT NULL,
      identity_id TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      used_at INTEGER,
      voided_at INTEGER,
      password_fingerprint TEXT
    );
    CREATE INDEX IF NOT EXISTS one_time_links_identity ON one_time_links (identity_id, purpose, created_at);
    CREATE INDEX IF NOT EXISTS one_time_links_expires ON one_time_links (expires_at);
  `);
  // Tables made before fingerprints: their links have none (NULL), and are not compared.
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('one_time_links')").all();
  if (!columns.some((c) => c.name === 'password_fingerprint')) db.exec('ALTER TABLE one_time_links ADD COLUMN password_fingerprint TEXT');
  const stmt = {
    voidOthers: db.prepare<[number, string, string]>('UPDATE one_time_links SET voided_at = ? WHERE identity_id = ? AND purpose = ? AND used_at IS NULL AND voided_at IS NULL'),
    insert: db.prepare<[string, string, string, number, number, string | null]>(
      'INSERT INTO one_time_links (token_hash, purpose, identity_id, created_at, expires_at, password_fingerprint) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    find: db.prepare<[string, string], Row>(
      'SELECT purpose, identity_id, created_at, expires_at, used_at, password_fingerprint FROM one_time_links WHERE token_hash = ? AND purpose = ? AND voided_at IS NULL',
    ),
    use: db.prepare<[number, string, string, number, string]>(
      `UPDATE one_time_links SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND voided_at IS NULL AND expires_at > ?
         AND (password_fingerprint IS NULL OR password_fingerprint = ?)`,
    ),
    sweep: db.prepare<[number]>('DELETE FROM one_time_links WHERE expires_at < ?'),
  };
  const create = db.transaction((tokenHash: string, link: OneTimeLink) => {
    stmt.voidOthers.run(link.createdAt.getTime(), link.identityId, link.purpose);
    stmt.insert.run(tokenHash, link.purpose, link.identityId, link.createdAt.getTime(), link.expiresAt.getTime(), link.passwordFingerprint ?? null);
  });
  return {
    async init() {},
    async create(tokenHash, link) {
      create.immediate(tokenHash, link);
    },
    async find(tokenHash, purpose) {
      const row = stmt.find.get(tokenHash, purpose);
      return row ? { ...toLink(row), used: row.used_at !== null } : null;
    },
    async use(tokenHash, purpose, now, passwordFingerprint) {
      if (stmt.use.run(now.getTime(), tokenHash, purpose, now.getTime(), passwordFingerprint).changes !== 1) return null;
      return toLink(stmt.find.get(tokenHash, purpose)!);
    },
    async sweep(now) {
      return stmt.sweep.run(now.getTime()).changes;
    },
  };
}
