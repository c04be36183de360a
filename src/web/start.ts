/**
 * `GET /`: what Latchkey is, and a real sign-in with the demo client. Latchkey
 * plays its own relying party here (openid-client), so the page can show the
 * ID token's claims — `amr` and `acr` included — on return.
 */
import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import * as oidc from 'openid-client';
import type { Config } from '../../config/index.ts';
import type { AccountStore } from '../storage/accounts/port.ts';
import { DEMO } from '../demo.ts';
import { badRequest } from '../errors.ts';
import { sendPage } from './views.ts';
import { fullName } from '../names.ts';

const COOKIE = 'latchkey_demo';

export function startRouter({ config, accounts }: { config: Config; accounts: AccountStore }): Router {
  const router = new Router();
  let discovered: oidc.Configuration | null = null;

  // The demo client is public (PKCE only, src/demo.ts).
  async function demoClient() {
    const client = await accounts.getClient(DEMO.clientId);
    if (!client) return null;
    if (!discovered) {
      const options = config.issuer.startsWith('http:') ? { execute: [oidc.allowInsecureRequests] } : undefined;
      discovered = await oidc.discovery(new URL(config.issuer), DEMO.clientId, undefined, oidc.None(), options);
    }
    return discovered;
  }

  const redirectUri = `${config.issuer}/demo/callback`;
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, signed: true, secure: config.issuer.startsWith('https:'), maxAge: 600_000 };

  router.get('/', async (ctx) => {
    const demo = await accounts.getClient(DEMO.clientId);
    // The factor each demo person has now: the owner may have changed a user type's since the seed.
    const tenant = demo ? await accounts.getTenant(DEMO.tenant) : null;
    const people = DEMO.people.map((p) => ({
      email: p.email,
      logins: p.logins.map((l) => ({ id: l.id, name: fullName(l), userType: l.userType, factor: tenant?.userTypes.find((t) => t.id === l.userType)?.secondFactor ?? 'none' })),
    }));
    sendPage(ctx, 'start', {
      demo: !!demo,
      people,
      password: DEMO.password,
      issuer: config.issuer,
      mailToLog: !config.mail.smtpUrl && config.mail.enabled,
      notice: ctx.query.notice === 'cancelled' ? 'start.cancelled' : null,
    });
  });

  router.get('/demo/start', async (ctx) => {
    const configuration = await demoClient();
    if (!configuration) throw badRequest('errors.demo.noClient');
    const verifier = oidc.randomPKCECodeVerifier();
    const state = randomBytes(16).toString('base64url');
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      // "Sign in as someone else": the login page even while a session is there.
      ...(ctx.query.again === '1' ? { prompt: 'login' } : {}),
    });
    ctx.cookies.set(COOKIE, JSON.stringify({ verifier, state }), cookieOptions);
    ctx.redirect(url.href);
  });

  router.get('/demo/callback', async (ctx) => {
    // "Cancel" on the sign-in: back to the start page, which says so plainly.
    if (ctx.query.error === 'access_denied') {
      ctx.cookies.set(COOKIE, null, cookieOptions);
      ctx.redirect('/?notice=cancelled');
      return;
    }
    const configuration = await demoClient();
    const raw = ctx.cookies.get(COOKIE, { signed: true });
    if (!configuration || !raw) throw badRequest('errors.demo.expired');
    const { verifier, state } = JSON.parse(raw) as { verifier: string; state: string };
    ctx.cookies.set(COOKIE, null, cookieOptions);
    let claims: Record<string, unknown> | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, new URL(ctx.originalUrl, config.issuer), { pkceCodeVerifier: verifier, expectedState: state });
      claims = tokens.claims() as Record<string, unknown> | undefined;
    } catch (err) {
      throw badRequest('errors.demo.failed', { reason: (err as Error).message });
    }
    sendPage(ctx, 'demo-result', { claims, claimsJson: JSON.stringify(claims, null, 2) });
  });

  return router;
}
