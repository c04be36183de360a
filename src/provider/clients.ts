import type Provider from 'oidc-provider';
import type { AccountStore, Client } from '../storage/accounts/port.ts';
import type { ClientSecrets } from '../crypto/client-secret.ts';
import { grantedApiScopes } from '../api/scopes.ts';

/**
 * The client metadata that says when its secret last changed (epoch seconds,
 * `rotateClientSecret`): a management API token issued before then was got
 * with the old secret, and is refused (`src/api/router.ts`). Latchkey's own:
 * oidc-provider never sees it (`clientMetadata`).
 */
export const SECRET_SINCE = 'latchkey_secret_since';

/** The scopes every client may ask for in a sign-in. */
export const SIGN_IN_SCOPES = ['openid', 'offline_access', 'email', 'profile'];

/**
 * The oidc-provider metadata of a stored client, with Latchkey's defaults
 * filled in. Its `scope` is what the token endpoint lets it ask for: the
 * sign-in scopes and the management API's scopes it was granted, so any
 * other API scope is refused there (`invalid_scope`). A client that never
 * signs people in (client_credentials alone) has no response types.
 */
export function clientMetadata(client: Client): Record<string, unknown> {
  const { api_scopes: _granted, [SECRET_SINCE]: _since, ...m } = client.metadata;
  const confidential = typeof m.client_secret === 'string' && m.client_secret.length > 0;
  const grants = Array.isArray(m.grant_types) ? (m.grant_types as string[]) : ['authorization_code', 'refresh_token'];
  return {
    grant_types: grants,
    response_types: grants.includes('authorization_code') ? ['code'] : [],
    ...(grants.includes('authorization_code') ? {} : { redirect_uris: [] }),
    token_endpoint_auth_method: confidential ? 'client_secret_basic' : 'none',
    // Every logout token names the session it ends (src/sessions), so an app can end just that one.
    ...(typeof m.backchannel_logout_uri === 'string' ? { backchannel_logout_session_required: true } : {}),
    ...m,
    scope: [...SIGN_IN_SCOPES, ...grantedApiScopes(client.metadata)].join(' '),
    client_id: client.clientId,
  };
}

/**
 * oidc-provider compares a presented secret with the metadata's
 * `client_secret` itself; stored secrets are hashes, so its Client's
 * `compareClientSecret` (the hook its maintainer points to for hashed
 * secrets) checks against the hash instead.
 */
export function compareHashedClientSecrets(provider: Provider, secrets: ClientSecrets): void {
  const proto = provider.Client.prototype as unknown as { clientSecret?: string; compareClientSecret(actual: string): Promise<boolean> };
  proto.compareClientSecret = async function compareClientSecret(this: { clientSecret?: string }, actual: string) {
    return !!this.clientSecret && secrets.matches(this.clientSecret, actual);
  };
}

/**
 * Replaces client secrets still stored in plain text (written before secrets
 * were hashed) by their hash. Run on every start; idempotent, and safe with
 * several processes starting at once (the hash of a secret is always the same).
 * Returns how many it replaced.
 */
export async function hashPlainClientSecrets(accounts: AccountStore, secrets: ClientSecrets): Promise<number> {
  let replaced = 0;
  for (const tenant of await accounts.listTenants()) {
    for (const client of await accounts.listClients(tenant.id)) {
      const secret = client.metadata.client_secret;
      if (typeof secret !== 'string' || !secret || secrets.isHashed(secret)) continue;
      await accounts.upsertClient({ ...client, metadata: { ...client.metadata, client_secret: secrets.hash(secret) } });
      replaced++;
    }
  }
  return replaced;
}
