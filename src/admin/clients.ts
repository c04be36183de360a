/**
 * A tenant's applications (OIDC clients), without a transport: list them,
 * register one (redirect URIs checked, first-party or not, a minimum sign-in
 * level), rotate its secret, remove it. A secret is made here (43 random
 * characters), returned once and stored only as its keyed hash
 * (`src/crypto/client-secret.ts`); nobody can read it back.
 *
 * Removing a client ends what it holds: the provider finds no client for its
 * tokens any more, so userinfo refuses them, introspection answers inactive,
 * and refresh and code redemption need the client's authentication.
 *
 * Audit events: `client.added` (`app`: its client id, `firstParty`, `minAcr`),
 * `client.secret_rotated` and `client.removed` (`app`) — each with `by` (or `client`: an application acting).
 */
import { randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Audit } from '../audit.ts';
import type { Config } from '../../config/index.ts';
import type { FactorRegistry } from '../factors/registry.ts';
import { createClientSecrets } from '../crypto/client-secret.ts';
import { badRequest, notFound } from '../errors.ts';
import { SECRET_SINCE, clientMetadata } from '../provider/clients.ts';
import type { AccountStore, Client } from '../storage/accounts/port.ts';
import { recordChange } from './record.ts';
import { API_SCOPES, grantedApiScopes, mayHoldApiScopes, type ApiScope } from '../api/scopes.ts';
import type { Actor } from './people.ts';
import { slugOf } from './slug.ts';

export interface ClientDeps {
  accounts: AccountStore;
  audit: Audit;
  factors: FactorRegistry;
  provider: Provider;
  config: Pick<Config, 'keys'>;
}

/** What an owner or a program says about a new application. */
export interface ClientInput {
  name: unknown;
  /** One or more absolute URIs: https, or http on a loopback address (127.0.0.1, [::1], localhost). */
  redirectUris: unknown;
  firstParty: unknown;
  /** An acr value of the registry (the app's `default_acr_values`), or empty for none. */
  minAcr?: unknown;
  /** `confidential` (a secret, the default) or `public` (PKCE only, e.g. a single-page or mobile app). */
  type?: unknown;
  /** The management API's scopes it may ask for with client_credentials (`src/api/scopes.ts`); a confidential client's only. */
  apiScopes?: unknown;
}

/** An application as the owner sees it (never its secret or hash). */
export interface ClientSummary {
  clientId: string;
  name: string;
  redirectUris: string[];
  firstParty: boolean;
  minAcr: string | null;
  confidential: boolean;
  apiScopes: ApiScope[];
}

const NAME_MAX = 100;
const URIS_MAX = 20;
const URI_MAX = 2048;
const REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** A new client secret: 32 random bytes, 43 characters (at least `CLIENT_SECRET_MIN_LENGTH`). */
const newSecret = () => randomBytes(32).toString('base64url');

function summary(c: Client): ClientSummary {
  const m = c.metadata;
  const acr = Array.isArray(m.default_acr_values) ? (m.default_acr_values as unknown[]).find((v): v is string => typeof v === 'string') : undefined;
  return {
    clientId: c.clientId,
    name: typeof m.client_name === 'string' ? m.client_name : c.clientId,
    redirectUris: Array.isArray(m.redirect_uris) ? (m.redirect_uris as unknown[]).filter((u): u is string => typeof u === 'string') : [],
    firstParty: c.firstParty,
    minAcr: acr ?? null,
    confidential: typeof m.client_secret === 'string' && m.client_secret.length > 0,
    apiScopes: grantedApiScopes(m),
  };
}

/** Redirect URIs, one per line or as a list: absolute, no fragment, https or http on a loopback address; else a 400. */
export function redirectUris(value: unknown): string[] {
  const lines = typeof value === 'string' ? value.split(/\r?\n/) : Array.isArray(value) ? value : null;
  if (!lines || lines.some((l) => typeof l !== 'string')) throw badRequest('errors.form.notText', { field: 'redirect_uris' });
  const uris = [...new Set((lines as string[]).map((l) => l.trim()).filter(Boolean))];
  if (!uris.length) throw badRequest('errors.clients.noRedirect');
  if (uris.length > URIS_MAX) throw badRequest('errors.clients.tooManyRedirects', { max: URIS_MAX });
  for (const uri of uris) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw badRequest('errors.clients.redirect', { uri: uri.slice(0, 100) });
    }
    const secure = url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
    if (uri.length > URI_MAX || !secure || uri.includes('#') || url.username || url.password || REFUSED.test(uri))
      throw badRequest('errors.clients.redirect', { uri: uri.slice(0, 100) });
  }
  return uris;
}

export async function listClients(deps: Pick<ClientDeps, 'accounts'>, tenantId: string): Promise<ClientSummary[]> {
  return (await deps.accounts.listClients(tenantId)).map(summary);
}

async function tenantClient(deps: Pick<ClientDeps, 'accounts'>, tenantId: string, clientId: unknown): Promise<Client> {
  const client = typeof clientId === 'string' && clientId.length <= 256 ? await deps.accounts.getClient(clientId) : null;
  // Another tenant's client is as unknown as a missing one.
  if (!client || client.tenant !== tenantId) throw notFound('errors.clients.none');
  return client;
}

export async function getClientSummary(deps: Pick<ClientDeps, 'accounts'>, tenantId: string, clientId: unknown): Promise<ClientSummary> {
  return summary(await tenantClient(deps, tenantId, clientId));
}

/** Registers an application; returns it and, for a confidential one, its secret (shown once, stored hashed). */
export async function registerClient(deps: ClientDeps, actor: Actor, input: ClientInput): Promise<{ client: ClientSummary; secret: string | null }> {
  if (typeof input.name !== 'string') throw badRequest('errors.form.notText', { field: 'name' });
  const name = input.name.trim().replace(/\s+/g, ' ');
  if (!name) throw badRequest('errors.clients.nameMissing');
  if (name.length > NAME_MAX) throw badRequest('errors.form.tooLong', { field: 'name' });
  if (REFUSED.test(name)) throw badRequest('errors.form.invalidCharacters', { field: 'name' });
  const uris = redirectUris(input.redirectUris);
  if (typeof input.firstParty !== 'boolean') throw badRequest('errors.clients.firstParty');
  const acrs = deps.factors.acrValues();
  const minAcr = input.minAcr === undefined || input.minAcr === '' ? null : input.minAcr;
  if (minAcr !== null && (typeof minAcr !== 'string' || !acrs.includes(minAcr))) throw badRequest('errors.clients.minAcr');
  const type = input.type ?? 'confidential';
  if (type !== 'confidential' && type !== 'public') throw badRequest('errors.clients.type');
  const scopes = input.apiScopes ?? [];
  if (!Array.isArray(scopes) || scopes.some((s) => !(API_SCOPES as readonly unknown[]).includes(s))) throw badRequest('errors.clients.apiScope');
  const secret = type === 'confidential' ? newSecret() : null;
  const clientId = `${slugOf(name, 'app')}-${randomBytes(4).toString('hex')}`;
  const metadata: Client['metadata'] = {
    client_id: clientId,
    client_name: name,
    redirect_uris: uris,
    ...(secret ? { client_secret: createClientSecrets(deps.config.keys.pepper).hash(secret) } : { token_endpoint_auth_method: 'none' }),
    ...(minAcr ? { default_acr_values: [minAcr] } : {}),
    // The API is called with client_credentials: a client given scopes may use that grant too.
    ...(scopes.length ? { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], api_scopes: [...new Set(scopes as ApiScope[])] } : {}),
  };
  if (scopes.length && !mayHoldApiScopes(metadata)) throw badRequest('errors.clients.apiScopesPublic');
  const client: Client = { clientId, tenant: actor.tenant.id, firstParty: input.firstParty, metadata };
  // What the provider itself would refuse (its metadata rules) is refused here, before anything is stored.
  try {
    await deps.provider.Client.validate(clientMetadata(client) as Parameters<Provider['Client']['validate']>[0]);
  } catch (err) {
    throw badRequest('errors.clients.invalid', { problem: String((err as { error_description?: unknown }).error_description ?? 'invalid client metadata').slice(0, 200) });
  }
  await deps.accounts.upsertClient(client);
  await recordChange(deps.audit, actor, 'client.added', { app: clientId, firstParty: client.firstParty, minAcr, ...(scopes.length ? { apiScopes: metadata.api_scopes } : {}) });
  return { client: summary(client), secret };
}

/**
 * A new secret for a confidential application: the old one stops working at
 * once, and so do the management API's tokens issued with it (`SECRET_SINCE`).
 * Returned once.
 */
export async function rotateClientSecret(deps: ClientDeps, actor: Actor, clientId: string): Promise<string> {
  const client = await tenantClient(deps, actor.tenant.id, clientId);
  if (!summary(client).confidential) throw badRequest('errors.clients.public');
  const secret = newSecret();
  // On the provider's clock, which stamps the tokens' `iat` (seconds).
  const since = Math.floor(Date.now() / 1000);
  await deps.accounts.upsertClient({
    ...client,
    metadata: { ...client.metadata, client_secret: createClientSecrets(deps.config.keys.pepper).hash(secret), [SECRET_SINCE]: since },
  });
  await recordChange(deps.audit, actor, 'client.secret_rotated', { app: client.clientId });
  return secret;
}

/** Removes an application; its tokens stop working at once (see above). */
export async function deleteClient(deps: ClientDeps, actor: Actor, clientId: string): Promise<void> {
  const client = await tenantClient(deps, actor.tenant.id, clientId);
  if (!(await deps.accounts.deleteClient(client.clientId))) throw notFound('errors.clients.none');
  await recordChange(deps.audit, actor, 'client.removed', { app: client.clientId });
}
