/**
 * The account pages' own session: a signed, HttpOnly, SameSite=Lax cookie
 * (Secure when the issuer is https) scoped to `/account`, holding the claims
 * of the sign-in that made it. Every request re-reads the login and its tenant,
 * so the claims never grant more than the store says now.
 */
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';

export interface AccountSession {
  /** The login id (the OIDC subject). */
  sub: string;
  tenant: string;
  /** When the person last passed the password and factor (epoch seconds). */
  authTime: number;
  acr: string;
  amr: string[];
  /** The provider session's uid, so sign-out can end it. */
  sid: string;
  /** Bound to this session; every form of the account pages posts it back. */
  csrf: string;
  /** When this cookie session started (epoch ms). */
  createdAt: number;
  /**
   * Set when this session was kept through a change that ended the login's
   * other sessions (a password change, epoch seconds): the cut-off spares it.
   * Not a sign-in: `authTime` still says when the factor was last passed.
   */
  keptAt?: number;
}

const sessionSchema = z.object({
  sub: z.string().min(1).max(256),
  tenant: z.string().min(1).max(256),
  authTime: z.number().int().nonnegative(),
  acr: z.string().max(256),
  amr: z.array(z.string().max(64)).max(16),
  sid: z.string().max(256),
  csrf: z.string().min(16).max(128),
  createdAt: z.number().int().nonnegative(),
  keptAt: z.number().int().nonnegative().optional(),
});

/** A sign-in under way: what the callback checks the provider's answer against. */
export interface PendingSignIn {
  state: string;
  verifier: string;
  returnTo: string;
}

const pendingSchema = z.object({ state: z.string().min(16).max(128), verifier: z.string().min(43).max(128), returnTo: z.string().max(512) });

const draftSchema = z.object({ sub: z.string(), draft: z.record(z.string(), z.unknown()), createdAt: z.number() });

const SESSION_COOKIE = 'latchkey_account';
const PENDING_COOKIE = 'latchkey_account_signin';
const DRAFT_COOKIE = 'latchkey_account_draft';
/** An account session lasts at most this long, however active. */
export const SESSION_MAX_AGE_MS = 12 * 3600_000;
const PENDING_MAX_AGE_MS = 15 * 60_000;
const DRAFT_MAX_AGE_MS = 15 * 60_000;

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function decode<T>(raw: string | undefined, schema: z.ZodType<T>): T | null {
  if (!raw) return null;
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export const newCsrfToken = () => randomBytes(24).toString('base64url');

export interface AccountCookies {
  session(ctx: Context): AccountSession | null;
  setSession(ctx: Context, session: AccountSession): void;
  pending(ctx: Context): PendingSignIn | null;
  setPending(ctx: Context, pending: PendingSignIn): void;
  draft(ctx: Context, sub: string): Record<string, unknown>;
  setDraft(ctx: Context, sub: string, draft: Record<string, unknown>): void;
  /** Forgets the session, a sign-in under way and any draft. */
  clear(ctx: Context): void;
}

export function accountCookies({ secure, now = Date.now }: { secure: boolean; now?: () => number }): AccountCookies {
  const base = { httpOnly: true, sameSite: 'lax' as const, signed: true, secure, path: '/account', overwrite: true };
  const set = (ctx: Context, name: string, value: unknown, maxAge: number) => ctx.cookies.set(name, encode(value), { ...base, maxAge });
  const remove = (ctx: Context, name: string) => ctx.cookies.set(name, null, { ...base, maxAge: 0 });
  return {
    session(ctx) {
      const session = decode(ctx.cookies.get(SESSION_COOKIE, { signed: true }), sessionSchema);
      return session && now() - session.createdAt < SESSION_MAX_AGE_MS ? session : null;
    },
    setSession: (ctx, session) => set(ctx, SESSION_COOKIE, session, SESSION_MAX_AGE_MS),
    pending: (ctx) => decode(ctx.cookies.get(PENDING_COOKIE, { signed: true }), pendingSchema),
    setPending: (ctx, pending) => set(ctx, PENDING_COOKIE, pending, PENDING_MAX_AGE_MS),
    draft(ctx, sub) {
      const stored = decode(ctx.cookies.get(DRAFT_COOKIE, { signed: true }), draftSchema);
      return stored && stored.sub === sub && now() - stored.createdAt < DRAFT_MAX_AGE_MS ? stored.draft : {};
    },
    setDraft(ctx, sub, draft) {
      if (Object.keys(draft).length === 0) remove(ctx, DRAFT_COOKIE);
      else set(ctx, DRAFT_COOKIE, { sub, draft, createdAt: now() }, DRAFT_MAX_AGE_MS);
    },
    clear(ctx) {
      for (const name of [SESSION_COOKIE, PENDING_COOKIE, DRAFT_COOKIE]) remove(ctx, name);
    },
  };
}
