// One complete sign-in as a relying party and a browser-free user agent would
// do it (the test helpers: cookie-jar fetch + openid-client): authorize →
// password → second factor → code → token exchange with the ID token verified
// (claims by openid-client; its signature too, via non-repudiation checks).
// Each step is timed.
import * as oidc from 'openid-client';
import { Browser, type Page } from '../../test/support/browser.ts';
import { callbackReached, relyingParty, submitLogin, type RelyingParty } from '../../test/support/latchkey.ts';
import { builtInFactors } from '../../src/factors/registry.ts';
import { AMR } from '../../src/provider/acr.ts';
import { CLIENT_ID, CLIENT_SECRET, PASSWORD, type BenchUser, type Policy } from './seed.ts';
import type { FactorDriver, FactorStage } from './factors.ts';

export type { FactorDriver };

export type Step = 'authorize' | 'password' | 'factor' | 'token' | 'total';

export interface SignInResult {
  ms: Partial<Record<Step, number>>;
  refreshToken: string | undefined;
  /** What the second factor's page asked for, when there was one. */
  factorStage?: FactorStage;
}

export const EXPECTED_ACR: Record<Policy, string> = { password: builtInFactors.info('none').acr, pin: builtInFactors.info('pin').acr, totp: builtInFactors.info('totp').acr };

export async function benchRelyingParty(issuer: string): Promise<RelyingParty> {
  const rp = await relyingParty(issuer, CLIENT_ID, CLIENT_SECRET);
  oidc.enableNonRepudiationChecks(rp.config);
  return rp;
}

function describe(page: Page): string {
  return `${page.status} ${page.url}\n${page.html.slice(0, 600)}`;
}

export async function signIn(issuer: string, rp: RelyingParty, user: BenchUser, factor?: FactorDriver): Promise<SignInResult> {
  const ms: Partial<Record<Step, number>> = {};
  const browser = new Browser(issuer);
  const t0 = performance.now();

  const pending = await rp.authorize();
  let page = await browser.get(pending.url);
  if (!page.html.includes('data-testid="login-form"')) throw new Error(`expected the login page, got ${describe(page)}`);
  const t1 = performance.now();
  ms.authorize = t1 - t0;

  page = await submitLogin(browser, page, user.email, PASSWORD);
  const t2 = performance.now();
  ms.password = t2 - t1;

  let t3 = t2;
  let factorStage: FactorStage | undefined;
  if (!callbackReached(page)) {
    if (!factor) throw new Error(`expected the RP callback after the password, got ${describe(page)}`);
    ({ page, stage: factorStage } = await factor(browser, page, user));
    t3 = performance.now();
    ms.factor = t3 - t2;
    if (!callbackReached(page)) throw new Error(`expected the RP callback after the second factor, got ${describe(page)}`);
  }

  const tokens = await rp.callback(page.url, pending);
  const claims = tokens.claims();
  const t4 = performance.now();
  ms.token = t4 - t3;
  ms.total = t4 - t0;
  if (claims?.sub !== user.loginId) throw new Error(`ID token for ${String(claims?.sub)}, expected ${user.loginId}`);
  if (claims.acr !== EXPECTED_ACR[user.policy]) throw new Error(`ID token acr ${String(claims.acr)}, expected ${EXPECTED_ACR[user.policy]}`);
  if (!Array.isArray(claims.amr) || !claims.amr.includes(AMR.password)) throw new Error(`ID token amr ${JSON.stringify(claims.amr)} lacks pwd`);
  return { ms, refreshToken: tokens.refresh_token, factorStage };
}

/**
 * The bare provider's authorization-code flow (no password, no pages): authorize
 * → its interaction finishes the login → code → token exchange, ID token verified.
 */
export async function bareSignIn(issuer: string, rp: RelyingParty): Promise<SignInResult> {
  const browser = new Browser(issuer);
  const t0 = performance.now();
  const pending = await rp.authorize();
  const page = await browser.get(pending.url);
  if (!callbackReached(page)) throw new Error(`expected the RP callback from the bare provider, got ${describe(page)}`);
  const t1 = performance.now();
  const tokens = await rp.callback(page.url, pending);
  const t2 = performance.now();
  if (tokens.claims()?.sub !== 'bare-account') throw new Error('bare provider: unexpected ID token subject');
  return { ms: { authorize: t1 - t0, token: t2 - t1, total: t2 - t0 }, refreshToken: tokens.refresh_token };
}
