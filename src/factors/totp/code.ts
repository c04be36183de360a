/**
 * Time-based one-time codes (RFC 6238 over RFC 4226) as authenticator apps
 * make them: HMAC-SHA1, 6 digits, 30-second steps, a 160-bit base32 secret.
 * Generation and checking are otplib's; this module fixes the parameters and
 * reports the matched time step, which the replay guard records.
 */
import { generate, generateSecret, verify } from 'otplib';

export const TOTP = {
  algorithm: 'sha1',
  digits: 6,
  periodSeconds: 30,
  /** Codes of this many steps before and after now are accepted (clock drift). */
  toleranceSteps: 1,
  secretBytes: 20,
} as const;

/** A fresh random secret, base32 without padding (32 characters). */
export function newSecret(): string {
  return generateSecret({ length: TOTP.secretBytes });
}

/** The time step of an instant (ms since the epoch). */
export function stepAt(ms: number): number {
  return Math.floor(ms / 1000 / TOTP.periodSeconds);
}

/** The code of a time step; `digits` other than 6 only for the RFC test vectors. */
export function codeAt(secret: string | Uint8Array, epochSeconds: number, digits: 6 | 7 | 8 = TOTP.digits): Promise<string> {
  return generate({ secret, algorithm: TOTP.algorithm, digits, period: TOTP.periodSeconds, epoch: epochSeconds });
}

/** Spaces and dashes some people type or paste in a code ("123 456"). */
export function normalizeCode(input: string): string {
  return input.replace(/[\s-]/g, '');
}

/**
 * The time step whose code `code` is, within the tolerance around `nowMs`;
 * null for any other value (a wrong code, or not 6 digits). Constant-time
 * comparison is otplib's.
 */
export async function matchStep(secret: string | Uint8Array, code: string, nowMs: number = Date.now()): Promise<number | null> {
  if (!/^[0-9]{6}$/.test(code)) return null;
  const result = await verify({
    secret,
    token: code,
    algorithm: TOTP.algorithm,
    digits: TOTP.digits,
    period: TOTP.periodSeconds,
    epoch: Math.floor(nowMs / 1000),
    epochTolerance: TOTP.toleranceSteps * TOTP.periodSeconds,
  });
  return result.valid && 'timeStep' in result ? result.timeStep : null;
}

/** The secret as people type it: groups of four characters. */
export function groupSecret(secret: string): string {
  return secret.match(/.{1,4}/g)?.join(' ') ?? '';
}
