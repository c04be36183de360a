/**
 * Latchkey as the relying party of a tenant's upstream OpenID providers
 * (openid-client): discovery (cached, with a short timeout), the key set (shared
 * by its sign-ins, fetched again at once for an unknown `kid`), the authorization
 * code flow with PKCE, state and nonce, and ID token validation. Every failure
 * of the upstream becomes a typed LatchkeyError (src/errors.ts).
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Config } from '../../config/index.ts';
import type { Logger } from '../log.ts';
import type { Upstream } from '../storage/accounts/port.ts';
import { SecretBoxError, createSecretBox } from '../crypto/secretbox.ts';
import { LatchkeyError, upstreamError, upstreamInvalidResponse, upstreamUnavailable } from '../errors.ts';
import type { PendingUpstream } from '../interaction/journey.ts';
import { openUpstreamSecret } from './secret.ts';
import { egressRefusal, type Egress } from '../web/egress.ts';
import { EMAIL_MAX } from '../email.ts';

/** Seconds to wait for any answer of an upstream. */
const TIMEOUT_SECONDS = 5;
/** How long a discovered configuration is reused. */
const DISCOVERY_TTL_MS = 10 * 60_000;
const DEFAULT_SCOPES = ['email'];
const OAUTH_ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/** `{ISSUER}/upstream/{handle}/callback`: the redirect URI to register at the upstream (`Upstream.handle`, unique across tenants). */
export const upstreamRedirectUri = (issuer: string, handle: string) => `${issuer}/upstream/${encodeURIComponent(handle)}/callback`;

/** The scopes asked for: `openid` and the configured ones (default `email`). */
export const upstreamScopes = (upstream: Pick<Upstream, 'scopes'>) => [...new Set(['openid', ...(upstream.scopes.length ? upstream.scopes : DEFAULT_SCOPES)])];

/** Who signed in upstream: the ID token's issuer and subject. */
export interface UpstreamAccount {
  issuer: string;
  subject: string;
  /**
   * The email address the upstream vouches for: from the ID token, else from
   * its userinfo endpoint (asked only when this is called).
   */
  email(): Promise<{ address: string | null; verified: boolean }>;
}

export interface UpstreamClient {
  /** `{ISSUER}/upstream/{handle}/callback`: the redirect URI registered at the upstream. */
  redirectUri(upstream: Upstream): string;
  /** The upstream's authorization URL for the interaction `uid`, and what its answer will be checked against. */
  begin(upstream: Upstream, uid: string): Promise<{ url: string; pending: PendingUpstream }>;
  /** Checks the upstream's answer (`query` of the callback) against `pending` and redeems the code. */
  complete(upstream: Upstream, pending: PendingUpstream, query: URLSearchParams): Promise<UpstreamAccount>;
}

export interface UpstreamClientDeps {
  config: Config;
  log: Logger;
  /** Discovery, key set, token and userinfo requests reach no special-use address that `OUTBOUND_ALLOW` does not open. */
  egress: Pick<Egress, 'fetch'>;
}

/** The ID token's `kid` in a token endpoint answer, or null (no ID token, not JSON, no `kid`). */
async function idTokenKid(response: Response): Promise<string | null> {
  const body = (await response
    .clone()
    .json()
    .catch(() => null)) as { id_token?: unknown } | null;
  const header = typeof body?.id_token === 'string' ? body.id_token.split('.')[0] : undefined;
  if (!header) return null;
  try {
    const { kid } = JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid?: unknown };
    return typeof kid === 'string' ? kid : null;
  } catch {
    return null;
  }
}

export function createUpstreamClient({ config, log, egress }: UpstreamClientDeps): UpstreamClient {
  const box = createSecretBox(config.keys.encryptionKeys);
  /**
   * Per upstream: its discovered metadata, and its key set as openid-client
   * last fetched it (`getJwksCache`), shared by every sign-in through it.
   */
  const cache = new Map<string, { expires: number; server: Promise<oidc.ServerMetadata>; keys?: oidc.ExportedJWKSCache }>();

  const redirectUri = (upstream: Upstream) => upstreamRedirectUri(config.issuer, upstream.handle);

  async function discover(upstream: Upstream, insecure: boolean): Promise<oidc.ServerMetadata> {
    const execute = insecure ? [oidc.allowInsecureRequests] : [];
    const discovered = await oidc.discovery(new URL(upstream.issuer), upstream.clientId, undefined, oidc.None(), {
      execute,
      timeout: TIMEOUT_SECONDS,
      [oidc.customFetch]: (url, options) => egress.fetch(url, options as RequestInit),
    });
    return JSON.parse(JSON.stringify(discovered.serverMetadata())) as oidc.ServerMetadata;
  }

  /**
   * A configuration for one sign-in, from the cached metadata and key set.
   * openid-client keeps a key set per configuration and, when an ID token
   * names a `kid` it does not hold, fetches the set again only once it is a
   * minute old: after an upstream rotates its keys, sign-ins would fail for
   * that minute. So the configuration is built per sign-in, seeded with the
   * shared key set (`setJwksCache`), and when the token endpoint answers with
   * a `kid` that set lacks, the seed is dropped before the ID token is
   * checked: the library fetches the key set at once, and only once for this
   * sign-in (a `kid` still unknown then is refused).
   */
  async function configurationFor(upstream: Upstream) {
    const insecure = new URL(upstream.issuer).protocol === 'http:';
    if (insecure && config.env === 'production') {
      log.error({ upstream: upstream.id, tenant: upstream.tenant }, 'upstream issuer is http: production accepts https issuers only');
      throw upstreamUnavailable(upstream.name);
    }
    const key = createHash('sha256')
      .update(JSON.stringify([upstream.tenant, upstream.id, upstream.issuer, upstream.clientId, upstream.clientSecret]))
      .digest('base64url');
    const now = Date.now();
    let entry = cache.get(key);
    if (!entry || entry.expires <= now) {
      for (const [k, e] of cache) if (e.expires <= now) cache.delete(k);
      const server = discover(upstream, insecure);
      const fresh = { expires: now + DISCOVERY_TTL_MS, server };
      cache.set(key, fresh);
      server.catch(() => {
        if (cache.get(key) === fresh) cache.delete(key);
      });
      entry = fresh;
    }
    const shared = entry;
    const server = await shared.server;
    const secret = openUpstreamSecret(box, upstream);
    const methods = server.token_endpoint_auth_methods_supported;
    const basic = !methods || methods.includes('client_secret_basic') || !methods.includes('client_secret_post');
    const configuration = new oidc.Configuration(server, upstream.clientId, { client_secret: secret }, basic ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret));
    if (insecure) oidc.allowInsecureRequests(configuration);
    oidc.enableNonRepudiationChecks(configuration);
    configuration.timeout = TIMEOUT_SECONDS;
    if (shared.keys) oidc.setJwksCache(configuration, shared.keys);
    configuration[oidc.customFetch] = async (url, options) => {
      const response = await egress.fetch(url, options as RequestInit);
      if (url === server.token_endpoint && response.ok) {
        const kid = await idTokenKid(response);
        const known = oidc.getJwksCache(configuration)?.jwks.keys;
        if (kid && known && !known.some((k) => k.kid === kid)) oidc.setJwksCache(configuration, {} as oidc.ExportedJWKSCache);
      }
      return response;
    };
    const keep = () => {
      const keys = oidc.getJwksCache(configuration);
      if (keys) shared.keys = keys;
    };
    return { configuration, keep };
  }

  function unreachable(err: unknown): boolean {
    if (err instanceof TypeError && err.message === 'fetch failed') return true;
    const { code, cause } = err as { code?: unknown; cause?: unknown };
    if (code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT') return true;
    return code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && cause instanceof Response && cause.status >= 500;
  }

  /** Any failure while talking to the upstream, as the page to show. */
  function asLatchkeyError(upstream: Upstream, err: unknown): LatchkeyError {
    if (err instanceof LatchkeyError) return err;
    if (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError) {
      return upstreamError(upstream.name, OAUTH_ERROR_CODE.test(err.error) ? err.error : 'error');
    }
    if (err instanceof SecretBoxError) {
      log.error({ upstream: upstream.id, tenant: upstream.tenant }, 'the upstream client secret does not open with the configured encryption keys; import it again');
      return upstreamUnavailable(upstream.name);
    }
    const refused = egressRefusal(err);
    if (refused) {
      // Nothing was sent; the person sees the provider as unreachable, the operator reads where its name led.
      log.warn(
        { upstream: upstream.id, tenant: upstream.tenant, host: refused.host, address: refused.address, range: refused.range },
        'upstream refused: its issuer is at a special-use address (OUTBOUND_ALLOW opens one)',
      );
      return upstreamUnavailable(upstream.name);
    }
    const { message, code } = err as { message?: unknown; code?: unknown };
    log.warn({ upstream: upstream.id, tenant: upstream.tenant, error: message, errorCode: code }, 'upstream sign-in failed');
    return unreachable(err) ? upstreamUnavailable(upstream.name) : upstreamInvalidResponse(upstream.name);
  }

  async function talking<T>(upstream: Upstream, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw asLatchkeyError(upstream, err);
    }
  }

  return {
    redirectUri,

    begin: (upstream, uid) =>
      talking(upstream, async () => {
        const { configuration } = await configurationFor(upstream);
        const pending: PendingUpstream = {
          id: upstream.id,
          state: `${uid}.${oidc.randomState()}`,
          nonce: oidc.randomNonce(),
          verifier: oidc.randomPKCECodeVerifier(),
        };
        const url = oidc.buildAuthorizationUrl(configuration, {
          redirect_uri: redirectUri(upstream),
          scope: upstreamScopes(upstream).join(' '),
          state: pending.state,
          nonce: pending.nonce,
          code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
          code_challenge_method: 'S256',
        });
        return { url: url.href, pending };
      }),

    complete: (upstream, pending, query) =>
      talking(upstream, async () => {
        const { configuration, keep } = await configurationFor(upstream);
        const callback = new URL(redirectUri(upstream));
        callback.search = query.toString();
        const tokens = await oidc
          .authorizationCodeGrant(configuration, callback, {
            pkceCodeVerifier: pending.verifier,
            expectedState: pending.state,
            expectedNonce: pending.nonce,
            idTokenExpected: true,
          })
          .finally(keep);
        const claims = tokens.claims()!;
        const fromToken = 'email' in claims ? { email: claims.email, email_verified: claims.email_verified } : null;
        return {
          issuer: claims.iss,
          subject: claims.sub,
          email: () =>
            talking(upstream, async () => {
              const source: { email?: unknown; email_verified?: unknown } =
                fromToken ?? (configuration.serverMetadata().userinfo_endpoint ? await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub) : {});
              const address = typeof source.email === 'string' && source.email.length <= EMAIL_MAX ? source.email : null;
              // Some providers send the boolean as a string.
              const verified = source.email_verified === true || source.email_verified === 'true';
              return { address, verified };
            }),
        };
      }),
  };
}
