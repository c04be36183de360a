/**
 * The account pages' own OpenID client (docs/account.md): a first-party,
 * public client (PKCE) of this provider, built in rather than imported, and
 * bound to no tenant: signing in to `/account` offers every login of the
 * identity, in whatever tenant.
 */
import type { AccountStore, Client, Tenant } from '../storage/accounts/port.ts';

export const ACCOUNT_CLIENT_ID = 'latchkey-account';

/** `Client.tenant` of the account client. Import ids cannot contain "*", so no tenant has this id. */
export const ANY_TENANT = '*';

/** What the sign-in journey shows while no login is chosen yet for the account client. */
export const ACCOUNT_AUDIENCE: Tenant = { id: ANY_TENANT, name: 'Latchkey account', owners: [], userTypes: [] };

export const accountRedirectUri = (issuer: string) => `${issuer}/account/callback`;

export function accountClient(issuer: string): Client {
  return {
    clientId: ACCOUNT_CLIENT_ID,
    tenant: ANY_TENANT,
    firstParty: true,
    metadata: {
      client_id: ACCOUNT_CLIENT_ID,
      client_name: 'Latchkey account',
      redirect_uris: [accountRedirectUri(issuer)],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
  };
}

export type ClientFinder = (clientId: string) => Promise<Client | null>;

/** Looks a client up in the store, the built-in account client first. */
export function clientFinder(accounts: AccountStore, issuer: string): ClientFinder {
  const own = accountClient(issuer);
  return async (clientId) => (clientId === ACCOUNT_CLIENT_ID ? structuredClone(own) : accounts.getClient(clientId));
}
