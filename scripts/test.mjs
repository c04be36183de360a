// `npm test`: the whole suite. Builds the FerretDB test server if needed and
// makes sure a Redis answers (the machine's on 6379, or a private one started
// here), compiles the TypeScript once, then runs the compiled test files with
// node's test runner, twice as many at once as the machine has cores.
//   node scripts/test.mjs                 every tier, the slowest first
//   node scripts/test.mjs --tier=unit     one tier: unit, contract, journey or browser
//   node scripts/test.mjs FILE…           those files
//   node scripts/test.mjs --isolate …     each test file in a process of its own (see `pool`)
// MONGODB_URI / REDIS_URL given from outside are used instead of the local ones.
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureFerretdb } from './ferretdb.mjs';
import { compileViews } from './views.mjs';
import { ensureOauth2Proxy } from './oauth2-proxy.mjs';

const root = join(import.meta.dirname, '..');

function answers(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host }, () => socket.write('PING\r\n'));
    socket.setTimeout(1000);
    socket.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      socket.destroy();
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function ensureRedis() {
  if (process.env.REDIS_URL) return null;
  if (await answers(6379)) return null;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'lk-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  child.on('error', (err) => {
    console.error(`no Redis on 127.0.0.1:6379 and redis-server could not start (${err.message}); install Redis or set REDIS_URL`);
    process.exit(1);
  });
  for (let i = 0; i < 50 && !(await answers(port)); i++) await new Promise((r) => setTimeout(r, 100));
  process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
  console.error(`started a private Redis on port ${port} for the tests`);
  return () => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * One RSA and one EC signing key for every test server of the run (see
 * `test/support/keys.ts`): generating them per server cost more CPU than
 * many of the tests themselves.
 */
function signingKeys(dir) {
  const jwk = (type, options, alg) => ({
    ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
    kid: `test-${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`,
    alg,
    use: 'sig',
  });
  const path = join(dir, 'signing-keys.json');
  writeFileSync(path, JSON.stringify([jwk('rsa', { modulusLength: 2048 }, 'RS256'), jwk('ec', { namedCurve: 'P-256' }, 'ES256')]), { mode: 0o600 });
  return path;
}

/**
 * Compiles src/, config/ and test/ once (types are the type check's business:
 * `npm run typecheck`) into a folder of the run's own under .tmp/ and answers it and the compiled test
 * files: plain JavaScript saves every test process, and every server or CLI
 * process a test starts, the loader hooks' cost of running TypeScript
 * (`test/support/layout.ts`).
 */
function compile(testFiles) {
  // A folder of this run's own inside the checkout (two runs never share one), so
  // node_modules and package.json (the project's root, `src/paths.ts`) are found above it.
  mkdirSync(join(root, '.tmp'), { recursive: true });
  // What a run that was killed left behind (no run lasts an hour).
  for (const name of readdirSync(join(root, '.tmp'))) {
    const path = join(root, '.tmp', name);
    if (name.startsWith('test-build-') && Date.now() - statSync(path).mtimeMs > 3600_000) rmSync(path, { recursive: true, force: true });
  }
  const out = mkdtempSync(join(root, '.tmp', 'test-build-'));
  process.on('exit', () => rmSync(out, { recursive: true, force: true }));
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.test.json', '--outDir', out], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // The views too, as `npm run build` does: each test process then renders without compiling them.
  compileViews(join(out, 'views.compiled.cjs'));
  // The tests' own non-code files (a test factor's views, fixtures) sit beside the code that reads them.
  cpSync(join(root, 'test'), join(out, 'test'), { recursive: true, filter: (src) => statSync(src).isDirectory() || !src.endsWith('.ts') });
  return { out, compiled: testFiles.map((f) => join(out, relative(root, join(root, f)).replace(/\.ts$/, '.js'))) };
}

/**
 * A few long-lived worker processes instead of one process a test file. Each
 * worker takes the next test file nobody has taken yet (a claim is a
 * directory made with `mkdir`, which only one process can create) and runs it
 * as a suite named after the file: the file's top-level tests and hooks belong
 * to that suite, and `await describe(…)` returns once they all ran, the file's
 * `after` hooks included. So a worker loads the server's modules and their
 * dependencies once for all its files, which cost more CPU than many test
 * files' own work, and the workers share the files out between them as they
 * go: none ends up with a queue of slow ones while the others idle.
 */
function pool(out, compiled, names, workers) {
  const dir = join(out, 'pool');
  mkdirSync(join(dir, 'claims'), { recursive: true });
  const files = compiled.map((file, i) => [names[i], pathToFileURL(file).href]);
  const worker = join(dir, 'worker.mjs');
  writeFileSync(
    worker,
    [
      "import { mkdirSync, writeFileSync } from 'node:fs';",
      "import { describe } from 'node:test';",
      `const files = ${JSON.stringify(files)};`,
      `const claims = ${JSON.stringify(join(dir, 'claims'))};`,
      'const claim = (i) => {',
      '  try {',
      '    mkdirSync(`${claims}/${i}`);',
      '    return true;',
      '  } catch {',
      '    return false;',
      '  }',
      '};',
      'for (let i = 0; i < files.length; i++) {',
      '  const [name, url] = files[i];',
      '  if (!claim(i)) continue;',
      '  const started = performance.now();',
      '  await describe(name, async () => { await import(url); });',
      '  writeFileSync(`${claims}/${i}/ms`, String(Math.round(performance.now() - started)));',
      '}',
      '',
    ].join('\n'),
  );
  // The runner takes each path as a test file of its own: one a worker.
  return Array.from({ length: workers }, (_, i) => {
    const path = join(dir, `worker-${i + 1}.mjs`);
    writeFileSync(path, `import ${JSON.stringify(pathToFileURL(worker).href)};\n`);
    return path;
  });
}

/**
 * How long each test file took in the last runs on this checkout
 * (`.cache/test-durations.json`, which `pool` runs keep up to date). The
 * workers take the longest first, so that no long file starts near the end and
 * runs on alone; a file with no record yet (new, or a fresh clone) goes by
 * its tier and name.
 */
const DURATIONS = join(root, '.cache', 'test-durations.json');
function readDurations() {
  try {
    return JSON.parse(readFileSync(DURATIONS, 'utf8'));
  } catch {
    return {};
  }
}
function recordDurations(out, names) {
  const known = readDurations();
  names.forEach((name, i) => {
    try {
      known[name] = Number(readFileSync(join(out, 'pool', 'claims', String(i), 'ms'), 'utf8'));
    } catch {
      // Not run to the end (a failed import, an interrupted run): keep the older record.
    }
  });
  mkdirSync(join(root, '.cache'), { recursive: true });
  writeFileSync(DURATIONS, `${JSON.stringify(known, null, 1)}\n`);
}

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

/**
 * The tiers: `unit` needs no server or store; `contract` runs the storage ports'
 * contract suites against every backend; `browser` drives Chromium; `journey`
 * is everything else (a real server, a real OpenID client, both store set-ups).
 */
const UNIT = ['test/config/', 'test/crypto/', 'test/factors/', 'test/limits.test.ts'];
function tierOf(file) {
  if (UNIT.some((prefix) => file.startsWith(prefix))) return 'unit';
  if (file.startsWith('test/storage/')) return 'contract';
  if (/support\/chromium\.ts/.test(readFileSync(join(root, file), 'utf8'))) return 'browser';
  return 'journey';
}
const TIERS = ['unit', 'contract', 'journey', 'browser'];

const args = process.argv.slice(2);
const tier = args.find((a) => a.startsWith('--tier='))?.slice('--tier='.length);
if (tier && !TIERS.includes(tier)) {
  console.error(`unknown tier "${tier}"; one of ${TIERS.join(', ')}`);
  process.exit(2);
}
const only = args.filter((a) => !a.startsWith('--'));
const isolate = args.includes('--isolate');
// The slowest tiers first (Chromium, then the journeys), so no long file starts last and runs alone.
const RUN_ORDER = ['browser', 'journey', 'contract', 'unit'];
const durations = readDurations();
const files = only.length
  ? only
  : find(join(root, 'test'))
      .map((f) => ({ f, t: tierOf(f), ms: durations[f] ?? Infinity }))
      .filter(({ t }) => !tier || t === tier)
      .sort((a, b) => (a.ms === b.ms ? 0 : b.ms - a.ms || 0) || RUN_ORDER.indexOf(a.t) - RUN_ORDER.indexOf(b.t) || a.f.localeCompare(b.f))
      .map(({ f }) => f);
if (tier !== 'unit' && !process.env.MONGODB_URI) process.env.LATCHKEY_FERRETDB = ensureFerretdb();
// The oauth2-proxy set-up's test needs the proxy (built once into .cache/; see scripts/oauth2-proxy.mjs).
if (files.some((f) => f.endsWith('oauth2-proxy.test.ts'))) process.env.LATCHKEY_OAUTH2_PROXY ??= ensureOauth2Proxy();
const stopRedis = tier === 'unit' ? null : await ensureRedis();
const keysDir = mkdtempSync(join(tmpdir(), 'lk-test-keys-'));
process.env.LATCHKEY_TEST_SIGNING_KEYS = signingKeys(keysDir);
// Two workers a core: a journey file spends much of its time waiting on its servers, stores, browser and child
// processes. Measured on 2 cores, three a core took longer (361 s against 328 s) and more CPU (589 s against 529 s).
const concurrency = Math.max(2, availableParallelism()) * 2;
const { out, compiled } = compile(files);
const pooled = !isolate && compiled.length > concurrency;
const run = pooled ? pool(out, compiled, files, concurrency) : compiled;
const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...run], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, NODE_ENV: 'test' },
});
if (pooled) recordDurations(out, files);
stopRedis?.();
rmSync(keysDir, { recursive: true, force: true });
process.exit(result.status ?? 1);
