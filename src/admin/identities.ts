/**
 * An identity (its password hash, its upstream links) serves every login of
 * its email, in every tenant. Once a login leaves an address — removed, or
 * given another email by the pages, the API, SCIM or an import — and no
 * login of any tenant uses the address any more, its identity goes: whoever
 * is given the address next starts without the last person's password.
 */
import type { AccountStore } from '../storage/accounts/port.ts';

/**
 * Deletes the identity of `email` when no login uses the address; true when
 * it did. A login added to the address meanwhile (after the check, before the
 * delete) is given an identity again: a new one, without the old password or
 * links. A login added before the check keeps the identity (docs/admin.md).
 */
export async function releaseAddress(
  accounts: Pick<AccountStore, 'listLoginsForEmailAllTenants' | 'findIdentityByEmail' | 'deleteIdentity' | 'upsertIdentity'>,
  email: string,
): Promise<boolean> {
  if ((await accounts.listLoginsForEmailAllTenants(email)).length) return false;
  const identity = await accounts.findIdentityByEmail(email);
  if (!identity || !(await accounts.deleteIdentity(identity.id))) return false;
  if ((await accounts.listLoginsForEmailAllTenants(email)).length) await accounts.upsertIdentity({ email });
  return true;
}
