/**
 * The rules a new password must meet on the account pages: at least 8
 * characters, not one of the most common passwords (the ~49,000 of
 * `@zxcvbn-ts/language-common`, compared case-insensitively), not the email
 * address, entered twice.
 */
import { createRequire } from 'node:module';
import type * as CommonWords from '@zxcvbn-ts/language-common';

export const PASSWORD_RULES = { minLength: 8, maxLength: 1024 } as const;

export type PasswordProblem = 'too_short' | 'too_long' | 'common' | 'email' | 'mismatch';

let common: Set<string> | null = null;

/** True for a password on the common-passwords list (case-insensitive). */
export function isCommonPassword(password: string): boolean {
  // Loaded on first use: the package decompresses all its dictionaries when loaded, which cost every
  // process (each server start, each CLI command) about 0.2 CPU-s whether or not a password was ever set.
  common ??= new Set((createRequire(import.meta.url)('@zxcvbn-ts/language-common') as typeof CommonWords).dictionary['passwords-common'].map((p) => p.toLowerCase()));
  return common.has(password.toLowerCase());
}

/** The first reason to refuse `password` (entered twice), or null when it is acceptable. */
export function checkNewPassword(password: string, confirm: string, email: string): PasswordProblem | null {
  const length = [...password].length;
  if (length < PASSWORD_RULES.minLength) return 'too_short';
  if (password.length > PASSWORD_RULES.maxLength) return 'too_long';
  if (isCommonPassword(password) || isCommonPassword(password.trim())) return 'common';
  if (password.trim().toLowerCase() === email.toLowerCase()) return 'email';
  if (password !== confirm) return 'mismatch';
  return null;
}
