/**
 * Switching to another login of the same person from the account pages'
 * header, without the password again: a ticket, made by the account pages on
 * a CSRF-checked form and carried by the authorization request
 * (`latchkey_switch`), that names the browser's provider session, the login
 * it is signed in as and the sibling to switch to, signed with the cookie key.
 *
 * The journey honours it only for the account client, only while that very
 * session is still the browser's and still that login's, and only for a
 * sibling of the same email whose sessions were not ended since the password
 * was given. The session's first step (password or upstream) stands; the
 * sibling's own second factor is asked as at any sign-in, and the sign-in
 * time stays the password's, so a switch never counts as a fresh
 * re-authentication.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { constantTimeEqual } from '../crypto/equal.ts';

/** The authorization request's parameter that carries the ticket. */
export const SWITCH_PARAM = 'latchkey_switch';

/** How long a ticket may wait for its sign-in to start. */
const TICKET_TTL_MS = 5 * 60_000;

export interface SwitchTicket {
  /** The provider session's uid. */
  sid: string;
  /** The login the session is signed in as, and the sibling to switch to. */
  from: string;
  to: string;
  /** Expiry, epoch ms. */
  exp: number;
}

const ticketSchema = z.object({ sid: z.string().min(1).max(256), from: z.string().min(1).max(256), to: z.string().min(1).max(256), exp: z.number().int() });

const mac = (key: string, payload: string) => createHmac('sha256', key).update(`latchkey-switch\n${payload}`).digest('base64url');

export function signSwitchTicket(keys: readonly string[], ticket: Omit<SwitchTicket, 'exp'>, nowMs: number): string {
  const payload = Buffer.from(JSON.stringify({ ...ticket, exp: nowMs + TICKET_TTL_MS })).toString('base64url');
  return `${payload}.${mac(keys[0]!, payload)}`;
}

/** The ticket when it is ours (any current key), unexpired and well-formed; otherwise null. */
export function readSwitchTicket(keys: readonly string[], value: unknown, nowMs: number): SwitchTicket | null {
  if (typeof value !== 'string' || value.length > 2048) return null;
  const [payload, sig, ...rest] = value.split('.');
  if (!payload || !sig || rest.length || !keys.some((k) => constantTimeEqual(sig, mac(k, payload)))) return null;
  try {
    const parsed = ticketSchema.safeParse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
    return parsed.success && parsed.data.exp > nowMs ? parsed.data : null;
  } catch {
    return null;
  }
}
