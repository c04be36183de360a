/**
 * Relying parties' client secrets at rest: a keyed SHA-256 (HMAC) of the
 * secret, `hmac-sha256.<base64url>`, so a store dump yields no usable secret.
 *
 * A slow password hash is not needed: imported secrets are at least 32 random
 * characters, out of reach of guessing, and the client-credentials grant checks
 * one on every call. The key is derived from the pepper (`LATCHKEY_PEPPER`), so
 * a dump without the server's configuration cannot even test guesses.
 *
 * Only `client_secret_basic` and `client_secret_post` are offered (the import
 * sets no other `token_endpoint_auth_method`); `client_secret_jwt` would need
 * the secret itself and stays unsupported.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const CLIENT_SECRET_MIN_LENGTH = 32;

const PREFIX = 'hmac-sha256.';

export interface ClientSecrets {
  /** The stored form of a secret (deterministic: re-importing the same secret stores the same value). */
  hash(secret: string): string;
  /** True when `stored` is a hash made by `hash` (not a plain secret from before hashing). */
  isHashed(stored: string): boolean;
  /** Constant-time check of a presented secret against the stored form; a plain stored secret is compared as is. */
  matches(stored: string, presented: string): boolean;
}

export function createClientSecrets(pepper: string): ClientSecrets {
  const key = createHmac('sha256', pepper).update('latchkey client secret v1').digest();
  const digest = (secret: string) => createHmac('sha256', key).update(secret).digest();
  const isHashed = (stored: string) => stored.startsWith(PREFIX);
  return {
    hash: (secret) => PREFIX + digest(secret).toString('base64url'),
    isHashed,
    matches(stored, presented) {
      if (typeof stored !== 'string' || typeof presented !== 'string') return false;
      // Compare digests, so neither the length nor the content of the stored value shows in the timing.
      const expected = isHashed(stored) ? Buffer.from(stored.slice(PREFIX.length), 'base64url') : digest(stored);
      const actual = digest(presented);
      return expected.length === actual.length && timingSafeEqual(expected, actual);
    },
  };
}
