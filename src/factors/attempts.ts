/**
 * Attempt limits for a factor's answers (SPEC §7): per login, counted before
 * the answer is checked (see `src/limits.ts`), so parallel guesses never get
 * more tries than the threshold, and frozen after `maxFailures` in a row.
 */
import type { LockPolicy, CounterStore } from '../storage/counters/port.ts';
import { createLimiter, type AttemptResult } from '../limits.ts';

export type { AttemptResult } from '../limits.ts';

export interface Attempts {
  /** Runs `check` unless `key` is locked or frozen; a true answer clears the key's failures. */
  run(key: string, check: () => Promise<boolean>): Promise<AttemptResult>;
  /** Forgets the key's failures, lock and freeze. */
  clear(key: string): Promise<void>;
}

export function createAttempts(counters: CounterStore, policy: LockPolicy, now: () => number = Date.now): Attempts {
  const limiter = createLimiter(counters, policy, now);
  return {
    run: (key, check) => limiter.run({ target: key }, check),
    clear: (key) => counters.reset(key),
  };
}
