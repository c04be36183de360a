/**
 * The account store port: tenants, identities, logins, clients and the audit log.
 *
 * Two implementations stand beside each other: `sqlite/` (embedded, the default)
 * and `mongo/` (production). Both pass `test/storage/accounts.contract.test.ts`.
 * Nothing outside `src/storage/` knows which one it talks to.
 *
 * Rules every implementation keeps:
 * - Emails are stored and matched in lower case (callers may pass any case).
 * - Upserts are idempotent and never touch a login's factor state.
 * - Values returned are plain objects, detached from the store (mutating them
 *   changes nothing stored).
 * - No multi-document transactions (FerretDB 1.24 has none): every atomic
 *   change is a single-row / single-document conditional update.
 */

/**
 * A factor's id (`src/factors/registry.ts`), stored as a string: the store
 * checks only its shape; which ids exist is the registry's to say, at the
 * edges (the import, the Security settings form).
 */
export type SecondFactor = string;

export interface UserType {
  id: string;
  name: string;
  secondFactor: SecondFactor;
}

export interface Tenant {
  /** Slug, e.g. `acme`. */
  id: string;
  name: string;
  /**
   * The login ids of the tenant's owners (the first is the import's `owner`),
   * in the order they became owners; empty when none is set. Change them with
   * `addOwner` / `removeOwner`, which never leave a tenant without one.
   */
  owners: string[];
  userTypes: UserType[];
  /**
   * Whether a person may set up a stronger factor on the spot when an app asks
   * for a higher level than their user type's factor reaches and they have
   * enrolled none that does (docs/relying-parties.md). Otherwise the app gets
   * `unmet_authentication_requirements`. Off unless set; `upsertTenant`
   * without it keeps the stored value.
   */
  stepUpEnrollment?: boolean;
  /**
   * How long the tenant's sessions last (docs/relying-parties.md#session-lifetime);
   * absent: Latchkey's defaults. Set by `setSessionPolicy`; `upsertTenant` keeps it.
   */
  sessionPolicy?: SessionPolicy;
}

/** How long a tenant's sessions last, enforced by the server (`src/sessions`). */
export interface SessionPolicy {
  /** A session ends this many hours after its sign-in, however active. */
  lifetimeHours: number;
  /** A session unused this many minutes ends; 0: never. */
  idleMinutes: number;
  /** Whether a sign-in outlives closing the browser; off for shared workstations. */
  staySignedIn: boolean;
}

/** One per email address. */
export interface Identity {
  id: string;
  /** Lower-cased. */
  email: string;
  /** argon2id PHC string, or null for an identity that signs in upstream only. */
  passwordHash: string | null;
}

/**
 * Opaque, JSON-serialisable state a second factor keeps for one login
 * (e.g. `{ hash, setAt }` for a PIN, `{ secret, enrolledAt }` for TOTP).
 * The store never interprets it, except for `step` (see `advanceFactorStep`);
 * each factor declares its shape (`FactorInfo.state`).
 */
export type FactorState = Record<string, unknown> & { step?: number };

export interface Login {
  /** The OIDC subject. Unique across all tenants. */
  id: string;
  tenant: string;
  /** Lower-cased; joins the login to its identity. */
  email: string;
  userType: string;
  firstName: string;
  lastName: string;
  disabled: boolean;
  /** Per factor id (`pin`, `totp`, …): that factor's state for this login. */
  factors: Record<string, FactorState>;
}

/** A login without its factor state: what an administrator sees and changes (and what its `ETag` is a digest of). */
export type LoginProfile = Omit<Login, 'factors'>;

/** What `updateLoginIf` changes: the profile, and `disabled` when given. */
export type LoginProfileChange = Pick<Login, 'email' | 'userType' | 'firstName' | 'lastName'> & { disabled?: boolean };

/** What an import or an admin writes; factor state is never part of it. */
export type LoginInput = Omit<Login, 'factors' | 'disabled'> & { disabled?: boolean };

export interface Client {
  clientId: string;
  tenant: string;
  /** Skip the consent screen. */
  firstParty: boolean;
  /** oidc-provider client metadata (redirect_uris, client_secret, …), client_id included. */
  metadata: Record<string, unknown> & { client_id: string };
}

/**
 * An upstream OpenID provider of a tenant (docs/upstream.md): Latchkey
 * is its relying party, with the redirect URI `{ISSUER}/upstream/{handle}/callback`.
 */
export interface Upstream {
  tenant: string;
  /** Slug, unique within the tenant (two tenants may both have a `google`). */
  id: string;
  /**
   * The upstream's part of its redirect URI, unique across every tenant: an
   * answer sent to `{ISSUER}/upstream/{handle}/callback` belongs to this
   * upstream and no other (the defence against a mix-up between tenants'
   * upstreams of the same id). The store gives it when the upstream is
   * created: the id itself while no other upstream holds that handle, else
   * `{id}-{8 random base32 characters}`. It never changes afterwards (edits
   * and re-imports keep it); it is freed when the upstream is deleted.
   */
  handle: string;
  /** Shown on the login page: "Sign in with {name}". */
  name: string;
  /** The upstream's issuer identifier (discovery at `{issuer}/.well-known/openid-configuration`). */
  issuer: string;
  clientId: string;
  /** The client secret sealed by `src/crypto/secretbox.ts` (see `src/upstream/secret.ts`); never plain text. */
  clientSecret: string;
  /** Scopes asked for besides `openid` (default `email`). */
  scopes: string[];
}

/** What `upsertUpstream` writes: everything but the handle, which is the store's (a `handle` passed along is ignored). */
export type UpstreamWrite = Omit<Upstream, 'handle'>;

/** An upstream account linked to an identity: one identity per (issuer, subject). */
export interface UpstreamLink {
  /** The `iss` of the upstream's ID tokens. */
  issuer: string;
  /** The upstream's `sub`. */
  subject: string;
  identityId: string;
}

export type AuditOutcome = 'success' | 'failure';

export interface AuditEvent {
  tenant: string | null;
  login: string | null;
  /** Dotted event type, e.g. `signin.password`, `factor.pin.set`. */
  type: string;
  time: Date;
  ip: string | null;
  userAgent: string | null;
  outcome: AuditOutcome;
  /** Small, non-secret details (never a password, PIN, code or secret). */
  detail?: Record<string, unknown>;
}

export interface AuditQuery {
  tenant: string;
  login?: string;
  /**
   * One person's events: those of any of `logins` (at most `AUDIT_PERSON_LOGINS`),
   * and those without a login whose `detail.email` is `email` (a failed
   * sign-in of a known email). With `login` too, both must hold.
   */
  person?: { logins: string[]; email?: string };
  type?: string;
  /** Only events strictly older than this time (for paging, and the end of a date range). */
  before?: Date;
  /** Only events at or after this time (the start of a date range). */
  since?: Date;
  /** Default 50, at most 500. */
  limit?: number;
}

/** The most logins one `AuditQuery.person` may name. */
export const AUDIT_PERSON_LOGINS = 100;

/** How `searchLogins` orders: by name (last, first), by email, or by user type (then name); ties by id. */
export const LOGIN_SORTS = ['name', 'email', 'userType'] as const;
export type LoginSort = (typeof LOGIN_SORTS)[number];
/** A login's state as the owner filters by it. */
export const LOGIN_STATES = ['active', 'disabled'] as const;
export type LoginState = (typeof LOGIN_STATES)[number];
/** The most logins one `searchLogins` call returns. */
export const LOGIN_PAGE_MAX = 200;

export interface LoginSearch {
  tenant: string;
  /**
   * Words that must each occur (case-insensitively, as a plain substring, no
   * pattern) in the first name, last name or email. Empty or absent: every login.
   */
  text?: string;
  userType?: string;
  state?: LoginState;
  /** Default `name`. */
  sort?: LoginSort;
  /** Default false (ascending). */
  descending?: boolean;
  /** How many matching logins to skip (default 0). */
  offset?: number;
  /** Default 50, at most `LOGIN_PAGE_MAX`. */
  limit?: number;
}

export interface LoginPage {
  logins: Login[];
  /** How many logins match, over all pages. */
  total: number;
}

/** RFC 8176's two: a key bound to one device (`hwk`), or one synced between devices (`swk`). */
export const PASSKEY_DEVICE_TYPES = ['singleDevice', 'multiDevice'] as const;
export type PasskeyDeviceType = (typeof PASSKEY_DEVICE_TYPES)[number];

/**
 * A WebAuthn credential (a passkey or a security key) of one login
 * (docs/passkeys.md). Public material only: the private key never leaves the
 * authenticator, and nothing here lets anyone sign in.
 */
export interface Passkey {
  /** The credential id, base64url. Unique across all tenants: it finds the login. */
  id: string;
  loginId: string;
  tenant: string;
  /**
   * The WebAuthn user handle given at registration, base64url: random, one per
   * login (no name, no email), and what a discoverable credential sends back.
   */
  userHandle: string;
  /** The person's name for it ("Work laptop"). */
  name: string;
  /** The COSE public key. */
  publicKey: Uint8Array;
  /** The authenticator's sign count at its last use (0 for authenticators that keep none). */
  counter: number;
  /** Transport hints (`internal`, `usb`, `hybrid`, …) for the browser. */
  transports: string[];
  deviceType: PasskeyDeviceType;
  /** Whether the authenticator said the key is backed up (synced), as of its last use. */
  backedUp: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** What a successful assertion changes (`recordPasskeyUse`). */
export interface PasskeyUse {
  /** The sign count the assertion was verified against (the stored one). */
  counter: number;
  /** The sign count the authenticator reported. */
  newCounter: number;
  backedUp: boolean;
  usedAt: Date;
}

/** The passkeys part of the account store. */
export interface PasskeyStore {
  /**
   * Stores a new credential. False (and nothing changed) when a credential of
   * that id exists, for any login: an authenticator cannot be registered twice.
   */
  addPasskey(passkey: Passkey): Promise<boolean>;
  /** The credential of that id, whatever its login (passwordless sign-in starts here), or null. */
  getPasskey(credentialId: string): Promise<Passkey | null>;
  /** A login's credentials, oldest first (then by id). */
  listPasskeys(loginId: string): Promise<Passkey[]>;
  /** Renames one of the login's credentials. False when the login has no credential of that id. */
  renamePasskey(loginId: string, credentialId: string, name: string): Promise<boolean>;
  /** Removes one of the login's credentials. True when this call removed it: of parallel calls, one is true. */
  deletePasskey(loginId: string, credentialId: string): Promise<boolean>;
  /** Removes all of a login's credentials (an owner's reset) and returns how many. */
  deletePasskeys(loginId: string): Promise<number>;
  /**
   * Records an assertion: the new sign count, the backed-up flag and the time,
   * only while the stored count is still `use.counter` and the new one is
   * higher (or both are 0, for authenticators that keep no count). True when
   * recorded. Of parallel calls verified against one count, exactly one is
   * true: a cloned key racing the original cannot both pass.
   */
  recordPasskeyUse(credentialId: string, use: PasskeyUse): Promise<boolean>;
}

export interface AccountStore extends PasskeyStore {
  /** Creates tables / indexes. Idempotent; called once at start. */
  init(): Promise<void>;
  /** Resolves when the store answers; rejects otherwise (used by `/readyz`). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** True when no tenant exists (first run: the demo tenant is created). */
  isEmpty(): Promise<boolean>;

  /** Creates or replaces the tenant (name, owners, user types; `stepUpEnrollment` when given). */
  upsertTenant(tenant: Tenant): Promise<void>;
  getTenant(id: string): Promise<Tenant | null>;
  listTenants(): Promise<Tenant[]>;
  /** Sets one user type's factor. False when the tenant or the type does not exist. */
  setUserTypeFactor(tenantId: string, userTypeId: string, factor: SecondFactor): Promise<boolean>;
  /** Sets `Tenant.stepUpEnrollment`. False when the tenant does not exist. */
  setStepUpEnrollment(tenantId: string, allowed: boolean): Promise<boolean>;
  /** Sets `Tenant.sessionPolicy`. False when the tenant does not exist. */
  setSessionPolicy(tenantId: string, policy: SessionPolicy): Promise<boolean>;
  /**
   * Adds a user type at the end of the tenant's list. False when the tenant
   * does not exist, already has a type of that id or name (case aside), or
   * has `USER_TYPES_MAX` types: of parallel calls for one id or one name, one
   * is true, and parallel calls never pass the bound.
   */
  addUserType(tenantId: string, type: UserType): Promise<boolean>;
  /** Renames one user type. False when the tenant or the type does not exist, or another type has the name (case aside). */
  renameUserType(tenantId: string, userTypeId: string, name: string): Promise<boolean>;
  /**
   * Deletes a user type while no login of the tenant has it and it is not
   * the tenant's last. `in_use`: a login has it; `last`: the tenant's only
   * type; `not_found`: no such tenant or type. Nothing changes unless `deleted`.
   */
  deleteUserType(tenantId: string, userTypeId: string): Promise<'deleted' | 'in_use' | 'last' | 'not_found'>;
  /**
   * Makes a login an owner of the tenant (the caller checks that it is a login
   * of the tenant). `added`, `already` (an owner before), or `not_found` (no tenant).
   */
  addOwner(tenantId: string, loginId: string): Promise<'added' | 'already' | 'not_found'>;
  /**
   * Takes a login off the tenant's owners, never the last one: of two owners
   * removing each other at once, one stays. `removed`, `last` (nothing
   * changed), or `not_owner` (no tenant, or not an owner).
   */
  removeOwner(tenantId: string, loginId: string): Promise<'removed' | 'last' | 'not_owner'>;

  /**
   * Creates the identity for `email`, or updates it. `passwordHash: undefined`
   * keeps the stored hash. Returns the stored identity (its id is stable).
   */
  upsertIdentity(input: { email: string; passwordHash?: string | null }): Promise<Identity>;
  findIdentityByEmail(email: string): Promise<Identity | null>;
  getIdentity(id: string): Promise<Identity | null>;
  setPasswordHash(identityId: string, passwordHash: string): Promise<void>;
  /**
   * Replaces the password hash only while it is still `current` (a rehash of
   * the same password to new parameters must never undo a password change
   * that happened meanwhile). True when replaced.
   */
  replacePasswordHash(identityId: string, current: string, next: string): Promise<boolean>;
  /**
   * Sets a new password hash only while the hash is still `current` (null: no
   * password yet), for a new password chosen against the one read (a reset or
   * invitation link, the account page): a change that landed meanwhile is not
   * written over. Unlike a rehash it waits for a writer before it. True when set.
   */
  setPasswordHashIf(identityId: string, current: string | null, next: string): Promise<boolean>;

  /** Creates or updates a login's profile; keeps its factor state. */
  upsertLogin(login: LoginInput): Promise<void>;
  /**
   * Creates the login only when no login has its id (in any tenant), with no
   * factor state. True when this call created it: of parallel calls for one
   * id, exactly one is true, and an existing login is never changed.
   */
  createLogin(login: LoginInput): Promise<boolean>;
  /**
   * Deletes a login and what the store keeps for it alone (factor steps,
   * remembered grants, passkeys); its "sessions not before" time stays, so a login made
   * again under the same id never revives an old session. True when this call
   * deleted it: of parallel calls, one is true. With `expected`, only while
   * its stored profile (tenant, email, user type, names, disabled) is still
   * `expected`'s, in one atomic step as `updateLoginIf` compares (the API's
   * and SCIM's `If-Match` on a delete): false, and nothing deleted, when it
   * changed meanwhile.
   */
  deleteLogin(loginId: string, expected?: LoginProfile): Promise<boolean>;
  /**
   * Deletes an identity and its upstream links (when its last login is gone).
   * True when this call deleted it.
   */
  deleteIdentity(identityId: string): Promise<boolean>;
  /**
   * Replaces the login's email, user type and names (and, when `next` has
   * it, `disabled`) with `next`'s only while its stored profile (tenant,
   * email, user type, names, disabled) is still `expected`'s: a single
   * conditional update, so of two changes made from one read, one wins and
   * the other is told (optimistic concurrency, the API's and SCIM's
   * `If-Match`). Factor state is kept. False when the login changed
   * meanwhile or does not exist.
   */
  updateLoginIf(expected: LoginProfile, next: LoginProfileChange): Promise<boolean>;
  /** Disables or enables one login, leaving the rest of it alone. False when the login does not exist. */
  setLoginDisabled(loginId: string, disabled: boolean): Promise<boolean>;
  getLogin(id: string): Promise<Login | null>;
  /** The logins of one email in one tenant, ordered by id. */
  listLoginsForEmail(tenant: string, email: string): Promise<Login[]>;
  /**
   * The logins of any of `emails` (at most `LOGIN_PAGE_MAX`) in one tenant,
   * ordered by email, then id: one query for what a page of logins needs to
   * know about their emails' other logins, instead of one per email.
   */
  listLoginsForEmails(tenant: string, emails: string[]): Promise<Login[]>;
  /** All logins of a tenant, ordered by last name, first name, id. */
  listLogins(tenant: string): Promise<Login[]>;
  /**
   * One page of a tenant's logins matching `search`, and how many match in
   * all: the store filters, sorts and pages, so a tenant of any size costs
   * one page. Strings are compared by code unit (as `listLogins` sorts).
   * Bad values (a negative offset, a limit out of range, an unknown sort or
   * state, a non-string) are refused with a TypeError.
   */
  searchLogins(search: LoginSearch): Promise<LoginPage>;

  /** Sets (or with `null` removes) one factor's state for a login. False when the login does not exist. */
  setFactorState(loginId: string, factorId: string, state: FactorState | null): Promise<boolean>;
  /**
   * Atomically records `step` as the last used step of a factor, only when it
   * is greater than the one stored (or none is stored). True when it was
   * recorded; false for a replay (or no such login/factor). Many parallel calls
   * with the same step: exactly one returns true.
   */
  advanceFactorStep(loginId: string, factorId: string, step: number): Promise<boolean>;
  /**
   * Compare-and-set of one factor's state: writes `next` (`null` removes it)
   * only while the stored state equals `expected` (`null`: none stored), as
   * JSON values — pass the state as it was read. True when written. Of many
   * parallel calls from one `expected`, over any connections and processes,
   * exactly one returns true. Like `setFactorState`, a write starts a new
   * step sequence. False for an unknown login.
   */
  compareAndSetFactorState(loginId: string, factorId: string, expected: FactorState | null, next: FactorState | null): Promise<boolean>;
  /**
   * Replaces a factor state's `hash` (a PIN's) only while it is still
   * `current`, keeping the rest of the state. True when replaced.
   */
  replaceFactorHash(loginId: string, factorId: string, current: string, next: string): Promise<boolean>;

  upsertClient(client: Client): Promise<void>;
  /** Deletes a client. True when this call deleted it. */
  deleteClient(clientId: string): Promise<boolean>;
  getClient(clientId: string): Promise<Client | null>;
  listClients(tenant: string): Promise<Client[]>;

  appendAudit(event: AuditEvent): Promise<void>;
  /** Newest first. */
  listAudit(query: AuditQuery): Promise<AuditEvent[]>;
  /**
   * Deletes up to `limit` (default 1,000) events older than `before`, oldest
   * first, and returns how many it deleted (the retention sweep calls it until
   * fewer come back). A plain delete by time on an index on time: no TTL index.
   */
  deleteAuditBefore(before: Date, limit?: number): Promise<number>;

  /**
   * Creates or replaces a tenant's upstream provider (by tenant and id) and
   * returns it as stored. A new one gets its handle (see `Upstream.handle`):
   * its id when no upstream of any tenant holds that handle, else a generated
   * one; the store's unique index decides between parallel creates, so two
   * tenants creating the same id at once get different handles. A replaced one
   * keeps its handle.
   */
  upsertUpstream(upstream: UpstreamWrite): Promise<Upstream>;
  getUpstream(tenant: string, id: string): Promise<Upstream | null>;
  /** The upstream whose redirect URI carries `handle` (of whichever tenant), or null. */
  getUpstreamByHandle(handle: string): Promise<Upstream | null>;
  /** Deletes a tenant's upstream provider (its links to identities stay: they are keyed by issuer). True when this call deleted it. */
  deleteUpstream(tenant: string, id: string): Promise<boolean>;
  /** A tenant's upstream providers, ordered by name, then id. */
  listUpstreams(tenant: string): Promise<Upstream[]>;
  /** The identity an upstream account is linked to, or null. */
  findIdentityByUpstream(issuer: string, subject: string): Promise<Identity | null>;
  /**
   * Links an upstream account to an identity unless it is linked already, and
   * returns the identity id it is linked to: an existing link wins, so parallel
   * calls for one (issuer, subject) all return the same id. `created` is true
   * for the one call that made the link.
   */
  linkUpstream(link: UpstreamLink): Promise<{ identityId: string; created: boolean }>;
  /** The upstream accounts linked to an identity, ordered by issuer, then subject. */
  listUpstreamLinks(identityId: string): Promise<UpstreamLink[]>;
  /**
   * Removes the link of (issuer, subject) only while it points at
   * `identityId` (a link of another identity is left alone). True when this
   * call removed it: of parallel calls, one is true.
   */
  unlinkUpstream(link: UpstreamLink): Promise<boolean>;

  // The account pages (docs/account.md).

  /** The logins of one email in every tenant, ordered by tenant, then id (signing in to `/account`). */
  listLoginsForEmailAllTenants(email: string): Promise<Login[]>;
  /**
   * Ends every session and token of a login that was authenticated before
   * `notBefore` (an owner's reset). Only ever moves the time forward. False when
   * the login does not exist.
   */
  endLoginSessions(loginId: string, notBefore: Date): Promise<boolean>;
  /** The time set by `endLoginSessions`, or null when it was never called. */
  loginSessionsNotBefore(loginId: string): Promise<Date | null>;
  /** Remembers a provider Grant of a login (so a reset can revoke it) until `expiresAt`. Idempotent. */
  addLoginGrant(loginId: string, grantId: string, expiresAt: Date): Promise<void>;
  /** Removes and returns the ids of the login's grants that have not expired (expired ones are dropped). */
  takeLoginGrants(loginId: string): Promise<string[]>;
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
