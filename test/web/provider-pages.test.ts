// The provider's own pages in Chromium, under our Content-Security-Policy
// (docs/security.md): the form_post response mode, whose self-submitting page
// is oidc-provider's one inline script, delivers the code (or the error) to a
// relying party's callback; RP-initiated logout ends on the expected page with
// a session (our confirmation page, plain forms) and without one (the
// provider's self-submitting page again). No CSP violation anywhere.
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Browser as Chromium, BrowserContext, Page } from 'playwright-core';
import { PASSWORD, fixture, startServer, type TestServer } from '../support/latchkey.ts';
import { launchChromium, withoutChromium } from '../support/chromium.ts';

/** A relying party's callback: records each request (method, path, form or query) and answers a small page. */
interface Callback {
  base: string;
  requests: { method: string; path: string; params: URLSearchParams }[];
  /** The next request to `path`, waiting for it to arrive. */
  next(path: string): Promise<{ method: string; params: URLSearchParams }>;
  close(): Promise<void>;
}

async function startCallback(): Promise<Callback> {
  const requests: Callback['requests'] = [];
  const waiting: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://rp.invalid');
      requests.push({ method: req.method!, path: url.pathname, params: req.method === 'POST' ? new URLSearchParams(body) : url.searchParams });
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Back at the application</title><h1>Back at the application</h1>');
      waiting.splice(0).forEach((wake) => wake());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let taken = 0;
  return {
    base,
    requests,
    async next(path) {
      for (let i = 0; i < 100; i++) {
        const found = requests.slice(taken).findIndex((r) => r.path === path);
        if (found >= 0) {
          taken += found + 1;
          return requests[taken - 1]!;
        }
        await Promise.race([new Promise<void>((wake) => waiting.push(wake)), new Promise((r) => setTimeout(r, 100))]);
      }
      throw new Error(`nothing reached ${path}; got ${requests.map((r) => `${r.method} ${r.path}`).join(', ') || 'nothing'}`);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("the provider's self-submitting pages in Chromium", { skip: withoutChromium }, () => {
  let server: TestServer;
  let callback: Callback;
  let chromium: Chromium;
  let rp: oidc.Configuration;
  let context: BrowserContext;
  let page: Page;
  /** What the browser reported against the policy: console lines and page errors. */
  let violations: string[];

  before(async () => {
    callback = await startCallback();
    const doc = fixture();
    doc.tenants![0]!.clients!.push({
      client_id: 'form-post-rp',
      client_secret: 's3cret-form-post-4f9a2c7e1b8d3f6a0c5e9b2d',
      redirect_uris: [`${callback.base}/cb`],
      post_logout_redirect_uris: [`${callback.base}/signed-out`],
      first_party: true,
    });
    server = await startServer('sqlite', { doc });
    rp = await oidc.discovery(new URL(server.issuer), 'form-post-rp', 's3cret-form-post-4f9a2c7e1b8d3f6a0c5e9b2d', undefined, { execute: [oidc.allowInsecureRequests] });
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await server?.stop();
    await callback?.close();
  });

  beforeEach(async () => {
    context = await chromium.newContext();
    violations = [];
    context.on('console', (msg) => {
      if (/Content Security Policy|Refused to (execute|load|apply)/i.test(msg.text())) violations.push(msg.text());
    });
    page = await context.newPage();
    page.on('pageerror', (err) => violations.push(err.message));
  });
  afterEach(async () => {
    await context.close();
    assert.deepEqual(violations, [], 'no CSP violation');
  });

  async function authorize(params: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: `${callback.base}/cb`,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      response_mode: 'form_post',
      state,
      ...params,
    });
    return { url: url.href, verifier, state };
  }

  async function signIn(email = 'bob@acme.test') {
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByTestId('login-submit').click();
  }

  /** Signs in with form_post and returns the ID token the code is exchanged for. */
  async function signedInWithFormPost(): Promise<string> {
    const pending = await authorize();
    await page.goto(pending.url);
    await signIn();
    const posted = await callback.next('/cb');
    await page.waitForURL(`${callback.base}/cb`);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(`${callback.base}/cb?${posted.params}`), { pkceCodeVerifier: pending.verifier, expectedState: pending.state });
    return tokens.id_token!;
  }

  it('form_post: the code reaches the callback as a POST from the page that submits itself, and the code is good', async () => {
    const pending = await authorize();
    const formPost = page.waitForResponse((res) => new URL(res.url()).pathname.startsWith('/auth/'));
    await page.goto(pending.url);
    await signIn();
    const response = await formPost;
    const csp = response.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/]+=*'/, `the provider allowed its own script by hash: ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline/);

    const posted = await callback.next('/cb');
    assert.equal(posted.method, 'POST');
    assert.deepEqual([...posted.params.keys()].sort(), ['code', 'iss', 'state']);
    assert.equal(posted.params.get('state'), pending.state);
    await page.waitForURL(`${callback.base}/cb`);
    assert.equal(await page.locator('h1').textContent(), 'Back at the application');
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(`${callback.base}/cb?${posted.params}`), { pkceCodeVerifier: pending.verifier, expectedState: pending.state });
    assert.equal(tokens.claims()!.email, 'bob@acme.test');
  });

  it('form_post: an error (prompt=none without a session) is posted to the callback too', async () => {
    const pending = await authorize({ prompt: 'none' });
    await page.goto(pending.url);
    const posted = await callback.next('/cb');
    await page.waitForURL(`${callback.base}/cb`);
    assert.equal(posted.method, 'POST');
    assert.equal(posted.params.get('error'), 'login_required');
    assert.equal(posted.params.get('state'), pending.state);
  });

  it('logout with a session: our confirmation page (plain forms), then the post-logout redirect with its state', async () => {
    const idToken = await signedInWithFormPost();
    const end = new URL('/session/end', server.issuer);
    end.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: `${callback.base}/signed-out`, state: 'bye-1' }).toString();
    await page.goto(end.href);
    assert.equal(await page.locator('script').count(), 0, 'no script on our logout page');
    await page.getByTestId('logout-yes').click();
    const back = await callback.next('/signed-out');
    assert.equal(back.method, 'GET');
    assert.equal(back.params.get('state'), 'bye-1');

    const again = await authorize({ prompt: 'none' });
    await page.goto(again.url);
    assert.equal((await callback.next('/cb')).params.get('error'), 'login_required', 'the session is gone');
  });

  it('logout with a session and no redirect: ends on our signed-out page', async () => {
    await signedInWithFormPost();
    await page.goto(new URL('/session/end', server.issuer).href);
    await page.getByTestId('logout-yes').click();
    await page.waitForURL(`${server.issuer}/session/end/success`);
    assert.equal(await page.locator('h1').textContent(), 'You are signed out');
  });

  it("logout without a session: the provider's page submits itself and ends on our signed-out page, or at the RP", async () => {
    await page.goto(new URL('/session/end', server.issuer).href);
    await page.waitForURL(`${server.issuer}/session/end/success`);
    assert.equal(await page.locator('h1').textContent(), 'You are signed out');

    const end = new URL('/session/end', server.issuer);
    end.search = new URLSearchParams({ client_id: 'form-post-rp', post_logout_redirect_uri: `${callback.base}/signed-out`, state: 'bye-2' }).toString();
    await page.goto(end.href);
    const back = await callback.next('/signed-out');
    assert.equal(back.params.get('state'), 'bye-2');
  });
});
