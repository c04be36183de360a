import type { Tenant } from '../../storage/accounts/port.ts';
import { ANY_TENANT } from '../../provider/account-client.ts';

/** Whether the login page offers a passkey sign-in: where a user type uses passkeys (on the account pages, always). */
export function offersPasskeySignIn(tenant: Tenant): boolean {
  return tenant.id === ANY_TENANT || tenant.userTypes.some((u) => u.secondFactor === 'passkey');
}
