// Second-factor drivers for the bench: they answer the PIN and authenticator
// (TOTP) pages as a person would — choose a PIN once, then enter it; link an
// app once from the page's otpauth:// link, then type its current code — and
// which login may sign in next (a TOTP login at most once per 30-second step,
// so the server's replay refusal is respected, never tripped).
import { generate } from 'otplib';
import { actionOf, csrfOf, testIds, type Browser, type Page } from '../../test/support/browser.ts';
import type { BenchUser, Policy } from './seed.ts';

/** What a driver did on the factor page: set the factor up, or pass it. */
export type FactorStage = 'enroll' | 'verify';

export type FactorDriver = (browser: Browser, page: Page, user: BenchUser) => Promise<{ page: Page; stage: FactorStage }>;

/** A PIN every bench login chooses (6 digits, neither a sequence nor one repeated digit). */
export const BENCH_PIN = '482915';

const STEP_MS = 30_000;
const stepNow = () => Math.floor(Date.now() / STEP_MS);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function has(page: Page, form: string): boolean {
  return testIds(page).includes(form);
}

function submit(browser: Browser, page: Page, form: string, fields: Record<string, string>): Promise<Page> {
  return browser.post(actionOf(page, form), { ...fields, csrf: csrfOf(page) });
}

function unexpected(page: Page, wanted: string): Error {
  return new Error(`expected ${wanted}, got ${page.status} ${page.url}\n${page.html.slice(0, 600)}`);
}

export const pinDriver: FactorDriver = async (browser, page) => {
  if (has(page, 'choose-pin-form')) return { page: await submit(browser, page, 'choose-pin-form', { pin: BENCH_PIN, pin_confirm: BENCH_PIN }), stage: 'enroll' };
  if (has(page, 'enter-pin-form')) return { page: await submit(browser, page, 'enter-pin-form', { pin: BENCH_PIN }), stage: 'verify' };
  throw unexpected(page, 'the choose-PIN or enter-PIN page');
};

/** The code an authenticator app shows for `secret` in time step `step` (RFC 6238: SHA-1, 6 digits, 30 s). */
export function totpCode(secret: string, step: number): Promise<string> {
  return generate({ secret, algorithm: 'sha1', digits: 6, period: STEP_MS / 1000, epoch: step * (STEP_MS / 1000) });
}

/**
 * The TOTP logins' linked secrets and the last step each used, and the picker
 * that hands out a login whose last step is past (waiting for the next step
 * when none is free — the pool is sized so that measured phases never wait).
 */
export class TotpLogins {
  private readonly state = new Map<string, { secret: string | null; lastStep: number; busy: boolean }>();

  constructor(readonly users: BenchUser[]) {
    for (const u of users) this.state.set(u.loginId, { secret: null, lastStep: -1, busy: false });
  }

  readonly driver: FactorDriver = async (browser, page, user) => {
    const s = this.state.get(user.loginId)!;
    if (has(page, 'link-authenticator-form')) {
      const link = /href="(otpauth:\/\/[^"]+)"[^>]*data-testid="totp-link"/.exec(page.html)?.[1]?.replace(/&amp;/g, '&');
      const secret = link ? new URL(link).searchParams.get('secret') : null;
      if (!secret) throw unexpected(page, 'an otpauth:// link with a secret');
      const step = stepNow();
      let done = await submit(browser, page, 'link-authenticator-form', { code: await totpCode(secret, step) });
      s.secret = secret;
      s.lastStep = step;
      // Linking an app shows the recovery codes once; a person confirms they saved them.
      if (has(done, 'recovery-saved-form')) done = await submit(browser, done, 'recovery-saved-form', { saved: 'yes' });
      return { page: done, stage: 'enroll' };
    }
    if (has(page, 'enter-code-form')) {
      if (!s.secret) throw new Error(`${user.loginId} has no linked secret`);
      const step = stepNow();
      if (step <= s.lastStep) throw new Error(`${user.loginId} already used step ${s.lastStep}`);
      const done = await submit(browser, page, 'enter-code-form', { code: await totpCode(s.secret, step) });
      s.lastStep = step;
      return { page: done, stage: 'verify' };
    }
    throw unexpected(page, 'the link-authenticator or enter-code page');
  };

  /** A login free to sign in now (linked or not, as asked); waits for the next step when none is, until `deadline`. */
  async acquire(linked: boolean, deadline: number): Promise<BenchUser> {
    for (;;) {
      const now = stepNow();
      const user = this.users.find((u) => {
        const s = this.state.get(u.loginId)!;
        return !s.busy && (linked ? s.secret !== null && s.lastStep < now : s.secret === null);
      });
      if (user) {
        this.state.get(user.loginId)!.busy = true;
        return user;
      }
      if (!linked) throw new Error('every TOTP login is linked already');
      if (Date.now() > deadline) throw new Error('no TOTP login free before the deadline (pool too small)');
      await sleep((now + 1) * STEP_MS - Date.now() + 20);
    }
  }

  release(user: BenchUser): void {
    this.state.get(user.loginId)!.busy = false;
  }

  /** Waits until every linked login may sign in again (the step after the newest one used). */
  async allFree(): Promise<number> {
    const newest = Math.max(...[...this.state.values()].map((s) => s.lastStep));
    const wait = Math.max(0, (newest + 1) * STEP_MS - Date.now() + 20);
    await sleep(wait);
    return wait;
  }
}

/** How many argon2id verifications a sign-in of each policy needs (its floor): the password, plus the PIN. */
export const HASHES: Record<Policy, number> = { password: 1, pin: 2, totp: 1 };
