// `npm start` and `npm run cli`: run the compiled JavaScript in dist/, building it
// first (tsc -p tsconfig.build.json) when dist/ is missing or older than the sources.
// An installation without the sources (the container image) runs dist/ as it is.
//   node scripts/start.mjs            the server (dist/src/main.js)
//   node scripts/start.mjs cli ARGS   the operator CLI (dist/src/cli/index.js)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const stamp = join(dist, '.built');
const SOURCES = ['src', 'config', 'views', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((max, name) => Math.max(max, newest(join(path, name))), stat.mtimeMs);
}

async function build() {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    console.error('dist/ is missing or older than src/, and TypeScript is not installed to build it: run `npm install`, then `npm run build`');
    process.exit(1);
  }
  const started = Date.now();
  // Emit only: the types are `npm run typecheck`'s business (CI runs it), and checking them here made a first `npm start` take a minute.
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--noCheck'], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  // Imported only here: an installation without the sources has no pug views to compile and runs dist/ as it is.
  const { compileViews } = await import('./views.mjs');
  compileViews(join(dist, 'views.compiled.cjs'));
  writeFileSync(stamp, new Date().toISOString());
  console.error(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

const hasSources = existsSync(join(root, 'src'));
if (process.argv[2] === '--build-only') {
  await build();
  process.exit(0);
}
if (hasSources && (!existsSync(stamp) || newest(stamp) < Math.max(...SOURCES.map((s) => newest(join(root, s)))))) await build();

const cli = process.argv[2] === 'cli';
if (cli) process.argv.splice(2, 1);
await import(pathToFileURL(join(dist, 'src', cli ? 'cli/index.js' : 'main.js')).href);
