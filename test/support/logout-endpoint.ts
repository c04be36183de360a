// A back-channel logout endpoint for tests (OpenID Connect Back-Channel
// Logout 1.0), and what a relying party checks of each logout token it gets.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { constants, createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { listenOnFreePort } from './net.ts';
import type { RelyingParty } from './latchkey.ts';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A back-channel logout endpoint: records each logout token it takes (and counts connections); `down` answers 503 and takes none. */
export async function logoutEndpoint() {
  const tokens: string[] = [];
  let down = false;
  let connections = 0;
  const http: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      const ok = !down && req.method === 'POST' && req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') && !!token;
      if (ok) tokens.push(token);
      res.statusCode = ok ? 200 : 503;
      res.setHeader('cache-control', 'no-store');
      res.end();
    });
  });
  http.on('connection', () => connections++);
  const port = await listenOnFreePort(http);
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    port,
    tokens,
    connections: () => connections,
    setDown(value: boolean) {
      down = value;
    },
    close: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
}

/** What a relying party does with a logout token (Back-Channel Logout 1.0, section 2.6): verified, or it throws. */
export async function verifyLogoutToken(rp: RelyingParty, token: string) {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h!, 'base64url').toString()) as { alg: string; kid?: string; typ?: string };
  const { keys } = (await (await fetch(rp.config.serverMetadata().jwks_uri!)).json()) as { keys: JsonWebKey[] };
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'signed by a key of the JWKS');
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s!, 'base64url');
  const valid =
    header.alg === 'RS256'
      ? verify('sha256', data, key, sig)
      : header.alg === 'PS256'
        ? verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)
        : header.alg === 'ES256'
          ? verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
          : header.alg === 'EdDSA' && verify(null, data, key, sig);
  assert.ok(valid, `the signature verifies (${header.alg})`);
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
  assert.equal(claims.iss, rp.config.serverMetadata().issuer);
  assert.equal(claims.aud, rp.config.clientMetadata().client_id);
  assert.deepEqual(claims.events, { [BACKCHANNEL_EVENT]: {} });
  assert.equal(claims.nonce, undefined, 'a logout token carries no nonce');
  assert.equal(typeof claims.iat, 'number');
  assert.equal(typeof claims.jti, 'string');
  return claims as { sub: string; sid: string };
}
