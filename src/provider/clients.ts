import type { Client } from '../storage/accounts/port.ts';

/** The oidc-provider metadata of a stored client, with Latchkey's defaults filled in. */
export function clientMetadata(client: Client): Record<string, unknown> {
  const m = client.metadata;
  const confidential = typeof m.client_secret === 'string' && m.client_secret.length > 0;
  return {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: confidential ? 'client_secret_basic' : 'none',
    ...m,
    client_id: client.clientId,
  };
}
