/**
 * The owner's people: the Users page's criteria (the tenant's logins,
 * searched, filtered, sorted and paged by the store with `searchLogins`, so
 * a tenant of ten thousand logins costs one page of fifty), adding a person
 * and editing one. Disabling, enabling and removing are confirmed actions
 * beside the resets (`./owner.ts`).
 */
import { randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError, badRequest } from '../errors.ts';
import { LOGIN_SORTS, LOGIN_STATES, type Login, type LoginSort, type LoginState, type Tenant } from '../storage/accounts/port.ts';
import { formFields } from '../web/forms.ts';
import { fullName, userTypeName } from '../names.ts';
import { checkPerson, derivedLoginId, type FieldNames, type Namesakes, type PersonFields } from '../admin/people.ts';
import type { AccountKit, Signed } from './kit.ts';
import { owned } from './owned.ts';

/** Logins shown on one page of Users. */
export const PEOPLE_PAGE = 50;
const TEXT_MAX = 128;
const PAGE_PATTERN = /^[1-9][0-9]{0,5}$/;

/** What the Users page was asked for, every value checked. */
export interface PeopleQuery {
  text: string;
  userType: string | null;
  state: LoginState | null;
  sort: LoginSort;
  descending: boolean;
  page: number;
}

function single(ctx: Context, name: string, max = 64): string | undefined {
  const value = ctx.query[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > max) throw badRequest('errors.account.filterValue', { filter: name });
  return value;
}

/** The Users page's query (`q`, `user_type`, `state`, `sort`, `order`, `page`); anything else in them is a 400. */
export function peopleQuery(ctx: Context, tenant: Tenant): PeopleQuery {
  const text = (single(ctx, 'q', TEXT_MAX) ?? '').trim();
  const userType = single(ctx, 'user_type') ?? null;
  if (userType !== null && !tenant.userTypes.some((t) => t.id === userType)) throw badRequest('errors.account.noSuchUserType');
  const state = single(ctx, 'state') ?? null;
  if (state !== null && !(LOGIN_STATES as readonly string[]).includes(state)) throw badRequest('errors.account.filterValue', { filter: 'state' });
  const sort = single(ctx, 'sort') ?? 'name';
  if (!(LOGIN_SORTS as readonly string[]).includes(sort)) throw badRequest('errors.account.filterValue', { filter: 'sort' });
  const order = single(ctx, 'order') ?? 'asc';
  if (order !== 'asc' && order !== 'desc') throw badRequest('errors.account.filterValue', { filter: 'order' });
  const page = single(ctx, 'page') ?? '1';
  if (!PAGE_PATTERN.test(page)) throw badRequest('errors.account.filterValue', { filter: 'page' });
  return { text, userType, state: state as LoginState | null, sort: sort as LoginSort, descending: order === 'desc', page: Number(page) };
}

/** `/account/users` with `query`'s criteria and `change` applied; defaults are left out of the URL. */
export function peopleUrl(query: PeopleQuery, change: Partial<PeopleQuery> = {}): string {
  const q = { ...query, ...change };
  const params = new URLSearchParams();
  if (q.text) params.set('q', q.text);
  if (q.userType) params.set('user_type', q.userType);
  if (q.state) params.set('state', q.state);
  if (q.sort !== 'name') params.set('sort', q.sort);
  if (q.descending) params.set('order', 'desc');
  if (q.page > 1) params.set('page', String(q.page));
  const search = params.toString();
  return search ? `/account/users?${search}` : '/account/users';
}

const NONCE = /^[A-Za-z0-9_-]{22}$/;
const FORM_NAMES: FieldNames = { firstName: 'first_name', lastName: 'last_name', email: 'email', userType: 'user_type' };

/** `first_name`, `last_name`, `email`, `user_type` of a posted form, checked against the tenant (`checkPerson`); anything else in them is a 400. */
export function personFields(fields: Record<'first_name' | 'last_name' | 'email' | 'user_type', string>, tenant: Tenant): PersonFields {
  return checkPerson({ firstName: fields.first_name, lastName: fields.last_name, email: fields.email, userType: fields.user_type }, tenant, FORM_NAMES);
}

/** Adding a person: `GET/POST /account/users/new`. */
export function peopleRoutes(router: Router, kit: AccountKit) {
  const { people } = kit;

  function personPage(
    ctx: Context,
    signed: Signed,
    locals: { action: string; nonce?: string; editing?: Login; person?: Partial<PersonFields>; namesakes?: Namesakes; error?: LatchkeyError },
  ) {
    kit.render(
      ctx,
      'account/person',
      signed,
      {
        section: 'users',
        action: locals.action,
        nonce: locals.nonce ?? null,
        editing: locals.editing ? { id: locals.editing.id, name: fullName(locals.editing) } : null,
        person: { firstName: '', lastName: '', email: '', userType: '', ...locals.person },
        userTypeOptions: signed.tenant.userTypes.map((t) => ({ id: t.id, name: t.name })),
        namesakes: (locals.namesakes?.namesakes ?? []).map((l) => ({ id: l.id, name: fullName(l), userType: userTypeName(signed.tenant, l.userType) })),
        suggestion: locals.namesakes?.suggestion ?? null,
        error: locals.error,
      },
      locals.error?.status ?? 200,
    );
  }
  const addPage = (ctx: Context, signed: Signed, locals: { nonce: string; person?: Partial<PersonFields>; namesakes?: Namesakes; error?: LatchkeyError }) =>
    personPage(ctx, signed, { action: '/account/users/new', ...locals });

  router.get('/users/new', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (signed) addPage(ctx, signed, { nonce: randomBytes(16).toString('base64url') });
  });

  router.post('/users/new', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const fields = formFields(ctx.request.body, ['first_name', 'last_name', 'email', 'user_type', 'nonce'], ['csrf', 'same_name'], 320);
    if (!NONCE.test(fields.nonce)) throw badRequest('errors.people.formExpired');
    let person: PersonFields;
    try {
      person = personFields(fields, signed.tenant);
    } catch (err) {
      const entered = { firstName: fields.first_name, lastName: fields.last_name, email: fields.email, userType: fields.user_type };
      if (err instanceof LatchkeyError) return addPage(ctx, signed, { nonce: fields.nonce, person: entered, error: err });
      throw err;
    }
    // The login's id comes from the form's nonce: a form sent twice (a double click, a second tab, a retry) makes one login.
    const result = await people.create(kit.actor(ctx, signed), derivedLoginId(signed.tenant.id, fields.nonce), person, { sameName: fields.same_name === 'yes' });
    if (result.outcome === 'namesakes') return addPage(ctx, signed, { nonce: fields.nonce, person, namesakes: result });
    const invitation = result.outcome === 'created' ? result.invitation : undefined;
    ctx.redirect(`/account/users?notice=${invitation === 'sent' ? 'added-invited' : invitation === 'rate_limited' ? 'added-not-invited' : 'added'}`);
    ctx.status = 303;
  });

  // Editing a person's name, email and user type.

  const editAction = (login: Login) => `/account/users/${encodeURIComponent(login.id)}/edit`;
  const asFields = (l: Login): PersonFields => ({ firstName: l.firstName, lastName: l.lastName, email: l.email, userType: l.userType });

  router.get('/users/:loginId/edit', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const target = owned(ctx, 'loginId');
    if (!kit.fresh(ctx, signed, editAction(target))) return;
    personPage(ctx, signed, { action: editAction(target), editing: target, person: asFields(target) });
  });

  router.post('/users/:loginId/edit', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const target = owned(ctx, 'loginId');
    if (!kit.fresh(ctx, signed, editAction(target))) return;
    const fields = formFields(ctx.request.body, ['first_name', 'last_name', 'email', 'user_type'], ['csrf', 'same_name'], 320);
    let person: PersonFields;
    try {
      person = personFields(fields, signed.tenant);
    } catch (err) {
      const entered = { firstName: fields.first_name, lastName: fields.last_name, email: fields.email, userType: fields.user_type };
      if (err instanceof LatchkeyError) return personPage(ctx, signed, { action: editAction(target), editing: target, person: entered, error: err });
      throw err;
    }
    const result = await people.update(kit.actor(ctx, signed), target, person, { sameName: fields.same_name === 'yes' });
    if (result.outcome === 'namesakes') return personPage(ctx, signed, { action: editAction(target), editing: target, person, namesakes: result });
    ctx.redirect(`/account/users?notice=${result.invitation === 'rate_limited' ? 'edited-not-invited' : 'edited'}`);
    ctx.status = 303;
  });
}
