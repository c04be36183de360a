/**
 * Encryption of small secrets at rest (TOTP secrets): AES-256-GCM
 * with a random 96-bit IV per seal.
 *
 * The sealed form is one string, `v1.<kid>.<iv>.<ciphertext>.<tag>` (base64url
 * parts), so the key id travels with the ciphertext. The first key seals; every
 * key opens, so keys can be rotated by putting a new one first and keeping the
 * old ones until nothing sealed with them remains.
 *
 * Every seal is bound to a `context` (the login id for a stored TOTP secret),
 * authenticated with the key id as additional data: a ciphertext copied to
 * another login, or relabelled with another key id, does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface EncryptionKey {
  kid: string;
  /** 32 bytes. */
  key: Buffer;
}

export interface SecretBox {
  seal(plaintext: string, context: string): string;
  /** Throws `SecretBoxError` for an unknown key id, a malformed value, a wrong context or any tampering. */
  open(sealed: string, context: string): string;
}

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID = /^[A-Za-z0-9_-]{1,32}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;

const aad = (kid: string, context: string) => Buffer.from(`latchkey.secretbox.${VERSION}\0${kid}\0${context}`);

export function createSecretBox(keys: readonly EncryptionKey[]): SecretBox {
  if (keys.length === 0) throw new Error('the secret box needs at least one key');
  const byKid = new Map<string, Buffer>();
  for (const { kid, key } of keys) {
    if (!KID.test(kid)) throw new Error(`invalid key id "${kid}"`);
    if (key.length !== 32) throw new Error(`key "${kid}" must be 32 bytes`);
    if (byKid.has(kid)) throw new Error(`duplicate key id "${kid}"`);
    byKid.set(kid, key);
  }
  const current = keys[0]!;

  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad(current.kid, context));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, current.kid, iv, ciphertext, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
    },
    open(sealed, context) {
      const parts = typeof sealed === 'string' ? sealed.split('.') : [];
      const [version, kid, ivText, ciphertextText, tagText] = parts;
      if (parts.length !== 5 || version !== VERSION || !parts.every((p) => B64URL.test(p))) throw new SecretBoxError('not a sealed value');
      const key = byKid.get(kid!);
      if (!key) throw new SecretBoxError(`no key with id "${kid}"`);
      const iv = Buffer.from(ivText!, 'base64url');
      const tag = Buffer.from(tagText!, 'base64url');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretBoxError('not a sealed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad(kid!, context));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(Buffer.from(ciphertextText!, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError('the sealed value does not open with this key and context');
      }
    },
  };
}
