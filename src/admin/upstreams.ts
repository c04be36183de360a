/**
 * A tenant's upstream OpenID providers, without a transport: add one, edit it
 * (name, issuer, client id, and a new client secret or the stored one), test
 * its connection, remove it. Every save fetches the issuer's discovery
 * document and checks it first (`checkDiscovery`), so a typo in the issuer is
 * found by the owner and not by the next person signing in. The client secret
 * is sealed at rest (`src/upstream/secret.ts`) and never returned.
 *
 * Nothing is cached per process: the login page lists the store's upstreams
 * on every request (behind the account cache, whose writes renew their
 * version for every process), so a change shows at once everywhere.
 *
 * Audit events: `upstream.added`, `upstream.edited` (`changed`: field names,
 * `secret` when a new one was given), `upstream.removed` — each with
 * `upstream`, `by`.
 */
import * as oidc from 'openid-client';
import type { Audit } from '../audit.ts';
import type { Config } from '../../config/index.ts';
import { createSecretBox } from '../crypto/secretbox.ts';
import { LatchkeyError, badRequest, conflict, notFound } from '../errors.ts';
import type { AccountStore, Upstream, UpstreamWrite } from '../storage/accounts/port.ts';
import { resealUpstreamSecret } from '../upstream/secret.ts';
import { upstreamSettings, type UpstreamSetting } from '../upstream/settings.ts';
import { recordChange } from './record.ts';
import type { Actor } from './people.ts';
import { slugOf } from './slug.ts';
import { egressRefusal, type AddressRange, type Egress } from '../web/egress.ts';

export interface UpstreamDeps {
  accounts: AccountStore;
  audit: Audit;
  config: Pick<Config, 'env' | 'issuer' | 'keys'>;
  /** Discovery reaches no special-use address that `OUTBOUND_ALLOW` does not open. */
  egress: Egress;
}

/** What an owner or a program says about an upstream. `clientSecret` empty or absent on an edit keeps the stored one. */
export interface UpstreamInput {
  id?: unknown;
  name: unknown;
  issuer: unknown;
  clientId: unknown;
  clientSecret?: unknown;
}

/**
 * What a connection test found: the discovered endpoints, or why it failed (a key of the catalogues, with the
 * values its text interpolates: the `issuer`, and for a refused address its `range`).
 */
export type DiscoveryResult =
  { ok: true; issuer: string; authorizationEndpoint: string; tokenEndpoint: string } | { ok: false; problem: string; detail: { issuer: string; range?: AddressRange } };

export const UPSTREAM_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const TEXT_MAX = 512;
const NAME_MAX = 100;
const REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const DISCOVERY_TIMEOUT_SECONDS = 5;

function text(field: string, value: unknown, max: number, required = true): string {
  if (value === undefined && !required) return '';
  if (typeof value !== 'string') throw badRequest('errors.form.notText', { field });
  const trimmed = value.trim();
  if (!trimmed && required) throw badRequest('errors.form.missing', { field });
  if (trimmed.length > max) throw badRequest('errors.form.tooLong', { field });
  if (REFUSED.test(trimmed)) throw badRequest('errors.form.invalidCharacters', { field });
  return trimmed;
}

/**
 * An issuer: an http(s) URL without query, fragment or credentials (https only in production), not at a literal
 * special-use address that `OUTBOUND_ALLOW` does not open (a name is judged when connecting); a trailing slash is
 * kept as given.
 */
export function upstreamIssuer({ config, egress }: { config: Pick<Config, 'env'>; egress: Pick<Egress, 'refusedUrl'> }, value: unknown): string {
  const issuer = text('issuer', value, TEXT_MAX);
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw badRequest('errors.upstreams.issuer');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash || issuer.includes('?') || issuer.includes('#') || url.username || url.password) {
    throw badRequest('errors.upstreams.issuer');
  }
  if (config.env === 'production' && url.protocol !== 'https:') throw badRequest('errors.upstreams.https');
  const range = egress.refusedUrl(url);
  if (range) throw badRequest('errors.upstreams.address', { field: 'issuer', issuer, range });
  return issuer;
}

/**
 * Fetches `{issuer}/.well-known/openid-configuration` and checks it the way
 * a sign-in will (openid-client: its `issuer` must be the one given), and that
 * it offers what Latchkey uses: the authorization code flow with PKCE S256
 * and a key set. Never throws.
 */
export async function checkDiscovery(egress: Pick<Egress, 'fetch'>, issuer: string): Promise<DiscoveryResult> {
  const insecure = new URL(issuer).protocol === 'http:';
  const failed = (problem: string, range?: AddressRange): DiscoveryResult => ({ ok: false, problem, detail: range ? { issuer, range } : { issuer } });
  let meta: oidc.ServerMetadata;
  try {
    const found = await oidc.discovery(new URL(issuer), 'latchkey-connection-test', undefined, oidc.None(), {
      execute: insecure ? [oidc.allowInsecureRequests] : [],
      timeout: DISCOVERY_TIMEOUT_SECONDS,
      [oidc.customFetch]: (url, options) => egress.fetch(url, options as RequestInit),
    });
    meta = found.serverMetadata();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const refused = egressRefusal(err);
    if (refused) return failed('errors.upstreams.refused', refused.range as AddressRange);
    if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') return failed('errors.upstreams.issuerMismatch');
    if (err instanceof TypeError || code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT') return failed('errors.upstreams.unreachable');
    return failed('errors.upstreams.noDiscovery');
  }
  if (!meta.authorization_endpoint || !meta.token_endpoint || !meta.jwks_uri) return failed('errors.upstreams.incomplete');
  if (meta.response_types_supported && !meta.response_types_supported.includes('code')) return failed('errors.upstreams.noCodeFlow');
  if (meta.code_challenge_methods_supported && !meta.code_challenge_methods_supported.includes('S256')) return failed('errors.upstreams.noPkce');
  return { ok: true, issuer: meta.issuer, authorizationEndpoint: meta.authorization_endpoint, tokenEndpoint: meta.token_endpoint };
}

async function discovered(egress: Pick<Egress, 'fetch'>, issuer: string): Promise<void> {
  const result = await checkDiscovery(egress, issuer);
  if (!result.ok) throw new LatchkeyError('bad_request', 400, result.problem, result.detail);
}

/** The tenant's upstreams as the owner sees them: the redirect URI from the server's own issuer, never the secret. */
export async function listUpstreams(deps: Pick<UpstreamDeps, 'accounts' | 'config'>, tenantId: string): Promise<UpstreamSetting[]> {
  return upstreamSettings(deps.config.issuer, await deps.accounts.listUpstreams(tenantId));
}

async function existing(deps: Pick<UpstreamDeps, 'accounts'>, tenantId: string, id: unknown): Promise<Upstream> {
  const stored = typeof id === 'string' && UPSTREAM_ID.test(id) ? await deps.accounts.getUpstream(tenantId, id) : null;
  if (!stored) throw notFound('errors.upstreams.none');
  return stored;
}

/**
 * Adds an upstream; its id (from `id`, else its name) must be new in the tenant (409). The discovery must check out (400).
 * The store gives it its handle: the redirect URI to register is the returned upstream's (`upstreamRedirectUri`).
 */
export async function createUpstream(deps: UpstreamDeps, actor: Actor, input: UpstreamInput): Promise<Upstream> {
  const name = text('name', input.name, NAME_MAX);
  const id = input.id === undefined || input.id === '' ? slugOf(name, 'provider') : text('id', input.id, 64);
  if (!UPSTREAM_ID.test(id)) throw badRequest('errors.upstreams.id');
  const issuer = upstreamIssuer(deps, input.issuer);
  const clientId = text('client_id', input.clientId, TEXT_MAX);
  const secret = text('client_secret', input.clientSecret, TEXT_MAX);
  if (await deps.accounts.getUpstream(actor.tenant.id, id)) throw conflict('errors.upstreams.idTaken', { id });
  await discovered(deps.egress, issuer);
  const box = createSecretBox(deps.config.keys.encryptionKeys);
  const upstream = await deps.accounts.upsertUpstream({
    tenant: actor.tenant.id,
    id,
    name,
    issuer,
    clientId,
    clientSecret: resealUpstreamSecret(box, actor.tenant.id, id, secret, null),
    scopes: [],
  });
  await recordChange(deps.audit, actor, 'upstream.added', { upstream: id, issuer });
  return upstream;
}

/**
 * Edits an upstream's name, issuer and client; an empty secret keeps the stored one, but only for the same
 * issuer (a new issuer needs its secret again: 400). The discovery must check out (400).
 */
export async function updateUpstream(deps: UpstreamDeps, actor: Actor, id: string, input: UpstreamInput): Promise<Upstream> {
  const stored = await existing(deps, actor.tenant.id, id);
  const name = text('name', input.name, NAME_MAX);
  const issuer = upstreamIssuer(deps, input.issuer);
  const clientId = text('client_id', input.clientId, TEXT_MAX);
  const secret = text('client_secret', input.clientSecret, TEXT_MAX, false);
  const changed = [
    ...(name !== stored.name ? ['name'] : []),
    ...(issuer !== stored.issuer ? ['issuer'] : []),
    ...(clientId !== stored.clientId ? ['clientId'] : []),
    ...(secret ? ['secret'] : []),
  ];
  if (!changed.length) return stored;
  // The stored secret was given for the stored issuer: never sent to another one, whoever edits the provider.
  if (issuer !== stored.issuer && !secret) throw badRequest('errors.upstreams.secretForIssuer', { field: 'client_secret', previous: stored.issuer });
  await discovered(deps.egress, issuer);
  const box = createSecretBox(deps.config.keys.encryptionKeys);
  const upstream: UpstreamWrite = {
    tenant: stored.tenant,
    id: stored.id,
    scopes: stored.scopes,
    name,
    issuer,
    clientId,
    clientSecret: secret ? resealUpstreamSecret(box, actor.tenant.id, stored.id, secret, stored) : stored.clientSecret,
  };
  const saved = await deps.accounts.upsertUpstream(upstream);
  await recordChange(deps.audit, actor, 'upstream.edited', { upstream: stored.id, changed });
  return saved;
}

/** Tests the stored upstream's connection (its discovery), changing nothing. */
export async function testUpstream(deps: Pick<UpstreamDeps, 'accounts' | 'egress'>, tenantId: string, id: string): Promise<DiscoveryResult> {
  return checkDiscovery(deps.egress, (await existing(deps, tenantId, id)).issuer);
}

/** Removes an upstream: its button goes from the login page at once. The links of people to it stay (keyed by issuer; another tenant may use it). */
export async function deleteUpstream(deps: UpstreamDeps, actor: Actor, id: string): Promise<void> {
  const stored = await existing(deps, actor.tenant.id, id);
  if (!(await deps.accounts.deleteUpstream(actor.tenant.id, stored.id))) throw notFound('errors.upstreams.none');
  await recordChange(deps.audit, actor, 'upstream.removed', { upstream: stored.id, issuer: stored.issuer });
}
