// The tested set-up of docs/relying-parties.md: oauth2-proxy (v7.15.6, built
// into .cache/ by scripts/oauth2-proxy.mjs) in front of an app that knows
// nothing of OpenID Connect. The client is imported and oauth2-proxy started
// exactly as the page shows — both read from the page, with only its example
// addresses and file paths replaced — so the page cannot drift from what works.
// A person signs in through the proxy, and the app receives the request with
// the login's email; the same flags without PKCE S256 end in invalid_request.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { docBlock } from '../support/doc-blocks.ts';
import { Browser, actionOf, csrfOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, fixture, startServer, type TestServer } from '../support/latchkey.ts';
import { listenOnFreePort, onSomePort, tcpFront, type TcpFront } from '../support/net.ts';
import { tempDir } from '../support/tmp.ts';
import type { ImportDocument } from '../../src/import/index.ts';

const blockAfter = (marker: string) => docBlock('relying-parties.md', marker);

/** The page's oauth2-proxy command line, one argument a line, as a shell reads it (quotes taken off). */
function documentedFlags(): string[] {
  const lines = blockAfter('oauth2-proxy flags')
    .split('\n')
    .map((l) => l.replace(/\\$/, '').trim())
    .filter(Boolean);
  assert.equal(lines[0], 'oauth2-proxy');
  return lines.slice(1).map((arg) => arg.replace(/^(--[\w-]+=)(["'])(.*)\2$/, '$1$3'));
}

// What the page names by example, and what stands for it here.
const ISSUER = 'https://id.example.com';
const APP = 'https://intranet.example.com';
const SECRET_FILE = '/etc/oauth2-proxy/client-secret';
const COOKIE_SECRET_FILE = '/etc/oauth2-proxy/cookie-secret';
const UPSTREAM = 'http://127.0.0.1:8080/';
const LISTEN = '127.0.0.1:4180';

/** The app behind the proxy: records the headers of each request it gets. */
async function upstreamApp() {
  const seen: IncomingHttpHeaders[] = [];
  const http = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'text/plain');
    res.end(`hello ${req.headers['x-forwarded-email'] ?? 'nobody'}`);
  });
  const port = await listenOnFreePort(http);
  return { url: `http://127.0.0.1:${port}/`, seen, close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}

function binary(): string {
  const path = process.env.LATCHKEY_OAUTH2_PROXY;
  assert.ok(path, 'LATCHKEY_OAUTH2_PROXY names the oauth2-proxy binary: run this file with scripts/test.mjs, which builds it (npm run build:oauth2-proxy)');
  return path;
}

/** Where the page's listen address goes in `args`: the port oauth2-proxy is started on. */
const PROXY_PORT = '@proxy-port@';

/**
 * Starts oauth2-proxy with `args` behind `front`, the app's address (its
 * redirect URI names it): oauth2-proxy must be told its port, so it gets one
 * free when picked, and another when it could not listen on that one.
 */
function startProxy(args: string[], front: TcpFront) {
  return onSomePort(
    async (port) => {
      const child: ChildProcess = spawn(
        binary(),
        args.map((a) => a.replace(PROXY_PORT, String(port))),
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const logs: string[] = [];
      child.stdout!.on('data', (d) => logs.push(String(d)));
      child.stderr!.on('data', (d) => logs.push(String(d)));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      for (let i = 0; ; i++) {
        if (child.exitCode !== null) throw new Error(`oauth2-proxy exited ${child.exitCode}:\n${logs.join('')}`);
        // Its own answer ("OK"), not another server's that was given the port in between.
        const ok = await fetch(`http://127.0.0.1:${port}/ping`).then(
          async (r) => r.ok && (await r.text()).trim() === 'OK',
          () => false,
        );
        if (ok && child.exitCode === null) break;
        if (i > 100) {
          child.kill('SIGKILL');
          throw new Error(`oauth2-proxy did not answer:\n${logs.join('')}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      front.to = port;
      return {
        logs,
        async stop() {
          front.to = 0;
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
        },
      };
    },
    (err) => /address already in use/.test(err.message),
  );
}

/**
 * A browser going to the app through the proxy: each hop with the cookie jar
 * of the server it goes to, the login form posted on Latchkey's page. Returns
 * the page it ends on and every URL it was sent to.
 */
async function visit(proxyOrigin: string, issuer: string, email: string) {
  const jars = [new Browser(proxyOrigin), new Browser(issuer)];
  const jarOf = (url: string) => jars.find((b) => url.startsWith(b.base));
  const hops: string[] = [];
  let page: Page = await jars[0]!.request(`${proxyOrigin}/`);
  hops.push(page.url);
  let signedIn = false;
  for (let i = 0; i < 20; i++) {
    if (page.status >= 300 && page.status < 400) {
      const next = new URL(page.headers.get('location')!, page.url).href;
      const jar = jarOf(next);
      assert.ok(jar, `a hop to a server of the set-up: ${next}`);
      page = await jar.request(next);
      hops.push(page.url);
    } else if (!signedIn && page.html.includes('data-testid="login-form"')) {
      signedIn = true;
      page = await jars[1]!.request(actionOf(page, 'login-form'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email, password: PASSWORD, csrf: csrfOf(page) }),
      });
    } else break;
  }
  return { page, hops };
}

for (const setup of SETUPS) {
  describe(`oauth2-proxy in front of an app, as docs/relying-parties.md sets it up (${setup})`, () => {
    const dir = tempDir('lk-oauth2-proxy-');
    let server: TestServer;
    let app: Awaited<ReturnType<typeof upstreamApp>>;
    let front: TcpFront;
    let port: number;
    let args: string[];

    before(async () => {
      app = await upstreamApp();
      front = await tcpFront();
      port = front.port;
      const origin = `http://127.0.0.1:${port}`;
      const client = JSON.parse(blockAfter('oauth2-proxy client').replaceAll(APP, origin)) as NonNullable<NonNullable<ImportDocument['tenants']>[number]['clients']>[number];
      const doc = fixture();
      doc.tenants![0]!.clients!.push(client);
      server = await startServer(setup, { doc });
      writeFileSync(join(dir.path, 'client-secret'), String(client.client_secret));
      writeFileSync(join(dir.path, 'cookie-secret'), randomBytes(16).toString('hex'));
      const here: Record<string, string> = {
        [ISSUER]: server.issuer,
        [APP]: origin,
        [SECRET_FILE]: join(dir.path, 'client-secret'),
        [COOKIE_SECRET_FILE]: join(dir.path, 'cookie-secret'),
        [UPSTREAM]: app.url,
        [LISTEN]: `127.0.0.1:${PROXY_PORT}`,
      };
      args = documentedFlags().map((arg) => Object.entries(here).reduce((a, [example, value]) => a.replace(example, value), arg));
      for (const example of Object.keys(here)) assert.ok(args.join(' ').includes(here[example]!), `the page's flags name ${example}`);
    });
    after(async () => {
      await front?.close();
      await server?.stop();
      await app?.close();
      dir.remove();
    });

    it('signs a person in: the app gets their email; without PKCE S256 the sign-in ends in invalid_request', async () => {
      const proxy = await startProxy(args, front);
      try {
        const { page } = await visit(`http://127.0.0.1:${port}`, server.issuer, 'bob@acme.test');
        assert.equal(page.status, 200, `the app's answer through the proxy: ${page.status} ${page.url}\n${page.html.slice(0, 300)}\n${proxy.logs.join('')}`);
        assert.equal(page.html, 'hello bob@acme.test');
        const last = app.seen.at(-1)!;
        assert.equal(last['x-forwarded-email'], 'bob@acme.test');
        assert.equal(last['x-forwarded-user'], 'bob-emp', "the user is the login, the ID token's sub");
      } finally {
        await proxy.stop();
      }

      const withoutPkce = args.filter((a) => a !== '--code-challenge-method=S256');
      assert.equal(withoutPkce.length, args.length - 1, 'the page tells oauth2-proxy to use S256');
      const requests = app.seen.length;
      const plain = await startProxy(withoutPkce, front);
      try {
        const { hops } = await visit(`http://127.0.0.1:${port}`, server.issuer, 'bob@acme.test');
        const callback = hops.find((h) => h.startsWith(`http://127.0.0.1:${port}/oauth2/callback`));
        assert.ok(callback, `sent back to the proxy: ${hops.join('\n')}`);
        assert.equal(new URL(callback).searchParams.get('error'), 'invalid_request');
        assert.equal(app.seen.length, requests, 'the app got no request');
      } finally {
        await plain.stop();
      }
    });
  });
}
