/**
 * The SCIM port (docs/scim.md): a tenant's SCIM bearer tokens, and what a
 * directory says about a login beyond its profile — the `userName` it gave
 * it and its `externalId`.
 *
 * A token is kept only as its keyed hash (`src/scim/tokens.ts`): the store
 * finds a token by that hash and never sees the token itself. A revoked
 * token is kept (for the owner's list) but is never found again.
 *
 * A `userName` is unique within a tenant, compared without case: of two
 * parallel `setUserIf` calls giving one name to two logins, one is refused.
 *
 * Each login's values carry a `revision` that every write moves on, and a
 * write names the revision it was decided on (optimistic concurrency, the
 * SCIM `If-Match`): of two writes from one read, one is made and the other
 * told, so a change is never written over one made since it was read.
 *
 * Implementations: `sqlite/` and `mongo/` (the account store's database).
 * Both pass `test/storage/scim.contract.test.ts`.
 */

export interface ScimToken {
  id: string;
  tenant: string;
  /** What the owner called it (`Entra ID`, `Okta`). */
  label: string;
  /** The keyed hash of the token (`hmac-sha256.…`); never the token. */
  hash: string;
  createdAt: Date;
  /** Who made it: a login id, or `cli` for the operator. */
  createdBy: string;
  revokedAt: Date | null;
}

export interface ScimUser {
  tenant: string;
  loginId: string;
  /** As the directory gave it (its case kept); unique in the tenant without case. */
  userName: string | null;
  externalId: string | null;
  /** Moves on with every write of the login's values; 0 while the store has none for it (`NO_REVISION`). */
  revision: number;
}

/** The revision of a login the store keeps no values for. */
export const NO_REVISION = 0;

/** What `setUserIf` did: the values' new revision, or why it wrote nothing. */
export type SetUserResult = { revision: number } | 'changed' | 'taken';

export interface ScimStore {
  init(): Promise<void>;
  addToken(token: ScimToken): Promise<void>;
  /** The token with this hash while it is not revoked, else null. */
  findToken(hash: string): Promise<ScimToken | null>;
  /** The tenant's tokens, revoked ones too, oldest first. */
  listTokens(tenant: string): Promise<ScimToken[]>;
  /** Revokes it at `now`. False when the tenant has no such token, or it was revoked before. */
  revokeToken(tenant: string, id: string, now: Date): Promise<boolean>;

  /** What the directory said about a login, or null. */
  getUser(tenant: string, loginId: string): Promise<ScimUser | null>;
  /** The logins of the tenant that carry any of `loginIds`, in one call (a page of Users). */
  getUsers(tenant: string, loginIds: string[]): Promise<ScimUser[]>;
  /** The login that carries this `userName` (any case), or null. */
  findByUserName(tenant: string, userName: string): Promise<ScimUser | null>;
  /** The logins with this `externalId` (exact case). */
  findByExternalId(tenant: string, externalId: string): Promise<ScimUser[]>;
  /**
   * Sets both values for the login (null forgets one), only while its values
   * are still at `revision` (`NO_REVISION`: it has none yet), in one atomic
   * step: of parallel calls from one revision, exactly one is made. Nothing
   * changes when they moved on (`changed`) or another login of the tenant
   * carries the `userName` (`taken`). Setting the values they have still
   * moves the revision on, so a write that changes nothing here still
   * refuses a parallel one from the same read.
   */
  setUserIf(revision: number, user: Omit<ScimUser, 'revision'>): Promise<SetUserResult>;
  /** Forgets the login (it was removed). */
  removeUser(tenant: string, loginId: string): Promise<void>;
}
