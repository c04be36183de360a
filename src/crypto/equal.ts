import { timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets (tokens, states, hashes) in constant time. Strings of
 * the same length in characters but not in bytes (an "é") are simply unequal.
 */
export function constantTimeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
