// `npm start` runs the compiled JavaScript: it builds dist/ when dist/ is
// missing or older than the sources, then serves from it, finding views,
// catalogues and the stylesheet from the compiled layout.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { ROOT, LOCALES_DIR, PUBLIC_DIR, VIEWS_DIR } from '../../src/paths.ts';
import { tempDir } from '../support/tmp.ts';

const stamp = join(ROOT, 'dist', '.built');

/** `npm start` (what it runs) until it listens; returns what it printed and stops it. */
async function startOnce(dataDir: string): Promise<{ output: string; home: number; css: number; scripts: { status: number; type: string | null; body: string }[] }> {
  const child = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (d) => (output += d));
  try {
    // The server listens on a port the OS picks and says which.
    const port = await new Promise<number>((resolve, reject) => {
      // A guard against a hang, not a timing: a build on a busy machine takes a while.
      const timer = setTimeout(() => reject(new Error(`did not start:\n${output}`)), 180_000);
      child.once('exit', (code) => reject(new Error(`exited ${code}:\n${output}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        output += `${line}\n`;
        const listening = /Latchkey listening on port (\d+)/.exec(line);
        if (listening) {
          clearTimeout(timer);
          resolve(Number(listening[1]));
        }
      });
    });
    const home = (await fetch(`http://127.0.0.1:${port}/`)).status;
    const css = (await fetch(`http://127.0.0.1:${port}/static/app.css`)).status;
    const scripts = await Promise.all(
      ['/static/webauthn.js', '/static/passkey.js'].map(async (path) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
      }),
    );
    return { output, home, css, scripts };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

describe('npm start', () => {
  const dir = tempDir('lk-start-');
  after(() => dir.remove());

  it('builds dist/ when it is older than the sources, then serves pages from the compiled code', async () => {
    if (existsSync(stamp)) utimesSync(stamp, new Date(0), new Date(0));
    const first = await startOnce(dir.path);
    assert.match(first.output, /built dist\//, 'a stale dist/ is rebuilt');
    assert.equal(first.home, 200, 'the start page renders (views and catalogues found)');
    assert.equal(first.css, 200, 'the stylesheet is found');
    const [library, ours] = first.scripts;
    assert.equal(library?.status, 200, 'the WebAuthn browser library is served from the installed package');
    assert.match(library!.type ?? '', /javascript/);
    assert.match(library!.body, /SimpleWebAuthnBrowser/);
    assert.equal(ours?.status, 200, "the passkey pages' script is found");
    assert.match(ours!.body, /startAuthentication/);
    assert.ok(existsSync(join(ROOT, 'dist', 'src', 'main.js')));
  });

  it('starts without building when dist/ is up to date', async () => {
    const again = await startOnce(dir.path);
    assert.doesNotMatch(again.output, /built dist\//);
    assert.equal(again.home, 200);
  });

  it('finds views, catalogues and static files from both layouts', async () => {
    for (const path of [VIEWS_DIR, LOCALES_DIR, PUBLIC_DIR]) assert.ok(existsSync(path), path);
    const compiled = (await import(pathToFileURL(join(ROOT, 'dist', 'src', 'paths.js')).href)) as { ROOT: string };
    assert.equal(compiled.ROOT, ROOT);
  });
});
