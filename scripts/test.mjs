// `npm test`: the whole suite. Builds the FerretDB test server if needed, makes
// sure Redis answers, then runs every test file with node's test runner.
// MONGODB_URI / REDIS_URL given from outside are used instead of the local ones.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureFerretdb } from './ferretdb.mjs';

const root = join(import.meta.dirname, '..');
if (!process.env.MONGODB_URI) process.env.LATCHKEY_FERRETDB = ensureFerretdb();

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

const only = process.argv.slice(2);
const files = only.length ? only : find(join(root, 'test')).sort();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(result.status ?? 1);
