import { randomUUID } from 'node:crypto';
import { type Db, type Filter, type ObjectId, type UpdateFilter } from 'mongodb';
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
  type SessionPolicy,
  type Tenant,
  type Upstream,
  type UserType,
} from '../port.ts';
import { mongoPasskeys } from './passkeys.ts';
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
import { WRITER_STALE_MS, holding, isDuplicateKey, oneWriterAtATime, type MarkerDoc } from '../../mongo.ts';

interface TenantDoc {
  _id: string;
  name: string;
  /** The one owner of documents written before `owners` (read when `owners` is missing). */
  owner?: string | null;
  owners?: string[];
  userTypes: UserType[];
  stepUpEnrollment?: boolean;
  sessionPolicy?: SessionPolicy;
}

type TenantChange<T> = { result: T; userTypes?: UserType[]; owners?: string[] };

interface IdentityDoc {
  _id: string;
  email: string;
  passwordHash?: string | null;
}
interface LoginDoc {
  _id: string;
  tenant: string;
  email: string;
  userType: string;
  firstName: string;
  lastName: string;
  disabled: boolean;
  factors?: Record<string, FactorState>;
  /** Written by versions before the login's write marker (`updateLoginIf`); no longer read. */
  rev?: number;
}
interface ClientDoc {
  _id: string;
  tenant: string;
  firstParty: boolean;
  metadata: Client['metadata'];
}
interface AuditDoc {
  _id?: ObjectId;
  tenant: string | null;
  login: string | null;
  type: string;
  time: Date;
  ip: string | null;
  userAgent: string | null;
  outcome: AuditOutcome;
  detail?: Record<string, unknown> | null;
}
interface StepDoc {
  _id: string;
  login: string;
  factor: string;
  step: number;
}

/** addLoginGrant sweeps a login's expired grants on about one call in this many. */
const CLEANUP_EVERY = 16;

/** Stores exactly what the SQLite store keeps in its JSON columns (no undefined, no Dates, no class instances). */
function json<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

const AUDIT_DELETE_BATCH = 1000;
function deleteLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new TypeError('limit must be an integer in 1..10000');
  return limit;
}

/** A filter that matches the login only while its stored profile is `expected`'s. */
function asReadFilter(id: string, expected: LoginProfile): Filter<LoginDoc> {
  const was = loginProfile(expected);
  if (typeof expected.disabled !== 'boolean') throw new TypeError('disabled must be a boolean');
  if (was.id !== id) throw new TypeError('the login read is another login');
  return { _id: id, ...was.profile, disabled: expected.disabled };
}

function loginProfile(login: LoginInput) {
  if (login.disabled !== undefined && typeof login.disabled !== 'boolean') throw new TypeError('disabled must be a boolean');
  return {
    id: str('login.id', login.id),
    profile: {
      tenant: str('login.tenant', login.tenant),
      email: normalizeEmail(str('login.email', login.email)),
      userType: str('login.userType', login.userType),
      firstName: str('login.firstName', login.firstName),
      lastName: str('login.lastName', login.lastName),
    },
    disabled: login.disabled,
  };
}

const SEARCH_ORDER: Record<CheckedLoginSearch['sort'], (keyof LoginDoc)[]> = {
  name: ['lastName', 'firstName', '_id'],
  email: ['email', '_id'],
  userType: ['userType', 'lastName', 'firstName', '_id'],
};
/** A word as a literal, case-insensitive pattern: the caller's text is never a regular expression. */
const literal = (word: string) => ({ $regex: word.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'), $options: 'i' });

function searchFilter(search: CheckedLoginSearch): Filter<LoginDoc> {
  const filter: Filter<LoginDoc> = { tenant: search.tenant };
  if (search.userType !== null) filter.userType = search.userType;
  // Older documents may lack `disabled`: a missing one is an active login.
  if (search.state !== null) filter.disabled = search.state === 'disabled' ? true : { $ne: true };
  if (search.words.length) filter.$and = search.words.map((w) => ({ $or: [{ firstName: literal(w) }, { lastName: literal(w) }, { email: literal(w) }] }));
  return filter;
}

// FerretDB 1.24 runs an upsert as find-then-insert, so a racing upsert of the
// same key fails with a duplicate key error instead of updating: retry it.
async function retryDuplicate<T>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (!isDuplicateKey(e) || attempt >= 3) throw e;
    }
  }
}

const toTenant = (d: TenantDoc): Tenant => ({
  id: d._id,
  name: d.name,
  owners: d.owners ? [...d.owners] : d.owner ? [d.owner] : [],
  userTypes: (d.userTypes ?? []).map((u) => ({ id: u.id, name: u.name, secondFactor: u.secondFactor })),
  stepUpEnrollment: d.stepUpEnrollment === true,
  ...(d.sessionPolicy
    ? { sessionPolicy: { lifetimeHours: d.sessionPolicy.lifetimeHours, idleMinutes: d.sessionPolicy.idleMinutes, staySignedIn: d.sessionPolicy.staySignedIn } }
    : {}),
});
// FerretDB 1.24 drops a null set by $setOnInsert, so a missing hash reads as null.
const toIdentity = (d: IdentityDoc): Identity => ({ id: d._id, email: d.email, passwordHash: d.passwordHash ?? null });
const toLogin = (d: LoginDoc): Login => ({
  id: d._id,
  tenant: d.tenant,
  email: d.email,
  userType: d.userType,
  firstName: d.firstName,
  lastName: d.lastName,
  disabled: d.disabled === true,
  factors: d.factors ?? {},
});
const toClient = (d: ClientDoc): Client => ({ clientId: d._id, tenant: d.tenant, firstParty: d.firstParty, metadata: d.metadata });
function toAudit(d: AuditDoc): AuditEvent {
  const event: AuditEvent = {
    tenant: d.tenant ?? null,
    login: d.login ?? null,
    type: d.type,
    time: d.time,
    ip: d.ip ?? null,
    userAgent: d.userAgent ?? null,
    outcome: d.outcome,
  };
  if (d.detail) event.detail = d.detail;
  return event;
}

interface UpstreamDoc {
  /** `[tenant, id]` as JSON. */
  _id: string;
  tenant: string;
  id: string;
  /** Unique (index `handle_1`); set by the start-up migration on documents from before handles. */
  handle: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string[];
}
interface UpstreamLinkDoc {
  /** `[issuer, subject]` as JSON: the unique insert decides which identity a subject links to. */
  _id: string;
  issuer: string;
  subject: string;
  identityId: string;
}

const toUpstream = (d: UpstreamDoc): Upstream => ({
  tenant: d.tenant,
  id: d.id,
  handle: d.handle,
  name: d.name,
  issuer: d.issuer,
  clientId: d.clientId,
  clientSecret: d.clientSecret,
  scopes: [...(d.scopes ?? [])],
});

function scopeList(value: unknown): string[] {
  if (!Array.isArray(value)) throw new TypeError('scopes must be an array');
  return value.map((v) => str('scope', v));
}

interface LoginSessionsDoc {
  /** The login id. */
  _id: string;
  notBefore: Date;
}
interface LoginGrantDoc {
  /** `[login, grant]` as JSON. */
  _id: string;
  login: string;
  grant: string;
  expiresAt: Date;
}

function validDate(name: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${name} must be a valid Date`);
  return new Date(value.getTime());
}

/**
 * The MongoDB account store (MongoDB 6/7 or FerretDB 1.24) on a database of
 * a MongoClient the caller connects and closes; `close()` leaves it open.
 * `log` hears what `init()`'s migrations want the operator to know.
 */
export function createMongoAccountStore(db: Db, options: { log?: StoreLog } = {}): AccountStore {
  const tenants = db.collection<TenantDoc>('tenants');
  const identities = db.collection<IdentityDoc>('identities');
  const logins = db.collection<LoginDoc>('logins');
  const clients = db.collection<ClientDoc>('clients');
  const audit = db.collection<AuditDoc>('audit_events');
  // FerretDB 1.24 applies a conditional update as read, compare, write (no
  // compare-and-swap), so parallel replays of one step can all match. An insert
  // with a unique _id is atomic there too: one marker per accepted step decides.
  const steps = db.collection<StepDoc>('factor_steps');
  const passwordWrites = db.collection<MarkerDoc>('password_writes');
  const loginWrites = db.collection<MarkerDoc>('login_writes');

  // FerretDB runs an update as a read and a write of the whole document, so two writers of one
  // document can undo each other: a sign-in's TOTP step written back over an owner's disable, a
  // rehash of the old password over a change. So every write of a login, and of an identity's
  // password, holds that document's marker (src/storage/mongo.ts). MongoDB needs none of this;
  // it costs a write two more round trips there.
  const writingPassword = oneWriterAtATime(passwordWrites);
  const writingLogin = oneWriterAtATime(loginWrites);
  const setPassword = (id: string, passwordHash: string | null) => writingPassword(id, () => identities.updateOne({ _id: id }, { $set: { passwordHash } }));
  const upstreams = db.collection<UpstreamDoc>('upstreams');
  const upstreamLinks = db.collection<UpstreamLinkDoc>('upstream_links');
  // Kept apart from the login documents: FerretDB writes a whole document back
  // on update, so a concurrent factor-step update could otherwise undo a reset.
  const loginSessions = db.collection<LoginSessionsDoc>('login_sessions');
  const loginGrants = db.collection<LoginGrantDoc>('login_grants');
  const tenantWrites = db.collection<MarkerDoc>('tenant_writes');
  // Every write of a tenant holds its marker, as a login's does (below): FerretDB would otherwise
  // write a settings change back over an owner's removal, and the removed owner would be back.
  const writingTenant = oneWriterAtATime(tenantWrites);

  /**
   * Reads the tenant, lets `change` decide, and writes its new user types or
   * owners while holding the tenant's marker. FerretDB 1.24 runs a conditional
   * update as read, compare, write, so "never the last owner" or "no login has
   * this type" cannot be one guarded update there.
   */
  async function changeTenant<T>(tenantId: string, change: (tenant: Tenant) => TenantChange<T> | Promise<TenantChange<T>>, missing: T): Promise<T> {
    return writingTenant(tenantId, async () => {
      const doc = await tenants.findOne({ _id: tenantId });
      if (!doc) return missing;
      const outcome = await change(toTenant(doc));
      const set: Partial<TenantDoc> = {
        ...(outcome.userTypes ? { userTypes: outcome.userTypes } : {}),
        ...(outcome.owners ? { owners: outcome.owners } : {}),
      };
      if (Object.keys(set).length) await tenants.updateOne({ _id: tenantId }, outcome.owners ? { $set: set, $unset: { owner: '' } } : { $set: set });
      return outcome.result;
    });
  }
  const passkeys = mongoPasskeys(db);

  /**
   * Gives every upstream stored before handles existed its handle, in a
   * stable order (`_id`: tenant, then id; no creation time was stored): the
   * first of an id keeps the id as its handle (its redirect URI is unchanged),
   * a later one of the same id in another tenant gets a generated handle and
   * a warning. Only a document still without one is written, so processes
   * starting together agree; the unique index follows.
   */
  async function addUpstreamHandles() {
    const unhandled = await upstreams
      .find({ handle: { $exists: false } })
      .sort({ _id: 1 })
      .toArray();
    for (const doc of unhandled) {
      for (let attempt = 0; ; attempt++) {
        const handle = handleToTry(doc.id, attempt, (await upstreams.findOne({ handle: doc.id }, { projection: { _id: 1 } })) !== null);
        try {
          const { modifiedCount } = await upstreams.updateOne({ _id: doc._id, handle: { $exists: false } }, { $set: { handle } });
          if (modifiedCount === 1 && handle !== doc.id) warnHandleChanged(options.log, doc.tenant, doc.id, handle);
          break;
        } catch (e) {
          if (!isDuplicateKey(e) || attempt + 1 >= HANDLE_ATTEMPTS) throw e;
        }
      }
    }
    await upstreams.createIndex({ handle: 1 }, { unique: true });
  }

  return {
    ...passkeys.methods,
    async init() {
      await identities.createIndex({ email: 1 }, { unique: true });
      await logins.createIndex({ tenant: 1, email: 1 });
      await clients.createIndex({ tenant: 1 });
      await audit.createIndex({ tenant: 1, time: -1 });
      await audit.createIndex({ time: 1 });
      await audit.createIndex({ tenant: 1, login: 1, time: -1 });
      await steps.createIndex({ login: 1, factor: 1 });
      await upstreams.createIndex({ tenant: 1, name: 1 });
      await addUpstreamHandles();
      await upstreamLinks.createIndex({ identityId: 1 });
      await logins.createIndex({ email: 1 });
      await logins.createIndex({ tenant: 1, lastName: 1, firstName: 1, _id: 1 });
      await loginGrants.createIndex({ login: 1 });
      await passkeys.init();
    },
    async ping() {
      await db.command({ ping: 1 });
    },
    async close() {},
    async isEmpty() {
      return (await tenants.findOne({}, { projection: { _id: 1 } })) === null;
    },

    async upsertTenant(tenant) {
      const id = str('tenant.id', tenant.id);
      const doc = {
        name: str('tenant.name', tenant.name),
        owners: ownerList(tenant.owners),
        userTypes: userTypes(tenant.userTypes),
        ...(tenant.stepUpEnrollment === undefined ? {} : { stepUpEnrollment: flag('tenant.stepUpEnrollment', tenant.stepUpEnrollment) }),
      };
      await writingTenant(id, () => retryDuplicate(() => tenants.updateOne({ _id: id }, { $set: doc, $unset: { owner: '' } }, { upsert: true })));
    },
    async getTenant(id) {
      const doc = await tenants.findOne({ _id: str('id', id) });
      return doc ? toTenant(doc) : null;
    },
    async listTenants() {
      return (await tenants.find({}).sort({ _id: 1 }).toArray()).map(toTenant);
    },
    async setStepUpEnrollment(tenantId, allowed) {
      const id = str('tenantId', tenantId);
      const update = { $set: { stepUpEnrollment: flag('allowed', allowed) } };
      return writingTenant(id, async () => (await tenants.updateOne({ _id: id }, update)).matchedCount === 1);
    },
    async setSessionPolicy(tenantId, policy) {
      const id = str('tenantId', tenantId);
      const update = { $set: { sessionPolicy: sessionPolicy(policy) } };
      return writingTenant(id, async () => (await tenants.updateOne({ _id: id }, update)).matchedCount === 1);
    },
    async setUserTypeFactor(tenantId, userTypeId, factor) {
      const typeId = str('userTypeId', userTypeId);
      const value = secondFactor(factor);
      return changeTenant(
        str('tenantId', tenantId),
        (t) =>
          t.userTypes.some((u) => u.id === typeId) ? { result: true, userTypes: t.userTypes.map((u) => (u.id === typeId ? { ...u, secondFactor: value } : u)) } : { result: false },
        false,
      );
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
        async (t) => {
          if (!t.userTypes.some((u) => u.id === id)) return { result: 'not_found' };
          if (t.userTypes.length === 1) return { result: 'last' };
          if (await logins.findOne({ tenant, userType: id }, { projection: { _id: 1 } })) return { result: 'in_use' };
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
      const email = normalizeEmail(str('email', input.email));
      const hash = input.passwordHash;
      if (hash !== undefined) {
        // An existing identity's hash is written as every password write is, holding its marker.
        const existing = await identities.findOne({ email });
        if (existing) {
          const passwordHash = optStr('passwordHash', hash);
          await setPassword(existing._id, passwordHash);
          return toIdentity({ ...existing, passwordHash });
        }
      }
      const update =
        hash === undefined
          ? { $setOnInsert: { _id: randomUUID(), passwordHash: null } }
          : { $setOnInsert: { _id: randomUUID() }, $set: { passwordHash: optStr('passwordHash', hash) } };
      const doc = await retryDuplicate(() => identities.findOneAndUpdate({ email }, update, { upsert: true, returnDocument: 'after' }));
      return toIdentity(doc!);
    },
    async findIdentityByEmail(email) {
      const doc = await identities.findOne({ email: normalizeEmail(str('email', email)) });
      return doc ? toIdentity(doc) : null;
    },
    async getIdentity(id) {
      const doc = await identities.findOne({ _id: str('id', id) });
      return doc ? toIdentity(doc) : null;
    },
    async setPasswordHash(identityId, passwordHash) {
      await setPassword(str('identityId', identityId), str('passwordHash', passwordHash));
    },

    async replacePasswordHash(identityId, current, next) {
      const id = str('identityId', identityId);
      const filter = { _id: id, passwordHash: str('current', current) };
      const update = { $set: { passwordHash: str('next', next) } };
      // A rehash gives way to any other password write: the next sign-in rehashes.
      const replaced = await holding(passwordWrites, id, { staleMs: WRITER_STALE_MS, waitMs: 0 }, async () => (await identities.updateOne(filter, update)).modifiedCount === 1);
      return replaced === true;
    },

    async setPasswordHashIf(identityId, current, next) {
      const id = str('identityId', identityId);
      // null matches a missing field too: an identity made without a password.
      const filter = { _id: id, passwordHash: current === null ? null : str('current', current) };
      // Compared and written under the password's marker, which FerretDB's own conditional update is not.
      return writingPassword(id, async () => (await identities.updateOne(filter, { $set: { passwordHash: str('next', next) } })).modifiedCount === 1);
    },

    async upsertLogin(login) {
      const { id, profile, disabled } = loginProfile(login);
      const update = disabled === undefined ? { $set: profile, $setOnInsert: { disabled: false, factors: {} } } : { $set: { ...profile, disabled }, $setOnInsert: { factors: {} } };
      await writingLogin(id, () => retryDuplicate(() => logins.updateOne({ _id: id }, update, { upsert: true })));
    },
    async createLogin(login) {
      const { id, profile, disabled } = loginProfile(login);
      // An insert of a unique _id is atomic on FerretDB 1.24 too: of parallel inserts, one succeeds.
      try {
        await logins.insertOne({ _id: id, ...profile, disabled: disabled ?? false, factors: {} });
        return true;
      } catch (e) {
        if (isDuplicateKey(e)) return false;
        throw e;
      }
    },
    async deleteLogin(loginId, expected) {
      const id = str('loginId', loginId);
      const filter = expected ? asReadFilter(id, expected) : { _id: id };
      // As read: compared and deleted under the login's marker, which FerretDB's own conditional delete is not.
      const result = expected ? await writingLogin(id, () => logins.deleteOne(filter)) : await logins.deleteOne(filter);
      if (expected && result.deletedCount !== 1) return false;
      await steps.deleteMany({ login: id });
      await loginWrites.deleteOne({ _id: id });
      await loginGrants.deleteMany({ login: id });
      await passkeys.dropLogin(id);
      return result.deletedCount === 1;
    },
    async deleteIdentity(identityId) {
      const id = str('identityId', identityId);
      // Links first: a failure in between leaves an identity without links, never links to no identity.
      await upstreamLinks.deleteMany({ identityId: id });
      const deleted = (await identities.deleteOne({ _id: id })).deletedCount === 1;
      await passwordWrites.deleteOne({ _id: id });
      return deleted;
    },
    async updateLoginIf(expected, next) {
      const was = loginProfile(expected);
      const now = loginProfile({ ...next, id: was.id, tenant: was.profile.tenant });
      const filter = asReadFilter(was.id, expected);
      const { email, userType, firstName, lastName } = now.profile;
      const set = { email, userType, firstName, lastName, ...(now.disabled === undefined ? {} : { disabled: now.disabled }) };
      // Atomic on MongoDB; on FerretDB the login's marker keeps every other writer out between its read and write.
      return writingLogin(was.id, async () => (await logins.updateOne(filter, { $set: set })).matchedCount === 1);
    },
    async setLoginDisabled(loginId, disabled) {
      if (typeof disabled !== 'boolean') throw new TypeError('disabled must be a boolean');
      const id = str('loginId', loginId);
      return writingLogin(id, async () => (await logins.updateOne({ _id: id }, { $set: { disabled } })).matchedCount === 1);
    },
    async getLogin(id) {
      const doc = await logins.findOne({ _id: str('id', id) });
      return doc ? toLogin(doc) : null;
    },
    async listLoginsForEmail(tenant, email) {
      const filter = { tenant: str('tenant', tenant), email: normalizeEmail(str('email', email)) };
      return (await logins.find(filter).sort({ _id: 1 }).toArray()).map(toLogin);
    },
    async listLoginsForEmails(tenant, emails) {
      const list = emailList('emails', emails);
      const t = str('tenant', tenant);
      if (!list.length) return [];
      return (
        await logins
          .find({ tenant: t, email: { $in: list } })
          .sort({ email: 1, _id: 1 })
          .toArray()
      ).map(toLogin);
    },
    async listLogins(tenant) {
      const docs = await logins
        .find({ tenant: str('tenant', tenant) })
        .sort({ lastName: 1, firstName: 1, _id: 1 })
        .toArray();
      return docs.map(toLogin);
    },
    async searchLogins(input) {
      const search = loginSearch(input);
      const filter = searchFilter(search);
      const direction = search.descending ? -1 : 1;
      const sort = Object.fromEntries(SEARCH_ORDER[search.sort].map((k) => [k, direction] as const));
      const [docs, total] = await Promise.all([logins.find(filter).sort(sort).skip(search.offset).limit(search.limit).toArray(), logins.countDocuments(filter)]);
      return { logins: docs.map(toLogin), total };
    },

    async setFactorState(loginId, factor, state) {
      const id = str('loginId', loginId);
      const path = `factors.${factorId(factor)}`;
      const update: UpdateFilter<LoginDoc> = state === null ? { $unset: { [path]: '' as const } } : { $set: { [path]: json(state) } };
      return writingLogin(id, async () => {
        if ((await logins.updateOne({ _id: id }, update)).matchedCount !== 1) return false;
        // A new state starts a new step sequence (e.g. TOTP re-enrolment).
        await steps.deleteMany({ login: id, factor });
        return true;
      });
    },
    async compareAndSetFactorState(loginId, factorName, expectedState, nextState) {
      const id = str('loginId', loginId);
      const factor = factorId(factorName);
      const expected = factorStateValue('expected', expectedState);
      const next = factorStateValue('next', nextState);
      const path = `factors.${factor}`;
      // Writers hold the login's marker from the read to the write: of parallel calls from one
      // state, the first writes and the others read its state and refuse.
      return writingLogin(id, async () => {
        const doc = await logins.findOne({ _id: id }, { projection: { [path]: 1 } });
        const stored = (doc?.factors as Record<string, FactorState> | undefined)?.[factor];
        if (!doc || canonicalJson(stored ?? null) !== canonicalJson(expected)) return false;
        // The filter holds the value as read: on MongoDB a plain write in between makes it miss.
        const filter: Filter<LoginDoc> = { _id: id, [path]: stored === undefined ? { $exists: false } : stored };
        const update: UpdateFilter<LoginDoc> = next === null ? { $unset: { [path]: '' as const } } : { $set: { [path]: json(next) } };
        if ((await logins.updateOne(filter, update)).matchedCount !== 1) return false;
        await steps.deleteMany({ login: id, factor });
        return true;
      });
    },
    async replaceFactorHash(loginId, factor, current, next) {
      const id = str('loginId', loginId);
      const path = `factors.${factorId(factor)}.hash`;
      const filter = { _id: id, [path]: str('current', current) };
      const update = { $set: { [path]: str('next', next) } };
      // A rehash gives way to any other write of the login: the next sign-in rehashes.
      const replaced = await holding(loginWrites, id, { staleMs: WRITER_STALE_MS, waitMs: 0 }, async () => (await logins.updateOne(filter, update)).modifiedCount === 1);
      return replaced === true;
    },
    async advanceFactorStep(loginId, factor, step) {
      const id = str('loginId', loginId);
      const path = `factors.${factorId(factor)}`;
      if (typeof step !== 'number' || !Number.isFinite(step)) throw new TypeError('step must be a finite number');
      const filter: Filter<LoginDoc> = {
        _id: id,
        [path]: { $exists: true },
        $or: [{ [`${path}.step`]: { $lt: step } }, { [`${path}.step`]: { $exists: false } }],
      };
      const result = await writingLogin(id, () => logins.updateOne(filter, { $set: { [`${path}.step`]: step } }));
      if (result.matchedCount !== 1) return false;
      try {
        await steps.insertOne({ _id: `${factor}:${step}:${id}`, login: id, factor, step });
      } catch (e) {
        if (isDuplicateKey(e)) return false;
        throw e;
      }
      await steps.deleteMany({ login: id, factor, step: { $lt: step } });
      return true;
    },

    async upsertClient(client) {
      const clientId = str('clientId', client.clientId);
      if (typeof client.firstParty !== 'boolean') throw new TypeError('firstParty must be a boolean');
      const doc = { tenant: str('tenant', client.tenant), firstParty: client.firstParty, metadata: json(client.metadata) };
      await retryDuplicate(() => clients.replaceOne({ _id: clientId }, doc, { upsert: true }));
    },
    async deleteClient(clientId) {
      return (await clients.deleteOne({ _id: str('clientId', clientId) })).deletedCount === 1;
    },
    async getClient(clientId) {
      const doc = await clients.findOne({ _id: str('clientId', clientId) });
      return doc ? toClient(doc) : null;
    },
    async listClients(tenant) {
      return (
        await clients
          .find({ tenant: str('tenant', tenant) })
          .sort({ _id: 1 })
          .toArray()
      ).map(toClient);
    },

    async appendAudit(event) {
      if (!(event.time instanceof Date) || Number.isNaN(event.time.getTime())) throw new TypeError('time must be a valid Date');
      const doc: AuditDoc = {
        tenant: optStr('tenant', event.tenant),
        login: optStr('login', event.login),
        type: str('type', event.type),
        time: new Date(event.time.getTime()),
        ip: optStr('ip', event.ip),
        userAgent: optStr('userAgent', event.userAgent),
        outcome: str('outcome', event.outcome) as AuditOutcome,
      };
      if (event.detail !== undefined) doc.detail = json(event.detail);
      await audit.insertOne(doc);
    },
    async deleteAuditBefore(before, limit = AUDIT_DELETE_BATCH) {
      if (!(before instanceof Date) || Number.isNaN(before.getTime())) throw new TypeError('before must be a valid Date');
      // By _id in batches: deleteMany has no limit, and one huge delete would hold FerretDB's backend for long.
      const old = await audit
        .find({ time: { $lt: before } }, { projection: { _id: 1 } })
        .sort({ time: 1 })
        .limit(deleteLimit(limit))
        .toArray();
      if (!old.length) return 0;
      const result = await audit.deleteMany({ _id: { $in: old.map((d) => d._id) } });
      return result.deletedCount;
    },
    async listAudit(input) {
      const query = auditQuery(input);
      const filter: Filter<AuditDoc> = { tenant: query.tenant };
      const and: Filter<AuditDoc>[] = [];
      if (query.login !== null) filter.login = query.login;
      if (query.person) {
        const either: Filter<AuditDoc>[] = [];
        if (query.person.logins.length) either.push({ login: { $in: query.person.logins } });
        if (query.person.email !== null) either.push({ login: null, 'detail.email': query.person.email });
        // Nobody: a condition no event meets.
        and.push(either.length ? { $or: either } : { login: { $in: [] } });
      }
      if (query.type !== null) filter.type = query.type;
      if (query.before !== null || query.since !== null) {
        filter.time = { ...(query.before !== null ? { $lt: query.before } : {}), ...(query.since !== null ? { $gte: query.since } : {}) };
      }
      if (and.length) filter.$and = and;
      const docs = await audit.find(filter).sort({ time: -1, _id: -1 }).limit(query.limit).toArray();
      return docs.map(toAudit);
    },

    async upsertUpstream(upstream) {
      const tenant = str('upstream.tenant', upstream.tenant);
      const id = str('upstream.id', upstream.id);
      const _id = JSON.stringify([tenant, id]);
      const fields = {
        tenant,
        id,
        name: str('upstream.name', upstream.name),
        issuer: str('upstream.issuer', upstream.issuer),
        clientId: str('upstream.clientId', upstream.clientId),
        clientSecret: str('upstream.clientSecret', upstream.clientSecret),
        scopes: scopeList(upstream.scopes),
      };
      // A replaced upstream keeps its handle. A new one tries its id, then generated handles: the unique
      // index decides between parallel creates (a duplicate `_id` is the same upstream made meanwhile: replaced).
      for (let attempt = 0; ; attempt++) {
        const replaced = await upstreams.findOneAndUpdate({ _id }, { $set: fields }, { returnDocument: 'after' });
        if (replaced) return toUpstream(replaced);
        const handle = handleToTry(id, attempt, (await upstreams.findOne({ handle: id }, { projection: { _id: 1 } })) !== null);
        const doc: UpstreamDoc = { _id, ...fields, handle };
        try {
          await upstreams.insertOne(doc);
          return toUpstream(doc);
        } catch (e) {
          if (!isDuplicateKey(e) || attempt + 1 >= HANDLE_ATTEMPTS) throw e;
        }
      }
    },
    async getUpstreamByHandle(handle) {
      const doc = await upstreams.findOne({ handle: str('handle', handle) });
      return doc ? toUpstream(doc) : null;
    },
    async deleteUpstream(tenant, id) {
      return (await upstreams.deleteOne({ _id: JSON.stringify([str('tenant', tenant), str('id', id)]) })).deletedCount === 1;
    },
    async getUpstream(tenant, id) {
      const doc = await upstreams.findOne({ _id: JSON.stringify([str('tenant', tenant), str('id', id)]) });
      return doc ? toUpstream(doc) : null;
    },
    async listUpstreams(tenant) {
      return (
        await upstreams
          .find({ tenant: str('tenant', tenant) })
          .sort({ name: 1, id: 1 })
          .toArray()
      ).map(toUpstream);
    },
    async findIdentityByUpstream(issuer, subject) {
      const link = await upstreamLinks.findOne({ _id: JSON.stringify([str('issuer', issuer), str('subject', subject)]) });
      if (!link) return null;
      const doc = await identities.findOne({ _id: link.identityId });
      return doc ? toIdentity(doc) : null;
    },
    async linkUpstream(link) {
      const issuer = str('link.issuer', link.issuer);
      const subject = str('link.subject', link.subject);
      const identityId = str('link.identityId', link.identityId);
      const _id = JSON.stringify([issuer, subject]);
      // The unique insert decides; a link removed between a lost insert and the read is tried again.
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await upstreamLinks.insertOne({ _id, issuer, subject, identityId });
          return { identityId, created: true };
        } catch (e) {
          if (!isDuplicateKey(e)) throw e;
        }
        const existing = await upstreamLinks.findOne({ _id });
        if (existing) return { identityId: existing.identityId, created: false };
      }
      throw new Error('linkUpstream: the link kept vanishing');
    },
    async listUpstreamLinks(identityId) {
      const docs = await upstreamLinks
        .find({ identityId: str('identityId', identityId) })
        .sort({ issuer: 1, subject: 1 })
        .toArray();
      return docs.map((d) => ({ issuer: d.issuer, subject: d.subject, identityId: d.identityId }));
    },
    async unlinkUpstream(link) {
      const issuer = str('link.issuer', link.issuer);
      const subject = str('link.subject', link.subject);
      const identityId = str('link.identityId', link.identityId);
      return (await upstreamLinks.deleteOne({ _id: JSON.stringify([issuer, subject]), identityId })).deletedCount === 1;
    },

    async listLoginsForEmailAllTenants(email) {
      const docs = await logins
        .find({ email: normalizeEmail(str('email', email)) })
        .sort({ tenant: 1, _id: 1 })
        .toArray();
      return docs.map(toLogin);
    },
    async endLoginSessions(loginId, notBefore) {
      const id = str('loginId', loginId);
      const time = validDate('notBefore', notBefore);
      if (!(await logins.findOne({ _id: id }, { projection: { _id: 1 } }))) return false;
      await retryDuplicate(() => loginSessions.updateOne({ _id: id }, { $max: { notBefore: time } }, { upsert: true }));
      return true;
    },
    async loginSessionsNotBefore(loginId) {
      const doc = await loginSessions.findOne({ _id: str('loginId', loginId) });
      return doc ? new Date(doc.notBefore.getTime()) : null;
    },
    async addLoginGrant(loginId, grantId, expiresAt) {
      const login = str('loginId', loginId);
      const grant = str('grantId', grantId);
      const time = validDate('expiresAt', expiresAt);
      await retryDuplicate(() => loginGrants.updateOne({ _id: JSON.stringify([login, grant]) }, { $set: { login, grant }, $max: { expiresAt: time } }, { upsert: true }));
      // Every sign-in adds a grant; sweeping the login's expired ones on one add in
      // CLEANUP_EVERY keeps them bounded without a second round trip per sign-in
      // (takeLoginGrants ignores expired ones anyway).
      if (Math.random() < 1 / CLEANUP_EVERY) await loginGrants.deleteMany({ login, expiresAt: { $lte: new Date() } });
    },
    async takeLoginGrants(loginId) {
      const login = str('loginId', loginId);
      const docs = await loginGrants.find({ login }).sort({ grant: 1 }).toArray();
      if (docs.length) await loginGrants.deleteMany({ _id: { $in: docs.map((d) => d._id) } });
      const now = Date.now();
      return docs.filter((d) => d.expiresAt.getTime() > now).map((d) => d.grant);
    },
  };
}
