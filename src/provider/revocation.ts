/**
 * Ending a login's sessions and grants (an owner's reset, a changed password;
 * docs/account.md).
 *
 * oidc-provider keys sessions by session id, not by account, so a reset
 * records a per-login cut-off and every check that trusts an earlier sign-in
 * consults it: the provider's login prompt (SSO sessions), `findAccount`
 * (codes, access and refresh tokens) and the account pages' own session. The
 * login's grants, remembered as they are saved, are destroyed with their
 * tokens, so introspection says `active: false` too.
 *
 * The cut-off is the reset's instant in milliseconds, but sessions and tokens
 * carry whole seconds (`loginTs`, `auth_time`, `iat`): a sign-in time in the
 * cut-off's own second or earlier counts as ended, and a sign-in that
 * finishes after a reset takes the first second past the cut-off
 * (`signInSecond`), so it is told apart without the reset waiting for the
 * clock.
 */
import type Provider from 'oidc-provider';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { StoredAdapter } from '../storage/adapter/port.ts';
import type { AccountStore } from '../storage/accounts/port.ts';

/** The whole second a sign-in's time must exceed to outlive the cut-off `notBefore`. */
const cutOffSecond = (notBefore: Date) => Math.floor(notBefore.getTime() / 1000);

/** True when a sign-in at `authTime` (epoch seconds) is not known to have come after the login's sessions were ended. */
export function endedBefore(notBefore: Date | null, authTime: number | undefined): boolean {
  if (!notBefore) return false;
  if (typeof authTime !== 'number' || !Number.isFinite(authTime)) return true;
  return authTime <= cutOffSecond(notBefore);
}

/**
 * True when a token carrying only its issue time (an access token's `iat`,
 * from the provider's own clock, which cannot be moved to the first second
 * past a cut-off) was issued before the cut-off's second. One issued within
 * that second before the reset lost its grant with the reset, which the
 * provider checks on every use of it.
 */
export function issuedBefore(notBefore: Date | null, iat: number | undefined): boolean {
  if (!notBefore) return false;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return true;
  return iat < cutOffSecond(notBefore);
}

/**
 * The sign-in time (epoch seconds) of a sign-in finishing at `nowMs`: its own
 * second, or the first second past the login's cut-off when a reset happened
 * within that second (a moment early, so the sign-in is not taken for one the
 * reset ended).
 */
export function signInSecond(notBefore: Date | null, nowMs: number): number {
  const second = Math.floor(nowMs / 1000);
  return notBefore && notBefore.getTime() <= nowMs ? Math.max(second, cutOffSecond(notBefore) + 1) : second;
}

/**
 * Ends every session and grant of each login in `loginIds` at `now()` (epoch
 * ms); returns the cut-off it set. Returns at once: what starts after it is
 * told apart by `endedBefore` and `signInSecond`.
 */
export async function endLoginSessions(accounts: AccountStore, provider: Provider, loginIds: string[], now: () => number = Date.now): Promise<Date> {
  const notBefore = new Date(now());
  for (const loginId of loginIds) {
    await accounts.endLoginSessions(loginId, notBefore);
    for (const grantId of await accounts.takeLoginGrants(loginId)) {
      // The adapter port's revokeByGrantId removes every model (codes, access and refresh tokens) of the grant.
      await provider.AccessToken.revokeByGrantId(grantId);
      await provider.Grant.adapter.destroy(grantId);
    }
  }
  return notBefore;
}

/** Wraps the Grant adapter so every saved grant is remembered under its login. */
export function trackLoginGrants(inner: StoredAdapter, accounts: AccountStore): Adapter {
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
