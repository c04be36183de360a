// The WebAuthn ceremonies end to end in Debian's Chromium with the DevTools
// virtual authenticator: the pages' script and the browser library as served
// (under the real CSP), the server side of `src/factors/passkey/ceremony.ts`,
// and what it refuses — a replayed answer, a cloned key, an expired challenge.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { createWebAuthn, newUserHandle, type Challenge, type WebAuthn } from '../../src/factors/passkey/ceremony.ts';
import { createSqliteCounterStore } from '../../src/storage/counters/sqlite/index.ts';
import type { Passkey } from '../../src/storage/accounts/port.ts';
import { assetRouter } from '../../src/web/assets.ts';
import { securityHeaders } from '../../src/web/security.ts';
import { withoutChromium } from '../support/chromium.ts';
import { addVirtualAuthenticator, launchWebAuthnChromium, base64url, cloneAuthenticator } from '../support/webauthn.ts';
import { testClock } from '../support/latchkey.ts';

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** A page with one passkey form, as the factor's views make them. */
const page = (kind: string, options: unknown) => `<!doctype html><html><head><meta charset="utf-8">
<script src="/static/webauthn.js" defer></script><script src="/static/passkey.js" defer></script></head><body>
<p data-passkey-error hidden data-text-cancelled="cancelled" data-text-failed="failed"></p>
<form method="post" data-passkey="${kind}" data-options="${escape(JSON.stringify(options))}">
<input type="hidden" name="response"><button data-passkey-start hidden data-testid="start">Go</button></form></body></html>`;

describe('WebAuthn ceremonies in Chromium', { skip: withoutChromium }, () => {
  let server: Server;
  let origin: string;
  let browser: Browser;
  let webauthn: WebAuthn;
  const clock = testClock();
  const db = new Database(':memory:');
  const counters = createSqliteCounterStore(db);
  /** The one credential the tests register, and what the last ceremony said. */
  let stored: Passkey | null = null;
  let challenge: Challenge | null = null;
  let lastResponse = '';
  const results: unknown[] = [];

  before(async () => {
    const app = new Koa();
    app.use(securityHeaders);
    app.use(assetRouter().routes());
    const router = new Router();
    router.use(bodyParser({ enableTypes: ['form'], formLimit: '64kb' }));
    router.get('/register', async (ctx) => {
      const made = await webauthn.registrationOptions({ handle: newUserHandle(), name: 'ada@example.com', displayName: 'Ada Lovelace', exclude: [], rpName: 'Acme' });
      challenge = made.challenge;
      ctx.body = page('register', made.options);
    });
    router.get('/authenticate', async (ctx) => {
      const made = await webauthn.authenticationOptions(ctx.query.discoverable ? undefined : stored ? [stored] : []);
      challenge = made.challenge;
      ctx.body = page('authenticate', made.options);
    });
    const answer = async (ctx: Koa.Context, result: unknown) => {
      results.push(result);
      ctx.type = 'text/plain';
      ctx.body = JSON.stringify(result);
    };
    router.post('/register', async (ctx) => {
      lastResponse = String((ctx.request.body as Record<string, string>).response);
      const result = await webauthn.verifyRegistration(challenge, lastResponse);
      if (result.ok) {
        const c = result.credential;
        stored = { ...c, loginId: 'l1', tenant: 'acme', userHandle: 'aA', name: 'k', createdAt: new Date(clock.now()), lastUsedAt: null };
      }
      await answer(ctx, result.ok ? { ok: true, deviceType: result.credential.deviceType, userVerified: result.credential.userVerified } : result);
    });
    router.post('/authenticate', async (ctx) => {
      lastResponse = String((ctx.request.body as Record<string, string>).response);
      const parsed = webauthn.parseAuthentication(lastResponse);
      if (!parsed || !stored || parsed.credentialId !== stored.id) return answer(ctx, { ok: false, failure: 'unknown' });
      const result = await webauthn.verifyAuthentication(challenge, parsed.response, stored);
      if (result.ok) stored = { ...stored, counter: result.assertion.newCounter };
      await answer(ctx, result.ok ? { ok: true, ...result.assertion, userHandle: parsed.userHandle } : result);
    });
    app.use(router.routes());
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as { port: number }).port;
    // `localhost`, not 127.0.0.1: WebAuthn needs a secure context and a domain for the RP ID.
    origin = `http://localhost:${port}`;
    webauthn = createWebAuthn({ issuer: origin, counters, now: clock.now });
    browser = await launchWebAuthnChromium();
  });
  after(async () => {
    await browser?.close();
    server?.close();
    db.close();
  });

  async function ceremony(p: Page, path: string): Promise<Record<string, unknown>> {
    await p.goto(`${origin}${path}`);
    return posted(p, () => p.getByTestId('start').click());
  }

  /** What the server answered to the form the page's script posted after `act`. */
  async function posted(p: Page, act: () => Promise<void>): Promise<Record<string, unknown>> {
    const response = p.waitForResponse((r) => r.request().method() === 'POST');
    await act();
    return JSON.parse(await (await response).text()) as Record<string, unknown>;
  }

  it('registers a passkey and signs in with it; the sign count moves forward; a replayed answer is refused', async () => {
    const context = await browser.newContext();
    const p = await context.newPage();
    const authenticator = await addVirtualAuthenticator(p);
    assert.deepEqual(await ceremony(p, '/register'), { ok: true, deviceType: 'singleDevice', userVerified: true });
    const [credential] = await authenticator.credentials();
    assert.equal(base64url(credential!.credentialId), stored!.id);
    assert.equal(credential!.rpId, 'localhost');
    assert.equal(credential!.isResidentCredential, true);

    const first = await ceremony(p, '/authenticate?discoverable=1');
    assert.equal(first.ok, true);
    assert.equal(first.userVerified, true);
    assert.equal(typeof first.userHandle, 'string', 'a discoverable credential names its user');
    const counterAfterFirst = stored!.counter;
    assert.ok(counterAfterFirst >= 1);
    assert.equal((await ceremony(p, '/authenticate')).ok, true);
    assert.ok(stored!.counter > counterAfterFirst);

    // The same answer sent again (a second tab, a captured request): its challenge was claimed.
    const replay = await fetch(`${origin}/authenticate`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ response: lastResponse }),
    });
    assert.deepEqual(await replay.json(), { ok: false, failure: 'replayed' });
    await context.close();
  });

  it('refuses a cloned key whose sign count went back', async () => {
    const context = await browser.newContext();
    const p = await context.newPage();
    const original = await addVirtualAuthenticator(p);
    assert.equal((await ceremony(p, '/register')).ok, true);
    assert.equal((await ceremony(p, '/authenticate')).ok, true);
    assert.equal((await ceremony(p, '/authenticate')).ok, true);
    const clone = await cloneAuthenticator(p, original, 1);
    assert.deepEqual(await ceremony(p, '/authenticate'), { ok: false, failure: 'counter' });
    assert.equal((await clone.credentials())[0]?.signCount, 2, 'the clone did sign, with a count behind the stored one');
    await context.close();
  });

  it('a synced passkey is multi-device; without user verification the flag says so', async () => {
    const context = await browser.newContext();
    const p = await context.newPage();
    await addVirtualAuthenticator(p, { backedUp: true, hasUserVerification: false, isUserVerified: false });
    assert.deepEqual(await ceremony(p, '/register'), { ok: true, deviceType: 'multiDevice', userVerified: false });
    const signedIn = await ceremony(p, '/authenticate');
    assert.equal(signedIn.ok, true);
    assert.equal(signedIn.deviceType, 'multiDevice');
    assert.equal(signedIn.backedUp, true);
    assert.equal(signedIn.userVerified, false);
    await context.close();
  });

  it('refuses an answer after the challenge expired, and malformed answers', async () => {
    const context = await browser.newContext();
    const p = await context.newPage();
    await addVirtualAuthenticator(p);
    assert.equal((await ceremony(p, '/register')).ok, true);
    await p.goto(`${origin}/authenticate`);
    clock.advance(5 * 60_000 + 1);
    assert.deepEqual(await posted(p, () => p.getByTestId('start').click()), { ok: false, failure: 'expired' });
    await context.close();
    const made = await webauthn.authenticationOptions([]);
    for (const bad of ['', 'null', '[]', '{"id":1}', JSON.stringify({ id: 'YQ', rawId: 'YQ', type: 'public-key', response: { clientDataJSON: 5 } }), 'x'.repeat(20_000)]) {
      assert.equal(webauthn.parseAuthentication(bad), null, bad.slice(0, 40));
      assert.deepEqual(await webauthn.verifyRegistration(made.challenge, bad), { ok: false, failure: 'expired' }, 'an authentication challenge never serves a registration');
    }
  });
});
