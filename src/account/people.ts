/**
 * The owner's Users page: the tenant's logins, searched, filtered, sorted
 * and paged by the store (`searchLogins`), so a tenant of ten thousand logins
 * costs one page of fifty.
 */
import type { Context } from 'koa';
import { badRequest } from '../errors.ts';
import { LOGIN_SORTS, LOGIN_STATES, type LoginSort, type LoginState, type Tenant } from '../storage/accounts/port.ts';

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
