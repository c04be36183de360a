/**
 * The owner's SCIM page (`/account/scim`, docs/scim.md): the SCIM endpoint of
 * the tenant and its bearer tokens. The owner makes a token (shown once, on
 * the page that answers the form, never again) and revokes one; both are
 * state-changing forms (same origin, CSRF) after a recent sign-in, and audited.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Services } from '../services.ts';
import type { LatchkeyError } from '../errors.ts';
import { badRequest, notFound } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { checkLabel, LABEL_MAX } from '../scim/tokens.ts';
import { SCIM_PREFIX } from '../scim/router.ts';
import type { ScimToken } from '../storage/scim/port.ts';
import type { AccountKit, Signed } from './kit.ts';
import { owned } from './owned.ts';
import { formatTime, noticeOf } from './labels.ts';

export function scimRoutes(router: Router, kit: AccountKit, { scimTokens }: Pick<Services, 'scimTokens'>) {
  const endpoint = `${kit.deps.config.issuer}${SCIM_PREFIX}`;

  async function page(ctx: Context, signed: Signed, locals: { token?: string; error?: LatchkeyError; label?: string } = {}) {
    const tokens = await scimTokens.list(signed.tenant.id);
    kit.render(
      ctx,
      'account/scim',
      signed,
      {
        section: 'scim',
        notice: noticeOf(ctx.query.notice),
        endpoint,
        labelMax: LABEL_MAX,
        newToken: locals.token ?? null,
        label: locals.label ?? '',
        error: locals.error,
        tokens: tokens
          .filter((t) => !t.revokedAt)
          .reverse()
          .map((t: ScimToken) => ({ id: t.id, label: t.label, created: formatTime(t.createdAt), by: t.createdBy === 'cli' ? null : t.createdBy })),
        revoked: tokens.filter((t) => t.revokedAt).length,
      },
      locals.error?.status ?? 200,
    );
  }

  router.get('/scim', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (signed) await page(ctx, signed);
  });

  router.post('/scim/tokens', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/scim')) return;
    const { label: given } = formFields(ctx.request.body, ['label'], ['csrf'], 256);
    const label = checkLabel(given);
    if (!label) return page(ctx, signed, { error: badRequest('errors.scim.label', { max: LABEL_MAX }), label: given });
    const { token } = await scimTokens.create(signed.tenant.id, label, signed.login.id, kit.requestInfo(ctx));
    await page(ctx, signed, { token });
  });

  const revokeAction = (id: string) => `/account/scim/tokens/${encodeURIComponent(id)}/revoke`;

  router.post('/scim/tokens/:tokenId/revoke', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/scim')) return;
    const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
    const token = owned(ctx, 'tokenId');
    // The tenant's own token, revoked already: nothing to revoke.
    if (token.revokedAt) throw notFound('errors.scim.noSuchToken');
    if (confirm !== 'yes') {
      return kit.render(ctx, 'account/scim-revoke', signed, {
        section: 'scim',
        action: revokeAction(token.id),
        token: { label: token.label, created: formatTime(token.createdAt) },
      });
    }
    if (!(await scimTokens.revoke(signed.tenant.id, token.id, signed.login.id, kit.requestInfo(ctx)))) throw notFound('errors.scim.noSuchToken');
    ctx.redirect('/account/scim?notice=scimRevoked');
    ctx.status = 303;
  });
}
