/**
 * Known browsers (docs/security.md): a browser that signed in as an identity
 * gets a random cookie, and from then on its password attempts for that
 * identity count on a counter of its own, not on the account's. A stranger who
 * hammers an email can freeze the account's counter, which every unknown
 * browser shares, but not the person's own browser. Only a hash of the cookie
 * (with the identity) is stored, as a mark in the counter store; a cookie
 * that was never marked for the identity is an unknown browser.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { CounterStore } from './storage/counters/port.ts';
import { hashedKey, passwordKey, type AttemptKeys } from './limits.ts';

export const KNOWN_BROWSER_COOKIE = 'lk_browser';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface PasswordCounter {
  /** What this browser's password attempt on the identity counts on: its own key when known, else the account's and the address's. */
  keys: AttemptKeys;
  /** The browser signed in as the identity before. */
  known: boolean;
}

export interface KnownBrowsers {
  /** Which counters this request's password attempt for `email` (normalized) from `address` counts on. */
  passwordCounter(ctx: Context, email: string, address: string | null): Promise<PasswordCounter>;
  /** After a full sign-in as `email`: this browser is known for it (the cookie is set when missing). */
  remember(ctx: Context, email: string): Promise<void>;
}

export function knownBrowsers(counters: CounterStore, opts: { secure: boolean; ttlMs: number }, now: () => number = Date.now): KnownBrowsers {
  const tokenOf = (ctx: Context) => {
    const token = ctx.cookies.get(KNOWN_BROWSER_COOKIE);
    return token && TOKEN.test(token) ? token : null;
  };
  const markKey = (email: string, token: string) => hashedKey('kb', `${passwordKey(email)}:${token}`);
  const counterKey = (email: string, token: string) => hashedKey('pwd-kb', `${passwordKey(email)}:${token}`);

  return {
    async passwordCounter(ctx, email, address) {
      const token = tokenOf(ctx);
      // A known browser is not slowed down with the others behind its address.
      if (token && (await counters.isMarked(markKey(email, token), now()))) return { keys: { targets: [counterKey(email, token)] }, known: true };
      return { keys: { targets: [passwordKey(email)], address }, known: false };
    },
    async remember(ctx, email) {
      let token = tokenOf(ctx);
      if (!token) token = randomBytes(32).toString('base64url');
      await counters.mark(markKey(email, token), opts.ttlMs, now());
      ctx.cookies.set(KNOWN_BROWSER_COOKIE, token, { httpOnly: true, sameSite: 'lax', secure: opts.secure, path: '/', maxAge: opts.ttlMs, overwrite: true, signed: false });
    },
  };
}
