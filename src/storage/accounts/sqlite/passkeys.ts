// The passkeys of the embedded account store: one row per credential, its id the key.
import type Database from 'better-sqlite3';
import type { Passkey, PasskeyDeviceType, PasskeyStore } from '../port.ts';
import { checkedPasskey, checkedUse, countAdvances, credentialId, passkeyName } from '../passkey-values.ts';
import { str } from '../values.ts';

export const PASSKEY_SCHEMA = `
CREATE TABLE IF NOT EXISTS passkeys (
  id TEXT PRIMARY KEY,
  login TEXT NOT NULL,
  tenant TEXT NOT NULL,
  user_handle TEXT NOT NULL,
  name TEXT NOT NULL,
  public_key BLOB NOT NULL,
  counter INTEGER NOT NULL,
  transports TEXT NOT NULL,
  device_type TEXT NOT NULL,
  backed_up INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE INDEX IF NOT EXISTS passkeys_login ON passkeys (login, created_at, id);
`;

interface PasskeyRow {
  id: string;
  login: string;
  tenant: string;
  user_handle: string;
  name: string;
  public_key: Buffer;
  counter: number;
  transports: string;
  device_type: string;
  backed_up: number;
  created_at: number;
  last_used_at: number | null;
}

const COLUMNS = 'id, login, tenant, user_handle, name, public_key, counter, transports, device_type, backed_up, created_at, last_used_at';

const toPasskey = (r: PasskeyRow): Passkey => ({
  id: r.id,
  loginId: r.login,
  tenant: r.tenant,
  userHandle: r.user_handle,
  name: r.name,
  // A Buffer is a Uint8Array with more methods; callers get the plain kind either store returns.
  publicKey: new Uint8Array(r.public_key),
  counter: r.counter,
  transports: JSON.parse(r.transports) as string[],
  deviceType: r.device_type as PasskeyDeviceType,
  backedUp: r.backed_up !== 0,
  createdAt: new Date(r.created_at),
  lastUsedAt: r.last_used_at === null ? null : new Date(r.last_used_at),
});

function prepare(db: Database.Database) {
  return {
    add: db.prepare<unknown[], void>(`INSERT INTO passkeys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
    get: db.prepare<[string], PasskeyRow>(`SELECT ${COLUMNS} FROM passkeys WHERE id = ?`),
    list: db.prepare<[string], PasskeyRow>(`SELECT ${COLUMNS} FROM passkeys WHERE login = ? ORDER BY created_at, id`),
    rename: db.prepare<[string, string, string], void>('UPDATE passkeys SET name = ? WHERE login = ? AND id = ?'),
    remove: db.prepare<[string, string], void>('DELETE FROM passkeys WHERE login = ? AND id = ?'),
    removeAll: db.prepare<[string], void>('DELETE FROM passkeys WHERE login = ?'),
    // The WHERE is the compare-and-set: a statement is atomic across connections.
    use: db.prepare<[number, number, number, string, number], void>('UPDATE passkeys SET counter = ?, backed_up = ?, last_used_at = ? WHERE id = ? AND counter = ?'),
  };
}

/** The passkey methods on `db` (after `init` made the table), and `dropLogin` for the login's deletion. */
export function sqlitePasskeys(db: Database.Database) {
  let statements: ReturnType<typeof prepare> | null = null;
  const q = () => {
    if (!statements) throw new Error('account store: init() has not been called');
    return statements;
  };
  const methods: PasskeyStore = {
    async addPasskey(passkey) {
      const p = checkedPasskey(passkey);
      const row = [
        p.id,
        p.loginId,
        p.tenant,
        p.userHandle,
        p.name,
        Buffer.from(p.publicKey),
        p.counter,
        JSON.stringify(p.transports),
        p.deviceType,
        p.backedUp ? 1 : 0,
        p.createdAt.getTime(),
        p.lastUsedAt?.getTime() ?? null,
      ];
      return q().add.run(...row).changes === 1;
    },
    async getPasskey(id) {
      const row = q().get.get(credentialId('credentialId', id));
      return row ? toPasskey(row) : null;
    },
    async listPasskeys(loginId) {
      return q().list.all(str('loginId', loginId)).map(toPasskey);
    },
    async renamePasskey(loginId, id, name) {
      return q().rename.run(passkeyName(name), str('loginId', loginId), credentialId('credentialId', id)).changes === 1;
    },
    async deletePasskey(loginId, id) {
      return q().remove.run(str('loginId', loginId), credentialId('credentialId', id)).changes === 1;
    },
    async deletePasskeys(loginId) {
      return q().removeAll.run(str('loginId', loginId)).changes;
    },
    async recordPasskeyUse(id, use) {
      const u = checkedUse(use);
      const cred = credentialId('credentialId', id);
      if (!countAdvances(u)) return false;
      return q().use.run(u.newCounter, u.backedUp ? 1 : 0, u.usedAt.getTime(), cred, u.counter).changes === 1;
    },
  };
  return {
    methods,
    init() {
      db.exec(PASSKEY_SCHEMA);
      statements = prepare(db);
    },
    /** For `deleteLogin`'s transaction. */
    dropLogin(loginId: string) {
      q().removeAll.run(loginId);
    },
  };
}
