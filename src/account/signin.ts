/**
 * Signing in to the account pages: an authorization request of the built-in
 * account client (code + PKCE) through the provider's own journey, and its
 * callback, which redeems the code in process (no HTTP round trip to
 * ourselves) with the checks the token endpoint makes. Sign-out ends the
 * account session and the provider session it came from.
 */
import { createHash, randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import { badRequest } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { SWITCH_PARAM, signSwitchTicket } from '../interaction/switch.ts';
import { ACCOUNT_CLIENT_ID, accountRedirectUri } from '../provider/account-client.ts';
import { endedBefore } from '../provider/revocation.ts';
import { newCsrfToken } from './session.ts';
import { safeReturnTo, type AccountKit } from './kit.ts';
import { constantTimeEqual as equal } from '../crypto/equal.ts';
import { EMAIL_MAX } from '../email.ts';

const signInExpired = () => badRequest('errors.account.signInExpired');

export function signInRoutes(router: Router, kit: AccountKit) {
  const { deps, cookies } = kit;
  const { provider, config, accounts, audit } = deps;
  const redirectUri = accountRedirectUri(config.issuer);

  /** A new authorization request of the account client (PKCE, state), and the pending sign-in that its callback checks. */
  function authorization() {
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(24).toString('base64url');
    const params = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: redirectUri,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
    });
    return { params, verifier, state };
  }

  router.get('/signin', async (ctx) => {
    const returnTo = safeReturnTo(ctx.query.return_to);
    const reauth = ctx.query.reauth === '1';
    const current = reauth ? cookies.session(ctx) : null;
    const { params, verifier, state } = authorization();
    if (reauth) {
      // Password and second factor again, whatever the provider session says.
      params.set('prompt', 'login');
      params.set('max_age', '0');
      const login = current ? await accounts.getLogin(current.sub) : null;
      if (login) params.set('login_hint', login.email);
    } else if (typeof ctx.query.login_hint === 'string' && ctx.query.login_hint.length <= EMAIL_MAX) {
      // An invitation's "Continue to sign in": the email is filled in.
      params.set('login_hint', ctx.query.login_hint);
    }
    cookies.setPending(ctx, { state, verifier, returnTo: reauth ? withNotice(returnTo, 'reauthenticated') : returnTo });
    ctx.redirect(`/auth?${params}`);
  });

  /**
   * Switching to another login of the same person (the header's form): a
   * sign-in with a ticket for the browser's session (`src/interaction/switch.ts`),
   * so the password is not asked again; the other login's own factor is.
   */
  router.post('/switch', async (ctx) => {
    const signed = await kit.signedInForm(ctx);
    if (!signed) return;
    const { login: targetId } = formFields(ctx.request.body, ['login'], ['csrf'], 256);
    const target = signed.siblings.find((s) => s.login.id === targetId);
    if (!target) throw badRequest('errors.account.noSuchLogin');
    const { params, verifier, state } = authorization();
    params.set('prompt', 'login');
    params.set(SWITCH_PARAM, signSwitchTicket(config.keys.cookieKeys, { sid: signed.session.sid, from: signed.login.id, to: target.login.id }, deps.now()));
    cookies.setPending(ctx, { state, verifier, returnTo: '/account' });
    ctx.redirect(`/auth?${params}`);
    ctx.status = 303;
  });

  router.get('/callback', async (ctx) => {
    const pending = cookies.pending(ctx);
    const { state, code, error } = ctx.query;
    if (!pending || typeof state !== 'string' || !equal(state, pending.state)) throw signInExpired();
    cookies.setPending(ctx, { ...pending, state: randomBytes(24).toString('base64url') });
    if (typeof error === 'string') {
      return kit.render(ctx, 'account/signin-failed', null, { cancelled: error === 'access_denied', returnTo: pending.returnTo }, 400);
    }
    if (typeof code !== 'string' || code.length > 512) throw badRequest('errors.account.noCode');
    const found = await provider.AuthorizationCode.find(code);
    const challenge = createHash('sha256').update(pending.verifier).digest('base64url');
    if (
      !found ||
      found.clientId !== ACCOUNT_CLIENT_ID ||
      (found as { consumed?: unknown }).consumed ||
      found.redirectUri !== redirectUri ||
      found.codeChallengeMethod !== 'S256' ||
      !found.codeChallenge ||
      !equal(found.codeChallenge, challenge) ||
      !found.accountId ||
      !found.sessionUid
    ) {
      throw signInExpired();
    }
    await found.consume();
    const login = await accounts.getLogin(found.accountId);
    const authTime = found.authTime ?? Math.floor(deps.now() / 1000);
    if (!login || login.disabled || endedBefore(await accounts.loginSessionsNotBefore(login.id), authTime)) throw signInExpired();
    cookies.clear(ctx);
    cookies.setSession(ctx, {
      sub: login.id,
      tenant: login.tenant,
      authTime,
      acr: found.acr ?? '',
      amr: found.amr ?? [],
      sid: found.sessionUid,
      csrf: newCsrfToken(),
      createdAt: deps.now(),
    });
    await audit.record({ type: 'account.signin', outcome: 'success', tenant: login.tenant, login: login.id, ...kit.requestInfo(ctx), detail: { acr: found.acr, amr: found.amr } });
    ctx.redirect(pending.returnTo);
  });

  router.post('/signout', async (ctx) => {
    const signed = await kit.signedInForm(ctx, true);
    cookies.clear(ctx);
    if (signed) {
      // The provider session ends with its apps' grants, and each app is told (back-channel logout).
      if (!(await kit.deps.sessions.endSession(signed.login.id, signed.session.sid))) {
        const session = await provider.Session.findByUid(signed.session.sid);
        if (session?.accountId === signed.login.id) await session.destroy();
      }
      await audit.record({ type: 'account.signout', outcome: 'success', tenant: signed.tenant.id, login: signed.login.id, ...kit.requestInfo(ctx) });
    }
    ctx.redirect('/account/signed-out');
    ctx.status = 303;
  });

  router.get('/signed-out', async (ctx) => {
    kit.render(ctx, 'account/signed-out', null);
  });
}

export function withNotice(path: string, notice: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}notice=${notice}`;
}
