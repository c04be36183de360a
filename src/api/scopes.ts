/**
 * The management API's scopes (docs/api.md). A tenant's confidential client
 * is granted some of them (`api_scopes` in the import, the Applications
 * page) and asks for them at the token endpoint with `client_credentials`.
 */
export const API_SCOPES = ['latchkey:logins.read', 'latchkey:logins.write', 'latchkey:types.write', 'latchkey:audit.read', 'latchkey:webhooks.write'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

/** What each scope allows, for the docs and the Applications page. */
export const API_SCOPE_TEXT: Record<ApiScope, string> = {
  'latchkey:logins.read': 'read logins, user types and sessions',
  'latchkey:logins.write': 'add, change, disable and remove logins; reset factors, unlock, end sessions',
  'latchkey:types.write': 'add, rename and remove user types; set their second factor',
  'latchkey:audit.read': 'read the audit log',
  'latchkey:webhooks.write': 'read, add and remove webhook subscriptions and read their deliveries',
};

/**
 * Whether a client may hold API scopes: only a confidential one (it has a
 * secret) that may use `client_credentials`. The import and the Applications
 * page refuse scopes for any other, and `grantedApiScopes` grants it none.
 */
export function mayHoldApiScopes(metadata: Record<string, unknown>): boolean {
  const grants = Array.isArray(metadata.grant_types) ? (metadata.grant_types as unknown[]) : [];
  return typeof metadata.client_secret === 'string' && metadata.client_secret.length > 0 && grants.includes('client_credentials');
}

/** The API scopes granted to a stored client (kept in its metadata as `api_scopes`). */
export function grantedApiScopes(metadata: Record<string, unknown>): ApiScope[] {
  const granted = metadata.api_scopes;
  return Array.isArray(granted) && mayHoldApiScopes(metadata) ? API_SCOPES.filter((s) => granted.includes(s)) : [];
}
