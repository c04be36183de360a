/**
 * Known browsers (docs/security.md): a browser that signed in as an identity
 * gets a random cookie, and from then on its password attempts for that
 * identity count on a counter of its own, not on the account's. A stranger who
 * hammers an email can freeze the account's counter, which every unknown
 * browser shares, but not the person's own browser.
 *
 * What makes the browser known for an identity travels in the cookie itself:
 * after the random token, one proof per identity it signed in as, a MAC under
 * a key of the server over the identity's key, the token and the proof's
 * expiry. Nothing is stored, so remembering a browser costs the counter store
 * neither a key nor a round trip; a made-up token, another identity's proof or
 * a changed expiry does not verify, and the cookie says nothing about whose
 * it is.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { hashedKey, passwordKey, type AttemptKeys } from './limits.ts';

export const KNOWN_BROWSER_COOKIE = 'lk_browser';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
/** A proof: 22 characters of MAC (128 bits), then its expiry in epoch seconds, base 36. */
const PROOF = /^([A-Za-z0-9_-]{22})([0-9a-z]{1,10})$/;
/** Identities a browser is known for at once (a shared computer): the oldest proof goes first. */
const MAX_PROOFS = 5;

export interface PasswordCounter {
  /** What this browser's password attempt on the identity counts on: its own key when known, else the account's and the address's. */
  keys: AttemptKeys;
  /** The browser signed in as the identity before. */
  known: boolean;
}

export interface KnownBrowsers {
  /** Which counters this request's password attempt for `email` (normalized) from `address` counts on. */
  passwordCounter(ctx: Context, email: string, address: string | null): Promise<PasswordCounter>;
  /** After a full sign-in as `email`: this browser is known for it (the cookie is set, its proof for `email` renewed). */
  remember(ctx: Context, email: string): Promise<void>;
}

/** The key of the proofs, derived from the pepper. */
export function knownBrowserKey(pepper: string): Buffer {
  return createHmac('sha256', pepper).update('latchkey known browsers v1').digest();
}

export function knownBrowsers(opts: { key: Buffer; secure: boolean; ttlMs: number }, now: () => number = Date.now): KnownBrowsers {
  const mac = (email: string, token: string, expires: string) =>
    createHmac('sha256', opts.key)
      .update(`${passwordKey(email)}\n${token}\n${expires}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  const counterKey = (email: string, token: string) => hashedKey('pwd-kb', `${passwordKey(email)}:${token}`);

  function read(ctx: Context): { token: string; proofs: { mac: string; expires: string }[] } | null {
    const [token, ...rest] = (ctx.cookies.get(KNOWN_BROWSER_COOKIE) ?? '').split('.');
    if (!token || !TOKEN.test(token)) return null;
    const nowSeconds = now() / 1000;
    const proofs = rest
      .slice(0, MAX_PROOFS)
      .map((p) => PROOF.exec(p))
      .filter((m) => m !== null)
      .map((m) => ({ mac: m[1]!, expires: m[2]! }))
      .filter((p) => parseInt(p.expires, 36) > nowSeconds);
    return { token, proofs };
  }

  const proves = (email: string, token: string, proof: { mac: string; expires: string }) => timingSafeEqual(Buffer.from(mac(email, token, proof.expires)), Buffer.from(proof.mac));

  return {
    async passwordCounter(ctx, email, address) {
      const cookie = read(ctx);
      // A known browser is not slowed down with the others behind its address.
      if (cookie && cookie.proofs.some((p) => proves(email, cookie.token, p))) return { keys: { targets: [counterKey(email, cookie.token)] }, known: true };
      return { keys: { targets: [passwordKey(email)], address }, known: false };
    },
    async remember(ctx, email) {
      const cookie = read(ctx);
      const token = cookie?.token ?? randomBytes(32).toString('base64url');
      const others = (cookie?.proofs ?? []).filter((p) => !proves(email, token, p));
      const expires = Math.ceil((now() + opts.ttlMs) / 1000).toString(36);
      const proofs = [{ mac: mac(email, token, expires), expires }, ...others].slice(0, MAX_PROOFS);
      const value = [token, ...proofs.map((p) => `${p.mac}${p.expires}`)].join('.');
      ctx.cookies.set(KNOWN_BROWSER_COOKIE, value, { httpOnly: true, sameSite: 'lax', secure: opts.secure, path: '/', maxAge: opts.ttlMs, overwrite: true, signed: false });
    },
  };
}
