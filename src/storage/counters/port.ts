/**
 * The attempt-counter port: consecutive failures and the lock they earn, per
 * key (e.g. `pin:<loginId>`, `pwd:id:<identityId>`, `pwd:ip:<ip>`).
 *
 * Implementations: `sqlite/` (embedded) and `redis/` (production, shared by
 * every app process). Both pass `test/storage/counters.contract.test.ts`.
 *
 * An attempt is *taken before* the answer is checked, so that many parallel
 * guesses cannot get more tries than the limit: `take` counts the attempt as a
 * failure up front, and a success calls `reset`.
 *
 * A key that reaches `maxFailures` is *frozen* (NIST SP 800-63B §5.2.2: no
 * more than 100 consecutive failed attempts): every later `take` is refused,
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
  /**
   * Consecutive failures that freeze the key (100). `Infinity` never freezes:
   * per-IP keys, whose freeze would lock out everyone behind one address.
   */
  maxFailures: number;
  /** A record left alone this long (ms) is forgotten, unless frozen. Must exceed maxLockMs. */
  idleResetMs: number;
}

export interface TakeResult {
  /** True when this attempt may be evaluated. */
  allowed: boolean;
  /** Consecutive failures counted so far, this attempt included when allowed. */
  failures: number;
  /** Epoch ms until which further attempts are refused (0 when not locked). */
  lockedUntil: number;
  /** The key is frozen: refused for that reason, or this allowed attempt was the last one. */
  frozen: boolean;
}

/** A key's record as `peek` reads it. */
export type CounterRecord = Omit<TakeResult, 'allowed'>;

export interface CounterStore {
  /**
   * Atomically, for `key` at time `now` (epoch ms):
   * - if frozen, or `lockedUntil > now`: refuse (allowed false), change nothing;
   * - otherwise: failures += 1; if failures >= threshold, lockedUntil =
   *   now + min(baseLockMs * 2^(failures - threshold), maxLockMs); if
   *   failures >= maxFailures, freeze; allow.
   * The record expires `idleResetMs` after its last change; a frozen one never does.
   */
  take(key: string, policy: LockPolicy, now: number): Promise<TakeResult>;
  /** Forgets the key, frozen or not (after a success, or an unlock). */
  reset(key: string): Promise<void>;
  /** The current record, or null when none. Does not count an attempt. */
  peek(key: string, now: number): Promise<CounterRecord | null>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The lock that `failures` consecutive failures earn under `policy` (0 below the threshold). */
export function lockDurationMs(policy: LockPolicy, failures: number): number {
  if (failures < policy.threshold) return 0;
  const exp = Math.min(failures - policy.threshold, 30);
  return Math.min(policy.baseLockMs * 2 ** exp, policy.maxLockMs);
}
