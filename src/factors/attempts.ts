/**
 * Attempt limits for a factor's answers (docs/security.md): per login, and
 * per identity across all its logins (so several logins with a PIN do not
 * give a guesser more tries), counted before the answer is checked (see
 * `src/limits.ts`) and frozen after `maxFailures` in a row.
 */
import type { Login } from '../storage/accounts/port.ts';
import { hashedKey, type AttemptResult, type Limiter } from '../limits.ts';

/** A factor's counter keys: the login's own, and its identity's (by the normalized email). */
export interface FactorKeys {
  login(loginId: string): string;
  identity(email: string): string;
}

/** The counter keys of factor `id`. */
export function factorKeys(id: string): FactorKeys {
  return { login: (loginId) => `${id}:${loginId}`, identity: (email) => hashedKey(`${id}-id`, email) };
}

export interface Attempts {
  /** Runs `check` unless the login's or its identity's key is locked or frozen; a true answer clears both keys' failures. */
  run(login: Pick<Login, 'id' | 'email'>, check: () => Promise<boolean>): Promise<AttemptResult>;
  /** Forgets the login's own failures, lock and freeze (its identity's key is the unlock's to judge). */
  clear(loginId: string): Promise<void>;
}

/** A factor's attempts on the process's one limiter (its clock and counters), under the factor's keys. */
export function createAttempts(limiter: Limiter, keys: FactorKeys): Attempts {
  return {
    run: (login, check) => limiter.run({ targets: [keys.login(login.id), keys.identity(login.email)] }, check),
    clear: async (loginId) => {
      await limiter.unlock(keys.login(loginId));
    },
  };
}
