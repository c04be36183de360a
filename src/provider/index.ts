/**
 * The oidc-provider instance: configuration, accounts and claims, and the
 * policy that sends a session back through the journey when it no longer
 * satisfies its login's user type (a factor turned on, another tenant's
 * client) or is below the level the request or the app asks for.
 */
import Provider, { interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../../config/index.ts';
import type { AccountStore, Client } from '../storage/accounts/port.ts';
import { forProvider, type AdapterBackend } from '../storage/adapter/port.ts';
import type { FactorRegistry } from '../factors/registry.ts';
import type { Logger } from '../log.ts';
import { STEP_UP_REASON, requiredRank } from './acr.ts';
import { SIGN_IN_SCOPES, clientMetadata, compareHashedClientSecrets } from './clients.ts';
import { API_SCOPES } from '../api/scopes.ts';
import { createClientSecrets } from '../crypto/client-secret.ts';
import { renderProviderError, renderLogout, renderLogoutSuccess } from './pages.ts';
import { respondWithError } from '../web/errors.ts';
import { clientAuthenticationRequired, notFound, unavailable } from '../errors.ts';
import { ANY_TENANT, clientFinder, type ClientFinder } from './account-client.ts';
import { endedBefore, issuedBefore, trackLoginGrants } from './revocation.ts';
import { fullName, userTypeOf } from '../names.ts';
import type { SessionStore } from '../storage/sessions/port.ts';
import { currentBrowser, outlived, sessionPolicyOf, trackSessions } from '../sessions/index.ts';
import type { Egress } from '../web/egress.ts';
import { SWITCH_PARAM } from '../interaction/switch.ts';

const OFFLINE_ACCESS = 'offline_access';

/** The provider's endpoints a public client may not call. */
const AUTHENTICATED_ONLY = new Set(['/token/introspection', '/token/revocation']);

const authenticates = (client: { clientAuthMethod?: string }) => !!client.clientAuthMethod && client.clientAuthMethod !== 'none';

type Session = NonNullable<KoaContextWithOIDC['oidc']['session']>;

export interface ProviderDeps {
  config: Config;
  accounts: AccountStore;
  adapter: AdapterBackend;
  /** The index of each login's sessions (`src/sessions`), kept as the provider saves and destroys sessions. */
  sessions: SessionStore;
  factors: FactorRegistry;
  /** The guard of outgoing requests: back-channel logouts and client key sets reach no special-use address. */
  egress: Egress;
  log: Logger;
  /** Which store an error says is unreachable, or null (see `Stores.unavailableStore`). */
  unavailableStore: (err: unknown) => string | null;
  /** The clock (epoch milliseconds) that ages a finished sign-in waiting to be resumed. */
  now?: () => number;
}

/** The scope → claims map. */
export const CLAIMS = {
  acr: null,
  amr: null,
  auth_time: null,
  sid: null,
  iss: null,
  // acr/amr ride on the openid scope so every ID token carries them.
  openid: ['sub', 'acr', 'amr', 'auth_time', 'tenant', 'user_type'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'tenant', 'user_type'],
};

export function createProvider({ config, accounts, adapter, sessions, factors, egress, log, unavailableStore, now = Date.now }: ProviderDeps): Provider {
  const findClient = clientFinder(accounts, config.issuer);
  const policy = interactionPolicy.base();
  const loginChecks = policy.get('login')!.checks;
  // oidc-provider's own acr checks want the session's acr to equal a requested value; levels here are
  // ordered, and a stronger one satisfies a request for a weaker one (the check below).
  loginChecks.remove('essential_acr');
  loginChecks.remove('essential_acrs');
  loginChecks.add(
    new interactionPolicy.Check('latchkey_policy', "the session does not satisfy the login's tenant or second-factor policy", async (ctx) =>
      (await sessionSatisfiesPolicy(ctx)) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT,
    ),
  );
  loginChecks.add(
    new interactionPolicy.Check(STEP_UP_REASON, 'the session is below the authentication level the request or the application asks for', (ctx) =>
      sessionReachesRequest(ctx) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT,
    ),
  );
  // Before the interaction stores the request's parameters (no session yet); `loadExistingGrant` does it with one.
  policy.get('login')!.checks.add(
    new interactionPolicy.Check('latchkey_offline_access', 'a first-party client keeps the offline_access it asked for', async (ctx) => {
      await keepFirstPartyOfflineAccess(ctx);
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }),
  );

  /**
   * oidc-provider drops a requested `offline_access` unless the request also
   * says `prompt=consent` (OpenID Connect Core 1.0, section 11: a consent page
   * must ask for it). A first-party client has no consent page: it keeps the
   * scope as it asked for it. (A pushed authorization request was filtered
   * when it was pushed; it needs `prompt=consent`.)
   */
  async function keepFirstPartyOfflineAccess(ctx: KoaContextWithOIDC): Promise<void> {
    const { params, client, route } = ctx.oidc;
    if (route !== 'authorization' || !params || !client?.grantTypeAllowed('refresh_token')) return;
    const raw = ctx.method === 'POST' ? (ctx.oidc.body as { scope?: unknown } | undefined)?.scope : ctx.query.scope;
    if (typeof raw !== 'string' || !raw.split(' ').includes(OFFLINE_ACCESS)) return;
    const scopes = typeof params.scope === 'string' ? params.scope.split(' ') : [];
    if (scopes.includes(OFFLINE_ACCESS) || (client.scope && !client.scope.split(' ').includes(OFFLINE_ACCESS))) return;
    if (!(await findClient(client.clientId))?.firstParty) return;
    params.scope = [...scopes, OFFLINE_ACCESS].join(' ');
  }

  /**
   * Resuming a finished sign-in has already put its login into the session
   * (with `ts`, the session's sign-in time), so it is checked like any session;
   * a refused one is taken out again, or it would stay as a single sign-on.
   */
  async function sessionSatisfiesPolicy(ctx: KoaContextWithOIDC): Promise<boolean> {
    const { session, result } = ctx.oidc;
    if (!session?.accountId) return true;
    if (result?.login && heldTooLong(ctx)) {
      forgetLogin(session);
      return false;
    }
    const verdict = await loginSatisfiesPolicy(ctx, session);
    // A dead session is forgotten whatever the request: kept, this request's save would
    // count as a use (its idle clock starts again) and the next `/auth` would sign in.
    if (verdict === 'ended' || (verdict === 'refused' && result?.login)) forgetLogin(session);
    return verdict === 'met';
  }

  /**
   * A sign-in resumed long after it finished: counted from when the journey
   * finished (`finishedAt`), not from `ts`, which a step-up or switch keeps at
   * the session's earlier sign-in. A result without `finishedAt` (written
   * before it was recorded) counts from `ts`. The consent's resume carries the
   * same login on (unchanged), applied at the earlier resume already.
   */
  function heldTooLong(ctx: KoaContextWithOIDC): boolean {
    const login = ctx.oidc.result?.login;
    const finished = finishedAtOf(login);
    if (typeof login?.ts !== 'number' || finished === null) return true;
    const carried = finishedAtOf((ctx.oidc.entities.Interaction?.lastSubmission as { login?: JourneyLogin } | undefined)?.login);
    if (carried === finished) return false;
    return now() / 1000 - finished > config.ttl.signInResult;
  }

  /** The journey's login result (`finish` in src/interaction/router.ts), as far as its times go. */
  type JourneyLogin = { ts?: unknown; finishedAt?: unknown };

  /** When a login result's journey finished (epoch seconds), null when it tells neither that nor `ts`. */
  function finishedAtOf(login: JourneyLogin | undefined): number | null {
    const at = typeof login?.finishedAt === 'number' ? login.finishedAt : login?.ts;
    return typeof at === 'number' && Number.isFinite(at) ? at : null;
  }

  /** The level the request and its client ask for is met by the session's (no session: the journey decides). */
  function sessionReachesRequest(ctx: KoaContextWithOIDC): boolean {
    const { session, client, params } = ctx.oidc;
    if (!session?.accountId || !client || !params) return true;
    const required = requiredRank(params, client.defaultAcrValues as string[] | undefined, factors.acrValues());
    return factors.rank(session.acr) >= required;
  }

  /**
   * `met`: the session signs this request in. `refused`: not for this request (another
   * tenant's client, a level it has not reached), but it lives on. `ended`: it can sign
   * nothing in any more (the login gone, disabled or reset, its lifetime or idle timeout past).
   */
  async function loginSatisfiesPolicy(ctx: KoaContextWithOIDC, session: Session): Promise<'met' | 'refused' | 'ended'> {
    const { client } = ctx.oidc;
    const [login, registered, notBefore] = await Promise.all([
      accounts.getLogin(session.accountId!),
      client ? findClient(client.clientId) : null,
      accounts.loginSessionsNotBefore(session.accountId!),
    ]);
    if (!login || login.disabled) return 'ended';
    // A reset or a changed password ended this login's sessions (docs/account.md).
    if (endedBefore(notBefore, session.loginTs)) return 'ended';
    if (!registered || (registered.tenant !== ANY_TENANT && registered.tenant !== login.tenant)) return 'refused';
    const [tenant, record] = await Promise.all([accounts.getTenant(login.tenant), session.uid ? sessions.getSession(session.uid) : null]);
    const type = tenant ? userTypeOf(tenant, login.userType) : undefined;
    if (!tenant || !type) return 'ended';
    // The tenant's session lifetime and idle timeout (docs/relying-parties.md#session-lifetime).
    if (outlived(sessionPolicyOf(tenant), { signedInAt: (session.loginTs ?? 0) * 1000, lastSeenAt: record?.lastSeenAt.getTime() ?? null }, now())) return 'ended';
    // The type's level or a stronger one the person enrolled (and still has).
    const needed = factors.rank(factors.get(type.secondFactor).acr);
    return factors.rank(session.acr) >= needed && factors.all().some((f) => factors.rank(f.acr) >= needed && f.stage(login) !== 'enroll') ? 'met' : 'refused';
  }

  const configuration: Configuration = {
    adapter: (name: string) => {
      if (name === 'Client') return clientAdapter(findClient);
      if (name === 'Grant') return trackLoginGrants(adapter.factory(name), accounts);
      if (name === 'Session') return trackSessions(adapter.factory(name), sessions, { now, tenantOf: async (id) => (await accounts.getLogin(id))?.tenant ?? null });
      return forProvider(adapter.factory(name));
    },
    acrValues: factors.acrValues(),
    claims: CLAIMS,
    conformIdTokenClaims: false,
    // The account pages' switch to another login of the same person (src/interaction/switch.ts).
    extraParams: [SWITCH_PARAM],
    cookies: {
      keys: config.keys.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    jwks: config.keys.jwks as unknown as Configuration['jwks'],
    features: {
      devInteractions: { enabled: false },
      // Sent through the session store's queue, not at once (src/sessions).
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource: renderLogout, postLogoutSuccessSource: renderLogoutSuccess },
      revocation: {
        enabled: true,
        // A public client is refused (its answer is set by the middleware below); a confidential one revokes its own tokens only.
        allowedPolicy: async (_ctx, client, token) => authenticates(client) && token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        // oidc-provider's default answers any confidential client about any token (its docs ask to change
        // it): a client learns about tokens of its own tenant's clients only, never another tenant's.
        allowedPolicy: async (_ctx, client, token) => {
          if (!authenticates(client)) return false;
          if (token.clientId === client.clientId) return true;
          const [caller, holder] = await Promise.all([findClient(client.clientId), token.clientId ? findClient(token.clientId) : null]);
          return !!caller && !!holder && caller.tenant !== ANY_TENANT && caller.tenant === holder.tenant;
        },
      },
      clientCredentials: { enabled: true },
      // An essential `acr` in `claims` asks for a level, like `acr_values`.
      claimsParameter: { enabled: true },
      userinfo: { enabled: true },
    },
    // oidc-provider's outgoing requests (back-channel logouts, a client's key set) go through the one guard, in
    // place of the provider's own dispatcher: special-use addresses only where OUTBOUND_ALLOW opens them.
    fetch: (url, options) => egress.fetch(url, options),
    pkce: { required: () => true },
    responseTypes: ['code'],
    // The management API's scopes are known too, so a client asks only for those it was granted (`clientMetadata`).
    scopes: [...SIGN_IN_SCOPES, ...API_SCOPES],
    // A refresh token only with offline_access granted: on the consent page, or by a first-party client's request.
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has(OFFLINE_ACCESS),
    // Every refresh token works once, also in parallel (the adapters' consume): each refresh issues the next one,
    // and oidc-provider revokes the grant when a used one comes back (a stolen copy).
    rotateRefreshToken: true,
    interactions: {
      policy,
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    loadExistingGrant: async (ctx) => {
      await keepFirstPartyOfflineAccess(ctx);
      const clientId = ctx.oidc.client!.clientId;
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(clientId);
      // A grant revoked since (an owner's reset, docs/account.md) is gone: a first-party client gets a new one below.
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      const registered = await findClient(clientId);
      if (!registered?.firstParty || !ctx.oidc.session?.accountId || (existing && existing.accountId !== ctx.oidc.session.accountId)) return existing;
      // First-party clients skip the consent screen: grant what they ask for (scopes, and claims by the `claims`
      // parameter), also what is new since the last time.
      const grant = existing ?? new ctx.oidc.provider.Grant({ clientId, accountId: ctx.oidc.session.accountId });
      const scope = String(ctx.oidc.params!.scope ?? 'openid');
      const claims = [...ctx.oidc.requestParamClaims];
      const granted = new Set(grant.getOIDCScopeEncountered().split(' '));
      const grantedClaims = new Set(grant.getOIDCClaimsEncountered());
      if (existing && scope.split(' ').every((s) => granted.has(s)) && claims.every((c) => grantedClaims.has(c))) return existing;
      grant.addOIDCScope(scope);
      if (claims.length) grant.addOIDCClaims(claims);
      await grant.save();
      return grant;
    },
    findAccount: async (ctx, sub, token) => {
      // A code is exchanged only while its session lives: a request that was running when the session was
      // signed out may have issued it under a grant the sign-out never saw (docs/account.md).
      const codeSession = token?.kind === 'AuthorizationCode' && typeof token.sessionUid === 'string' ? ctx.oidc.provider.Session.findByUid(token.sessionUid) : null;
      // Both at once: with the account cache their two token checks share one Redis round trip.
      const [login, notBefore, session] = await Promise.all([accounts.getLogin(sub), token ? accounts.loginSessionsNotBefore(sub) : null, codeSession]);
      if (!login || login.disabled) return undefined;
      if (codeSession && session?.accountId !== sub) return undefined;
      // A code or token from a sign-in before an owner's reset (docs/account.md).
      const authTime = (token as { authTime?: number } | undefined)?.authTime;
      if (token && (authTime === undefined ? issuedBefore(notBefore, token.iat) : endedBefore(notBefore, authTime))) return undefined;
      return {
        accountId: login.id,
        claims: async () => ({
          sub: login.id,
          email: login.email,
          email_verified: true,
          name: fullName(login),
          given_name: login.firstName,
          family_name: login.lastName,
          tenant: login.tenant,
          user_type: login.userType,
        }),
      };
    },
    // A resource server learns an access token's level by introspection (RFC 9470): the sign-in's acr, amr and
    // auth_time travel with it from the code or refresh token it is issued for (a client's own token has none).
    extraTokenClaims: (ctx, token) => {
      if (token.kind !== 'AccessToken') return undefined;
      const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken;
      if (!source?.acr) return undefined;
      return { acr: source.acr, ...(source.amr ? { amr: source.amr } : {}), ...(source.authTime ? { auth_time: source.authTime } : {}) };
    },
    ttl: {
      Interaction: config.ttl.interaction,
      Session: config.ttl.session,
      AuthorizationCode: config.ttl.authorizationCode,
      AccessToken: config.ttl.accessToken,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      Grant: config.ttl.grant,
      ClientCredentials: config.ttl.clientCredentials,
    },
    renderError: renderProviderError,
    clientBasedCORS: () => false,
  };

  const provider = new Provider(config.issuer, configuration);
  compareHashedClientSecrets(provider, createClientSecrets(config.keys.pepper));
  // The app's first middleware has already reduced X-Forwarded-For to the client's address (src/web/proxy.ts).
  provider.proxy = config.trustProxy !== false;
  provider.maxIpsCount = 1;
  // The browser and address a saved session is listed with (src/sessions).
  provider.use((ctx, next) => currentBrowser.run({ userAgent: ctx.get('user-agent') || null, ip: ctx.ip || null }, next));
  provider.on('server_error', (ctx, err) => {
    const store = unavailableStore(err);
    if (store) ctx.state.unavailableStore = store;
    else log.error({ err }, 'provider server_error');
  });
  // Our answers for what the provider leaves unanswered, a caller it must refuse, and a store outage inside it (a 503, not a 500).
  provider.use(async (ctx, next) => {
    await next();
    // A path (or method, e.g. POST /auth) nobody routes: our 404 page or JSON error, not Koa's bare text.
    if (ctx.status === 404 && ctx.body == null) return respondWithError(ctx, notFound());
    // Anyone can name a public client: introspection and revocation need a caller that proved who it is. Their
    // policies above have already answered nothing and changed nothing; the answer says why, alike for every token.
    if (AUTHENTICATED_ONLY.has(ctx.path) && ctx.oidc?.client && !authenticates(ctx.oidc.client)) return respondWithError(ctx, clientAuthenticationRequired(), { json: true });
    const store = ctx.state.unavailableStore as string | undefined;
    if (ctx.status !== 500 || !store) return;
    log.warn({ store, path: ctx.path }, 'store unavailable');
    // The provider has answered with its error page or JSON error: the same kind, now saying "try again".
    respondWithError(ctx, unavailable(store), { json: !ctx.response.is('html') });
  });
  return provider;
}

/** Undoes what resuming a sign-in wrote into the session, so the browser signs in again. */
function forgetLogin(session: Session): void {
  for (const key of ['accountId', 'loginTs', 'amr', 'acr', 'transient', 'authorizations'] as const) delete (session as unknown as Record<string, unknown>)[key];
}

/** oidc-provider reads clients through this adapter, so an imported client works without a restart. */
function clientAdapter(findClient: ClientFinder) {
  const readOnly = async () => undefined;
  return {
    find: async (id: string) => {
      const client: Client | null = await findClient(id);
      return client ? clientMetadata(client) : undefined;
    },
    upsert: readOnly,
    findByUid: readOnly,
    findByUserCode: readOnly,
    consume: readOnly,
    destroy: readOnly,
    revokeByGrantId: readOnly,
  };
}
