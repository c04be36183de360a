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
 */

export interface LockPolicy {
  /** Failures allowed before a lock starts (5). */
  threshold: number;
  /** The first lock, in ms (1 minute); it doubles with each further failure. */
  baseLockMs: number;
  /** The longest lock, in ms (1 hour). */
  maxLockMs: number;
  /** A record left alone this long (ms) is forgotten. Must exceed maxLockMs. */
  idleResetMs: number;
}

export interface TakeResult {
  /** True when this attempt may be evaluated. */
  allowed: boolean;
  /** Consecutive failures counted so far, this attempt included when allowed. */
  failures: number;
  /** Epoch ms until which further attempts are refused (0 when not locked). */
  lockedUntil: number;
}

export interface CounterStore {
  /**
   * Atomically, for `key` at time `now` (epoch ms):
   * - if `lockedUntil > now`: refuse (allowed false), change nothing;
   * - otherwise: failures += 1; if failures >= threshold, lockedUntil =
   *   now + min(baseLockMs * 2^(failures - threshold), maxLockMs); allow.
   * The record expires `idleResetMs` after its last change.
   */
  take(key: string, policy: LockPolicy, now: number): Promise<TakeResult>;
  /** Forgets the key (after a success). */
  reset(key: string): Promise<void>;
  /** The current record, or null when none. Does not count an attempt. */
  peek(key: string, now: number): Promise<{ failures: number; lockedUntil: number } | null>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The lock that `failures` consecutive failures earn under `policy` (0 below the threshold). */
export function lockDurationMs(policy: LockPolicy, failures: number): number {
  if (failures < policy.threshold) return 0;
  const exp = Math.min(failures - policy.threshold, 30);
  return Math.min(policy.baseLockMs * 2 ** exp, policy.maxLockMs);
}
