/**
 * Attempt limits (SPEC §7) over the counter port.
 *
 * `guard` takes an attempt on a target's key *before* the answer is checked,
 * so parallel guesses against one login or identity never get more tries than
 * the threshold. Per-IP keys only record failures after the fact: counting
 * them up front would lock out an office whose people sign in at once.
 */
import { createHash } from 'node:crypto';
import type { CounterStore, LockPolicy } from './storage/counters/port.ts';
import { lockedOut } from './errors.ts';

export interface Limiter {
  /**
   * Runs `attempt` when neither key is locked. `attempt` resolves true for a
   * correct answer (the counters are reset) or false (a failure is counted).
   * Throws a 429 `locked_out` error while locked; returns what `attempt` said.
   */
  guard(keys: { target: string; ip?: string | null }, attempt: () => Promise<boolean>): Promise<boolean>;
}

export function createLimiter(counters: CounterStore, policy: LockPolicy, now: () => number = Date.now): Limiter {
  const refuse = (lockedUntil: number) => lockedOut(Math.max(1, Math.ceil((lockedUntil - now()) / 1000)));
  return {
    async guard({ target, ip }, attempt) {
      const ipKey = ip ? `ip:${ip}` : null;
      if (ipKey) {
        const rec = await counters.peek(ipKey, now());
        if (rec && rec.lockedUntil > now()) throw refuse(rec.lockedUntil);
      }
      const taken = await counters.take(target, policy, now());
      if (!taken.allowed) throw refuse(taken.lockedUntil);
      const ok = await attempt();
      if (ok) {
        await Promise.all([counters.reset(target), ipKey ? counters.reset(ipKey) : null]);
      } else if (ipKey) {
        await counters.take(ipKey, policy, now());
      }
      return ok;
    },
  };
}

/** A counter key that does not carry personal data (e.g. an email) in the clear. */
export function hashedKey(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 22)}`;
}
