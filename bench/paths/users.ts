// The owner's Users page of a tenant of 10,000 logins: signed in at
// /account as the tenant's owner, the bench asks for a search term, a
// user-type filter and a deep page, and checks each answer's total and rows
// against what it seeded.
import { Browser } from '../../test/support/browser.ts';
import { submitLogin } from '../../test/support/latchkey.ts';
import { PASSWORD } from '../lib/seed.ts';
import { PEOPLE_OWNER, person } from './seed.ts';
import { has, unexpected } from './pages.ts';

export type UsersCase = 'search' | 'user_type' | 'deep_page';

export interface UsersQuery {
  case: UsersCase;
  path: string;
  total: number;
  rows: number;
}

const PAGE = 50;

/** The three queries for `people` seeded logins (and the owner), with the total and row count each must show. */
export function usersQueries(people: number): UsersQuery[] {
  const all = Array.from({ length: people }, (_, i) => person(i));
  // A last name from the middle of the list: its 20 logins (fewer in a small smoke seed), one page.
  const term = all[Math.floor(people / 2)]!.lastName;
  const matching = all.filter((p) => `${p.firstName} ${p.lastName} ${p.email}`.toLowerCase().includes(term.toLowerCase())).length;
  const managers = all.filter((p) => p.userType === 'manager').length;
  const everyone = people + 1;
  const pages = Math.ceil(everyone / PAGE);
  const deep = Math.max(2, Math.floor(pages * 0.75));
  return [
    { case: 'search', path: `/account/users?q=${encodeURIComponent(term.toLowerCase())}`, total: matching, rows: Math.min(PAGE, matching) },
    { case: 'user_type', path: '/account/users?user_type=manager', total: managers, rows: Math.min(PAGE, managers) },
    { case: 'deep_page', path: `/account/users?page=${deep}`, total: everyone, rows: Math.min(PAGE, everyone - (deep - 1) * PAGE) },
  ];
}

/** The owner, signed in to the account pages (a login whose type asks for no second factor). */
export async function ownerBrowser(issuer: string): Promise<Browser> {
  const browser = new Browser(issuer);
  let page = await browser.get('/account');
  if (!has(page, 'login-form')) throw unexpected(page, 'the account pages’ login page');
  page = await submitLogin(browser, page, PEOPLE_OWNER.email, PASSWORD);
  if (new URL(page.url).pathname !== '/account' || page.status !== 200) throw unexpected(page, 'the profile after the owner signed in');
  return browser;
}

/** One GET of the query's page; its latency (ms). Throws when the total or the rows are not what was seeded. */
export async function usersCall(browser: Browser, query: UsersQuery): Promise<number> {
  const started = performance.now();
  const page = await browser.get(query.path);
  const ms = performance.now() - started;
  const total = Number(/data-testid="users-total" data-total="(\d+)"/.exec(page.html)?.[1] ?? /data-total="(\d+)"[^>]*data-testid="users-total"/.exec(page.html)?.[1]);
  const rows = (page.html.match(/<tr[^>]*data-testid="user-/g) ?? []).length;
  if (page.status !== 200 || total !== query.total || rows !== query.rows)
    throw unexpected(page, `${query.path}: ${query.total} found and ${query.rows} rows (got ${total} and ${rows})`);
  return ms;
}
