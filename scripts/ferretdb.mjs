// Builds the embedded FerretDB test server (tools/ferretdb) into .cache/ when it
// is missing or older than its sources. Used by `npm test` and `.ci/run`.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ferretdbBinary = join(root, '.cache', 'ferretdb');

export function ensureFerretdb() {
  const src = join(root, 'tools', 'ferretdb');
  const newest = Math.max(...['main.go', 'go.mod', 'go.sum'].map((f) => statSync(join(src, f)).mtimeMs));
  if (existsSync(ferretdbBinary) && statSync(ferretdbBinary).mtimeMs >= newest) return ferretdbBinary;
  mkdirSync(dirname(ferretdbBinary), { recursive: true });
  const started = Date.now();
  console.error('building FerretDB v1.24.2 (embedded, SQLite backend) …');
  execFileSync('go', ['build', '-o', ferretdbBinary, '.'], { cwd: src, stdio: 'inherit' });
  console.error(`FerretDB built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return ferretdbBinary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureFerretdb();
