/**
 * Attempt limits (SPEC §7) over the counter port.
 *
 * `run` takes an attempt on a target's key *before* the answer is checked,
 * so parallel guesses against one login or identity never get more tries than
 * the threshold. Per-IP keys only record failures after the fact: counting
 * them up front would lock out an office whose people sign in at once.
 *
 * A target key frozen at `policy.maxFailures` (docs/security.md) refuses every
 * attempt until `unlock`; per-IP keys never freeze, for the same office.
 */
import { createHash } from 'node:crypto';
import type { CounterRecord, CounterStore, LockPolicy } from './storage/counters/port.ts';
import { frozenOut, lockedOut } from './errors.ts';

export type AttemptResult =
  | { passed: true }
  /**
   * `evaluated`: the answer was checked (and was wrong). `frozen`: the key is
   * frozen now (this failure may have frozen it). `lockedForSeconds` > 0 when
   * the key is locked for a while now (this failure may have started the lock).
   */
  | { passed: false; evaluated: boolean; frozen: boolean; lockedForSeconds: number };

/** Why a key refuses attempts right now, or null when it does not. */
export type LockState = 'frozen' | 'locked' | null;

export interface Limiter {
  /**
   * Runs `attempt` when neither key is locked or frozen. `attempt` resolves
   * true for a correct answer (the counters are reset) or false (a failure is
   * counted). Says what happened; never throws for a lock.
   */
  run(keys: { target: string; ip?: string | null }, attempt: () => Promise<boolean>): Promise<AttemptResult>;
  /**
   * `run` for callers that show errors: returns whether the answer was right;
   * throws a 429 `locked_out` error while locked, and one with `detail.frozen`
   * while frozen and for the failure that froze the key.
   */
  guard(keys: { target: string; ip?: string | null }, attempt: () => Promise<boolean>): Promise<boolean>;
  state(key: string): Promise<LockState>;
  /** Forgets the key's failures, lifting a lock or a freeze; says which there was. */
  unlock(key: string): Promise<LockState>;
}

export function createLimiter(counters: CounterStore, policy: LockPolicy, now: () => number = Date.now): Limiter {
  const ipPolicy: LockPolicy = { ...policy, maxFailures: Infinity };
  const secondsUntil = (until: number) => Math.max(0, Math.ceil((until - now()) / 1000));
  const stateOf = (rec: CounterRecord | null): LockState => (rec?.frozen ? 'frozen' : rec && rec.lockedUntil > now() ? 'locked' : null);

  const limiter: Limiter = {
    async run({ target, ip }, attempt) {
      const ipKey = ip ? `ip:${ip}` : null;
      if (ipKey) {
        const rec = await counters.peek(ipKey, now());
        if (rec && rec.lockedUntil > now()) return { passed: false, evaluated: false, frozen: false, lockedForSeconds: Math.max(1, secondsUntil(rec.lockedUntil)) };
      }
      const taken = await counters.take(target, policy, now());
      if (!taken.allowed) {
        return { passed: false, evaluated: false, frozen: taken.frozen, lockedForSeconds: taken.frozen ? 0 : Math.max(1, secondsUntil(taken.lockedUntil)) };
      }
      if (await attempt()) {
        await Promise.all([counters.reset(target), ipKey ? counters.reset(ipKey) : null]);
        return { passed: true };
      }
      if (ipKey) await counters.take(ipKey, ipPolicy, now());
      return { passed: false, evaluated: true, frozen: taken.frozen, lockedForSeconds: taken.frozen ? 0 : secondsUntil(taken.lockedUntil) };
    },
    async guard(keys, attempt) {
      const result = await limiter.run(keys, attempt);
      if (result.passed) return true;
      if (result.frozen) throw frozenOut();
      if (!result.evaluated) throw lockedOut(result.lockedForSeconds);
      return false;
    },
    async state(key) {
      return stateOf(await counters.peek(key, now()));
    },
    async unlock(key) {
      const state = stateOf(await counters.peek(key, now()));
      await counters.reset(key);
      return state;
    },
  };
  return limiter;
}

/** A counter key that does not carry personal data (e.g. an email) in the clear. */
export function hashedKey(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 22)}`;
}

/** The password's key: per identity, by its (normalized) email, known or not, so a lock tells nothing. */
export const passwordKey = (email: string) => hashedKey('pwd', email);
