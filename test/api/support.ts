// The management API as an application calls it: a token from Latchkey's own
// token endpoint through openid-client's client_credentials grant, then JSON
// over HTTP. Every answer is recorded, for the test that checks each route's
// answers against the OpenAPI document's shapes.
import * as oidc from 'openid-client';
import type { ImportDocument } from '../../src/import/index.ts';
import { fixture } from '../support/latchkey.ts';

export const PROVISIONER = { id: 'provisioner', secret: 's3cret-provisioner-5b1c9e7a2d4f8a0c3e6b9d1f' };
export const READER = { id: 'reader', secret: 's3cret-reader-5b1c9e7a2d4f8a0c3e6b9d1f7a2c' };
export const GLOBEX = { id: 'globex-sync', secret: 's3cret-globex-sync-5b1c9e7a2d4f8a0c3e6b9d' };
export const ALL_SCOPES = 'latchkey:logins.read latchkey:logins.write latchkey:types.write latchkey:audit.read latchkey:webhooks.write';

/** The shared fixture, with API clients: Acme's provisioner (every scope) and reader (read only), Globex's own. */
export function apiFixture(): ImportDocument {
  const doc = fixture();
  const [acme, globex] = doc.tenants!;
  const every = ALL_SCOPES.split(' ') as never[];
  acme!.clients!.push(
    { client_id: PROVISIONER.id, client_secret: PROVISIONER.secret, grant_types: ['client_credentials'], api_scopes: every },
    { client_id: READER.id, client_secret: READER.secret, grant_types: ['client_credentials'], api_scopes: ['latchkey:logins.read'] },
  );
  globex!.clients!.push({ client_id: GLOBEX.id, client_secret: GLOBEX.secret, grant_types: ['client_credentials'], api_scopes: every });
  return doc;
}

/** An access token by client_credentials, as an application gets one. */
export async function tokenFor(issuer: string, client: { id: string; secret: string }, scope = ALL_SCOPES): Promise<string> {
  const config = await oidc.discovery(new URL(issuer), client.id, client.secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const tokens = await oidc.clientCredentialsGrant(config, { scope });
  return tokens.access_token;
}

export interface Answer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface Recorded {
  method: string;
  path: string;
  status: number;
  type: string;
  body: unknown;
}

/** A client of the API at `issuer` with `token`; `seen` collects every answer. */
export function apiClient(issuer: string, seen: Recorded[] = []) {
  return async function call(
    token: string | null,
    method: string,
    path: string,
    options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers };
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${issuer}/api/v1${path}`, { method, headers, body });
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    const parsed = text && type.includes('json') ? JSON.parse(text) : text;
    seen.push({ method: method.toLowerCase(), path: path.split('?')[0]!, status: response.status, type, body: parsed });
    return { status: response.status, headers: response.headers, body: parsed };
  };
}
