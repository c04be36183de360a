// `npm start` on a fresh machine: the demo tenant on an empty store, the start
// page's real sign-in with the demo client, health, and a clean SIGTERM.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Browser, actionOf, csrfOf } from '../support/browser.ts';
import { tempDir } from '../support/tmp.ts';

import { ROOT as root, nodeArgs } from '../support/layout.ts';

describe('npm start on an empty embedded store', () => {
  const dir = tempDir('lk-start-');
  let child: ChildProcess;
  let base = '';
  const logs: string[] = [];

  before(async () => {
    // PORT=0 picks a free port; the issuer must match it, so pick first.
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, nodeArgs('src/main'), {
      cwd: root,
      env: { ...process.env, NODE_ENV: 'development', PORT: String(port), ISSUER: base, DATA_DIR: dir.path, LOG_LEVEL: 'info', MONGODB_URI: '', REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs.join('\n')}`)), 20_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        logs.push(line);
        if (line.includes('Latchkey listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`server exited ${code}:\n${logs.join('\n')}`)));
    });
  });
  after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    dir.remove();
  });

  it('creates the demo tenant and says how to try it', () => {
    assert.ok(
      logs.some((l) => l.includes('created the demo tenant')),
      logs.join('\n'),
    );
    assert.ok(
      logs.some((l) => l.includes('development keys')),
      'warns about development keys',
    );
  });

  it('answers /healthz and /readyz', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { stores: unknown }).stores, [{ store: 'sqlite', ok: true }]);
  });

  it('signs in through the start page and shows the ID token claims', async () => {
    const browser = new Browser(base);
    const start = await browser.get('/');
    assert.match(start.html, /Try a sign-in/);
    assert.match(start.html, /sam@demo\.test/);
    let page = await browser.get('/demo/start');
    assert.match(page.html, /data-testid="login-form"/);
    page = await browser.post(actionOf(page, 'login-form'), { email: 'sam@demo.test', password: 'latchkey-demo', csrf: csrfOf(page) });
    assert.equal(page.status, 200, page.html.slice(0, 500));
    assert.match(page.html, /data-testid="claim-sub">sam-employee</);
    assert.match(page.html, /data-testid="claim-amr">pwd</);
    assert.match(page.html, /data-testid="claim-acr">urn:latchkey:acr:1fa</);
  });

  it('without a mail server, says so and writes a password-reset link to the log', async () => {
    const browser = new Browser(base);
    const start = await browser.get('/');
    assert.match(start.html, /data-testid="mail-to-log"/);
    const login = await browser.get('/demo/start');
    const forgotHref = /href="([^"]+)"[^>]*data-testid="forgot-link"/.exec(login.html)![1]!;
    const form = await browser.get(forgotHref);
    const sent = await browser.post(actionOf(form, 'forgot-form'), { email: 'sam@demo.test', csrf: csrfOf(form) });
    assert.equal(sent.status, 200);
    for (let i = 0; i < 100 && !logs.some((l) => l.includes('/reset/')); i++) await new Promise((r) => setTimeout(r, 20));
    const line = logs.find((l) => l.includes('/reset/'));
    assert.ok(line, 'the link is in the log');
    const link = /(http:\/\/[^\s"\\]+\/reset\/[A-Za-z0-9_-]{43})/.exec(line)![1]!;
    const reset = await new Browser(base).get(link.slice(base.length));
    assert.equal(reset.status, 200);
    assert.match(reset.html, /data-testid="reset-form"/);
  });

  it('stops cleanly on SIGTERM with exit code 0', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
