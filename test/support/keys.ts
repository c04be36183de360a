// Signing keys for test servers. An RSA-2048 key pair costs ~90 ms of CPU to
// generate, and every test server with a fresh DATA_DIR would otherwise make
// one (the development keys, `config/index.ts`): hundreds per run. The test
// runner (`scripts/test.mjs`) generates one pair per run and names its file in
// LATCHKEY_TEST_SIGNING_KEYS; a test file run on its own generates one per
// process. Only the signing keys are shared: each server still gets cookie
// keys, an encryption key and a pepper of its own.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let cached: Record<string, unknown>[] | null = null;

/** The run's signing keys as JWKs (RS256 first, then ES256), the shape `dev-keys.json` holds. */
export function testSigningKeys(): Record<string, unknown>[] {
  if (cached) return cached;
  const file = process.env.LATCHKEY_TEST_SIGNING_KEYS;
  if (file) {
    cached = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>[];
  } else {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    cached = [
      { ...rsa, kid: `test-rsa-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' },
      { ...ec, kid: `test-ec-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' },
    ];
  }
  return cached;
}

/** Writes the development key file into a fresh DATA_DIR, as the server would, with the run's signing keys. */
export function writeDevKeys(dataDir: string): void {
  const file = {
    jwks: { keys: testSigningKeys() },
    cookieKeys: [randomBytes(32).toString('base64url')],
    encryptionKeys: [{ kid: 'dev1', key: randomBytes(32).toString('base64') }],
    pepper: randomBytes(32).toString('base64url'),
  };
  writeFileSync(join(dataDir, 'dev-keys.json'), JSON.stringify(file), { mode: 0o600 });
}
