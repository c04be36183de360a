/**
 * The tenant's applications (`/account/applications`): the list, registering
 * one (its secret shown once on the answer, never again), a new secret
 * (the old one stops at once), removing one (its tokens stop at once).
 * Operations in `src/admin/clients.ts`.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { deleteClient, listClients, registerClient, rotateClientSecret, type ClientSummary } from '../admin/clients.ts';
import { noticeOf } from './labels.ts';
import type { AccountKit, Signed } from './kit.ts';
import { owned } from './owned.ts';

const path = (id: string, action: string) => `/account/applications/${encodeURIComponent(id)}/${action}`;

interface Entered {
  name: string;
  redirectUris: string;
  firstParty: string;
  minAcr: string;
  type: string;
}

export function applicationRoutes(router: Router, kit: AccountKit) {
  const { deps } = kit;
  const acrOptions = () => deps.factors.acrValues().map((acr) => ({ acr, factor: deps.factors.all().find((f) => f.acr === acr)!.id }));

  async function listPage(ctx: Context, signed: Signed, locals: { error?: LatchkeyError; entered?: Entered } = {}) {
    const clients = await listClients(deps, signed.tenant.id);
    kit.render(
      ctx,
      'account/applications',
      signed,
      {
        section: 'applications',
        notice: noticeOf(ctx.query.notice),
        error: locals.error,
        entered: locals.entered ?? { name: '', redirectUris: '', firstParty: 'no', minAcr: '', type: 'confidential' },
        clients: clients.map((c) => ({ ...c, minFactor: c.minAcr ? acrOptions().find((o) => o.acr === c.minAcr)?.factor : null })),
        acrOptions: acrOptions(),
      },
      locals.error?.status ?? 200,
    );
  }

  function secretPage(ctx: Context, signed: Signed, client: ClientSummary, secret: string | null, kind: 'registered' | 'rotated') {
    kit.render(ctx, 'account/application-secret', signed, { section: 'applications', client, secret, kind, issuer: deps.config.issuer });
  }

  router.get('/applications', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (signed) await listPage(ctx, signed);
  });

  router.post('/applications', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/applications')) return;
    const f = formFields(ctx.request.body, ['name', 'redirect_uris', 'first_party'], ['csrf', 'min_acr', 'client_type'], 50_000);
    const entered = { name: f.name, redirectUris: f.redirect_uris, firstParty: f.first_party, minAcr: f.min_acr ?? '', type: f.client_type ?? 'confidential' };
    try {
      if (f.first_party !== 'yes' && f.first_party !== 'no') throw new LatchkeyError('bad_request', 400, 'errors.clients.firstParty');
      const { client, secret } = await registerClient(deps, kit.actor(ctx, signed), {
        name: f.name,
        redirectUris: f.redirect_uris,
        firstParty: f.first_party === 'yes',
        minAcr: f.min_acr ?? '',
        type: f.client_type ?? 'confidential',
      });
      secretPage(ctx, signed, client, secret, 'registered');
    } catch (err) {
      if (err instanceof LatchkeyError && err.onForm) return listPage(ctx, signed, { error: err, entered });
      throw err;
    }
  });

  function confirmPage(ctx: Context, signed: Signed, client: ClientSummary, kind: 'rotate' | 'remove') {
    kit.render(ctx, 'account/application-confirm', signed, { section: 'applications', client, kind, action: path(client.clientId, kind) });
  }

  for (const kind of ['rotate', 'remove'] as const) {
    router.get(`/applications/:clientId/${kind}`, async (ctx) => {
      const signed = await kit.owner(ctx);
      if (!signed) return;
      const client = owned(ctx, 'clientId');
      if (!kit.fresh(ctx, signed, path(client.clientId, kind))) return;
      confirmPage(ctx, signed, client, kind);
    });

    // The list's button posts here without `confirm`: that shows the confirmation; `confirm=yes` acts.
    router.post(`/applications/:clientId/${kind}`, async (ctx) => {
      const signed = await kit.owner(ctx, true);
      if (!signed) return;
      const client = owned(ctx, 'clientId');
      if (!kit.fresh(ctx, signed, path(client.clientId, kind))) return;
      const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
      if (confirm !== 'yes') return confirmPage(ctx, signed, client, kind);
      if (kind === 'rotate') return secretPage(ctx, signed, client, await rotateClientSecret(deps, kit.actor(ctx, signed), client.clientId), 'rotated');
      await deleteClient(deps, kit.actor(ctx, signed), client.clientId);
      ctx.redirect('/account/applications?notice=appRemoved');
      ctx.status = 303;
    });
  }
}
