// The account pages in tests: a fixture with an owner and two tenants, a
// sign-in to /account through the provider's journey, and page objects for
// the account forms (by data-testid).
import assert from 'node:assert/strict';
import type { ImportDocument } from '../../src/import/index.ts';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { PASSWORD, submitLogin, type TestServer } from '../support/latchkey.ts';
import { codeFor, currentStep, errorOf, secretOf, savedCodes } from '../support/factors.ts';

export { errorOf };

/**
 * Acme (the factor fixture's user types, Olga the owner, Jane with a login in
 * Acme and one in Globex) and Globex (Gina its owner).
 */
export function accountFixture(ownerFactor: 'none' | 'pin' | 'totp' = 'none'): ImportDocument {
  return {
    identities: [
      { email: 'owner@acme.test', password: PASSWORD },
      { email: 'jane@acme.test', password: PASSWORD },
      { email: 'gina@globex.test', password: PASSWORD },
    ],
    tenants: [
      {
        id: 'acme',
        name: 'Acme Care',
        owner: 'acme-owner',
        userTypes: [
          { id: 'owner', name: 'Owner', secondFactor: ownerFactor },
          { id: 'employee', name: 'Employee', secondFactor: 'none' },
          { id: 'nurse', name: 'Nurse', secondFactor: 'pin' },
          { id: 'manager', name: 'Manager', secondFactor: 'totp' },
          { id: 'staff', name: 'Staff', secondFactor: 'none' },
        ],
        logins: [
          { id: 'acme-owner', email: 'owner@acme.test', userType: 'owner', firstName: 'Olga', lastName: 'Owner' },
          { id: 'jane-acme', email: 'jane@acme.test', userType: 'employee', firstName: 'Jane', lastName: 'Doe' },
        ],
        clients: [{ client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
      },
      {
        id: 'globex',
        name: 'Globex',
        owner: 'gina-owner',
        userTypes: [
          { id: 'boss', name: 'Boss', secondFactor: 'none' },
          { id: 'staff', name: 'Staff', secondFactor: 'none' },
        ],
        logins: [
          { id: 'gina-owner', email: 'gina@globex.test', userType: 'boss', firstName: 'Gina', lastName: 'Green' },
          { id: 'jane-globex', email: 'jane@acme.test', userType: 'staff', firstName: 'Jane', lastName: 'Doe' },
        ],
        clients: [{ client_id: 'globex-app', client_secret: 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
      },
    ],
  };
}

export const onAccountPage = (page: Page, path = '/account') => new URL(page.url).pathname === path && page.status === 200;

/**
 * Opens `path` and signs in with the password (choosing `login` when the
 * identity has several, in any tenant). Returns the page reached: the account
 * page, or the factor page when the login's type asks for one.
 */
export async function accountSignIn(server: TestServer, who: { email: string; password?: string; login?: string }, path = '/account', browser = new Browser(server.issuer)) {
  let page = await browser.get(path);
  assert.ok(testIds(page).includes('login-form'), `expected the login page, got ${page.status} ${page.url}`);
  page = await submitLogin(browser, page, who.email, who.password ?? PASSWORD);
  if (testIds(page).includes('select-form') && who.login) {
    page = await browser.post(actionOf(page, 'select-form'), { login: who.login, csrf: csrfOf(page) });
  }
  return { browser, page };
}

/** Signs in to /account as a login whose type needs no factor, and checks the profile is shown. */
export async function signedIn(server: TestServer, who: { email: string; password?: string; login?: string }, path = '/account') {
  const { browser, page } = await accountSignIn(server, who, path);
  assert.equal(new URL(page.url).pathname, path, `expected ${path}, got ${page.status} ${page.url}\n${errorOf(page)}`);
  assert.equal(page.status, 200);
  return { browser, page };
}

/** The hidden inputs of the form marked `testid` (its CSRF token, a user type…). */
export function hiddenFields(page: Page, testid: string): Record<string, string> {
  const form = new RegExp(`<form[^>]*data-testid="${testid}"[^>]*>([^]*?)</form>`).exec(page.html);
  assert.ok(form, `no form ${testid} on ${page.url} (${page.status})`);
  const unescape = (v: string) =>
    v
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  return Object.fromEntries([...form[1]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, unescape(m[2]!)]));
}

/** The hidden inputs of the form marked `testid`, a name repeated (`user_type`) as the list of its values. */
export function hiddenLists(page: Page, testid: string): Record<string, string | string[]> {
  const form = new RegExp(`<form[^>]*data-testid="${testid}"[^>]*>([^]*?)</form>`).exec(page.html);
  assert.ok(form, `no form ${testid} on ${page.url} (${page.status})`);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of [...form[1]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map(
    (m) =>
      [
        m[1]!,
        m[2]!
          .replace(/&quot;/g, '"')
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&amp;/g, '&'),
      ] as const,
  )) {
    const had = out[name];
    out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return out;
}

/** Posts the form marked `testid` on `page`, with its hidden inputs and `fields`. */
export function submit(browser: Browser, page: Page, testid: string, fields: Record<string, string | string[]> = {}): Promise<Page> {
  return browser.post(actionOf(page, testid), { ...hiddenLists(page, testid), ...fields });
}

/** Links the authenticator app on the journey's link page; returns the secret and the step used. */
export async function linkOnPage(browser: Browser, page: Page) {
  const secret = secretOf(page);
  const step = currentStep();
  const done = await savedCodes(browser, await submit(browser, page, 'link-authenticator-form', { code: await codeFor(secret, step) }));
  return { secret, step, page: done };
}

export function noticeOf(page: Page): string {
  return /data-testid="notice"[^>]*>([^<]*)</.exec(page.html)?.[1] ?? '';
}

/** Each user type's factor as selected on the Security settings form, in the form's order. */
export function policyChoices(page: Page): [string, string][] {
  const form = /<form[^>]*data-testid="policies-form"[^>]*>([^]*?)<\/form>/.exec(page.html);
  assert.ok(form, `no policies form on ${page.url} (${page.status})`);
  return [...form[1]!.matchAll(/name="user_type" value="([^"]+)"[^]*?<select[^>]*name="second_factor"[^>]*>([^]*?)<\/select>/g)].map((m) => {
    const selected = /<option value="([^"]+)" selected>/.exec(m[2]!);
    return [m[1]!, selected?.[1] ?? ''];
  });
}

/**
 * Saves the Security settings' one form with `changes` (type id → factor id)
 * over what it shows, and confirms when asked (a type with logins). Returns
 * the page reached.
 */
export async function savePolicy(browser: Browser, page: Page, changes: Record<string, string>, { confirm = true } = {}): Promise<Page> {
  const choices = policyChoices(page).map(([type, factor]) => [type, changes[type] ?? factor] as const);
  let done = await browser.post('/account/security', { ...hiddenFields(page, 'policies-form'), user_type: choices.map((c) => c[0]), second_factor: choices.map((c) => c[1]) });
  if (confirm && testIds(done).includes('confirm-policy-form')) done = await submit(browser, done, 'confirm-policy-form');
  return done;
}
