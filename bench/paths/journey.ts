// The sign-in journeys of the new paths, as bench/lib/journey.ts runs the
// password one: a cookie-jar fetch plays the browser, openid-client the
// relying party, and the ID token's sub, acr and amr are checked at the end.
// Two shapes: the password and then a driver for the factor page (a passkey
// after the password, a recovery code instead of the app's code), and the
// passkey alone from the login page's "Sign in with a passkey".
import { Browser, actionOf, csrfOf, type Page } from '../../test/support/browser.ts';
import { callbackReached, submitLogin, type RelyingParty } from '../../test/support/latchkey.ts';
import { PASSWORD } from '../lib/seed.ts';
import type { SoftAuthenticator, RequestOptions } from '../lib/authenticator.ts';
import { has, passkeyOptions, unexpected } from './pages.ts';

export type PathStep = 'authorize' | 'password' | 'factor' | 'passkey' | 'token' | 'total';

export interface PathUser {
  email: string;
  loginId: string;
}

/** What the ID token must say. */
export interface Expected {
  acr: string;
  amr: string[];
}

export interface PathSignIn {
  ms: Partial<Record<PathStep, number>>;
}

/** Answers the factor page(s) after the password; resolves with the page that reached the relying party. */
export type PathDriver = (browser: Browser, page: Page, user: PathUser) => Promise<Page>;

async function exchange(rp: RelyingParty, page: Page, pending: { verifier: string; state: string }, user: PathUser, expected: Expected): Promise<void> {
  if (!callbackReached(page)) throw unexpected(page, 'the relying party callback');
  const claims = (await rp.callback(page.url, pending)).claims();
  if (claims?.sub !== user.loginId) throw new Error(`ID token for ${String(claims?.sub)}, expected ${user.loginId}`);
  if (claims.acr !== expected.acr) throw new Error(`${user.loginId}: ID token acr ${String(claims.acr)}, expected ${expected.acr}`);
  if (JSON.stringify(claims.amr) !== JSON.stringify(expected.amr))
    throw new Error(`${user.loginId}: ID token amr ${JSON.stringify(claims.amr)}, expected ${JSON.stringify(expected.amr)}`);
}

/** authorize → password → `driver` on the factor page → code → token exchange. */
export async function passwordThen(issuer: string, rp: RelyingParty, user: PathUser, driver: PathDriver, expected: Expected): Promise<PathSignIn> {
  const ms: PathSignIn['ms'] = {};
  const browser = new Browser(issuer);
  const t0 = performance.now();
  const pending = await rp.authorize();
  let page = await browser.get(pending.url);
  if (!has(page, 'login-form')) throw unexpected(page, 'the login page');
  const t1 = performance.now();
  page = await submitLogin(browser, page, user.email, PASSWORD);
  const t2 = performance.now();
  page = await driver(browser, page, user);
  const t3 = performance.now();
  await exchange(rp, page, pending, user, expected);
  const t4 = performance.now();
  Object.assign(ms, { authorize: t1 - t0, password: t2 - t1, factor: t3 - t2, token: t4 - t3, total: t4 - t0 });
  return { ms };
}

/**
 * authorize → the login page's "Sign in with a passkey" → the browser offers
 * the site's passkeys and the person picks `user`'s → code → token exchange.
 */
export async function passkeyAlone(
  issuer: string,
  rp: RelyingParty,
  authenticator: SoftAuthenticator,
  credentialOf: (user: PathUser) => string,
  user: PathUser,
  expected: Expected,
): Promise<PathSignIn> {
  const browser = new Browser(issuer);
  const t0 = performance.now();
  const pending = await rp.authorize();
  let page = await browser.get(pending.url);
  const link = /<a[^>]*href="([^"]+)"[^>]*data-testid="passkey-signin-link"/.exec(page.html)?.[1];
  if (!link) throw unexpected(page, 'the login page with "Sign in with a passkey"');
  const t1 = performance.now();
  page = await browser.get(link.replace(/&amp;/g, '&'));
  if (!has(page, 'passkey-signin-form')) throw unexpected(page, 'the passkey sign-in page');
  const response = authenticator.get(passkeyOptions<RequestOptions>(page, 'passkey-signin-form'), credentialOf(user));
  page = await browser.post(actionOf(page, 'passkey-signin-form'), { response: JSON.stringify(response), csrf: csrfOf(page) });
  const t2 = performance.now();
  await exchange(rp, page, pending, user, expected);
  const t3 = performance.now();
  return { ms: { authorize: t1 - t0, passkey: t2 - t1, token: t3 - t2, total: t3 - t0 } };
}
