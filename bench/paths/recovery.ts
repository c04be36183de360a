// Recovery-code sign-ins for the bench: each login links an authenticator app
// once (its first sign-in) and keeps the ten codes the page then shows, as a
// person would; later sign-ins give the password and then, on the app's code
// page, "Use a recovery code" and one of them. Each code is used once, and a
// login is used by one sign-in at a time (its codes are spent by
// compare-and-set, its attempts counted).
import { actionOf, csrfOf } from '../../test/support/browser.ts';
import { builtInFactors } from '../../src/factors/registry.ts';
import { AMR } from '../../src/provider/acr.ts';
import { savedRecoveryCodes, totpCode } from '../lib/factors.ts';
import { has, unexpected } from './pages.ts';
import type { Expected, PathDriver, PathUser } from './journey.ts';

/** A recovery code stands in for the app's code: the app's level, a one-time password's methods. */
export const RECOVERY_EXPECTED: Expected = { acr: builtInFactors.info('totp').acr, amr: [AMR.password, 'otp', 'mfa'] };

export class RecoveryLogins {
  private readonly codes = new Map<string, string[]>();
  private readonly busy = new Set<string>();
  /** Codes used so far (each once). */
  spent = 0;

  constructor(readonly users: PathUser[]) {}

  /** Codes not used yet, over every login. */
  left(): number {
    return [...this.codes.values()].reduce((n, c) => n + c.length, 0);
  }

  /** The first sign-in: link the app from the page's otpauth:// link, then keep the codes shown. */
  readonly enrol: PathDriver = async (browser, page, user) => {
    if (!has(page, 'link-authenticator-form')) throw unexpected(page, 'the link-authenticator page');
    const link = /href="(otpauth:\/\/[^"]+)"[^>]*data-testid="totp-link"/.exec(page.html)?.[1]?.replace(/&amp;/g, '&');
    const secret = link ? new URL(link).searchParams.get('secret') : null;
    if (!secret) throw unexpected(page, 'an otpauth:// link with a secret');
    const code = await totpCode(secret, Math.floor(Date.now() / 30_000));
    const shown = await browser.post(actionOf(page, 'link-authenticator-form'), { code, csrf: csrfOf(page) });
    const { page: next, codes } = await savedRecoveryCodes(browser, shown);
    if (codes.length !== 10) throw unexpected(shown, `ten recovery codes for ${user.loginId} (got ${codes.length})`);
    this.codes.set(user.loginId, codes);
    return next;
  };

  /** A login with a code left that no other sign-in is using; null when none is. */
  acquire(): PathUser | null {
    const user = this.users.find((u) => !this.busy.has(u.loginId) && (this.codes.get(u.loginId)?.length ?? 0) > 0);
    if (user) this.busy.add(user.loginId);
    return user ?? null;
  }

  release(user: PathUser): void {
    this.busy.delete(user.loginId);
  }

  /** A later sign-in: "Use a recovery code" on the code page, one code, then "continue" past the count of those left. */
  readonly use: PathDriver = async (browser, page, user) => {
    if (!has(page, 'use-recovery-form')) throw unexpected(page, 'the code page with "Use a recovery code"');
    const codePage = await browser.post(actionOf(page, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(page) });
    if (!has(codePage, 'recovery-code-form')) throw unexpected(codePage, 'the recovery code page');
    const code = this.codes.get(user.loginId)!.shift();
    if (!code) throw new Error(`${user.loginId} has no recovery code left`);
    this.spent++;
    const used = await browser.post(actionOf(codePage, 'recovery-code-form'), { recovery_code: code, csrf: csrfOf(codePage) });
    if (!has(used, 'recovery-used-form')) throw unexpected(used, 'the page saying how many codes remain');
    return browser.post(actionOf(used, 'recovery-used-form'), { csrf: csrfOf(used) });
  };
}
