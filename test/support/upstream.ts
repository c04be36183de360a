// A real upstream OpenID provider for the tests: a second oidc-provider
// instance on a loopback port, with interaction handlers that sign in
// whoever the test says (with the email and email_verified it says) or answer
// access_denied, a switch that corrupts its next ID token, a restart on
// new signing keys (a key rotation), one on a new redirect URI, and the choice
// to answer without RFC 9207's `iss` (as many upstreams still do).
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider, { type Configuration } from 'oidc-provider';
import { Browser, type Page } from './browser.ts';
import { listenOnFreePort } from './net.ts';

export interface UpstreamUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
}

export interface UpstreamClientRegistration {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
}

export interface TestUpstream {
  issuer: string;
  /** Who the next sign-in at the upstream is (their claims are read at every request). */
  user: UpstreamUser;
  /** `sign-in` signs `user` in; `deny` answers `access_denied`. */
  mode: 'sign-in' | 'deny';
  /**
   * While set, corrupts every ID token the token endpoint issues: `audience`
   * names another client; `email` swaps the email but keeps the signature;
   * `kid` names a key the upstream never had.
   */
  tamperIdTokens: false | 'audience' | 'email' | 'kid';
  /** How many times its key set (`jwks_uri`) was fetched. */
  jwksRequests: number;
  /** Restarts on the same address with a new signing key (a new `kid`); the old key is gone. */
  rotateKeys(): Promise<void>;
  /** Registers another redirect URI for a client (an owner registering it upstream); keeps the signing key. */
  register(clientId: string, redirectUri: string): void;
  /** Stops listening and drops open connections (the upstream is then unreachable). */
  stop(): Promise<void>;
}

export interface UpstreamOptions {
  clients: UpstreamClientRegistration[];
  /** Put email and email_verified in the ID token (default: only from userinfo, as oidc-provider does). */
  emailInIdToken?: boolean;
  /**
   * Answer the authorization request without the `iss` parameter and leave
   * `authorization_response_iss_parameter_supported` out of the discovery
   * document (an upstream without RFC 9207; default: oidc-provider's, with it).
   */
  withoutIss?: boolean;
}

function signingKey(kid: string) {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

const decoded = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;
const encoded = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function tampered(idToken: string, how: 'audience' | 'email' | 'kid'): string {
  const [header, payload, signature] = idToken.split('.') as [string, string, string];
  if (how === 'kid') return [encoded({ ...decoded(header), kid: 'never-published' }), payload, signature].join('.');
  const claims = decoded(payload);
  const changed = how === 'audience' ? { ...claims, aud: 'someone-else' } : { ...claims, email: 'someone.else@acme.test' };
  return [header, encoded(changed), signature].join('.');
}

export async function startUpstream(options: UpstreamOptions): Promise<TestUpstream> {
  // The port comes from the OS before the provider is made (it needs its issuer); the provider then answers on it.
  const http = createServer();
  const port = await listenOnFreePort(http);
  const issuer = `http://127.0.0.1:${port}`;
  const claimsOf = new Map<string, UpstreamUser>();

  const upstream: TestUpstream = {
    issuer,
    user: { sub: 'nobody' },
    mode: 'sign-in',
    tamperIdTokens: false,
    jwksRequests: 0,
    rotateKeys: async () => {},
    register: () => {},
    stop: async () => {},
  };

  function configuration(key: ReturnType<typeof signingKey>): Configuration {
    return {
      clients: options.clients.map((c) => ({ ...c, redirect_uris: [...c.redirect_uris] })),
      jwks: { keys: [key] } as unknown as Configuration['jwks'],
      cookies: { keys: ['upstream-test-cookie-key-0123456789abcdef'] },
      features: { devInteractions: { enabled: false } },
      claims: { openid: ['sub'], email: ['email', 'email_verified'] },
      conformIdTokenClaims: !options.emailInIdToken,
      pkce: { required: () => true },
      ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      findAccount: (_ctx, sub) => ({
        accountId: sub,
        claims: () => {
          const { email, email_verified } = claimsOf.get(sub) ?? {};
          return { sub, ...(email === undefined ? {} : { email }), ...(email_verified === undefined ? {} : { email_verified }) };
        },
      }),
      // Consent is not what these tests are about: grant what was asked.
      loadExistingGrant: async (ctx) => {
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
        grant.addOIDCScope(String(ctx.oidc.params!.scope));
        await grant.save();
        return grant;
      },
    };
  }

  function createProvider(key: ReturnType<typeof signingKey>): Provider {
    const provider = new Provider(issuer, configuration(key));
    provider.use(async (ctx, next) => {
      if (ctx.method === 'GET' && ctx.path === '/jwks') upstream.jwksRequests++;
      if (ctx.method === 'GET' && /^\/interaction\/[^/]+$/.test(ctx.path)) {
        await provider.interactionDetails(ctx.req, ctx.res);
        const result = upstream.mode === 'deny' ? { error: 'access_denied', error_description: 'The person cancelled the sign-in.' } : { login: { accountId: upstream.user.sub } };
        claimsOf.set(upstream.user.sub, { ...upstream.user });
        ctx.respond = false;
        await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
        return;
      }
      await next();
      if (options.withoutIss) {
        const location = ctx.response.get('location');
        if (location && /^https?:/.test(location)) {
          const url = new URL(location);
          url.searchParams.delete('iss');
          ctx.redirect(url.href);
        }
        if (ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object') {
          delete (ctx.body as Record<string, unknown>).authorization_response_iss_parameter_supported;
        }
      }
      const body = ctx.body as { id_token?: unknown } | undefined;
      if (upstream.tamperIdTokens && ctx.path === '/token' && typeof body?.id_token === 'string') {
        body.id_token = tampered(body.id_token, upstream.tamperIdTokens);
      }
    });
    return provider;
  }

  /** Answers with a provider signing with `key`; its keep-alive connections are dropped, as by a restart. */
  function serve(key: ReturnType<typeof signingKey>) {
    http.removeAllListeners('request');
    http.on('request', createProvider(key).callback());
    http.closeAllConnections();
  }

  let generation = 1;
  let key = signingKey(`upstream-${generation}`);
  serve(key);
  upstream.rotateKeys = async () => {
    generation++;
    key = signingKey(`upstream-${generation}`);
    serve(key);
  };
  upstream.register = (clientId, redirectUri) => {
    const client = options.clients.find((c) => c.client_id === clientId);
    if (!client) throw new Error(`no client ${clientId} at this upstream`);
    client.redirect_uris.push(redirectUri);
    serve(key);
  };
  upstream.stop = () =>
    new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections();
    });
  return upstream;
}

/**
 * The browser's trip through the upstream: from its authorization URL (where
 * Latchkey sent the browser) back to the redirect URI it answers with. The
 * upstream is another site, so it gets a cookie jar of its own.
 */
export async function visitUpstream(upstream: TestUpstream, authorizationUrl: string): Promise<string> {
  const page: Page = await new Browser(upstream.issuer).get(authorizationUrl);
  if (page.status !== 303 && page.status !== 302) throw new Error(`the upstream did not answer with a redirect: ${page.status} ${page.url}\n${page.html.slice(0, 500)}`);
  return page.url;
}
