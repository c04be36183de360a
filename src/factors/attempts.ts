/**
 * Attempt limits for a factor's answers (SPEC §7): per login, counted before
 * the answer is checked (see `src/limits.ts`), so parallel guesses never get
 * more tries than the threshold.
 */
import type { LockPolicy, CounterStore } from '../storage/counters/port.ts';
import { createLimiter } from '../limits.ts';
import { LatchkeyError } from '../errors.ts';

export type AttemptResult =
  | { passed: true }
  /** `lockedForSeconds` > 0 when the login is locked now (this failure may have started the lock). */
  | { passed: false; evaluated: boolean; lockedForSeconds: number };

export interface Attempts {
  /** Runs `check` unless `key` is locked; a true answer clears the key's failures. */
  run(key: string, check: () => Promise<boolean>): Promise<AttemptResult>;
  /** Forgets the key's failures and lock. */
  clear(key: string): Promise<void>;
}

export function createAttempts(counters: CounterStore, policy: LockPolicy, now: () => number = Date.now): Attempts {
  const limiter = createLimiter(counters, policy, now);
  return {
    async run(key, check) {
      let passed: boolean;
      try {
        passed = await limiter.guard({ target: key }, check);
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'locked_out') {
          return { passed: false, evaluated: false, lockedForSeconds: Number(err.detail.retryAfterSeconds) };
        }
        throw err;
      }
      if (passed) return { passed: true };
      const record = await counters.peek(key, now());
      const lockedMs = record ? record.lockedUntil - now() : 0;
      return { passed: false, evaluated: true, lockedForSeconds: lockedMs > 0 ? Math.ceil(lockedMs / 1000) : 0 };
    },
    clear: (key) => counters.reset(key),
  };
}
