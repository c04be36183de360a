// The tested set-up of docs/relying-parties.md: a Node.js app doing OpenID
// Connect itself with openid-client. The client is imported and the app run
// exactly as the page shows — both read from the page, with only its example
// addresses and port replaced — so the page cannot drift from what works. A
// person signs in through the app, which keeps the ID token's verified claims;
// it refreshes twice (keeping the rotated token), refuses a forged callback,
// hears unmet_authentication_requirements for a level the person cannot reach,
// and signs out at Latchkey. On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/layout.ts';
import { docBlock } from '../support/doc-blocks.ts';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, fixture, startServer, type TestServer } from '../support/latchkey.ts';
import { onSomePort, tcpFront, type TcpFront } from '../support/net.ts';
import type { ImportDocument } from '../../src/import/index.ts';

const blockAfter = (marker: string) => docBlock('relying-parties.md', marker);

// What the page names by example, and what stands for it here.
const ISSUER = 'https://id.example.com';
const APP = 'https://notes.example.com';
const PORT = 'const PORT = 3000;';

type Client = NonNullable<NonNullable<ImportDocument['tenants']>[number]['clients']>[number];

/** The page's app with the test's addresses, once each example is found where the page uses it. */
function documentedApp(here: { issuer: string; app: string; port: number }): string {
  const code = blockAfter('openid-client app');
  assert.equal(code.split(ISSUER).length - 1, 1, 'the app names the issuer once');
  assert.equal(code.split(PORT).length - 1, 1, 'the app names its port once');
  assert.ok(code.includes(APP), 'the app names where people reach it');
  return code.replaceAll(ISSUER, here.issuer).replaceAll(APP, here.app).replace(PORT, `const PORT = ${here.port};`);
}

/** Runs the app with Node.js from a file under the project's .tmp/ (so `openid-client` resolves); resolves once it answers. */
async function startApp(code: string, port: number, secret: string) {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, '.tmp', 'openid-client-app-'));
  const file = join(dir, 'app.mjs');
  writeFileSync(file, code);
  const child: ChildProcess = spawn(process.execPath, [file], { env: { ...process.env, CLIENT_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  child.stdout!.on('data', (d) => logs.push(String(d)));
  child.stderr!.on('data', (d) => logs.push(String(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`the app exited ${child.exitCode}:\n${logs.join('')}`);
    }
    // The app's own answer: the port was free when picked, and another server may have been given it since,
    // in which case the app cannot listen and exits (EADDRINUSE), and the caller tries another port.
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      async (r) => r.ok && /application\/json/.test(r.headers.get('content-type') ?? '') && 'signedIn' in ((await r.json()) as object),
      () => false,
    );
    if (ok) break;
    if (i > 100) {
      child.kill('SIGKILL');
      await stop();
      throw new Error(`the app did not answer:\n${logs.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, logs, stop };
}

/**
 * A person's browser across the app and Latchkey: each with its own cookie
 * jar (bases end in "/", so one port is never taken for a prefix of another).
 */
function browserFor(origin: string, issuer: string) {
  const app = new Browser(`${origin}/`);
  const idp = new Browser(`${issuer}/`);
  const jarOf = (url: string) => [app, idp].find((b) => url.startsWith(b.base));
  return {
    app,
    idp,
    /** Follows redirects across both servers, signing in with `email` on Latchkey's login page once. Returns the last page and every URL on the way. */
    async walk(start: Page, email?: string) {
      const hops = [start.url];
      let page = start;
      let signedIn = false;
      for (let i = 0; i < 20; i++) {
        if (page.status >= 300 && page.status < 400) {
          const next = new URL(page.headers.get('location')!, page.url).href;
          const jar = jarOf(next);
          assert.ok(jar, `a hop to a server of the set-up: ${next}`);
          page = await jar.request(next);
          hops.push(page.url);
        } else if (email && !signedIn && page.html.includes('data-testid="login-form"')) {
          signedIn = true;
          page = await idp.request(actionOf(page, 'login-form'), {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ email, password: PASSWORD, csrf: csrfOf(page) }),
          });
        } else break;
      }
      return { page, hops };
    },
  };
}

function json(page: Page): Record<string, unknown> {
  assert.match(page.headers.get('content-type') ?? '', /application\/json/, `the app answers JSON: ${page.status} ${page.url}\n${page.html.slice(0, 300)}`);
  return JSON.parse(page.html) as Record<string, unknown>;
}

for (const setup of SETUPS) {
  describe(`a Node.js app with openid-client, as docs/relying-parties.md sets it up (${setup})`, () => {
    let server: TestServer;
    let app: Awaited<ReturnType<typeof startApp>>;
    let origin: string;
    let front: TcpFront;

    before(async () => {
      // The app's address is a front of ours (its redirect URI names it); the page's app listens behind it on a
      // port of its own choosing, picked here, and another when that one was given to another server meanwhile.
      front = await tcpFront();
      origin = `http://127.0.0.1:${front.port}`;
      const client = JSON.parse(blockAfter('openid-client client').replaceAll(APP, origin)) as Client;
      const doc = fixture();
      doc.tenants![0]!.clients!.push(client);
      server = await startServer(setup, { doc });
      app = await onSomePort(
        (port) => startApp(documentedApp({ issuer: server.issuer, app: origin, port }), port, String(client.client_secret)),
        (err) => /EADDRINUSE/.test(err.message),
      );
      front.to = app.port;
    });
    after(async () => {
      await front?.close();
      await app?.stop();
      await server?.stop();
    });

    it("signs a person in: the app keeps the ID token's claims; refreshes twice; signs out at Latchkey", async () => {
      const browser = browserFor(origin, server.issuer);
      const { page, hops } = await browser.walk(await browser.app.request('/login'), 'bob@acme.test');
      const authorize = new URL(hops.find((h) => h.startsWith(`${server.issuer}/auth?`))!);
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(authorize.searchParams.get('state') && authorize.searchParams.get('nonce'), 'state and nonce');
      assert.ok(
        hops.some((h) => h.startsWith(`${origin}/callback?code=`)),
        `back at the app with a code: ${hops.join('\n')}`,
      );
      const me = json(page);
      assert.equal(page.url, `${origin}/`, app.logs.join(''));
      assert.equal(me.signedIn, true, JSON.stringify(me));
      assert.equal(me.sub, 'bob-emp', "the login, the ID token's sub");
      assert.equal(me.email, 'bob@acme.test');
      assert.equal(me.acr, 'urn:latchkey:acr:1fa', 'an employee signs in with the password alone');
      assert.deepEqual(me.amr, ['pwd']);
      assert.equal(typeof me.auth_time, 'number');

      // The second refresh works only if the app kept the first one's rotated refresh token
      // (a spent one coming back would revoke the grant).
      for (let i = 0; i < 2; i++) {
        const refreshed = await browser.app.request('/refresh', { method: 'POST' });
        assert.equal(refreshed.status, 200, `refresh ${i + 1}: ${refreshed.html}\n${app.logs.join('')}`);
        const body = json(refreshed);
        assert.equal(body.sub, 'bob-emp');
        assert.ok(Number(body.expires_in) > 0);
      }

      const out = await browser.walk(await browser.app.request('/logout', { method: 'POST' }));
      assert.ok(testIds(out.page).includes('logout-yes'), `Latchkey's sign-out page: ${out.page.status} ${out.page.url}`);
      assert.ok(new URL(out.page.url).searchParams.get('id_token_hint'), 'the app names its session with the ID token');
      const form = /<form id="op.logoutForm" method="post" action="([^"]+)"><input type="hidden" name="xsrf" value="([^"]+)"/.exec(out.page.html);
      assert.ok(form, 'the sign-out form');
      const confirmed = await browser.idp.request(form[1]!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ xsrf: form[2]!, logout: 'yes' }),
      });
      const back = await browser.walk(confirmed);
      assert.equal(back.page.url, `${origin}/`, `sent back to the app's home page: ${back.hops.join('\n')}`);
      assert.deepEqual(json(back.page), { signedIn: false });
      assert.equal((await browser.app.request('/refresh', { method: 'POST' })).status, 401, 'the app forgot the tokens');
      const again = await browser.walk(await browser.app.request('/login'));
      assert.ok(testIds(again.page).includes('login-form'), `signed out at Latchkey too: the password is asked again (${again.page.url})`);
    });

    it('refuses a callback with another state, and signs no one in', async () => {
      const browser = browserFor(origin, server.issuer);
      const login = await browser.app.request('/login');
      assert.equal(login.status, 303);
      const forged = await browser.app.request(`/callback?code=forged&state=forged&iss=${encodeURIComponent(server.issuer)}`);
      assert.equal(forged.status, 400, forged.html);
      assert.equal(json(forged).error, 'invalid_response');
      assert.deepEqual(json(await browser.app.request('/')), { signedIn: false });
    });

    it('asking for a level the person cannot reach ends in unmet_authentication_requirements at the app', async () => {
      const browser = browserFor(origin, server.issuer);
      const { page, hops } = await browser.walk(await browser.app.request(`/login?acr=${encodeURIComponent('urn:latchkey:acr:totp')}`), 'bob@acme.test');
      assert.equal(new URL(hops.find((h) => h.startsWith(`${server.issuer}/auth?`))!).searchParams.get('acr_values'), 'urn:latchkey:acr:totp');
      assert.equal(page.status, 403, `${page.url}\n${page.html}`);
      assert.equal(json(page).error, 'unmet_authentication_requirements');
      assert.deepEqual(json(await browser.app.request('/')), { signedIn: false }, 'the pending sign-in is not a session');
    });
  });
}
