// Second-factor journeys for tests: a tenant with one user type per policy,
// people made on demand (each test its own logins, so factor state, counters
// and replay steps never leak between tests), and page objects for the
// factor pages.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ImportDocument } from '../../src/import/index.ts';
import { codeAt, stepAt } from '../../src/factors/totp/code.ts';
import type { AuditEvent } from '../../src/storage/accounts/port.ts';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from './browser.ts';
import { PASSWORD, callbackReached, seedPasswordHash, signIn, type RelyingParty, type TestServer } from './latchkey.ts';

export const TENANT = 'acme';

/** Acme with one user type per policy; `staff` and `owner` start at `none` for policy-change tests. */
export function factorFixture(): ImportDocument {
  return {
    identities: [{ email: 'owner@acme.test', password: PASSWORD }],
    tenants: [
      {
        id: TENANT,
        name: 'Acme Care',
        owner: 'acme-owner',
        userTypes: [
          { id: 'owner', name: 'Owner', secondFactor: 'none' },
          { id: 'employee', name: 'Employee', secondFactor: 'none' },
          { id: 'nurse', name: 'Nurse', secondFactor: 'pin' },
          { id: 'manager', name: 'Manager', secondFactor: 'totp' },
          { id: 'staff', name: 'Staff', secondFactor: 'none' },
        ],
        logins: [{ id: 'acme-owner', email: 'owner@acme.test', userType: 'owner', firstName: 'Olga', lastName: 'Owner' }],
        clients: [{ client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
      },
    ],
  };
}

/** Short locks, so lockout tests wait seconds, not minutes. */
export const SHORT_LOCKS = { LOCK_BASE_MS: '2000', LOCK_MAX_MS: '8000' };

export interface Person {
  email: string;
  /** Login ids, one per user type asked for, in order. */
  logins: string[];
}

/** A new identity with one login per entry of `userTypes` (all named Pat Doe). */
export async function addPerson(server: TestServer, ...userTypes: string[]): Promise<Person> {
  const { accounts } = server.latchkey.stores;
  const name = `p-${randomBytes(4).toString('hex')}`;
  const email = `${name}@acme.test`;
  await accounts.upsertIdentity({ email, passwordHash: await seedPasswordHash(server.latchkey, PASSWORD) });
  const logins = userTypes.map((t, i) => `${name}-${t}-${i}`);
  for (const [i, id] of logins.entries()) {
    await accounts.upsertLogin({ id, tenant: TENANT, email, userType: userTypes[i]!, firstName: 'Pat', lastName: 'Doe' });
  }
  return { email, logins };
}

/** Signs in with the password (choosing `login` when the person has several) up to the factor page. */
export async function reachFactor(server: TestServer, rp: RelyingParty, person: Person, login = person.logins[0]!, browser = new Browser(server.issuer)) {
  const { page, pending } = await signIn(browser, rp, { email: person.email, login });
  return { browser, page, pending };
}

/** Posts a factor form (by its data-testid) with the page's CSRF token. */
export function submitFactor(browser: Browser, page: Page, form: string, fields: Record<string, string | string[]>): Promise<Page> {
  return browser.post(actionOf(page, form), { ...fields, csrf: csrfOf(page) });
}

export function hasForm(page: Page, form: string): boolean {
  return testIds(page).includes(form);
}

/** The error shown on a factor page. */
export function errorOf(page: Page): string {
  return (/data-testid="error"[^>]*>([\s\S]*?)<\/p>/.exec(page.html)?.[1] ?? '').replace(/<[^>]+>/g, '');
}

/** The secret on the link page, from the grouped text. */
export function secretOf(page: Page): string {
  const grouped = textOf(page, 'totp-secret');
  assert.ok(grouped, `no secret on page ${page.status}:\n${page.html.slice(0, 800)}`);
  return grouped.replace(/\s+/g, '');
}

/** The `otpauth://` link on the link page. */
export function otpauthOf(page: Page): string {
  const m = /<a href="(otpauth:\/\/[^"]+)"[^>]*data-testid="totp-link"/.exec(page.html);
  assert.ok(m, 'no otpauth link');
  return m[1]!.replace(/&amp;/g, '&');
}

export const currentStep = () => stepAt(Date.now());
export const codeFor = (secret: string, step: number) => codeAt(secret, step * 30);

/** A 6-digit code that is not valid anywhere near now. */
export async function wrongCode(secret: string): Promise<string> {
  const near = new Set<string>();
  for (let s = currentStep() - 3; s <= currentStep() + 3; s++) near.add(await codeFor(secret, s));
  for (let n = 0; ; n++) {
    const candidate = String(n * 7919)
      .padStart(6, '0')
      .slice(-6);
    if (!near.has(candidate)) return candidate;
  }
}

/**
 * Links an authenticator app for `login` at its first sign-in, confirming
 * with the code of the current step; returns the secret and that step (the
 * next sign-in must use a newer one).
 */
export async function linkApp(server: TestServer, rp: RelyingParty, person: Person, login = person.logins[0]!) {
  const { browser, page } = await reachFactor(server, rp, person, login);
  assert.ok(hasForm(page, 'link-authenticator-form'), `expected the link page, got ${page.status} ${page.url}`);
  const secret = secretOf(page);
  const step = currentStep();
  const done = await savedCodes(browser, await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secret, step) }));
  assert.ok(callbackReached(done), `linking failed: ${done.status} ${errorOf(done)}`);
  return { secret, step, browser };
}

/** Chooses a PIN for `login` at its first sign-in. */
export async function choosePin(server: TestServer, rp: RelyingParty, person: Person, pin: string, login = person.logins[0]!) {
  const { browser, page } = await reachFactor(server, rp, person, login);
  assert.ok(hasForm(page, 'choose-pin-form'), `expected the choose-PIN page, got ${page.status} ${page.url}`);
  const done = await submitFactor(browser, page, 'choose-pin-form', { pin, pin_confirm: pin });
  assert.ok(callbackReached(done), `choosing a PIN failed: ${done.status} ${errorOf(done)}`);
  return { browser };
}

export function auditOf(server: TestServer, login: string, type?: string): Promise<AuditEvent[]> {
  return server.latchkey.stores.accounts.listAudit({ tenant: TENANT, login, ...(type ? { type } : {}), limit: 500 });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** After an app is linked at a sign-in the recovery codes are shown once: confirms they were saved and goes on. */
export async function savedCodes(browser: Browser, page: Page): Promise<Page> {
  if (!testIds(page).includes('recovery-saved-form')) return page;
  return browser.post(actionOf(page, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(page) });
}

/** The recovery codes shown on the page. */
export function codesOf(page: Page): string[] {
  return [...page.html.matchAll(/data-testid="recovery-code">([^<]+)</g)].map((m) => m[1]!);
}
