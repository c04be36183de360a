/**
 * Sign-in with a tenant's upstream OpenID provider (SPEC §3, docs/upstream.md):
 *
 *   POST /interaction/:uid/upstream              the login page's button → the upstream
 *   GET  /upstream/:id/callback                  the redirect URI → back under the interaction's path
 *   GET  /interaction/:uid/upstream/:id/callback the answer, checked and redeemed → the journey
 *
 * Every failure renders a page with the way back to the login page and writes
 * an audit event; none is a 500.
 */
import { timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import type { AccountStore, Identity, Tenant, Upstream } from '../storage/accounts/port.ts';
import type { Audit } from '../audit.ts';
import { AMR } from '../provider/acr.ts';
import { LatchkeyError, badRequest, upstreamNoAccount, upstreamState } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { sendPage } from '../web/views.ts';
import { readProgress, saveProgress, type Interaction } from '../interaction/journey.ts';
import type { JourneyPlugin, JourneySteps } from '../interaction/router.ts';
import type { UpstreamAccount, UpstreamClient } from './client.ts';

export interface UpstreamDeps {
  accounts: AccountStore;
  audit: Audit;
  client: UpstreamClient;
}

const UPSTREAM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** `{uid}.{random}`, see `UpstreamClient.begin`. */
const STATE = /^([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9_-]{16,128}$/;

/** Errors shown on the upstream page (with the way back); anything else goes to the error handler. */
const SHOWN = new Set(['upstream_unavailable', 'upstream_error', 'upstream_invalid_response', 'upstream_state', 'upstream_no_account', 'no_login_for_client']);

function sameState(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The journey's first step by upstream provider: plugs into the interaction router. */
export function upstreamSignIn({ accounts, audit, client }: UpstreamDeps): JourneyPlugin {
  return (router: Router, steps: JourneySteps) => {
    const record = (ctx: Context, tenant: Tenant | null, outcome: 'success' | 'failure', detail: Record<string, unknown>) =>
      audit.record({ type: 'signin.upstream', outcome, tenant: tenant?.id ?? null, ...steps.requestInfo(ctx), detail });

    async function refuse(ctx: Context, interaction: Interaction, tenant: Tenant, upstreamId: string, err: unknown) {
      if (!(err instanceof LatchkeyError) || !SHOWN.has(err.code)) throw err;
      await record(ctx, tenant, 'failure', { ...err.detail, upstream: upstreamId, reason: err.code });
      sendPage(ctx, 'upstream-error', { uid: interaction.uid, error: err, code: err.code }, err.status);
    }

    /** The identity of an upstream account: by its link, else (once) by its verified email. */
    async function identify(ctx: Context, tenant: Tenant, upstream: Upstream, account: UpstreamAccount): Promise<Identity> {
      const linked = await accounts.findIdentityByUpstream(account.issuer, account.subject);
      if (linked) return linked;
      const email = await account.email();
      if (!email.address || !email.verified) throw upstreamNoAccount(upstream.name, 'email_not_verified');
      const identity = await accounts.findIdentityByEmail(email.address);
      if (!identity) throw upstreamNoAccount(upstream.name, 'no_identity');
      const winner = await accounts.linkUpstream({ issuer: account.issuer, subject: account.subject, identityId: identity.id });
      if (winner === identity.id) {
        await audit.record({ type: 'upstream.linked', outcome: 'success', tenant: tenant.id, ...steps.requestInfo(ctx), detail: { upstream: upstream.id, issuer: account.issuer } });
        return identity;
      }
      return (await accounts.getIdentity(winner)) ?? identity;
    }

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

    router.get('/upstream/:id/callback', async (ctx) => {
      let loaded: Awaited<ReturnType<JourneySteps['load']>>;
      try {
        loaded = await steps.load(ctx, 'login');
      } catch (err) {
        // No interaction of this browser under that uid: a tampered or foreign state.
        if (!(err instanceof oidcErrors.SessionNotFound)) throw err;
        await record(ctx, null, 'failure', { upstream: ctx.params.id?.slice(0, 128), reason: 'upstream_state' });
        throw upstreamState();
      }
      const { interaction, tenant } = loaded;
      const progress = readProgress(interaction);
      const pending = progress?.upstream;
      try {
        const upstream = await accounts.getUpstream(tenant.id, ctx.params.id!);
        if (!progress || !pending || !upstream || pending.id !== upstream.id || !sameState(ctx.query.state, pending.state)) throw upstreamState();
        // This answer is the one the sign-in waited for: whatever it says, it is used up.
        const { upstream: _used, ...rest } = progress;
        await saveProgress(interaction, rest);
        const account = await client.complete(upstream, pending, new URLSearchParams(ctx.querystring));
        const identity = await identify(ctx, tenant, upstream, account);
        await record(ctx, tenant, 'success', { upstream: upstream.id });
        await steps.firstStepPassed(ctx, interaction, tenant, rest, identity, AMR.federated);
      } catch (err) {
        await refuse(ctx, interaction, tenant, ctx.params.id!, err);
      }
    });
  };
}

/**
 * GET /upstream/:id/callback — the redirect URI the upstreams know. The
 * provider's interaction cookie is scoped to `/interaction/{uid}`, so the
 * answer is sent on, unchanged, to the interaction its state names; there the
 * cookie proves it is this browser's sign-in, and the whole state is checked.
 */
export function upstreamCallbackRouter({ audit }: Pick<UpstreamDeps, 'audit'>): Router {
  const router = new Router();
  router.get('/upstream/:id/callback', async (ctx) => {
    const id = ctx.params.id!;
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const uid = STATE.exec(state)?.[1];
    if (!uid || !UPSTREAM_ID.test(id)) {
      await audit.record({ type: 'signin.upstream', outcome: 'failure', ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null, detail: { upstream: id.slice(0, 128), reason: 'upstream_state' } });
      throw upstreamState();
    }
    ctx.redirect(`/interaction/${uid}/upstream/${id}/callback?${ctx.querystring}`);
    ctx.status = 303;
  });
  return router;
}
