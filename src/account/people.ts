/**
 * The owner's people: the Users page's criteria (the tenant's logins,
 * searched, filtered, sorted and paged by the store with `searchLogins`, so
 * a tenant of ten thousand logins costs one page of fifty), adding a person
 * and editing one. Disabling, enabling and removing are confirmed actions
 * beside the resets (`./owner.ts`).
 */
import { createHash, randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { LatchkeyError, badRequest } from '../errors.ts';
import { LOGIN_SORTS, LOGIN_STATES, normalizeEmail, type Login, type LoginSort, type LoginState, type Tenant } from '../storage/accounts/port.ts';
import { formFields } from '../web/forms.ts';
import { localeOf } from '../web/views.ts';
import { sendInvitation } from '../recovery/routes.ts';
import { fullName, userTypeName } from '../names.ts';
import type { AccountKit, Signed } from './kit.ts';

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

const NAME_MAX = 100;
const EMAIL = z.string().max(320).email();
// Controls and invisible format characters would make two names look alike.
const NAME_REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const NONCE = /^[A-Za-z0-9_-]{22}$/;

/** What an owner's form says about a person. */
export interface PersonFields {
  firstName: string;
  lastName: string;
  email: string;
  userType: string;
}

/** `first_name`, `last_name`, `email`, `user_type` of a posted form, checked against the tenant; anything else in them is a 400. */
export function personFields(fields: Record<'first_name' | 'last_name' | 'email' | 'user_type', string>, tenant: Tenant): PersonFields {
  const name = (field: string, value: string) => {
    const trimmed = value.trim().replace(/\s+/g, ' ');
    if (!trimmed) throw badRequest('errors.people.nameMissing', { field });
    if (trimmed.length > NAME_MAX) throw badRequest('errors.form.tooLong', { field });
    if (NAME_REFUSED.test(trimmed)) throw badRequest('errors.form.invalidCharacters', { field });
    return trimmed;
  };
  const firstName = name('first_name', fields.first_name);
  const lastName = name('last_name', fields.last_name);
  const email = normalizeEmail(fields.email);
  if (!EMAIL.safeParse(email).success) throw badRequest('errors.people.email');
  if (!tenant.userTypes.some((t) => t.id === fields.user_type)) throw badRequest('errors.account.noSuchUserType');
  return { firstName, lastName, email, userType: fields.user_type };
}

const sameName = (a: Pick<Login, 'firstName' | 'lastName'>, b: Pick<Login, 'firstName' | 'lastName'>) =>
  a.firstName.toLowerCase() === b.firstName.toLowerCase() && a.lastName.toLowerCase() === b.lastName.toLowerCase();

/**
 * The logins of the email in the tenant that already carry this name (other
 * than `except`): a person's two logins of one name look alike in the login
 * choice, so the form asks for a word that tells them apart first.
 */
async function namesakes(kit: AccountKit, tenant: Tenant, person: PersonFields, except?: string): Promise<Login[]> {
  const logins = await kit.deps.accounts.listLoginsForEmail(tenant.id, person.email);
  return logins.filter((l) => l.id !== except && sameName(l, person));
}

/** The name with the user type's name as the distinguishing word (`Doe (Manager)`). */
const suggestedLastName = (tenant: Tenant, person: PersonFields) => `${person.lastName} (${userTypeName(tenant, person.userType)})`;

/**
 * The id of the login a given add form creates: derived from the form's
 * nonce and the tenant, so sending one form twice (a double click, a second
 * tab, a retry) makes one login, and no form can name an existing login.
 */
const loginIdFor = (tenant: Tenant, nonce: string) => `l-${createHash('sha256').update(`${tenant.id}\n${nonce}`).digest('hex').slice(0, 32)}`;

/** Adding a person: `GET/POST /account/users/new`. */
export function peopleRoutes(router: Router, kit: AccountKit) {
  const { deps } = kit;
  const { accounts, audit } = deps;

  function personPage(
    ctx: Context,
    signed: Signed,
    locals: { action: string; nonce?: string; editing?: Login; person?: Partial<PersonFields>; namesakes?: Login[]; suggestion?: string; error?: LatchkeyError },
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
        namesakes: (locals.namesakes ?? []).map((l) => ({ id: l.id, name: fullName(l), userType: userTypeName(signed.tenant, l.userType) })),
        suggestion: locals.suggestion ?? null,
        error: locals.error,
      },
      locals.error?.status ?? 200,
    );
  }
  const addPage = (ctx: Context, signed: Signed, locals: { nonce: string; person?: Partial<PersonFields>; namesakes?: Login[]; suggestion?: string; error?: LatchkeyError }) =>
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
    const id = loginIdFor(signed.tenant, fields.nonce);
    // This form was sent before (a double click, a second tab, a retry): its login exists, and nothing is made or sent twice.
    const sentBefore = () => {
      ctx.redirect('/account/users?notice=added');
      ctx.status = 303;
    };
    if (await accounts.getLogin(id)) return sentBefore();
    const alike = await namesakes(kit, signed.tenant, person, id);
    if (alike.length && fields.same_name !== 'yes') {
      return addPage(ctx, signed, { nonce: fields.nonce, person, namesakes: alike, suggestion: suggestedLastName(signed.tenant, person) });
    }
    const identity = await accounts.upsertIdentity({ email: person.email });
    if (!(await accounts.createLogin({ id, tenant: signed.tenant.id, ...person }))) return sentBefore();
    const invite = identity.passwordHash === null;
    await audit.record({
      type: 'login.added',
      outcome: 'success',
      tenant: signed.tenant.id,
      login: id,
      ...kit.requestInfo(ctx),
      detail: { by: signed.login.id, userType: person.userType, invited: invite },
    });
    // A person without a password chooses one from the invitation; one with a password signs in with it at once.
    if (invite) await sendInvitation(deps, { email: person.email, tenantId: signed.tenant.id, lang: localeOf(ctx).lang, by: signed.login.id });
    ctx.redirect(`/account/users?notice=${invite ? 'added-invited' : 'added'}`);
    ctx.status = 303;
  });

  // Editing a person's name, email and user type.

  const editAction = (login: Login) => `/account/users/${encodeURIComponent(login.id)}/edit`;
  const asFields = (l: Login): PersonFields => ({ firstName: l.firstName, lastName: l.lastName, email: l.email, userType: l.userType });

  router.get('/users/:loginId/edit', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const target = await kit.tenantLogin(signed, ctx.params.loginId);
    if (!kit.fresh(ctx, signed, editAction(target))) return;
    personPage(ctx, signed, { action: editAction(target), editing: target, person: asFields(target) });
  });

  router.post('/users/:loginId/edit', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const target = await kit.tenantLogin(signed, ctx.params.loginId);
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
    const before = asFields(target);
    const changed = (Object.keys(person) as (keyof PersonFields)[]).filter((k) => person[k] !== before[k]);
    if (changed.length) {
      const alike = await namesakes(kit, signed.tenant, person, target.id);
      if (alike.length && fields.same_name !== 'yes') {
        return personPage(ctx, signed, { action: editAction(target), editing: target, person, namesakes: alike, suggestion: suggestedLastName(signed.tenant, person) });
      }
      await saveEdit(ctx, signed, target, person, changed);
    }
    ctx.redirect('/account/users?notice=edited');
    ctx.status = 303;
  });

  /**
   * A new email hands the login to another person (the identity of that
   * email): the old person's sessions and tokens end, and the second factor
   * they set up is forgotten, so the new person sets up their own.
   */
  async function saveEdit(ctx: Context, signed: Signed, target: Login, person: PersonFields, changed: (keyof PersonFields)[]) {
    const moved = changed.includes('email');
    const identity = moved ? await accounts.upsertIdentity({ email: person.email }) : null;
    await accounts.upsertLogin({ id: target.id, tenant: signed.tenant.id, ...person });
    if (moved) {
      for (const factor of deps.factors.all()) await factor.reset(target.id);
      await deps.sessions.endLoginSessions([target.id]);
    }
    await audit.record({
      type: 'login.edited',
      outcome: 'success',
      tenant: signed.tenant.id,
      login: target.id,
      ...kit.requestInfo(ctx),
      detail: { by: signed.login.id, changed, ...(changed.includes('userType') ? { from: target.userType, to: person.userType } : {}) },
    });
    if (identity && identity.passwordHash === null) await sendInvitation(deps, { email: person.email, tenantId: signed.tenant.id, lang: localeOf(ctx).lang, by: signed.login.id });
  }
}
