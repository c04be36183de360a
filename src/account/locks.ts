/**
 * A login's attempt locks, as the owner's Users page and the operator's
 * `unlock` command see them: its identity's password key and each factor's
 * key (`src/limits.ts`). Per-IP keys are nobody's to unlock: they only ever
 * lock for a while.
 */
import type { FactorRegistry } from '../factors/registry.ts';
import { passwordKey, type Limiter, type LockState } from '../limits.ts';
import type { Login } from '../storage/accounts/port.ts';

/** What an unlock lifted, by what it guarded (`password`, or a factor id). */
export type Lifted = Record<string, Exclude<LockState, null>>;

export interface LoginLocks {
  /** The login's strongest lock: `frozen` over `locked`, or null. */
  state(login: Pick<Login, 'id' | 'email'>): Promise<LockState>;
  /** Lifts every lock and freeze of the login (its password's for every login of the email). */
  unlock(login: Pick<Login, 'id' | 'email'>): Promise<Lifted>;
}

export function loginLocks(limiter: Limiter, factors: FactorRegistry): LoginLocks {
  const keys = (login: Pick<Login, 'id' | 'email'>): [string, string][] => [
    ['password', passwordKey(login.email)],
    ...factors.all().flatMap((f) => (f.attemptKey ? [[f.id, f.attemptKey(login.id)] as [string, string]] : [])),
  ];
  return {
    async state(login) {
      const states = await Promise.all(keys(login).map(([, key]) => limiter.state(key)));
      return states.includes('frozen') ? 'frozen' : states.includes('locked') ? 'locked' : null;
    },
    async unlock(login) {
      const lifted = await Promise.all(keys(login).map(async ([what, key]) => [what, await limiter.unlock(key)] as const));
      return Object.fromEntries(lifted.filter((l): l is [string, 'frozen' | 'locked'] => l[1] !== null));
    },
  };
}
