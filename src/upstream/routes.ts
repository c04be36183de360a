/**
 * Sign-in with a tenant's upstream OpenID provider (docs/upstream.md):
 *
 *   POST /interaction/:uid/upstream                  the login page's button → the upstream
 *   GET  /upstream/:handle/callback                  the redirect URI → back under the interaction's path
 *   GET  /interaction/:uid/upstream/:handle/callback the answer, checked and redeemed → the journey
 *                                                (or, for an account not linked yet, → confirm)
 *   GET|POST /interaction/:uid/upstream/confirm      the person confirms the first link with the
 *                                                    identity's password → the journey
 *
 * Every failure renders a page with the way back to the login page and writes
 * an audit event; none is a 500.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import type { AccountStore, Tenant, Upstream } from '../storage/accounts/port.ts';
import type { Audit } from '../audit.ts';
import type { Hasher } from '../crypto/password.ts';
import type { Limiter } from '../limits.ts';
import type { KnownBrowsers } from '../known-browsers.ts';
import { AMR } from '../provider/acr.ts';
import { LatchkeyError, badRequest, invalidCredentials, upstreamLinkUnconfirmable, upstreamNoAccount, upstreamState } from '../errors.ts';
import { setRetryAfter } from '../web/errors.ts';
import { formFields } from '../web/forms.ts';
import { sendPage } from '../web/views.ts';
import { readProgress, saveProgress, type Interaction, type PendingUpstreamLink, type Progress } from '../interaction/journey.ts';
import type { JourneyPlugin, JourneySteps } from '../interaction/router.ts';
import type { UpstreamAccount, UpstreamClient } from './client.ts';
import { upstreamLinks } from './links.ts';
import { requestInfo } from '../web/request.ts';
import { constantTimeEqual } from '../crypto/equal.ts';

export interface UpstreamDeps {
  accounts: AccountStore;
  audit: Audit;
  client: UpstreamClient;
  hasher: Hasher;
  limiter: Limiter;
  browsers: KnownBrowsers;
}

const PASSWORD_MAX = 1024;

const UPSTREAM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** `{uid}.{random}`, see `UpstreamClient.begin`. */
const STATE = /^([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9_-]{16,128}$/;

/** Errors shown on the upstream page (with the way back); anything else goes to the error handler. */
const SHOWN = new Set([
  'upstream_unavailable',
  'upstream_error',
  'upstream_invalid_response',
  'upstream_state',
  'upstream_no_account',
  'upstream_link_unconfirmable',
  'no_login_for_client',
]);

const sameState = (given: unknown, expected: string) => typeof given === 'string' && constantTimeEqual(given, expected);

/** The journey's first step by upstream provider: plugs into the interaction router. */
export function upstreamSignIn({ accounts, audit, client, hasher, limiter, browsers }: UpstreamDeps): JourneyPlugin {
  const links = upstreamLinks({ accounts, audit });
  return (router: Router, steps: JourneySteps) => {
    const record = (ctx: Context, tenant: Tenant | null, outcome: 'success' | 'failure', detail: Record<string, unknown>) =>
      audit.record({ type: 'signin.upstream', outcome, tenant: tenant?.id ?? null, ...steps.requestInfo(ctx), detail });

    async function refuse(ctx: Context, interaction: Interaction, tenant: Tenant, upstreamId: string, err: unknown, reason?: string) {
      if (!(err instanceof LatchkeyError) || !SHOWN.has(err.code)) throw err;
      await record(ctx, tenant, 'failure', { ...err.detail, upstream: upstreamId, reason: reason ?? err.code });
      sendPage(ctx, 'upstream-error', { uid: interaction.uid, error: err, code: err.code }, err.status);
    }

    /**
     * An account linked already goes on to the journey, in a tenant where its
     * identity has a login. One seen for the first time is matched by its
     * verified email to an identity with a login in this tenant, and waits
     * for the person to confirm it with that identity's password.
     */
    async function signInOrConfirm(ctx: Context, interaction: Interaction, tenant: Tenant, progress: Progress, upstream: Upstream, account: UpstreamAccount) {
      const linked = await accounts.findIdentityByUpstream(account.issuer, account.subject);
      if (linked) {
        await record(ctx, tenant, 'success', { upstream: upstream.id });
        return steps.firstStepPassed(ctx, interaction, tenant, progress, linked, AMR.federated);
      }
      const email = await account.email();
      if (!email.address || !email.verified) throw upstreamNoAccount(upstream.name, 'email_not_verified');
      // An identity without a login here is answered as no identity at all: an upstream asserts the email it likes
      // (its claims are whoever runs it), and must not learn which emails have an account in other tenants.
      const [identity, logins] = await Promise.all([accounts.findIdentityByEmail(email.address), steps.signInLogins(tenant, email.address)]);
      if (!identity || logins.length === 0) throw upstreamNoAccount(upstream.name, 'no_identity');
      if (!identity.passwordHash) throw upstreamLinkUnconfirmable(upstream.name);
      const upstreamLink: PendingUpstreamLink = { id: upstream.id, issuer: account.issuer, subject: account.subject, identityId: identity.id };
      await saveProgress(interaction, { ...progress, upstreamLink });
      ctx.redirect(`/interaction/${interaction.uid}/upstream/confirm`);
      ctx.status = 303;
    }

    /** The sign-in's pending link, its upstream and the identity it names; 400 when this sign-in has none. */
    async function pendingLink(tenant: Tenant, progress: Progress | undefined) {
      const pending = progress?.upstreamLink;
      const upstream = pending ? await accounts.getUpstream(tenant.id, pending.id) : null;
      const identity = pending ? await accounts.getIdentity(pending.identityId) : null;
      if (!pending || !upstream || !identity) throw badRequest('errors.signin.unexpectedStep');
      return { pending, upstream, identity };
    }

    const confirmPage = (ctx: Context, interaction: Interaction, progress: Progress, upstream: Upstream, email: string, error?: LatchkeyError) => {
      setRetryAfter(ctx, error);
      sendPage(ctx, 'upstream-confirm', { uid: interaction.uid, csrf: progress.csrf, provider: upstream.name, email, error }, error?.status ?? 200);
    };

    router.get('/upstream/confirm', async (ctx) => {
      const { interaction, tenant } = await steps.load(ctx, 'login');
      const progress = readProgress(interaction);
      const { upstream, identity } = await pendingLink(tenant, progress);
      confirmPage(ctx, interaction, progress!, upstream, identity.email);
    });

    router.post('/upstream/confirm', async (ctx) => {
      const { interaction, tenant, progress } = await steps.loadForPost(ctx, 'login');
      const { pending, upstream, identity } = await pendingLink(tenant, progress);
      const info = steps.requestInfo(ctx);
      try {
        if (!identity.passwordHash) throw upstreamLinkUnconfirmable(upstream.name);
        const { password } = formFields(ctx.request.body, ['password'], ['csrf'], PASSWORD_MAX);
        if (!password) throw badRequest('errors.upstream.enterPassword');
        const hash = identity.passwordHash;
        // The login page's limits: a guess here costs the same as one there.
        const counter = await browsers.passwordCounter(ctx, identity.email, info.ip);
        const ok = await limiter.guard(counter.keys, () => hasher.verify(hash, password));
        if (!ok) {
          await record(ctx, tenant, 'failure', { upstream: upstream.id, reason: 'link_not_confirmed' });
          throw invalidCredentials('errors.upstream.wrongPassword');
        }
      } catch (err) {
        if (err instanceof LatchkeyError && err.onForm) {
          if (err.code === 'locked_out')
            await audit.record({ type: 'signin.locked', outcome: 'failure', tenant: tenant.id, ...info, ...(err.detail.frozen ? { detail: { frozen: true } } : {}) });
          return confirmPage(ctx, interaction, progress, upstream, identity.email, err);
        }
        if (err instanceof LatchkeyError && err.code === 'upstream_link_unconfirmable') return refuse(ctx, interaction, tenant, upstream.id, err);
        throw err;
      }
      const { upstreamLink: _confirmed, ...rest } = progress;
      try {
        if (!(await links.link(identity, pending, { ...info, upstream: upstream.id }))) throw upstreamState();
        await record(ctx, tenant, 'success', { upstream: upstream.id });
        await steps.firstStepPassed(ctx, interaction, tenant, rest, identity, AMR.federated);
      } catch (err) {
        await refuse(ctx, interaction, tenant, upstream.id, err);
      }
    });

    router.post('/upstream', async (ctx) => {
      const { interaction, tenant, progress } = await steps.loadForPost(ctx, 'login');
      const { upstream: id } = formFields(ctx.request.body, ['upstream'], ['csrf'], 128);
      const upstream = UPSTREAM_ID.test(id) ? await accounts.getUpstream(tenant.id, id) : null;
      if (!upstream) throw badRequest('errors.signin.chooseOption');
      try {
        const { url, pending } = await client.begin(upstream, interaction.uid);
        await saveProgress(interaction, { ...progress, upstream: pending });
        ctx.redirect(url);
        ctx.status = 303;
      } catch (err) {
        await refuse(ctx, interaction, tenant, upstream.id, err);
      }
    });

    router.get('/upstream/:handle/callback', async (ctx) => {
      const handle = ctx.params.handle!;
      let loaded: Awaited<ReturnType<JourneySteps['load']>>;
      try {
        loaded = await steps.load(ctx, 'login');
      } catch (err) {
        // No interaction of this browser under that uid: a tampered or foreign state.
        if (!(err instanceof oidcErrors.SessionNotFound)) throw err;
        await record(ctx, null, 'failure', { upstream: handle.slice(0, 128), reason: 'upstream_state' });
        throw upstreamState();
      }
      const { interaction, tenant } = loaded;
      const progress = readProgress(interaction);
      const pending = progress?.upstream;
      // The redirect URI names one upstream of the whole server. An answer sent to the redirect URI of
      // another tenant's upstream (or of another upstream of this tenant) is one that upstream issued for
      // its own client: redeeming it here would hand its code to this sign-in's upstream (a mix-up).
      const upstream = UPSTREAM_ID.test(handle) ? await accounts.getUpstreamByHandle(handle) : null;
      if (upstream && pending && (upstream.tenant !== tenant.id || upstream.id !== pending.id)) {
        return refuse(ctx, interaction, tenant, pending.id, upstreamState(), 'upstream_mismatch');
      }
      try {
        if (!progress || !pending || !upstream || !sameState(ctx.query.state, pending.state)) throw upstreamState();
        // This answer is the one the sign-in waited for: whatever it says, it is used up.
        const { upstream: _used, ...rest } = progress;
        await saveProgress(interaction, rest);
        const account = await client.complete(upstream, pending, new URLSearchParams(ctx.querystring));
        await signInOrConfirm(ctx, interaction, tenant, rest, upstream, account);
      } catch (err) {
        await refuse(ctx, interaction, tenant, pending?.id ?? handle.slice(0, 128), err);
      }
    });
  };
}

/**
 * GET /upstream/:handle/callback — the redirect URI the upstreams know. The
 * provider's interaction cookie is scoped to `/interaction/{uid}`, so the
 * answer is sent on, unchanged, to the interaction its state names; there the
 * cookie proves it is this browser's sign-in, and the whole state is checked.
 */
export function upstreamCallbackRouter({ audit }: Pick<UpstreamDeps, 'audit'>): Router {
  const router = new Router();
  router.get('/upstream/:handle/callback', async (ctx) => {
    const handle = ctx.params.handle!;
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const uid = STATE.exec(state)?.[1];
    if (!uid || !UPSTREAM_ID.test(handle)) {
      await audit.record({ type: 'signin.upstream', outcome: 'failure', ...requestInfo(ctx), detail: { upstream: handle.slice(0, 128), reason: 'upstream_state' } });
      throw upstreamState();
    }
    ctx.redirect(`/interaction/${uid}/upstream/${handle}/callback?${ctx.querystring}`);
    ctx.status = 303;
  });
  return router;
}
