/**
 * The attempt-counter port: consecutive failures, the lock they earn and the
 * attempts being evaluated right now, per key (e.g. `pin:<loginId>`,
 * `pwd:<hash>`); and sliding windows of failures per client address.
 *
 * Implementations: `sqlite/` (embedded) and `redis/` (production, shared by
 * every app process). Both pass `test/storage/counters.contract.test.ts`.
 *
 * An attempt is *begun before* the answer is checked and *settled* after:
 * `begin` holds an in-flight slot, and admits no more attempts at once than
 * failures are left before the lock (at least one), so many parallel guesses
 * cannot get more tries than the limit, while parallel *correct* answers wait
 * their turn instead of counting as failures. `settle` records the outcome
 * and frees the slot; a slot whose process died frees itself at `expiresAt`.
 *
 * A key that reaches `maxFailures` is *frozen* (NIST SP 800-63B §5.2.2: no
 * more than 100 consecutive failed attempts): every later `begin` is refused,
 * however much time passes, until `reset` — a success can no longer happen,
 * so only an unlock by someone with authority lifts it (docs/security.md).
 */

export interface LockPolicy {
  /** Failures allowed before a lock starts (5). */
  threshold: number;
  /** The first lock, in ms (1 minute); it doubles with each further failure. */
  baseLockMs: number;
  /** The longest lock, in ms (1 hour). */
  maxLockMs: number;
  /** Consecutive failures that freeze the key (100). `Infinity` never freezes. */
  maxFailures: number;
  /** A record left alone this long (ms) is forgotten, unless frozen. Must exceed maxLockMs and every slot's life. */
  idleResetMs: number;
}

/** A key's record as `peek` reads it, and as `settle` leaves it. */
export interface CounterRecord {
  /** Consecutive failures counted so far. */
  failures: number;
  /** Epoch ms until which further attempts are refused (0 when not locked). */
  lockedUntil: number;
  /** Frozen: refused until `reset`. */
  frozen: boolean;
}

export interface BeginResult extends CounterRecord {
  /**
   * `admitted`: evaluate the answer, then `settle` the slot. `busy`: as many
   * attempts as may run at once are in flight; try again shortly.
   * `locked`/`frozen`: refused for that reason (nothing was counted).
   */
  outcome: 'admitted' | 'busy' | 'locked' | 'frozen';
  /** Attempts in flight on the key, this one included when admitted. */
  inFlight: number;
}

/** How an admitted attempt ended: right, wrong, or not evaluated at all (an error). */
export type Settlement = 'success' | 'failure' | 'abandon';

export interface WindowResult {
  /** This attempt fits the window, and holds a place in it until released. */
  allowed: boolean;
  /** Places taken in the window, this one included when allowed. */
  count: number;
  /** When refused: epoch ms at which the oldest place leaves the window. */
  retryAt: number;
}

export interface CounterStore {
  /**
   * Atomically, for `key` at time `now` (epoch ms), after forgetting slots
   * whose `expiresAt <= now`:
   * - frozen: `frozen`; `lockedUntil > now`: `locked`; change nothing;
   * - in-flight slots >= max(1, min(threshold, maxFailures) - failures) when
   *   failures < threshold, or >= 1 at or past it: `busy`, change nothing;
   * - otherwise hold slot `slot` until `expiresAt`: `admitted`.
   */
  begin(key: string, slot: string, policy: LockPolicy, now: number, expiresAt: number): Promise<BeginResult>;
  /**
   * Atomically frees `slot` of `key` and records the outcome: `success`
   * forgets the failures and the lock (other slots stay); `failure` does
   * failures += 1; if failures >= threshold, lockedUntil = now +
   * min(baseLockMs * 2^(failures - threshold), maxLockMs); if failures >=
   * maxFailures, freeze. `abandon` only frees the slot. A slot no longer held
   * (expired, or the key was reset) still records a failure: the answer was
   * evaluated. The record expires `idleResetMs` after its last change; a
   * frozen one never does.
   */
  settle(key: string, slot: string, outcome: Settlement, policy: LockPolicy, now: number): Promise<CounterRecord>;
  /** Forgets the key, frozen or not, its slots included (an unlock). */
  reset(key: string): Promise<void>;
  /** The current record, or null when none. Does not count an attempt. */
  peek(key: string, now: number): Promise<CounterRecord | null>;

  /**
   * Atomically, for the sliding window `key`: forgets places taken at or
   * before `now - windowMs`; then, when fewer than `limit` remain, takes place
   * `slot` at `now` (allowed), else refuses and changes nothing.
   */
  windowTake(key: string, slot: string, limit: number, windowMs: number, now: number): Promise<WindowResult>;
  /** Gives place `slot` back (an attempt that turned out right). */
  windowRelease(key: string, slot: string): Promise<void>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

/** How many attempts may be in flight at once on a key with `failures`: one at a time at or past the threshold. */
export function concurrencyLimit(policy: LockPolicy, failures: number): number {
  return Math.max(1, policy.threshold - failures);
}

/** The lock that `failures` consecutive failures earn under `policy` (0 below the threshold). */
export function lockDurationMs(policy: LockPolicy, failures: number): number {
  if (failures < policy.threshold) return 0;
  const exp = Math.min(failures - policy.threshold, 30);
  return Math.min(policy.baseLockMs * 2 ** exp, policy.maxLockMs);
}
