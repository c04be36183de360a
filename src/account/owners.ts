/**
 * The tenant's owners (`/account/owners`): who they are, adding an owner by
 * the email of a login of the tenant (and its user type when the email has
 * several), and taking one off, never the last. Operations in
 * `src/admin/owners.ts`; the operator's `add-owner` uses the same.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError, notFound } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { addOwner, isOwner, listOwners, loginByEmail, removeOwner } from '../admin/owners.ts';
import { fullName, userTypeName } from '../names.ts';
import { noticeOf } from './labels.ts';
import type { AccountKit, Signed } from './kit.ts';
import type { Login } from '../storage/accounts/port.ts';
import { owned } from './owned.ts';

const removePath = (id: string) => `/account/owners/${encodeURIComponent(id)}/remove`;

export function ownerListRoutes(router: Router, kit: AccountKit) {
  const { deps } = kit;

  async function ownersPage(ctx: Context, signed: Signed, locals: { error?: LatchkeyError; entered?: { email: string; userType: string } } = {}) {
    const owners = await listOwners(deps, signed.tenant);
    kit.render(
      ctx,
      'account/owners',
      signed,
      {
        section: 'owners',
        notice: noticeOf(ctx.query.notice),
        error: locals.error,
        entered: locals.entered ?? { email: '', userType: '' },
        userTypeOptions: signed.tenant.userTypes.map((t) => ({ id: t.id, name: t.name })),
        owners: owners.map((l) => ({ id: l.id, name: fullName(l), email: l.email, userType: userTypeName(signed.tenant, l.userType), isMe: l.id === signed.login.id })),
        last: owners.length <= 1,
      },
      locals.error?.status ?? 200,
    );
  }

  router.get('/owners', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (signed) await ownersPage(ctx, signed);
  });

  router.post('/owners', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/owners')) return;
    const fields = formFields(ctx.request.body, ['email'], ['csrf', 'user_type'], 320);
    let result: 'added' | 'already';
    try {
      const login = await loginByEmail(deps.accounts, signed.tenant, fields.email, fields.user_type || undefined);
      result = await addOwner(deps, kit.actor(ctx, signed), login);
    } catch (err) {
      if (err instanceof LatchkeyError && (err.onForm || err.code === 'not_found')) {
        const shown = err.code === 'not_found' ? new LatchkeyError('bad_request', 400, err.key, err.detail) : err;
        return ownersPage(ctx, signed, { error: shown, entered: { email: fields.email, userType: fields.user_type ?? '' } });
      }
      throw err;
    }
    ctx.redirect(`/account/owners?notice=${result === 'added' ? 'ownerAdded' : 'ownerAlready'}`);
    ctx.status = 303;
  });

  async function confirmPage(ctx: Context, signed: Signed, login: Login, error?: LatchkeyError) {
    if (!isOwner(signed.tenant, login.id)) throw notFound('errors.owners.notOwner');
    kit.render(
      ctx,
      'account/owner-remove',
      signed,
      {
        section: 'owners',
        target: { id: login.id, name: fullName(login), email: login.email, userType: userTypeName(signed.tenant, login.userType), isMe: login.id === signed.login.id },
        action: removePath(login.id),
        last: signed.tenant.owners.length <= 1,
        error,
      },
      error?.status ?? 200,
    );
  }

  router.get('/owners/:loginId/remove', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const target = owned(ctx, 'loginId');
    if (!kit.fresh(ctx, signed, removePath(target.id))) return;
    await confirmPage(ctx, signed, target);
  });

  // The list's button posts here without `confirm`: that shows the confirmation; `confirm=yes` takes the owner off.
  router.post('/owners/:loginId/remove', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const target = owned(ctx, 'loginId');
    if (!kit.fresh(ctx, signed, removePath(target.id))) return;
    const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
    if (confirm !== 'yes') return confirmPage(ctx, signed, target);
    try {
      await removeOwner(deps, kit.actor(ctx, signed), target.id);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === 'conflict') return confirmPage(ctx, signed, target, err);
      throw err;
    }
    // An owner who took themselves off has no owner pages any more.
    ctx.redirect(target.id === signed.login.id ? '/account?notice=ownerLeft' : '/account/owners?notice=ownerRemoved');
    ctx.status = 303;
  });
}
