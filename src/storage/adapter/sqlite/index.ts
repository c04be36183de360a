import type Database from 'better-sqlite3';
import { alreadyConsumed, DESTROYED_FOR_GOOD, DESTROYED_KEPT_MS, type AdapterBackend, type AdapterPayload, type StoredAdapter } from '../port.ts';

// Only these models are revoked together by grant, as in oidc-provider's memory adapter
// (an Interaction also carries a grantId but must survive a grant's revocation).
const GRANTABLE = ['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode'];

const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 500;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oidc_models (
  model TEXT NOT NULL,
  id TEXT NOT NULL,
  payload TEXT NOT NULL,
  grant_id TEXT,
  user_code TEXT,
  uid TEXT,
  expires_at INTEGER,
  PRIMARY KEY (model, id)
);
CREATE INDEX IF NOT EXISTS oidc_models_grant_id ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_models_expires_at ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;
`;

// A destroyed Session or Grant keeps its row with an empty payload (no JSON is empty), no lookup
// fields and a near expiry, so the upsert's conflict clause can refuse to bring it back.
const DESTROYED = '';

interface Row {
  payload: string;
  expires_at: number | null;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * oidc-provider storage in one SQLite table (`oidc_models`) of the database
 * the caller opened (and closes). Expired rows are never returned; they are
 * deleted when read and by a periodic sweep that `close()` stops.
 */
export function createSqliteAdapterBackend(db: Database.Database): AdapterBackend {
  db.exec(SCHEMA);

  const live = '(expires_at IS NULL OR expires_at > ?)';
  const stmt = {
    upsert: db.prepare<[string, string, string, string | null, string | null, string | null, number | null]>(
      `INSERT INTO oidc_models (model, id, payload, grant_id, user_code, uid, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (model, id) DO UPDATE SET
         payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
         uid = excluded.uid, expires_at = excluded.expires_at
       WHERE oidc_models.payload <> ''`,
    ),
    find: db.prepare<[string, string], Row>('SELECT payload, expires_at FROM oidc_models WHERE model = ? AND id = ?'),
    deleteIfExpired: db.prepare<[string, string, number]>('DELETE FROM oidc_models WHERE model = ? AND id = ? AND expires_at <= ?'),
    findByUid: db.prepare<[string, string, number], Row>(`SELECT payload, expires_at FROM oidc_models WHERE model = ? AND uid = ? AND ${live} LIMIT 1`),
    findByUserCode: db.prepare<[string, string, number], Row>(`SELECT payload, expires_at FROM oidc_models WHERE model = ? AND user_code = ? AND ${live} LIMIT 1`),
    // CAST: better-sqlite3 binds JS numbers as REAL, which json_set would write as 1700000000.0.
    consume: db.prepare<[number, string, string, number]>(
      `UPDATE oidc_models SET payload = json_set(payload, '$.consumed', CAST(? AS INTEGER))
       WHERE model = ? AND id = ? AND ${live} AND payload <> '' AND json_type(CASE WHEN payload = '' THEN '{}' ELSE payload END, '$.consumed') IS NULL`,
    ),
    destroy: db.prepare<[string, string]>('DELETE FROM oidc_models WHERE model = ? AND id = ?'),
    destroyForGood: db.prepare<[number, number, string, string]>(
      `UPDATE oidc_models SET payload = '', grant_id = NULL, user_code = NULL, uid = NULL,
         expires_at = MIN(COALESCE(expires_at, ?), ?)
       WHERE model = ? AND id = ?`,
    ),
    revoke: db.prepare<[string]>(`DELETE FROM oidc_models WHERE grant_id = ? AND model IN (${GRANTABLE.map((m) => `'${m}'`).join(', ')})`),
    sweep: db.prepare<[number]>(
      `DELETE FROM oidc_models WHERE rowid IN (
         SELECT rowid FROM oidc_models WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`,
    ),
    scan: db.prepare<[string, number, number, number], { rowid: number; payload: string }>(
      `SELECT rowid, payload FROM oidc_models WHERE model = ? AND rowid > ? AND ${live} AND payload <> '' ORDER BY rowid LIMIT ?`,
    ),
    ping: db.prepare('SELECT 1'),
  };

  const sweep = setInterval(() => {
    try {
      stmt.sweep.run(Date.now());
    } catch {
      // Busy with another process or closed by the owner: the next sweep or read will do.
    }
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  function parse(row: Row | undefined): AdapterPayload | undefined {
    return row && row.payload !== DESTROYED ? (JSON.parse(row.payload) as AdapterPayload) : undefined;
  }

  function factory(model: string): StoredAdapter {
    const forGood = DESTROYED_FOR_GOOD.has(model);
    return {
      async upsert(id, payload, expiresIn) {
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null;
        return stmt.upsert.run(model, id, JSON.stringify(payload), text(payload.grantId), text(payload.userCode), text(payload.uid), expiresAt).changes === 1;
      },
      async find(id) {
        const row = stmt.find.get(model, id);
        if (!row) return undefined;
        const now = Date.now();
        if (row.expires_at !== null && row.expires_at <= now) {
          stmt.deleteIfExpired.run(model, id, now);
          return undefined;
        }
        return parse(row);
      },
      async findByUid(uid) {
        return parse(stmt.findByUid.get(model, uid, Date.now()));
      },
      async findByUserCode(userCode) {
        return parse(stmt.findByUserCode.get(model, userCode, Date.now()));
      },
      async consume(id) {
        const now = Date.now();
        if (stmt.consume.run(Math.floor(now / 1000), model, id, now).changes !== 1) throw alreadyConsumed(model);
      },
      async destroy(id) {
        if (!forGood) {
          stmt.destroy.run(model, id);
          return;
        }
        const until = Date.now() + DESTROYED_KEPT_MS;
        stmt.destroyForGood.run(until, until, model, id);
      },
      async revokeByGrantId(grantId) {
        stmt.revoke.run(grantId);
      },
    };
  }

  return {
    factory,
    async *scan(model) {
      for (let after = 0; ;) {
        const rows = stmt.scan.all(model, after, Date.now(), SWEEP_BATCH);
        for (const row of rows) yield JSON.parse(row.payload) as AdapterPayload;
        if (rows.length < SWEEP_BATCH) return;
        after = rows.at(-1)!.rowid;
      }
    },
    async ping() {
      stmt.ping.get();
    },
    async close() {
      clearInterval(sweep);
    },
  };
}
