/**
 * What the account pages' route modules share: their dependencies, the
 * signed-in login as read from the store on each request, the CSRF and
 * origin checks of every POST, the re-authentication window, and rendering.
 *
 * Every request re-reads the login and its tenant: owner-only pages check
 * `tenant.owners` each time, and every POST checks the origin and
 * the session's CSRF token before anything else.
 */
import type { RouteDeps } from '../services.ts';
import type { Context } from 'koa';
import type { FactorRequest } from '../factors/types.ts';
import type { Login, Tenant } from '../storage/accounts/port.ts';
import { csrfRefused, forbidden } from '../errors.ts';
import { fullName, loginLabel } from '../names.ts';
import { checkCsrf } from '../web/forms.ts';
import { requestInfo, type RequestInfo } from '../web/request.ts';
import { localeOf, sendPage } from '../web/views.ts';
import { adminPeople, type Actor, type AdminPeople } from '../admin/people.ts';
import { endedBefore } from '../provider/revocation.ts';
import { accountCookies, type AccountCookies, type AccountSession } from './session.ts';

export type AccountDeps = Pick<
  RouteDeps,
  'provider' | 'sessions' | 'config' | 'accounts' | 'links' | 'counters' | 'mailer' | 'hasher' | 'factors' | 'audit' | 'limiter' | 'browsers' | 'now' | 'egress'
>;

/** The signed-in login, as read from the store on this request. */
export interface Signed {
  session: AccountSession;
  login: Login;
  tenant: Tenant;
  isOwner: boolean;
  /** The identity's other logins that can sign in (any tenant): the header offers to switch to them. */
  siblings: { login: Login; tenant: Tenant }[];
}

/** What the route modules share. */
export interface AccountKit {
  deps: AccountDeps;
  cookies: AccountCookies;
  /** The owner operations (`src/admin/people.ts`): the pages only read the form and show the result. */
  people: AdminPeople;
  /** The signed-in owner as the actor of an operation, from this request. */
  actor(ctx: Context, signed: Signed): Actor;
  /** The signed-in login, or null after redirecting a GET to the sign-in (a POST without a session is refused). */
  signedIn(ctx: Context): Promise<Signed | null>;
  /**
   * `signedIn` for a state-changing POST: same origin and the session's CSRF
   * token, or 403 before anything else. Without a valid session: 403, or null
   * when `optional` (sign-out).
   */
  signedInForm(ctx: Context, optional?: boolean): Promise<Signed | null>;
  /** 403 unless the login owns its tenant. */
  requireOwner(signed: Signed): void;
  /**
   * `signedIn` (or with `form`, `signedInForm`) and then `requireOwner`; once
   * per request (the guard of `./owned.ts` asks first, the route again).
   */
  owner(ctx: Context, form?: boolean): Promise<Signed | null>;
  /**
   * True when the last sign-in is recent enough for a sensitive change;
   * otherwise redirects to sign in again (password and factor), back to `returnTo`.
   */
  fresh(ctx: Context, signed: Signed, returnTo: string): boolean;
  render(ctx: Context, view: string, signed: Signed | null, locals?: Record<string, unknown>, status?: number): void;
  factorRequest(ctx: Context, signed: Signed, body: Record<string, string>, draft?: Record<string, unknown>): FactorRequest;
  requestInfo(ctx: Context): RequestInfo;
}

/** Where `owner` keeps the signed-in owner for the rest of the request. */
const OWNER = 'latchkeyOwner';

const RETURN_BASE = 'http://return-to.invalid';
const RETURN_PATH = /^\/account(\/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&%+-]*)?$/;

/**
 * Paths the sign-in may return to: the account pages only. The path is
 * resolved first (dot segments, encoded or not, as a browser resolves them),
 * so what is checked is where the browser would really go.
 */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string' || value.length > 1024 || !value.startsWith('/') || value.includes('//') || value.includes('\\')) return '/account';
  let url: URL;
  try {
    url = new URL(value, RETURN_BASE);
  } catch {
    return '/account';
  }
  const resolved = `${url.pathname}${url.search}`;
  return url.origin === RETURN_BASE && !url.hash && RETURN_PATH.test(resolved) && !resolved.includes('//') ? resolved : '/account';
}

/** The kit the route modules share, over `deps`. */
export function createAccountKit(deps: AccountDeps): AccountKit {
  const { config, accounts, provider } = deps;
  const cookies = accountCookies({ secure: config.issuer.startsWith('https:'), now: deps.now });
  const origin = new URL(config.issuer).origin;

  async function load(ctx: Context): Promise<Signed | null> {
    const session = cookies.session(ctx);
    if (!session) return null;
    const [login, notBefore, providerSession] = await Promise.all([
      accounts.getLogin(session.sub),
      accounts.loginSessionsNotBefore(session.sub),
      provider.Session.findByUid(session.sid),
    ]);
    // The login is gone or disabled, moved, reset by its owner, or its provider session ended (signed out elsewhere).
    const valid =
      login &&
      !login.disabled &&
      login.tenant === session.tenant &&
      !endedBefore(notBefore, Math.max(session.authTime, session.keptAt ?? 0)) &&
      providerSession?.accountId === login.id;
    const tenant = valid ? await accounts.getTenant(login.tenant) : null;
    // The tenant's session lifetime and idle timeout hold here too; a page view is a use of the session.
    const live = !!tenant && (await deps.sessions.stillLive(tenant, session.sid, providerSession!.loginTs ?? 0));
    if (!login || !valid || !tenant || !live) {
      cookies.clear(ctx);
      return null;
    }
    ctx.state.tenantName = tenant.name;
    const others = (await accounts.listLoginsForEmailAllTenants(login.email)).filter((l) => l.id !== login.id && !l.disabled);
    const tenants = new Map<string, Tenant | null>([[tenant.id, tenant]]);
    for (const l of others) if (!tenants.has(l.tenant)) tenants.set(l.tenant, await accounts.getTenant(l.tenant));
    const siblings = others.flatMap((l) => (tenants.get(l.tenant) ? [{ login: l, tenant: tenants.get(l.tenant)! }] : []));
    return { session, login, tenant, isOwner: tenant.owners.includes(login.id), siblings };
  }

  function toSignIn(ctx: Context) {
    const returnTo = safeReturnTo(ctx.originalUrl);
    ctx.redirect(`/account/signin?return_to=${encodeURIComponent(returnTo)}`);
  }

  /**
   * The browser's word on where a form came from. Under our `Referrer-Policy:
   * no-referrer` a browser sends `Origin: null` even for our own forms, so a
   * "null" origin passes only when `Sec-Fetch-Site` says same-origin.
   */
  function sameOrigin(ctx: Context): boolean {
    const site = ctx.get('sec-fetch-site');
    if (site && site !== 'same-origin' && site !== 'none') return false;
    const given = ctx.get('origin');
    if (!given || given === origin) return true;
    return given === 'null' && site === 'same-origin';
  }

  const kit: AccountKit = {
    deps,
    cookies,
    people: adminPeople(deps),
    actor: (ctx, signed) => ({ tenant: signed.tenant, by: { login: signed.login.id }, ...requestInfo(ctx), lang: localeOf(ctx).lang }),
    async signedIn(ctx) {
      const signed = await load(ctx);
      if (!signed) toSignIn(ctx);
      return signed;
    },
    async signedInForm(ctx, optional = false) {
      if (!sameOrigin(ctx)) throw csrfRefused();
      const signed = await load(ctx);
      if (!signed && optional) return null;
      // Without a session there is no token to match: refused like a forged form, and nothing changes.
      if (!signed) throw csrfRefused();
      checkCsrf(signed.session.csrf, ctx.request.body);
      return signed;
    },
    requireOwner(signed) {
      if (!signed.isOwner) throw forbidden('errors.ownerOnly');
    },
    async owner(ctx, form = false) {
      // A form's check (origin, CSRF token) is never skipped for one made without it.
      const known = ctx.state[OWNER] as { signed: Signed; form: boolean } | undefined;
      if (known && (known.form || !form)) return known.signed;
      const signed = form ? await kit.signedInForm(ctx) : await kit.signedIn(ctx);
      if (signed) kit.requireOwner(signed);
      if (signed) ctx.state[OWNER] = { signed, form };
      return signed;
    },
    fresh(ctx, signed, returnTo) {
      if (deps.now() / 1000 - signed.session.authTime <= config.account.reauthSeconds) return true;
      ctx.redirect(`/account/signin?reauth=1&return_to=${encodeURIComponent(safeReturnTo(returnTo))}`);
      ctx.status = 303;
      return false;
    },
    render(ctx, view, signed, locals = {}, status = 200) {
      sendPage(
        ctx,
        view,
        {
          ...(signed
            ? {
                csrf: signed.session.csrf,
                me: {
                  id: signed.login.id,
                  name: fullName(signed.login),
                  label: loginLabel(signed.login, signed.tenant),
                  isOwner: signed.isOwner,
                  switchTo: signed.siblings.map((s) => ({ id: s.login.id, label: loginLabel(s.login, s.tenant, s.tenant.id !== signed.tenant.id) })),
                },
                tenantName: signed.tenant.name,
              }
            : {}),
          ...locals,
        },
        status,
      );
    },
    factorRequest(ctx, signed, body, draft = {}) {
      return { tenant: signed.tenant, login: signed.login, body, draft, ...requestInfo(ctx) };
    },
    requestInfo,
  };
  return kit;
}
