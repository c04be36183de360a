/**
 * The owner's user types (`/account/user-types`): the list with each type's
 * logins and factor, a new type (name and factor), renaming one and deleting
 * one no login has. The operations are `src/admin/user-types.ts`'s; the
 * factor of every type is set on Security settings' one form (`./owner.ts`).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { createUserType, deleteUserType, listUserTypes, renameUserType } from '../admin/user-types.ts';
import { factorName, noticeOf } from './labels.ts';
import type { AccountKit, Signed } from './kit.ts';
import type { UserType } from '../storage/accounts/port.ts';
import { owned } from './owned.ts';

const typePath = (id: string, action: string) => `/account/user-types/${encodeURIComponent(id)}/${action}`;

export function userTypeRoutes(router: Router, kit: AccountKit) {
  const { deps } = kit;

  async function listPage(ctx: Context, signed: Signed, locals: { error?: LatchkeyError; entered?: { name: string; secondFactor: string } } = {}) {
    const types = await listUserTypes(deps, signed.tenant.id);
    kit.render(
      ctx,
      'account/user-types',
      signed,
      {
        section: 'userTypes',
        notice: noticeOf(ctx.query.notice),
        error: locals.error,
        entered: locals.entered ?? { name: '', secondFactor: 'none' },
        factorOptions: deps.factors.all().map((f) => ({ id: f.id, name: factorName(f.id) })),
        userTypes: types.map((t) => ({ ...t, factorName: factorName(t.secondFactor), isMine: t.id === signed.login.userType })),
      },
      locals.error?.status ?? 200,
    );
  }

  router.get('/user-types', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (signed) await listPage(ctx, signed);
  });

  router.post('/user-types', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/user-types')) return;
    const fields = formFields(ctx.request.body, ['name', 'second_factor'], ['csrf'], 256);
    try {
      await createUserType(deps, kit.actor(ctx, signed), { name: fields.name, secondFactor: fields.second_factor });
    } catch (err) {
      if (err instanceof LatchkeyError && err.onForm) return listPage(ctx, signed, { error: err, entered: { name: fields.name, secondFactor: fields.second_factor } });
      throw err;
    }
    ctx.redirect('/account/user-types?notice=typeAdded');
    ctx.status = 303;
  });

  function renamePage(ctx: Context, signed: Signed, type: UserType, name: string, error?: LatchkeyError) {
    kit.render(ctx, 'account/user-type-rename', signed, { section: 'userTypes', type, name, action: typePath(type.id, 'rename'), error }, error?.status ?? 200);
  }

  router.get('/user-types/:typeId/rename', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const type = owned(ctx, 'typeId');
    if (!kit.fresh(ctx, signed, typePath(type.id, 'rename'))) return;
    renamePage(ctx, signed, type, type.name);
  });

  router.post('/user-types/:typeId/rename', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const type = owned(ctx, 'typeId');
    if (!kit.fresh(ctx, signed, typePath(type.id, 'rename'))) return;
    const { name } = formFields(ctx.request.body, ['name'], ['csrf'], 256);
    try {
      await renameUserType(deps, kit.actor(ctx, signed), type.id, name);
    } catch (err) {
      if (err instanceof LatchkeyError && err.onForm) return renamePage(ctx, signed, type, name, err);
      throw err;
    }
    ctx.redirect('/account/user-types?notice=typeRenamed');
    ctx.status = 303;
  });

  async function removePage(ctx: Context, signed: Signed, id: string, error?: LatchkeyError) {
    const type = (await listUserTypes(deps, signed.tenant.id)).find((t) => t.id === id)!;
    kit.render(ctx, 'account/user-type-remove', signed, { section: 'userTypes', type, action: typePath(type.id, 'remove'), error }, error?.status ?? 200);
  }

  router.get('/user-types/:typeId/remove', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const type = owned(ctx, 'typeId');
    if (!kit.fresh(ctx, signed, typePath(type.id, 'remove'))) return;
    await removePage(ctx, signed, type.id);
  });

  // The list's button posts here without `confirm`: that shows the confirmation; `confirm=yes` deletes.
  router.post('/user-types/:typeId/remove', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const type = owned(ctx, 'typeId');
    if (!kit.fresh(ctx, signed, typePath(type.id, 'remove'))) return;
    const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
    if (confirm !== 'yes') return removePage(ctx, signed, type.id);
    try {
      await deleteUserType(deps, kit.actor(ctx, signed), type.id);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === 'conflict') return removePage(ctx, signed, type.id, err);
      throw err;
    }
    ctx.redirect('/account/user-types?notice=typeRemoved');
    ctx.status = 303;
  });
}
