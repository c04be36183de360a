/**
 * The sessions port: an index of each login's provider sessions (so a person
 * can see and end them, and Latchkey can tell every app of a session it ends)
 * and the queue of back-channel logouts waiting to go to the apps.
 *
 * The sessions themselves live in the provider adapter (`src/storage/adapter`)
 * under a hash of their id, keyed by nothing a login could be found by; the
 * index holds what a sessions page shows and what a logout needs: the
 * session's `uid` (oidc-provider finds a session by it), the hash of its id,
 * and for each app the session signed in to, the `sid` that app knows.
 *
 * Logouts are unique per (client, sid): queueing one that is already queued
 * or delivered changes nothing, so an app hears of an ended session once when
 * delivery succeeds. Claims are leases (atomic on every backend), so several
 * app processes never send one logout at once; a process that dies mid-send
 * leaves it to another when the lease ends.
 *
 * Implementations: `sqlite/` and `mongo/` (the account store's database).
 * Both pass `test/storage/sessions.contract.test.ts`.
 */

export interface SessionRecord {
  /** The provider session's `uid` (not its id, which is the cookie's value). */
  uid: string;
  /** SHA-256 (base64url) of the session id: what the adapter stores it under. */
  key: string;
  loginId: string;
  /** The login's tenant, whose lifetime and idle timeout the session keeps to; null in a record written before it was kept. */
  tenant: string | null;
  /** Each app (client id) the session signed in to, with the `sid` its ID tokens carry. */
  clients: Record<string, string>;
  /** When the person signed in (the session's `loginTs`). */
  signedInAt: Date;
  /** The last request that used the session (an app's sign-in, an account page). */
  lastSeenAt: Date;
  /** When the provider forgets the session. */
  expiresAt: Date;
  /** The browser's User-Agent and address when the session was first recorded, or null. */
  userAgent: string | null;
  ip: string | null;
}

export interface NewLogout {
  clientId: string;
  sid: string;
  /** The logout token's `sub`. */
  loginId: string;
  tenant: string | null;
}

export interface Logout extends NewLogout {
  id: string;
  attempts: number;
  createdAt: Date;
  deliveredAt: Date | null;
  lastError: string | null;
}

/** A claimed logout: `attempt` settles it. */
export type ClaimedLogout = Logout & { attempt: number };

export interface SessionStore {
  /** Creates tables / indexes. Idempotent; called once at start. */
  init(): Promise<void>;

  /**
   * Creates or replaces the record of the session `uid`; a null `tenant`,
   * `userAgent` or `ip` keeps the one recorded before.
   */
  recordSession(record: SessionRecord): Promise<void>;
  /** Moves the session's `lastSeenAt` to `at`. */
  touchSession(uid: string, at: Date): Promise<void>;
  getSession(uid: string): Promise<SessionRecord | null>;
  /** The login's sessions that have not expired at `now`, most recently seen first. */
  listSessions(loginId: string, now: Date): Promise<SessionRecord[]>;
  /** Forgets the session `uid`; true when there was one. */
  removeSession(uid: string): Promise<boolean>;
  /** Forgets the session stored under `key` (the adapter destroyed it). */
  removeSessionByKey(key: string): Promise<void>;
  /** Forgets sessions that expired before `before`; returns how many. */
  sweepSessions(before: Date): Promise<number>;
  /**
   * Records the session unless one is recorded under its `uid` already (a
   * session found without a record); true when it was recorded.
   */
  recordSessionIfAbsent(record: SessionRecord): Promise<boolean>;
  /**
   * Up to `limit` sessions of `tenant` (null: records without one) signed in
   * before `signedInBefore` or last seen before `lastSeenBefore` (null: that
   * test is off), in `uid` order after `afterUid`: the candidates of an
   * expiry sweep, which pages through them.
   */
  sessionsPast(tenant: string | null, cutoff: { signedInBefore: Date; lastSeenBefore: Date | null }, afterUid: string, limit: number): Promise<SessionRecord[]>;
  /** Sets the tenant of the session `uid`'s record. */
  setSessionTenant(uid: string, tenant: string): Promise<void>;
  /**
   * Takes the run of the periodic job `name` for the time window `window`
   * (a whole number that grows with time): true for exactly one caller per
   * window, across processes, and never for a window older than one taken.
   */
  claimRun(name: string, window: number): Promise<boolean>;

  /** Queues the logouts, due at once; one already queued for its (client, sid) is left as it is. Returns how many were new. */
  enqueueLogouts(logouts: NewLogout[], now: Date): Promise<number>;
  /** Leases up to `limit` logouts due at `now` for `leaseMs`; parallel callers never get the same one. */
  claimLogouts(now: Date, leaseMs: number, limit: number): Promise<ClaimedLogout[]>;
  /** The claim's attempt was accepted by the app. */
  logoutDelivered(id: string, attempt: number, now: Date): Promise<void>;
  /** The claim's attempt failed: due again at `retryAt`. */
  logoutFailed(id: string, attempt: number, retryAt: Date, error: string): Promise<void>;
  /** The logout of (client, sid), or null. */
  findLogout(clientId: string, sid: string): Promise<Logout | null>;
  /** Logouts not delivered yet. */
  pendingLogouts(): Promise<number>;
  /** Forgets logouts delivered before `before`; returns how many. */
  sweepLogouts(before: Date): Promise<number>;
}

/** The id of the logout of (client, sid): the same wherever it is queued from. */
export function logoutId(clientId: string, sid: string): string {
  return `${clientId.length}:${clientId}:${sid}`;
}
