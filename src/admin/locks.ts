/**
 * A login's attempt locks, as the owner's Users page and the operator's
 * `unlock` command see them: its identity's password key, and for each
 * factor the login's own key and its identity's (`src/limits.ts`). Per-address
 * windows are nobody's to unlock: they only ever slow down for a while.
 *
 * The identity's keys guard every login of the email, in every tenant. So an
 * owner lifts them only when every login of the identity is in the owner's
 * tenant; otherwise only the operator can (`npm run cli -- unlock EMAIL`),
 * or an owner could clear the counter that guards another tenant's logins and
 * guess on without limit.
 */
import type { FactorRegistry } from '../factors/registry.ts';
import { passwordKey, type Limiter, type LockState } from '../limits.ts';
import type { Login } from '../storage/accounts/port.ts';

/** What an unlock lifted, by what it guarded (`password`, or a factor id). */
export type Lifted = Record<string, Exclude<LockState, null>>;

/** Which keys an unlock may lift: the login's own only, or its identity's too. */
export type UnlockScope = 'login' | 'identity';

export interface LoginLocks {
  /**
   * The login's strongest lock as its tenant's owner may see it: `frozen` over `locked`, or null. Of its
   * identity's keys only the password's, which counts every address's failures alike (known or not): the
   * identity's factor keys count the person's attempts in other tenants too, which are not this tenant's to see.
   */
  state(login: Pick<Login, 'id' | 'email'>): Promise<LockState>;
  /** `state` of each of `logins`, in their order, with one counter-store call for them all (a page of the Users list). */
  states(logins: Pick<Login, 'id' | 'email'>[]): Promise<LockState[]>;
  /** Every lock of the login (its identity's included), by what it guards. */
  locked(login: Pick<Login, 'id' | 'email'>): Promise<Lifted>;
  /**
   * Lifts the login's locks within `scope`. `lifted`: what was lifted;
   * `kept`: what is still locked because it is its identity's and the scope
   * was the login's (of those, only what `state` shows).
   */
  unlock(login: Pick<Login, 'id' | 'email'>, scope: UnlockScope): Promise<{ lifted: Lifted; kept: Lifted }>;
}

const strongest = (a: LockState, b: LockState): LockState => (a === 'frozen' || b === 'frozen' ? 'frozen' : (a ?? b));

export function loginLocks(limiter: Limiter, factors: FactorRegistry): LoginLocks {
  const keys = (login: Pick<Login, 'id' | 'email'>): { what: string; key: string; scope: UnlockScope; shown: boolean }[] => [
    { what: 'password', key: passwordKey(login.email), scope: 'identity', shown: true },
    ...factors.all().flatMap((f) =>
      f.attemptKeys
        ? [
            { what: f.id, key: f.attemptKeys.login(login.id), scope: 'login' as const, shown: true },
            { what: f.id, key: f.attemptKeys.identity(login.email), scope: 'identity' as const, shown: false },
          ]
        : [],
    ),
  ];
  const shownKeys = (login: Pick<Login, 'id' | 'email'>) => keys(login).flatMap(({ key, shown }) => (shown ? [key] : []));
  const merge = (into: Lifted, what: string, state: LockState) => {
    const s = strongest(into[what] ?? null, state);
    if (s) into[what] = s;
  };
  return {
    async state(login) {
      const states = await Promise.all(shownKeys(login).map((key) => limiter.state(key)));
      return states.reduce(strongest, null);
    },
    async states(logins) {
      const perLogin = logins.map(shownKeys);
      const all = await limiter.states(perLogin.flat());
      let at = 0;
      return perLogin.map((k) => all.slice(at, (at += k.length)).reduce(strongest, null));
    },
    async locked(login) {
      const found: Lifted = {};
      for (const { what, key } of keys(login)) merge(found, what, await limiter.state(key));
      return found;
    },
    async unlock(login, scope) {
      const lifted: Lifted = {};
      const kept: Lifted = {};
      for (const { what, key, scope: keyScope, shown } of keys(login)) {
        if (scope === 'identity' || keyScope === 'login') merge(lifted, what, await limiter.unlock(key));
        else if (shown) merge(kept, what, await limiter.state(key));
      }
      return { lifted, kept };
    },
  };
}
