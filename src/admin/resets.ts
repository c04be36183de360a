/**
 * Resetting a login's second factor, for the owner's Users page and the
 * operator's `reset-factor`: the factor's set-up is forgotten, the login's
 * attempt locks are lifted (a frozen password or factor would keep the person
 * out of the set-up the reset asks for), its sessions and tokens end, the
 * event is recorded, and (when configured) upstream links made meanwhile must
 * be confirmed again. The person sets the factor up at their next sign-in.
 */
import type { RouteDeps } from '../services.ts';
import type { Login } from '../storage/accounts/port.ts';
import { endLoginSessions } from '../provider/revocation.ts';
import { loginLocks, type Lifted } from '../account/locks.ts';
import { upstreamLinks } from '../upstream/links.ts';
import type { Actor } from './actor.ts';

export type ResetDeps = Pick<RouteDeps, 'accounts' | 'audit' | 'factors' | 'limiter' | 'provider' | 'config' | 'now'>;

/**
 * Lifts the login's locks, and its identity's only when every login of the
 * identity is in this tenant: otherwise only the operator may (`kept`).
 */
export async function unlockLogin(deps: ResetDeps, target: Login, scope?: 'login' | 'identity') {
  const locks = loginLocks(deps.limiter, deps.factors);
  const all = scope ? [] : await deps.accounts.listLoginsForEmailAllTenants(target.email);
  return locks.unlock(target, scope ?? (all.every((l) => l.tenant === target.tenant) ? 'identity' : 'login'));
}

/**
 * Resets one factor of `target` (`factor.{id}.reset`, `by`). `scope`: which
 * locks may be lifted (default: as `unlockLogin` decides). Returns what was
 * lifted and what had to be kept.
 */
export async function resetFactor(deps: ResetDeps, actor: Actor, target: Login, factorId: string, scope?: 'login' | 'identity'): Promise<{ lifted: Lifted; kept: Lifted }> {
  const result = await unlockLogin(deps, target, scope);
  await deps.factors.get(factorId).reset(target.id);
  await endLoginSessions(deps.accounts, deps.provider, [target.id], deps.now);
  await deps.audit.record({
    type: `factor.${factorId}.reset`,
    outcome: 'success',
    tenant: actor.tenant,
    login: target.id,
    ip: actor.ip ?? null,
    userAgent: actor.userAgent ?? null,
    detail: { by: actor.by },
  });
  // A reset is for a lost factor: an upstream account linked meanwhile must be confirmed again.
  const identity = deps.config.upstream.unlinkOn.includes('reset') ? await deps.accounts.findIdentityByEmail(target.email) : null;
  if (identity)
    await upstreamLinks({ accounts: deps.accounts, audit: deps.audit }).unlinkAll(identity, {
      ip: actor.ip ?? null,
      userAgent: actor.userAgent ?? null,
      by: actor.by,
      reason: 'reset',
    });
  return result;
}
