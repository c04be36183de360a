/**
 * `npm run cli -- unlock EMAIL` (docs/security.md): the operator's way to lift
 * a freeze (or a lock) from an identity's password and from every login of
 * that email, in every tenant — for an owner who froze their own login, a
 * login whose tenant has no owner, or an identity with logins in several
 * tenants (whose shared keys no single owner may lift). Each lift is audited
 * in the login's tenant.
 */
import type { Audit } from '../audit.ts';
import type { FactorRegistry } from '../factors/registry.ts';
import { passwordKey, type Limiter, type LockState } from '../limits.ts';
import { normalizeEmail, type AccountStore } from '../storage/accounts/port.ts';
import { loginLocks, type Lifted } from '../admin/locks.ts';

export interface UnlockReport {
  email: string;
  /** What the password's key had (per identity: it serves every login below). */
  password: LockState;
  logins: { tenant: string; id: string; lifted: Lifted }[];
}

export async function unlockEmail(raw: string, deps: { accounts: AccountStore; limiter: Limiter; factors: FactorRegistry; audit: Audit }): Promise<UnlockReport> {
  const email = normalizeEmail(raw);
  const locks = loginLocks(deps.limiter, deps.factors);
  const found = await deps.accounts.listLoginsForEmailAllTenants(email);
  // Read first: the identity's keys serve every login, and each login's event says what guarded it.
  const before = await Promise.all(found.map((login) => locks.locked(login)));
  const password = await deps.limiter.unlock(passwordKey(email));
  for (const login of found) await locks.unlock(login, 'identity');
  const logins = [];
  for (const [i, login] of found.entries()) {
    const lifted: Lifted = before[i]!;
    if (Object.keys(lifted).length) {
      await deps.audit.record({ type: 'login.unlocked', outcome: 'success', tenant: login.tenant, login: login.id, detail: { via: 'cli', ...lifted } });
    }
    logins.push({ tenant: login.tenant, id: login.id, lifted });
  }
  // An email without logins can still have a frozen password key (keys do not tell known emails from unknown ones).
  if (!logins.length && password) await deps.audit.record({ type: 'login.unlocked', outcome: 'success', detail: { via: 'cli', password } });
  return { email, password, logins };
}

/** The report as the command prints it. */
export function describeUnlock(report: UnlockReport): string[] {
  const lifted = (l: Lifted) =>
    Object.entries(l)
      .map(([what, state]) => `${what} (${state})`)
      .join(', ');
  return [
    `${report.email}: password ${report.password ? `was ${report.password}, unlocked` : 'not locked'}`,
    ...report.logins.map((l) => {
      const { password: _, ...factorLocks } = l.lifted;
      const text = lifted(factorLocks);
      return `login ${l.tenant}/${l.id}: ${text ? `unlocked ${text}` : 'no factor locked'}`;
    }),
    ...(report.logins.length ? [] : ['no login has this email']),
  ];
}
