import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import {
  normalizeEmail,
  type AccountStore,
  type AuditEvent,
  type AuditOutcome,
  type Client,
  type FactorState,
  type Identity,
  type Login,
  type LoginInput,
  type LoginProfile,
  type SecondFactor,
  type SessionPolicy,
  type Tenant,
  type Upstream,
  type UserType,
} from '../port.ts';
import { sqlitePasskeys } from './passkeys.ts';
import { HANDLE_ATTEMPTS, handleToTry, warnHandleChanged, type StoreLog } from '../upstream-handles.ts';
import {
  auditQuery,
  canonicalJson,
  emailList,
  factorId,
  factorStateValue,
  flag,
  loginSearch,
  optStr,
  ownerList,
  secondFactor,
  sessionPolicy,
  str,
  userType,
  userTypes,
  type CheckedLoginSearch,
  userTypeAddable,
  userTypeNameTaken,
} from '../values.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  owner TEXT,
  user_types TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS identities (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  password_hash TEXT
);
CREATE TABLE IF NOT EXISTS logins (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  email TEXT NOT NULL,
  user_type TEXT NOT NULL,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  factors TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS logins_tenant_email ON logins (tenant, email);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  first_party INTEGER NOT NULL,
  metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS clients_tenant ON clients (tenant);
CREATE TABLE IF NOT EXISTS audit_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT,
  login TEXT,
  type TEXT NOT NULL,
  time INTEGER NOT NULL,
  ip TEXT,
  user_agent TEXT,
  outcome TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_events_tenant_time ON audit_events (tenant, time);
CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (time);
CREATE INDEX IF NOT EXISTS audit_events_tenant_login_time ON audit_events (tenant, login, time);
`;

interface TenantRow {
  id: string;
  name: string;
  /** The first owner, as stores before `owners` kept it (read when `owners` is null). */
  owner: string | null;
  owners: string | null;
  user_types: string;
  step_up_enrollment: number;
  session_policy: string | null;
}
interface IdentityRow {
  id: string;
  email: string;
  password_hash: string | null;
}
interface LoginRow {
  id: string;
  tenant: string;
  email: string;
  user_type: string;
  first_name: string;
  last_name: string;
  disabled: number;
  factors: string;
}
interface ClientRow {
  client_id: string;
  tenant: string;
  first_party: number;
  metadata: string;
}
interface AuditRow {
  tenant: string | null;
  login: string | null;
  type: string;
  time: number;
  ip: string | null;
  user_agent: string | null;
  outcome: string;
  detail: string | null;
}

const AUDIT_DELETE_BATCH = 1000;
function deleteLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new TypeError('limit must be an integer in 1..10000');
  return limit;
}

const toTenant = (r: TenantRow): Tenant => ({
  id: r.id,
  name: r.name,
  owners: r.owners !== null ? (JSON.parse(r.owners) as string[]) : r.owner ? [r.owner] : [],
  userTypes: JSON.parse(r.user_types) as UserType[],
  stepUpEnrollment: r.step_up_enrollment === 1,
  ...(r.session_policy ? { sessionPolicy: JSON.parse(r.session_policy) as SessionPolicy } : {}),
});
const TENANT_COLUMNS = 'id, name, owner, owners, user_types, step_up_enrollment, session_policy';

/** Columns added to `tenants` after its first release; a store made before gets them at start. */
function addTenantColumns(db: Database.Database): void {
  const have = new Set((db.prepare('PRAGMA table_info(tenants)').all() as { name: string }[]).map((c) => c.name));
  const columns = { step_up_enrollment: 'INTEGER NOT NULL DEFAULT 0', owners: 'TEXT', session_policy: 'TEXT' };
  for (const [column, type] of Object.entries(columns)) {
    if (have.has(column)) continue;
    try {
      db.exec(`ALTER TABLE tenants ADD COLUMN ${column} ${type}`);
    } catch (err) {
      // Another process starting on the same file added it first.
      if (!/duplicate column/i.test(String((err as Error).message))) throw err;
    }
  }
}
const toIdentity = (r: IdentityRow): Identity => ({ id: r.id, email: r.email, passwordHash: r.password_hash });
const toLogin = (r: LoginRow): Login => ({
  id: r.id,
  tenant: r.tenant,
  email: r.email,
  userType: r.user_type,
  firstName: r.first_name,
  lastName: r.last_name,
  disabled: r.disabled !== 0,
  factors: JSON.parse(r.factors) as Record<string, FactorState>,
});
const toClient = (r: ClientRow): Client => ({
  clientId: r.client_id,
  tenant: r.tenant,
  firstParty: r.first_party !== 0,
  metadata: JSON.parse(r.metadata) as Client['metadata'],
});
function toAudit(r: AuditRow): AuditEvent {
  const event: AuditEvent = {
    tenant: r.tenant,
    login: r.login,
    type: r.type,
    time: new Date(r.time),
    ip: r.ip,
    userAgent: r.user_agent,
    outcome: r.outcome as AuditOutcome,
  };
  if (r.detail !== null) event.detail = JSON.parse(r.detail) as Record<string, unknown>;
  return event;
}

const LOGIN_COLUMNS = 'id, tenant, email, user_type, first_name, last_name, disabled, factors';

function prepare(db: Database.Database) {
  return {
    ping: db.prepare<[], unknown>('SELECT 1'),
    anyTenant: db.prepare<[], { id: string }>('SELECT id FROM tenants LIMIT 1'),
    upsertTenant: db.prepare<{ id: string; name: string; owner: string | null; owners: string; userTypes: string; stepUp: number | null }, void>(
      `INSERT INTO tenants (id, name, owner, owners, user_types, step_up_enrollment) VALUES (@id, @name, @owner, @owners, @userTypes, coalesce(@stepUp, 0))
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, owner = excluded.owner, owners = excluded.owners, user_types = excluded.user_types,
         step_up_enrollment = coalesce(@stepUp, tenants.step_up_enrollment)`,
    ),
    getTenant: db.prepare<[string], TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE id = ?`),
    listTenants: db.prepare<[], TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants ORDER BY id`),
    setStepUpEnrollment: db.prepare<[number, string], void>('UPDATE tenants SET step_up_enrollment = ? WHERE id = ?'),
    setSessionPolicy: db.prepare<[string, string], void>('UPDATE tenants SET session_policy = ? WHERE id = ?'),
    setUserTypes: db.prepare<[string, string], void>('UPDATE tenants SET user_types = ? WHERE id = ?'),
    setOwners: db.prepare<[string, string | null, string], void>('UPDATE tenants SET owners = ?, owner = ? WHERE id = ?'),
    loginOfType: db.prepare<[string, string], { id: string }>('SELECT id FROM logins WHERE tenant = ? AND user_type = ? LIMIT 1'),
    deleteClient: db.prepare<[string], void>('DELETE FROM clients WHERE client_id = ?'),

    upsertIdentity: db.prepare<{ id: string; email: string; hash: string | null; keep: number }, IdentityRow>(
      `INSERT INTO identities (id, email, password_hash) VALUES (@id, @email, @hash)
       ON CONFLICT (email) DO UPDATE SET password_hash = CASE WHEN @keep THEN identities.password_hash ELSE excluded.password_hash END
       RETURNING id, email, password_hash`,
    ),
    identityByEmail: db.prepare<[string], IdentityRow>('SELECT id, email, password_hash FROM identities WHERE email = ?'),
    identityById: db.prepare<[string], IdentityRow>('SELECT id, email, password_hash FROM identities WHERE id = ?'),
    setPasswordHash: db.prepare<[string, string], void>('UPDATE identities SET password_hash = ? WHERE id = ?'),
    replacePasswordHash: db.prepare<[string, string, string], void>('UPDATE identities SET password_hash = ? WHERE id = ? AND password_hash = ?'),
    setPasswordHashIf: db.prepare<[string, string, string | null], void>('UPDATE identities SET password_hash = ? WHERE id = ? AND password_hash IS ?'),

    upsertLogin: db.prepare<{ id: string; tenant: string; email: string; userType: string; firstName: string; lastName: string; disabled: number | null }, void>(
      `INSERT INTO logins (id, tenant, email, user_type, first_name, last_name, disabled, factors)
       VALUES (@id, @tenant, @email, @userType, @firstName, @lastName, coalesce(@disabled, 0), '{}')
       ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, email = excluded.email, user_type = excluded.user_type,
         first_name = excluded.first_name, last_name = excluded.last_name, disabled = coalesce(@disabled, logins.disabled)`,
    ),
    createLogin: db.prepare<{ id: string; tenant: string; email: string; userType: string; firstName: string; lastName: string; disabled: number | null }, void>(
      `INSERT INTO logins (id, tenant, email, user_type, first_name, last_name, disabled, factors)
       VALUES (@id, @tenant, @email, @userType, @firstName, @lastName, coalesce(@disabled, 0), '{}')
       ON CONFLICT (id) DO NOTHING`,
    ),
    deleteLogin: db.prepare<[string], void>('DELETE FROM logins WHERE id = ?'),
    loginAsRead: db.prepare<Record<string, string | number>, { id: string }>(
      `SELECT id FROM logins WHERE id = @id AND tenant = @wasTenant AND email = @wasEmail AND user_type = @wasUserType
         AND first_name = @wasFirstName AND last_name = @wasLastName AND disabled = @wasDisabled`,
    ),
    deleteIdentity: db.prepare<[string], void>('DELETE FROM identities WHERE id = ?'),
    setDisabled: db.prepare<[number, string], void>('UPDATE logins SET disabled = ? WHERE id = ?'),
    updateLoginIf: db.prepare<Record<string, string | number | null>, void>(
      `UPDATE logins SET email = @email, user_type = @userType, first_name = @firstName, last_name = @lastName,
         disabled = coalesce(@disabled, disabled)
       WHERE id = @id AND tenant = @wasTenant AND email = @wasEmail AND user_type = @wasUserType
         AND first_name = @wasFirstName AND last_name = @wasLastName AND disabled = @wasDisabled`,
    ),
    getLogin: db.prepare<[string], LoginRow>(`SELECT ${LOGIN_COLUMNS} FROM logins WHERE id = ?`),
    loginsForEmail: db.prepare<[string, string], LoginRow>(`SELECT ${LOGIN_COLUMNS} FROM logins WHERE tenant = ? AND email = ? ORDER BY id`),
    listLogins: db.prepare<[string], LoginRow>(`SELECT ${LOGIN_COLUMNS} FROM logins WHERE tenant = ? ORDER BY last_name, first_name, id`),
    setFactor: db.prepare<[string, string, string], void>('UPDATE logins SET factors = json_set(factors, ?, json(?)) WHERE id = ?'),
    replaceFactorHash: db.prepare<{ path: string; next: string; id: string; current: string }, void>(
      'UPDATE logins SET factors = json_set(factors, @path, @next) WHERE id = @id AND json_extract(factors, @path) = @current',
    ),
    removeFactor: db.prepare<[string, string], void>('UPDATE logins SET factors = json_remove(factors, ?) WHERE id = ?'),
    advanceStep: db.prepare<{ id: string; factor: string; path: string; json: string; step: number }, void>(
      `UPDATE logins SET factors = json_set(factors, @path, json(@json))
       WHERE id = @id AND json_type(factors, @factor) = 'object'
         AND (json_type(factors, @path) IS NULL OR json_extract(factors, @path) < @step)`,
    ),

    upsertClient: db.prepare<[string, string, number, string], void>(
      `INSERT INTO clients (client_id, tenant, first_party, metadata) VALUES (?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET tenant = excluded.tenant, first_party = excluded.first_party, metadata = excluded.metadata`,
    ),
    getClient: db.prepare<[string], ClientRow>('SELECT client_id, tenant, first_party, metadata FROM clients WHERE client_id = ?'),
    listClients: db.prepare<[string], ClientRow>('SELECT client_id, tenant, first_party, metadata FROM clients WHERE tenant = ? ORDER BY client_id'),

    appendAudit: db.prepare<[string | null, string | null, string, number, string | null, string | null, string, string | null], void>(
      `INSERT INTO audit_events (tenant, login, type, time, ip, user_agent, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteAuditBefore: db.prepare<[number, number], void>('DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE time < ? ORDER BY time LIMIT ?)'),
  };
}

const UPSTREAM_SCHEMA = `
CREATE TABLE IF NOT EXISTS upstreams (
  tenant TEXT NOT NULL,
  id TEXT NOT NULL,
  handle TEXT,
  name TEXT NOT NULL,
  issuer TEXT NOT NULL,
  client_id TEXT NOT NULL,
  client_secret TEXT NOT NULL,
  scopes TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS upstream_links (
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  identity_id TEXT NOT NULL,
  PRIMARY KEY (issuer, subject)
);
CREATE INDEX IF NOT EXISTS upstream_links_identity ON upstream_links (identity_id);
`;

interface UpstreamRow {
  tenant: string;
  id: string;
  handle: string;
  name: string;
  issuer: string;
  client_id: string;
  client_secret: string;
  scopes: string;
}

const toUpstream = (r: UpstreamRow): Upstream => ({
  tenant: r.tenant,
  id: r.id,
  handle: r.handle,
  name: r.name,
  issuer: r.issuer,
  clientId: r.client_id,
  clientSecret: r.client_secret,
  scopes: JSON.parse(r.scopes) as string[],
});

function scopeList(value: unknown): string[] {
  if (!Array.isArray(value)) throw new TypeError('scopes must be an array');
  return value.map((v) => str('scope', v));
}

const UPSTREAM_COLUMNS = 'tenant, id, handle, name, issuer, client_id, client_secret, scopes';

const uniqueHandle = (err: unknown) => /UNIQUE constraint failed: upstreams\.handle/.test(String((err as Error)?.message));

/**
 * Gives every upstream stored before handles existed its handle, under the
 * write lock, in the order they were stored (rowid): the first of an id keeps
 * the id as its handle (its redirect URI is unchanged), a later one of the same
 * id in another tenant gets a generated handle and a warning. The unique index
 * comes first (NULLs are distinct in it), so processes starting together agree.
 */
function addUpstreamHandles(db: Database.Database, log: StoreLog | undefined): void {
  const have = new Set((db.prepare('PRAGMA table_info(upstreams)').all() as { name: string }[]).map((c) => c.name));
  if (!have.has('handle')) {
    try {
      db.exec('ALTER TABLE upstreams ADD COLUMN handle TEXT');
    } catch (err) {
      if (!/duplicate column/i.test(String((err as Error).message))) throw err;
    }
  }
  db.exec('CREATE UNIQUE INDEX IF NOT EXISTS upstreams_handle ON upstreams (handle)');
  const unhandled = db.prepare<[], { rowid: number; tenant: string; id: string }>('SELECT rowid, tenant, id FROM upstreams WHERE handle IS NULL ORDER BY rowid');
  const taken = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM upstreams WHERE handle = ?');
  const give = db.prepare<[string, number], void>('UPDATE upstreams SET handle = ? WHERE rowid = ? AND handle IS NULL');
  const changed: { tenant: string; id: string; handle: string }[] = [];
  db.transaction(() => {
    for (const row of unhandled.all()) {
      for (let attempt = 0; ; attempt++) {
        const handle = handleToTry(row.id, attempt, taken.get(row.id) !== undefined);
        try {
          give.run(handle, row.rowid);
          if (handle !== row.id) changed.push({ tenant: row.tenant, id: row.id, handle });
          break;
        } catch (err) {
          if (!uniqueHandle(err) || attempt + 1 >= HANDLE_ATTEMPTS) throw err;
        }
      }
    }
  }).immediate();
  for (const c of changed) warnHandleChanged(log, c.tenant, c.id, c.handle);
}

function prepareUpstreams(db: Database.Database) {
  return {
    updateUpstream: db.prepare<[string, string, string, string, string, string, string], void>(
      'UPDATE upstreams SET name = ?, issuer = ?, client_id = ?, client_secret = ?, scopes = ? WHERE tenant = ? AND id = ?',
    ),
    insertUpstream: db.prepare<[string, string, string, string, string, string, string, string], void>(
      `INSERT INTO upstreams (${UPSTREAM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    handleTaken: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM upstreams WHERE handle = ?'),
    getUpstream: db.prepare<[string, string], UpstreamRow>(`SELECT ${UPSTREAM_COLUMNS} FROM upstreams WHERE tenant = ? AND id = ?`),
    upstreamByHandle: db.prepare<[string], UpstreamRow>(`SELECT ${UPSTREAM_COLUMNS} FROM upstreams WHERE handle = ?`),
    deleteUpstream: db.prepare<[string, string], void>('DELETE FROM upstreams WHERE tenant = ? AND id = ?'),
    listUpstreams: db.prepare<[string], UpstreamRow>(`SELECT ${UPSTREAM_COLUMNS} FROM upstreams WHERE tenant = ? ORDER BY name, id`),
    identityByUpstream: db.prepare<[string, string], IdentityRow>(
      `SELECT i.id, i.email, i.password_hash FROM upstream_links l JOIN identities i ON i.id = l.identity_id
       WHERE l.issuer = ? AND l.subject = ?`,
    ),
    linkUpstream: db.prepare<[string, string, string], void>('INSERT INTO upstream_links (issuer, subject, identity_id) VALUES (?, ?, ?) ON CONFLICT (issuer, subject) DO NOTHING'),
    linkedIdentity: db.prepare<[string, string], { identity_id: string }>('SELECT identity_id FROM upstream_links WHERE issuer = ? AND subject = ?'),
    linksOfIdentity: db.prepare<[string], { issuer: string; subject: string; identity_id: string }>(
      'SELECT issuer, subject, identity_id FROM upstream_links WHERE identity_id = ? ORDER BY issuer, subject',
    ),
    unlinkAll: db.prepare<[string], void>('DELETE FROM upstream_links WHERE identity_id = ?'),
    unlinkUpstream: db.prepare<[string, string, string], void>('DELETE FROM upstream_links WHERE issuer = ? AND subject = ? AND identity_id = ?'),
  };
}

const ACCOUNT_PAGES_SCHEMA = `
CREATE INDEX IF NOT EXISTS logins_email ON logins (email);
CREATE INDEX IF NOT EXISTS logins_tenant_name ON logins (tenant, last_name, first_name, id);
CREATE TABLE IF NOT EXISTS login_sessions (
  login TEXT PRIMARY KEY,
  not_before INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_grants (
  login TEXT NOT NULL,
  grant_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (login, grant_id)
);
`;

function prepareAccountPages(db: Database.Database) {
  return {
    loginsForEmailAllTenants: db.prepare<[string], LoginRow>(`SELECT ${LOGIN_COLUMNS} FROM logins WHERE email = ? ORDER BY tenant, id`),
    // The WHERE makes it a no-op for an unknown login; max() never moves the time back.
    endSessions: db.prepare<[number, string], void>(
      `INSERT INTO login_sessions (login, not_before) SELECT id, ? FROM logins WHERE id = ?
       ON CONFLICT (login) DO UPDATE SET not_before = max(login_sessions.not_before, excluded.not_before)`,
    ),
    sessionsNotBefore: db.prepare<[string], { not_before: number }>('SELECT not_before FROM login_sessions WHERE login = ?'),
    addGrant: db.prepare<[string, string, number], void>(
      `INSERT INTO login_grants (login, grant_id, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (login, grant_id) DO UPDATE SET expires_at = max(login_grants.expires_at, excluded.expires_at)`,
    ),
    dropExpiredGrants: db.prepare<[string, number], void>('DELETE FROM login_grants WHERE login = ? AND expires_at <= ?'),
    liveGrants: db.prepare<[string, number], { grant_id: string }>('SELECT grant_id FROM login_grants WHERE login = ? AND expires_at > ? ORDER BY grant_id'),
    dropGrants: db.prepare<[string], void>('DELETE FROM login_grants WHERE login = ?'),
  };
}

/** The `@id` and `@was…` parameters that match a login only while its stored profile is `expected`'s. */
function asReadOf(id: string, expected: LoginProfile) {
  const was = loginRow(expected);
  if (typeof expected.disabled !== 'boolean') throw new TypeError('disabled must be a boolean');
  if (was.id !== id) throw new TypeError('the login read is another login');
  return {
    id,
    wasTenant: was.tenant,
    wasEmail: was.email,
    wasUserType: was.userType,
    wasFirstName: was.firstName,
    wasLastName: was.lastName,
    wasDisabled: expected.disabled ? 1 : 0,
  };
}

function loginRow(login: LoginInput) {
  if (login.disabled !== undefined && typeof login.disabled !== 'boolean') throw new TypeError('disabled must be a boolean');
  return {
    id: str('login.id', login.id),
    tenant: str('login.tenant', login.tenant),
    email: normalizeEmail(str('login.email', login.email)),
    userType: str('login.userType', login.userType),
    firstName: str('login.firstName', login.firstName),
    lastName: str('login.lastName', login.lastName),
    disabled: login.disabled === undefined ? null : login.disabled ? 1 : 0,
  };
}

// SQLite's lower() folds ASCII only; the search folds as JavaScript (and MongoDB's case-insensitive match) do.
const FOLD = 'latchkey_fold';
const ORDER: Record<CheckedLoginSearch['sort'], string[]> = {
  name: ['last_name', 'first_name', 'id'],
  email: ['email', 'id'],
  userType: ['user_type', 'last_name', 'first_name', 'id'],
};

/** The WHERE and ORDER BY of a search, built from fixed pieces only; the caller's values are bound as parameters. */
function searchSql(search: CheckedLoginSearch): { where: string; order: string; params: unknown[] } {
  const where = ['tenant = ?'];
  const params: unknown[] = [search.tenant];
  if (search.userType !== null) {
    where.push('user_type = ?');
    params.push(search.userType);
  }
  if (search.state !== null) {
    where.push('disabled = ?');
    params.push(search.state === 'disabled' ? 1 : 0);
  }
  for (const word of search.words) {
    where.push(`instr(${FOLD}(first_name || ' ' || last_name || ' ' || email), ?) > 0`);
    params.push(word);
  }
  const direction = search.descending ? 'DESC' : 'ASC';
  return { where: where.join(' AND '), order: ORDER[search.sort].map((c) => `${c} ${direction}`).join(', '), params };
}

/**
 * The embedded account store on an open better-sqlite3 database (the caller
 * opens it, in WAL mode, and closes it; `close()` leaves it open). `log` hears
 * what `init()`'s migrations want the operator to know.
 */
export function createSqliteAccountStore(db: Database.Database, options: { log?: StoreLog } = {}): AccountStore {
  let prepared: ReturnType<typeof prepare> | null = null;
  const q = () => {
    if (!prepared) throw new Error('account store: init() has not been called');
    return prepared;
  };
  let accountPageStatements: ReturnType<typeof prepareAccountPages> | null = null;
  const pages = () => {
    if (!accountPageStatements) throw new Error('account store: init() has not been called');
    return accountPageStatements;
  };
  const takeGrantsTx = db.transaction((loginId: string, now: number): string[] => {
    const ids = pages()
      .liveGrants.all(loginId, now)
      .map((r) => r.grant_id);
    pages().dropGrants.run(loginId);
    return ids;
  });
  let upstreamStatements: ReturnType<typeof prepareUpstreams> | null = null;
  const u = () => {
    if (!upstreamStatements) throw new Error('account store: init() has not been called');
    return upstreamStatements;
  };

  const passkeys = sqlitePasskeys(db);
  // A replaced upstream keeps its handle; a new one tries its id, then generated handles, until the unique index takes one.
  const upsertUpstreamTx = db.transaction((tenant: string, id: string, fields: readonly [string, string, string, string, string]): void => {
    if (u().updateUpstream.run(...fields, tenant, id).changes === 1) return;
    for (let attempt = 0; ; attempt++) {
      const handle = handleToTry(id, attempt, u().handleTaken.get(id) !== undefined);
      try {
        u().insertUpstream.run(tenant, id, handle, ...fields);
        return;
      } catch (err) {
        if (!uniqueHandle(err) || attempt + 1 >= HANDLE_ATTEMPTS) throw err;
      }
    }
  });
  const deleteLoginTx = db.transaction((id: string, asRead?: Record<string, string | number>): boolean => {
    // Read and deleted in one immediate transaction: no writer on another connection comes between.
    if (asRead && !q().loginAsRead.get(asRead)) return false;
    pages().dropGrants.run(id);
    passkeys.dropLogin(id);
    return q().deleteLogin.run(id).changes === 1;
  });
  const deleteIdentityTx = db.transaction((id: string): boolean => {
    u().unlinkAll.run(id);
    return q().deleteIdentity.run(id).changes === 1;
  });

  // An immediate transaction takes the write lock before reading, so a
  // concurrent writer on another connection cannot slip in between.
  const setUserTypeFactorTx = db.transaction((tenantId: string, typeId: string, factor: SecondFactor): boolean => {
    const row = q().getTenant.get(tenantId);
    if (!row) return false;
    const types = JSON.parse(row.user_types) as UserType[];
    const type = types.find((u) => u.id === typeId);
    if (!type) return false;
    type.secondFactor = factor;
    q().setUserTypes.run(JSON.stringify(types), tenantId);
    return true;
  });

  /**
   * Reads the tenant, lets `change` decide, and writes its new user types or
   * owners, all under the write lock: parallel changes never lose one another.
   */
  const changeTenantTx = db.transaction(<T>(tenantId: string, change: (tenant: Tenant) => { result: T; userTypes?: UserType[]; owners?: string[] }, missing: T): T => {
    const row = q().getTenant.get(tenantId);
    if (!row) return missing;
    const outcome = change(toTenant(row));
    if (outcome.userTypes) q().setUserTypes.run(JSON.stringify(outcome.userTypes), tenantId);
    if (outcome.owners) q().setOwners.run(JSON.stringify(outcome.owners), outcome.owners[0] ?? null, tenantId);
    return outcome.result;
  });
  const changeTenant = <T>(tenantId: string, change: (tenant: Tenant) => { result: T; userTypes?: UserType[]; owners?: string[] }, missing: T): T =>
    changeTenantTx.immediate(tenantId, change as never, missing) as T;
  // Compare in JavaScript under the write lock: JSON equality whatever the key order.
  const casFactorTx = db.transaction((id: string, factor: string, expected: FactorState | null, next: FactorState | null): boolean => {
    const row = q().getLogin.get(id);
    if (!row) return false;
    const factors = JSON.parse(row.factors) as Record<string, FactorState>;
    if (canonicalJson(factors[factor] ?? null) !== canonicalJson(expected)) return false;
    const path = `$.${factor}`;
    if (next === null) q().removeFactor.run(path, id);
    else q().setFactor.run(path, JSON.stringify(next), id);
    return true;
  });

  return {
    ...passkeys.methods,
    async init() {
      if (prepared) return;
      db.exec(SCHEMA);
      addTenantColumns(db);
      db.exec(UPSTREAM_SCHEMA);
      addUpstreamHandles(db, options.log);
      prepared = prepare(db);
      upstreamStatements = prepareUpstreams(db);
      db.exec(ACCOUNT_PAGES_SCHEMA);
      db.function(FOLD, { deterministic: true }, (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : value));
      accountPageStatements = prepareAccountPages(db);
      passkeys.init();
    },
    async ping() {
      q().ping.get();
    },
    async close() {},
    async isEmpty() {
      return q().anyTenant.get() === undefined;
    },

    async upsertTenant(tenant) {
      const owners = ownerList(tenant.owners);
      q().upsertTenant.run({
        id: str('tenant.id', tenant.id),
        name: str('tenant.name', tenant.name),
        owners: JSON.stringify(owners),
        owner: owners[0] ?? null,
        userTypes: JSON.stringify(userTypes(tenant.userTypes)),
        stepUp: tenant.stepUpEnrollment === undefined ? null : Number(flag('tenant.stepUpEnrollment', tenant.stepUpEnrollment)),
      });
    },
    async getTenant(id) {
      const row = q().getTenant.get(str('id', id));
      return row ? toTenant(row) : null;
    },
    async listTenants() {
      return q().listTenants.all().map(toTenant);
    },
    async setStepUpEnrollment(tenantId, allowed) {
      return q().setStepUpEnrollment.run(Number(flag('allowed', allowed)), str('tenantId', tenantId)).changes === 1;
    },
    async setSessionPolicy(tenantId, policy) {
      return q().setSessionPolicy.run(JSON.stringify(sessionPolicy(policy)), str('tenantId', tenantId)).changes === 1;
    },
    async setUserTypeFactor(tenantId, userTypeId, factor) {
      return setUserTypeFactorTx.immediate(str('tenantId', tenantId), str('userTypeId', userTypeId), secondFactor(factor));
    },
    async addUserType(tenantId, type) {
      const added = userType(type);
      return changeTenant(
        str('tenantId', tenantId),
        (t) => (userTypeAddable(t.userTypes, added) ? { result: true, userTypes: [...t.userTypes, added] } : { result: false }),
        false,
      );
    },
    async renameUserType(tenantId, userTypeId, name) {
      const id = str('userTypeId', userTypeId);
      const newName = str('name', name);
      return changeTenant(
        str('tenantId', tenantId),
        (t) =>
          t.userTypes.some((u) => u.id === id) && !userTypeNameTaken(t.userTypes, newName, id)
            ? { result: true, userTypes: t.userTypes.map((u) => (u.id === id ? { ...u, name: newName } : u)) }
            : { result: false },
        false,
      );
    },
    async deleteUserType(tenantId, userTypeId) {
      const tenant = str('tenantId', tenantId);
      const id = str('userTypeId', userTypeId);
      return changeTenant<'deleted' | 'in_use' | 'last' | 'not_found'>(
        tenant,
        (t) => {
          if (!t.userTypes.some((u) => u.id === id)) return { result: 'not_found' };
          if (t.userTypes.length === 1) return { result: 'last' };
          if (q().loginOfType.get(tenant, id)) return { result: 'in_use' };
          return { result: 'deleted', userTypes: t.userTypes.filter((u) => u.id !== id) };
        },
        'not_found',
      );
    },
    async addOwner(tenantId, loginId) {
      const id = str('loginId', loginId);
      return changeTenant<'added' | 'already' | 'not_found'>(
        str('tenantId', tenantId),
        (t) => (t.owners.includes(id) ? { result: 'already' } : { result: 'added', owners: [...t.owners, id] }),
        'not_found',
      );
    },
    async removeOwner(tenantId, loginId) {
      const id = str('loginId', loginId);
      return changeTenant<'removed' | 'last' | 'not_owner'>(
        str('tenantId', tenantId),
        (t) => {
          if (!t.owners.includes(id)) return { result: 'not_owner' };
          if (t.owners.length === 1) return { result: 'last' };
          return { result: 'removed', owners: t.owners.filter((o) => o !== id) };
        },
        'not_owner',
      );
    },

    async upsertIdentity(input) {
      const hash = input.passwordHash;
      if (hash !== undefined && hash !== null) str('passwordHash', hash);
      const row = q().upsertIdentity.get({
        id: randomUUID(),
        email: normalizeEmail(str('email', input.email)),
        hash: hash ?? null,
        keep: hash === undefined ? 1 : 0,
      });
      return toIdentity(row!);
    },
    async findIdentityByEmail(email) {
      const row = q().identityByEmail.get(normalizeEmail(str('email', email)));
      return row ? toIdentity(row) : null;
    },
    async getIdentity(id) {
      const row = q().identityById.get(str('id', id));
      return row ? toIdentity(row) : null;
    },
    async setPasswordHash(identityId, passwordHash) {
      q().setPasswordHash.run(str('passwordHash', passwordHash), str('identityId', identityId));
    },

    async replacePasswordHash(identityId, current, next) {
      return q().replacePasswordHash.run(str('next', next), str('identityId', identityId), str('current', current)).changes === 1;
    },
    async setPasswordHashIf(identityId, current, next) {
      const was = current === null ? null : str('current', current);
      return q().setPasswordHashIf.run(str('next', next), str('identityId', identityId), was).changes === 1;
    },

    async upsertLogin(login) {
      q().upsertLogin.run(loginRow(login));
    },
    async createLogin(login) {
      return q().createLogin.run(loginRow(login)).changes === 1;
    },
    async deleteLogin(loginId, expected) {
      const id = str('loginId', loginId);
      return deleteLoginTx.immediate(id, expected && asReadOf(id, expected));
    },
    async deleteIdentity(identityId) {
      return deleteIdentityTx.immediate(str('identityId', identityId));
    },
    async updateLoginIf(expected, next) {
      const was = loginRow(expected);
      const now = loginRow({ ...next, id: was.id, tenant: was.tenant });
      return (
        q().updateLoginIf.run({
          disabled: now.disabled,
          email: now.email,
          userType: now.userType,
          firstName: now.firstName,
          lastName: now.lastName,
          ...asReadOf(was.id, expected),
        }).changes === 1
      );
    },
    async setLoginDisabled(loginId, disabled) {
      if (typeof disabled !== 'boolean') throw new TypeError('disabled must be a boolean');
      return q().setDisabled.run(disabled ? 1 : 0, str('loginId', loginId)).changes === 1;
    },
    async getLogin(id) {
      const row = q().getLogin.get(str('id', id));
      return row ? toLogin(row) : null;
    },
    async listLoginsForEmail(tenant, email) {
      return q()
        .loginsForEmail.all(str('tenant', tenant), normalizeEmail(str('email', email)))
        .map(toLogin);
    },
    async listLoginsForEmails(tenant, emails) {
      const list = emailList('emails', emails);
      const t = str('tenant', tenant);
      if (!list.length) return [];
      q();
      return db
        .prepare<unknown[], LoginRow>(`SELECT ${LOGIN_COLUMNS} FROM logins WHERE tenant = ? AND email IN (${list.map(() => '?').join(', ')}) ORDER BY email, id`)
        .all(t, ...list)
        .map(toLogin);
    },
    async listLogins(tenant) {
      return q().listLogins.all(str('tenant', tenant)).map(toLogin);
    },
    async searchLogins(input) {
      const search = loginSearch(input);
      q();
      const { where, order, params } = searchSql(search);
      const { total } = db.prepare<unknown[], { total: number }>(`SELECT count(*) AS total FROM logins WHERE ${where}`).get(...params)!;
      const rows = db
        .prepare<unknown[], LoginRow>(`SELECT ${LOGIN_COLUMNS} FROM logins WHERE ${where} ORDER BY ${order} LIMIT ? OFFSET ?`)
        .all(...params, search.limit, search.offset);
      return { logins: rows.map(toLogin), total };
    },

    async setFactorState(loginId, factor, state) {
      const id = str('loginId', loginId);
      const path = `$.${factorId(factor)}`;
      const result = state === null ? q().removeFactor.run(path, id) : q().setFactor.run(path, JSON.stringify(state), id);
      return result.changes === 1;
    },
    async compareAndSetFactorState(loginId, factor, expected, next) {
      return casFactorTx.immediate(str('loginId', loginId), factorId(factor), factorStateValue('expected', expected), factorStateValue('next', next));
    },
    async advanceFactorStep(loginId, factor, step) {
      if (typeof step !== 'number' || !Number.isFinite(step)) throw new TypeError('step must be a finite number');
      const path = `$.${factorId(factor)}`;
      const result = q().advanceStep.run({ id: str('loginId', loginId), factor: path, path: `${path}.step`, json: JSON.stringify(step), step });
      return result.changes === 1;
    },
    async replaceFactorHash(loginId, factor, current, next) {
      const path = `$.${factorId(factor)}.hash`;
      return q().replaceFactorHash.run({ path, next: str('next', next), id: str('loginId', loginId), current: str('current', current) }).changes === 1;
    },

    async upsertClient(client) {
      const metadata = JSON.stringify(client.metadata);
      if (typeof client.firstParty !== 'boolean') throw new TypeError('firstParty must be a boolean');
      q().upsertClient.run(str('clientId', client.clientId), str('tenant', client.tenant), client.firstParty ? 1 : 0, metadata);
    },
    async deleteClient(clientId) {
      return q().deleteClient.run(str('clientId', clientId)).changes === 1;
    },
    async getClient(clientId) {
      const row = q().getClient.get(str('clientId', clientId));
      return row ? toClient(row) : null;
    },
    async listClients(tenant) {
      return q().listClients.all(str('tenant', tenant)).map(toClient);
    },

    async appendAudit(event) {
      if (!(event.time instanceof Date) || Number.isNaN(event.time.getTime())) throw new TypeError('time must be a valid Date');
      q().appendAudit.run(
        optStr('tenant', event.tenant),
        optStr('login', event.login),
        str('type', event.type),
        event.time.getTime(),
        optStr('ip', event.ip),
        optStr('userAgent', event.userAgent),
        str('outcome', event.outcome),
        event.detail === undefined ? null : JSON.stringify(event.detail),
      );
    },
    async deleteAuditBefore(before, limit = AUDIT_DELETE_BATCH) {
      if (!(before instanceof Date) || Number.isNaN(before.getTime())) throw new TypeError('before must be a valid Date');
      return q().deleteAuditBefore.run(before.getTime(), deleteLimit(limit)).changes;
    },
    async listAudit(input) {
      const query = auditQuery(input);
      q();
      const where = ['tenant = ?'];
      const params: unknown[] = [query.tenant];
      if (query.login !== null) {
        where.push('login = ?');
        params.push(query.login);
      }
      if (query.person) {
        const either = [];
        if (query.person.logins.length) {
          either.push(`login IN (${query.person.logins.map(() => '?').join(', ')})`);
          params.push(...query.person.logins);
        }
        if (query.person.email !== null) {
          either.push("(login IS NULL AND json_extract(detail, '$.email') = ?)");
          params.push(query.person.email);
        }
        where.push(either.length ? `(${either.join(' OR ')})` : '0');
      }
      if (query.type !== null) {
        where.push('type = ?');
        params.push(query.type);
      }
      if (query.before !== null) {
        where.push('time < ?');
        params.push(query.before.getTime());
      }
      if (query.since !== null) {
        where.push('time >= ?');
        params.push(query.since.getTime());
      }
      return db
        .prepare<unknown[], AuditRow>(
          `SELECT tenant, login, type, time, ip, user_agent, outcome, detail FROM audit_events WHERE ${where.join(' AND ')} ORDER BY time DESC, seq DESC LIMIT ?`,
        )
        .all(...params, query.limit)
        .map(toAudit);
    },

    async upsertUpstream(upstream) {
      const tenant = str('upstream.tenant', upstream.tenant);
      const id = str('upstream.id', upstream.id);
      const fields = [
        str('upstream.name', upstream.name),
        str('upstream.issuer', upstream.issuer),
        str('upstream.clientId', upstream.clientId),
        str('upstream.clientSecret', upstream.clientSecret),
        JSON.stringify(scopeList(upstream.scopes)),
      ] as const;
      upsertUpstreamTx.immediate(tenant, id, fields);
      return toUpstream(u().getUpstream.get(tenant, id)!);
    },
    async getUpstreamByHandle(handle) {
      const row = u().upstreamByHandle.get(str('handle', handle));
      return row ? toUpstream(row) : null;
    },
    async deleteUpstream(tenant, id) {
      return u().deleteUpstream.run(str('tenant', tenant), str('id', id)).changes === 1;
    },
    async getUpstream(tenant, id) {
      const row = u().getUpstream.get(str('tenant', tenant), str('id', id));
      return row ? toUpstream(row) : null;
    },
    async listUpstreams(tenant) {
      return u().listUpstreams.all(str('tenant', tenant)).map(toUpstream);
    },
    async findIdentityByUpstream(issuer, subject) {
      const row = u().identityByUpstream.get(str('issuer', issuer), str('subject', subject));
      return row ? toIdentity(row) : null;
    },
    async linkUpstream(link) {
      const issuer = str('link.issuer', link.issuer);
      const subject = str('link.subject', link.subject);
      const identityId = str('link.identityId', link.identityId);
      // One transaction: the insert, or the link that was there before it.
      return db
        .transaction(() => {
          if (u().linkUpstream.run(issuer, subject, identityId).changes === 1) return { identityId, created: true };
          return { identityId: u().linkedIdentity.get(issuer, subject)!.identity_id, created: false };
        })
        .immediate();
    },
    async listUpstreamLinks(identityId) {
      return u()
        .linksOfIdentity.all(str('identityId', identityId))
        .map((r) => ({ issuer: r.issuer, subject: r.subject, identityId: r.identity_id }));
    },
    async unlinkUpstream(link) {
      return u().unlinkUpstream.run(str('link.issuer', link.issuer), str('link.subject', link.subject), str('link.identityId', link.identityId)).changes === 1;
    },

    async listLoginsForEmailAllTenants(email) {
      return pages()
        .loginsForEmailAllTenants.all(normalizeEmail(str('email', email)))
        .map(toLogin);
    },
    async endLoginSessions(loginId, notBefore) {
      return pages().endSessions.run(validTime('notBefore', notBefore), str('loginId', loginId)).changes === 1;
    },
    async loginSessionsNotBefore(loginId) {
      const row = pages().sessionsNotBefore.get(str('loginId', loginId));
      return row ? new Date(row.not_before) : null;
    },
    async addLoginGrant(loginId, grantId, expiresAt) {
      const login = str('loginId', loginId);
      pages().addGrant.run(login, str('grantId', grantId), validTime('expiresAt', expiresAt));
      pages().dropExpiredGrants.run(login, Date.now());
    },
    async takeLoginGrants(loginId) {
      return takeGrantsTx.immediate(str('loginId', loginId), Date.now());
    },
  };
}

function validTime(name: string, value: unknown): number {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${name} must be a valid Date`);
  return value.getTime();
}
