// Encryption of TOTP secrets at rest: AES-256-GCM, the key id kept
// with the ciphertext, bound to a context (the login id), keys rotatable.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SecretBoxError, createSecretBox } from '../../src/crypto/secretbox.ts';

const key = (kid: string) => ({ kid, key: randomBytes(32) });
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

/** Flips one bit of one byte of a base64url part of a sealed value. */
function flip(sealed: string, part: number, byte = 0): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[byte] = bytes[byte]! ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('secret box', () => {
  it('opens what it sealed, with the key id in the clear and the secret not', () => {
    const box = createSecretBox([key('k1')]);
    const sealed = box.seal(SECRET, 'login-1');
    assert.equal(box.open(sealed, 'login-1'), SECRET);
    assert.match(sealed, /^v1\.k1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.ok(!sealed.includes(SECRET));
    assert.notEqual(box.seal(SECRET, 'login-1'), sealed, 'a fresh IV per seal');
  });

  it('refuses a value with any byte flipped: IV, ciphertext or tag', () => {
    const box = createSecretBox([key('k1')]);
    const sealed = box.seal(SECRET, 'login-1');
    for (const part of [2, 3, 4]) {
      for (const byte of [0, 5]) {
        assert.throws(() => box.open(flip(sealed, part, byte), 'login-1'), SecretBoxError, `part ${part} byte ${byte}`);
      }
    }
  });

  it('refuses another context: a ciphertext cannot be moved to another login', () => {
    const box = createSecretBox([key('k1')]);
    const sealed = box.seal(SECRET, 'login-1');
    assert.throws(() => box.open(sealed, 'login-2'), SecretBoxError);
    assert.throws(() => box.open(sealed, ''), SecretBoxError);
  });

  it('after rotation seals with the new key and still opens values of the old key', () => {
    const k1 = key('k1');
    const k2 = key('k2');
    const old = createSecretBox([k1]).seal(SECRET, 'login-1');
    const rotated = createSecretBox([k2, k1]);
    assert.equal(rotated.open(old, 'login-1'), SECRET);
    const fresh = rotated.seal(SECRET, 'login-1');
    assert.equal(fresh.split('.')[1], 'k2');
    assert.equal(createSecretBox([k2]).open(fresh, 'login-1'), SECRET);
    assert.throws(() => createSecretBox([k2]).open(old, 'login-1'), SecretBoxError, 'a removed key no longer opens');
  });

  it('refuses a value relabelled with another key id', () => {
    const k1 = key('k1');
    const k2 = { kid: 'k2', key: k1.key };
    const box = createSecretBox([k1, k2]);
    const sealed = box.seal(SECRET, 'login-1');
    assert.throws(() => box.open(sealed.replace('.k1.', '.k2.'), 'login-1'), SecretBoxError);
  });

  it('refuses malformed values without crashing', () => {
    const box = createSecretBox([key('k1')]);
    for (const bad of [
      '',
      'v1',
      'v1.k1.a.b.c',
      'v2.k1.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA',
      'v1.k1.!!.!!.!!',
      'v1.nope.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA',
      42 as unknown as string,
    ]) {
      assert.throws(() => box.open(bad, 'login-1'), SecretBoxError, String(bad));
    }
  });

  it('refuses bad key material at construction', () => {
    assert.throws(() => createSecretBox([]));
    assert.throws(() => createSecretBox([{ kid: 'k1', key: randomBytes(16) }]));
    assert.throws(() => createSecretBox([{ kid: 'bad.kid', key: randomBytes(32) }]));
    assert.throws(() => createSecretBox([key('k1'), key('k1')]));
  });
});
