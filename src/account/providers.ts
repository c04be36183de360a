/**
 * The tenant's upstream OpenID providers (`/account/providers`): the list
 * with the redirect URI to register at each (from this server's issuer), add
 * one, edit it (the client secret is never shown back; left empty it stays),
 * test its connection, remove it. Operations in `src/admin/upstreams.ts`.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { createUpstream, deleteUpstream, listUpstreams, testUpstream, updateUpstream, type DiscoveryResult } from '../admin/upstreams.ts';
import { upstreamRedirectUri } from '../upstream/client.ts';
import { noticeOf } from './labels.ts';
import type { AccountKit, Signed } from './kit.ts';
import type { UpstreamSetting } from '../upstream/settings.ts';
import { owned } from './owned.ts';

const FIELDS = ['name', 'issuer', 'client_id', 'client_secret'] as const;
const path = (id: string, action: string) => `/account/providers/${encodeURIComponent(id)}/${action}`;

interface Entered {
  id?: string;
  name: string;
  issuer: string;
  clientId: string;
}

export function providerRoutes(router: Router, kit: AccountKit) {
  const { deps } = kit;

  async function listPage(ctx: Context, signed: Signed, locals: { error?: LatchkeyError; entered?: Entered; tested?: { id: string; result: DiscoveryResult } } = {}) {
    const upstreams = await listUpstreams(deps, signed.tenant.id);
    kit.render(
      ctx,
      'account/providers',
      signed,
      {
        section: 'providers',
        notice: noticeOf(ctx.query.notice),
        error: locals.error,
        entered: locals.entered ?? { id: '', name: '', issuer: '', clientId: '' },
        upstreams,
        tested: locals.tested ?? null,
        // Shown beside the form: the id decides it, so the owner can register it upstream first.
        redirectTemplate: upstreamRedirectUri(deps.config.issuer, 'ID'),
      },
      locals.error?.status ?? 200,
    );
  }

  router.get('/providers', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (signed) await listPage(ctx, signed);
  });

  router.post('/providers', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/providers')) return;
    const f = formFields(ctx.request.body, FIELDS, ['csrf', 'id'], 1024);
    try {
      await createUpstream(deps, kit.actor(ctx, signed), { id: f.id, name: f.name, issuer: f.issuer, clientId: f.client_id, clientSecret: f.client_secret });
    } catch (err) {
      if (err instanceof LatchkeyError && err.onForm)
        return listPage(ctx, signed, { error: err, entered: { id: f.id ?? '', name: f.name, issuer: f.issuer, clientId: f.client_id } });
      throw err;
    }
    ctx.redirect('/account/providers?notice=providerAdded');
    ctx.status = 303;
  });

  function editPage(ctx: Context, signed: Signed, upstream: UpstreamSetting, entered?: Entered, error?: LatchkeyError) {
    kit.render(
      ctx,
      'account/provider-edit',
      signed,
      {
        section: 'providers',
        upstream,
        entered: entered ?? { name: upstream.name, issuer: upstream.issuer, clientId: upstream.clientId },
        action: path(upstream.id, 'edit'),
        error,
      },
      error?.status ?? 200,
    );
  }

  router.get('/providers/:providerId/edit', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const upstream = owned(ctx, 'providerId');
    if (!kit.fresh(ctx, signed, path(upstream.id, 'edit'))) return;
    editPage(ctx, signed, upstream);
  });

  router.post('/providers/:providerId/edit', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const upstream = owned(ctx, 'providerId');
    if (!kit.fresh(ctx, signed, path(upstream.id, 'edit'))) return;
    const f = formFields(ctx.request.body, FIELDS, ['csrf'], 1024);
    try {
      await updateUpstream(deps, kit.actor(ctx, signed), upstream.id, { name: f.name, issuer: f.issuer, clientId: f.client_id, clientSecret: f.client_secret });
    } catch (err) {
      if (err instanceof LatchkeyError && err.onForm) return editPage(ctx, signed, upstream, { name: f.name, issuer: f.issuer, clientId: f.client_id }, err);
      throw err;
    }
    ctx.redirect('/account/providers?notice=providerSaved');
    ctx.status = 303;
  });

  // Changes nothing, but fetches a URL for the owner: a POST with the CSRF token, so no other site can make us fetch it.
  router.post('/providers/:providerId/test', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const upstream = owned(ctx, 'providerId');
    formFields(ctx.request.body, [], ['csrf'], 128);
    await listPage(ctx, signed, { tested: { id: upstream.id, result: await testUpstream(deps, signed.tenant.id, upstream.id) } });
  });

  function removePage(ctx: Context, signed: Signed, upstream: UpstreamSetting) {
    kit.render(ctx, 'account/provider-remove', signed, { section: 'providers', upstream, action: path(upstream.id, 'remove') });
  }

  router.get('/providers/:providerId/remove', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const upstream = owned(ctx, 'providerId');
    if (!kit.fresh(ctx, signed, path(upstream.id, 'remove'))) return;
    removePage(ctx, signed, upstream);
  });

  router.post('/providers/:providerId/remove', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const upstream = owned(ctx, 'providerId');
    if (!kit.fresh(ctx, signed, path(upstream.id, 'remove'))) return;
    const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
    if (confirm !== 'yes') return removePage(ctx, signed, upstream);
    await deleteUpstream(deps, kit.actor(ctx, signed), upstream.id);
    ctx.redirect('/account/providers?notice=providerRemoved');
    ctx.status = 303;
  });
}
