// Headers and cookies: a Content-Security-Policy without inline
// scripts and with frame-ancestors 'none' on every page; nosniff and a
// referrer policy; cookies HttpOnly and SameSite, Secure behind HTTPS.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, type Page } from '../support/browser.ts';
import { PASSWORD, relyingParty, startServer, submitLogin, type TestServer } from '../support/latchkey.ts';
import { addPerson, factorFixture, hasForm, reachFactor } from '../support/factors.ts';
import { safeReturnTo } from '../../src/account/kit.ts';
import { request as httpRequest } from 'node:http';

/** A GET with headers `fetch` will not send as given (`Host`). */
function rawGet(port: string | number, path: string, headers: Record<string, string>): Promise<{ status: number; location: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every URL a discovery document publishes. */
function publishedUrls(body: string): string[] {
  const doc = JSON.parse(body) as Record<string, unknown>;
  return Object.values(doc).filter((v): v is string => typeof v === 'string' && /^https?:/.test(v));
}

function assertSecurityHeaders(page: Page, what: string) {
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /frame-ancestors 'none'/, `${what}: frame-ancestors`);
  const script = /script-src ([^;]*)/.exec(csp)?.[1] ?? /default-src ([^;]*)/.exec(csp)?.[1] ?? '';
  assert.ok(script && !script.includes("'unsafe-inline'"), `${what}: no inline scripts (${csp})`);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff', what);
  assert.ok(page.headers.get('referrer-policy'), `${what}: referrer policy`);
  assert.equal(page.headers.get('x-frame-options'), 'DENY', what);
}

function cookiesOf(page: Page): string[] {
  return page.headers.getSetCookie();
}

describe('security headers and cookies', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer('sqlite');
  });
  after(() => server.stop());

  it('sends the headers on every kind of page', async () => {
    const rp = await relyingParty(server.issuer);
    const browser = new Browser(server.issuer);
    const authorize = await browser.request((await rp.authorize()).url);
    assertSecurityHeaders(authorize, 'authorization redirect');
    const login = await browser.follow(authorize);
    assertSecurityHeaders(login, 'login page');
    const wrong = await submitLogin(browser, login, 'bob@acme.test', 'nope');
    assertSecurityHeaders(wrong, 'login error');
    assertSecurityHeaders(await browser.request('/'), 'start page');
    assertSecurityHeaders(await browser.request('/interaction/unknown'), 'our error page');
    assertSecurityHeaders(await browser.request('/auth?client_id=nope'), "the provider's error page");
    assertSecurityHeaders(await browser.request('/.well-known/openid-configuration'), 'discovery');
    assertSecurityHeaders(await browser.request('/static/app.css'), 'stylesheet');
    assert.doesNotMatch(login.html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script element');
    assert.doesNotMatch(login.html, /\sstyle="/i, 'no inline style attribute');
  });

  it("publishes the issuer's URLs whatever Host the request names", async () => {
    const port = new URL(server.issuer).port;
    const forged = { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };
    const discovery = await rawGet(port, '/.well-known/openid-configuration', forged);
    assert.equal(discovery.status, 200);
    const urls = publishedUrls(discovery.body);
    assert.ok(
      urls.some((u) => u.endsWith('/token')),
      'the token endpoint is among them',
    );
    for (const url of urls) assert.ok(url.startsWith(`${server.issuer}/`) || url === server.issuer, url);
    const auth = await rawGet(
      port,
      `/auth?client_id=portal&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://127.0.0.1:8080/cb')}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256`,
      forged,
    );
    assert.equal(auth.status, 303);
    assert.ok(!auth.location?.includes('evil.example'), `the login redirect stays on the issuer: ${auth.location}`);
  });

  it('sets provider cookies HttpOnly and SameSite=Lax, not Secure over plain http', async () => {
    const rp = await relyingParty(server.issuer);
    const browser = new Browser(server.issuer);
    const authorize = await browser.request((await rp.authorize()).url);
    const login = await browser.follow(authorize);
    const signedIn = await browser.request(actionOf(login, 'login-form'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: 'bob@acme.test', password: PASSWORD, csrf: csrfOf(login) }),
    });
    const resumed = await browser.request(signedIn.headers.get('location')!);
    const cookies = [...cookiesOf(authorize), ...cookiesOf(resumed)].filter((c) => !/expires=Thu, 01 Jan 1970/i.test(c));
    assert.ok(
      cookies.some((c) => c.startsWith('_interaction=')),
      'interaction cookie',
    );
    assert.ok(
      cookies.some((c) => c.startsWith('_session=')),
      'session cookie',
    );
    for (const c of cookies) {
      assert.match(c, /;\s*httponly/i, c);
      assert.match(c, /;\s*samesite=lax/i, c);
      assert.doesNotMatch(c, /;\s*secure/i, c);
    }
  });
});

describe('pages are never cached', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer('sqlite', { doc: factorFixture() });
  });
  after(() => server.stop());

  it('sends Cache-Control: no-store on interaction, factor set-up, error and account pages', async () => {
    const rp = await relyingParty(server.issuer);
    const person = await addPerson(server, 'manager');
    const { browser, page: link } = await reachFactor(server, rp, person);
    assert.ok(hasForm(link, 'link-authenticator-form'), 'the page with the authenticator secret');
    const pages: [string, Page][] = [
      ['link your authenticator app', link],
      ['login page', await browser.follow(await browser.request((await rp.authorize()).url))],
      ['our error page', await browser.request('/interaction/unknown')],
      ["the provider's error page", await browser.request('/auth?client_id=nope')],
      ['a 404', await browser.request('/no/such/page')],
      ['account sign-in failure', await new Browser(server.issuer).request('/account/callback?state=x&code=y')],
    ];
    for (const [what, page] of pages) {
      assert.match(page.headers.get('content-type') ?? '', /text\/html/, what);
      assert.equal(page.headers.get('cache-control'), 'no-store', what);
    }
  });
});

describe('return_to of the account sign-in', () => {
  it('resolves dot segments before checking that the path stays under /account', () => {
    for (const escape of ['/account/../auth', '/account/%2e%2e/interaction/x', '/account/.%2E/.%2e/token', '/account/users/../../demo']) {
      assert.equal(safeReturnTo(escape), '/account', escape);
    }
    assert.equal(safeReturnTo('/account/users/../audit'), '/account/audit');
    assert.equal(safeReturnTo('/account/users?q=x'), '/account/users?q=x');
    for (const other of ['//evil.example/account', '/\\evil.example', 'https://evil.example/account', '/accounting', '/account#x']) {
      assert.equal(safeReturnTo(other), '/account', other);
    }
  });

  it('never sends the browser out of /account after signing in', async () => {
    const server = await startServer('sqlite');
    try {
      const browser = new Browser(server.issuer);
      let page = await browser.get(`/account/signin?return_to=${encodeURIComponent('/account/../.well-known/openid-configuration')}`);
      page = await submitLogin(browser, page, 'bob@acme.test', PASSWORD);
      assert.equal(new URL(page.url).pathname, '/account');
      assert.equal(page.status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe('cookies behind an HTTPS reverse proxy', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer('sqlite', { env: { ISSUER: 'https://id.example.test', TRUST_PROXY: '1' } });
  });
  after(() => server.stop());

  it('marks cookies Secure when the proxy says the request came over https', async () => {
    // Discovery answers for the https issuer; talk to the app directly, as the proxy would.
    const base = `http://127.0.0.1:${server.env.PORT}`;
    const params = new URLSearchParams({
      client_id: 'portal',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: 'http://127.0.0.1:8080/cb',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const res = await fetch(`${base}/auth?${params}`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.test' } });
    assert.equal(res.status, 303);
    const cookies = res.headers.getSetCookie();
    assert.ok(cookies.length > 0);
    for (const c of cookies) {
      assert.match(c, /;\s*secure/i, c);
      assert.match(c, /;\s*httponly/i, c);
    }
  });

  it("publishes the issuer's URLs whatever host the trusted proxy passes on", async () => {
    // A numeric TRUST_PROXY believes the nearest proxy, which may pass a client's X-Forwarded-Host through.
    for (const headers of <Record<string, string>[]>[
      { host: 'evil.example', 'x-forwarded-proto': 'https' },
      { host: 'id.example.test', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
    ]) {
      const discovery = await rawGet(server.env.PORT!, '/.well-known/openid-configuration', headers);
      assert.equal(discovery.status, 200, JSON.stringify(headers));
      const urls = publishedUrls(discovery.body);
      assert.ok(urls.includes('https://id.example.test/token'), JSON.stringify(urls));
      for (const url of urls) assert.ok(url.startsWith('https://id.example.test/') || url === 'https://id.example.test', url);
    }
  });

  it('sends Strict-Transport-Security on every https response', async () => {
    const base = `http://127.0.0.1:${server.env.PORT}`;
    const https = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.test' };
    for (const path of ['/', '/.well-known/openid-configuration', '/auth?client_id=nope', '/account/signin', '/static/app.css', '/healthz', '/no/such/page']) {
      const res = await fetch(`${base}${path}`, { redirect: 'manual', headers: https });
      assert.match(res.headers.get('strict-transport-security') ?? '', /^max-age=\d{7,}/, path);
    }
  });

  it('redirects plain http to the https issuer instead of setting cookies in the clear', async () => {
    const base = `http://127.0.0.1:${server.env.PORT}`;
    const params = new URLSearchParams({
      client_id: 'portal',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: 'http://127.0.0.1:8080/cb',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const res = await fetch(`${base}/auth?${params}`, { redirect: 'manual' });
    assert.equal(res.status, 308);
    assert.equal(res.headers.get('location'), `https://id.example.test/auth?${params}`);
    assert.deepEqual(res.headers.getSetCookie(), []);
    assert.equal(res.headers.get('strict-transport-security'), null, 'HSTS means nothing over plain http');
    const post = await fetch(`${base}/token`, { method: 'POST', body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(post.status, 400);
    assert.equal((await fetch(`${base}/healthz`)).status, 200, 'health checks stay reachable over http');
  });
});

describe('X-Forwarded-* behind proxies given by address range', () => {
  const params = new URLSearchParams({
    client_id: 'portal',
    response_type: 'code',
    scope: 'openid',
    redirect_uri: 'http://127.0.0.1:8080/cb',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.test', 'x-forwarded-for': '203.0.113.7' };
  let trusted: TestServer;
  let untrusted: TestServer;
  before(async () => {
    // The tests' requests come from 127.0.0.1: a proxy of the first server, a stranger to the second.
    trusted = await startServer('sqlite', { env: { ISSUER: 'https://id.example.test', TRUST_PROXY: '127.0.0.0/8,::1/128' } });
    untrusted = await startServer('sqlite', { env: { ISSUER: 'https://id.example.test', TRUST_PROXY: '10.0.0.0/8' } });
  });
  after(async () => {
    await trusted.stop();
    await untrusted.stop();
  });

  it('believes https from a peer inside the ranges, and ignores every X-Forwarded-* header from one outside them', async () => {
    const fromProxy = await fetch(`http://127.0.0.1:${trusted.env.PORT}/auth?${params}`, { redirect: 'manual', headers: viaProxy });
    assert.equal(fromProxy.status, 303);
    for (const c of fromProxy.headers.getSetCookie()) assert.match(c, /;\s*secure/i, c);
    const fromStranger = await fetch(`http://127.0.0.1:${untrusted.env.PORT}/auth?${params}`, { redirect: 'manual', headers: viaProxy });
    assert.equal(fromStranger.status, 308, 'its claim of https is not believed: redirected to the https issuer');
    assert.deepEqual(fromStranger.headers.getSetCookie(), []);
  });
});
