/**
 * Ending a login's sessions and grants (an owner's reset, a changed password;
 * docs/account.md).
 *
 * oidc-provider keys sessions by session id, not by account, so a reset
 * records a per-login "not before" time and every check that trusts an
 * earlier sign-in consults it: the provider's login prompt (SSO sessions),
 * `findAccount` (codes, access and refresh tokens) and the account pages'
 * own session. The login's grants, remembered as they are saved, are
 * destroyed with their tokens, so introspection says `active: false` too.
 *
 * Sessions and tokens carry whole seconds (`loginTs`, `auth_time`, `iat`), so
 * the time is the next whole second and the reset returns only once it has
 * passed: whatever starts after the reset is told apart from what it ended.
 */
import type Provider from 'oidc-provider';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { AccountStore } from '../storage/accounts/port.ts';

/** True when a sign-in at `authTime` (epoch seconds) happened before the login's sessions were ended. */
export function endedBefore(notBefore: Date | null, authTime: number | undefined): boolean {
  if (!notBefore) return false;
  if (typeof authTime !== 'number' || !Number.isFinite(authTime)) return true;
  return authTime * 1000 < notBefore.getTime();
}

/**
 * Ends every session and grant of each login in `loginIds`; resolves once
 * anything new is told apart from them. Returns the cut-off it set.
 */
export async function endLoginSessions(accounts: AccountStore, provider: Provider, loginIds: string[]): Promise<Date> {
  const notBefore = new Date((Math.floor(Date.now() / 1000) + 1) * 1000);
  for (const loginId of loginIds) {
    await accounts.endLoginSessions(loginId, notBefore);
    for (const grantId of await accounts.takeLoginGrants(loginId)) {
      // The adapter port's revokeByGrantId removes every model (codes, access and refresh tokens) of the grant.
      await provider.AccessToken.revokeByGrantId(grantId);
      await provider.Grant.adapter.destroy(grantId);
    }
  }
  const wait = notBefore.getTime() - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  return notBefore;
}

/** Wraps the Grant adapter so every saved grant is remembered under its login. */
export function trackLoginGrants(inner: Adapter, accounts: AccountStore): Adapter {
  return {
    async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
      if (typeof payload.accountId === 'string') await accounts.addLoginGrant(payload.accountId, id, new Date(Date.now() + expiresIn * 1000));
      await inner.upsert(id, payload, expiresIn);
    },
    find: (id) => inner.find(id),
    findByUid: (uid) => inner.findByUid(uid),
    findByUserCode: (code) => inner.findByUserCode(code),
    consume: (id) => inner.consume(id),
    destroy: (id) => inner.destroy(id),
    revokeByGrantId: (grantId) => inner.revokeByGrantId(grantId),
  };
}
