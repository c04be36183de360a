// Keeps `npm run bench` from rotting: its smoke mode (one sign-in, SQLite
// accounts + Redis, the bare provider, the floor) must run and write every
// result key as a finite positive number. No time or ratio is asserted:
// benchmarks are not tests.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../support/tmp.ts';

const root = join(import.meta.dirname, '..', '..');

const REQUIRED = [
  'login.efficiency',
  'login.server_cpu_ms',
  'login.floor_cpu_ms',
  'refresh.ratio',
  'refresh.server_cpu_ms',
  'refresh.bare_cpu_ms',
  'client_credentials.ratio',
  'session.redis_bytes',
];

function at(json: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), json);
}

describe('npm run bench (smoke mode)', () => {
  it('runs one sign-in and writes the result keys as finite positive numbers', { timeout: 90_000 }, async () => {
    const dir = tempDir('lk-bench-smoke-');
    try {
      const out = join(dir.path, 'latest.json');
      const env: Record<string, string | undefined> = { ...process.env, BENCH_SMOKE: '1', BENCH_OUT: out };
      // The bench's own redis-server keeps INFO used_memory ours alone; a shared REDIS_URL is used only without one.
      if (spawnSync('redis-server', ['--version']).status === 0) delete env.REDIS_URL;
      else env.REDIS_URL ??= 'redis://127.0.0.1:6379';
      delete env.BENCH_QUICK;
      delete env.BENCH_SETUPS;
      delete env.BENCH_PHASES;
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0, output);

      const json = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
      assert.equal(json.mode, 'smoke');
      for (const key of REQUIRED) {
        const value = at(json, key);
        assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${key} = ${String(value)}\n${output}`);
      }
      assert.match(output, /Sign-in/, 'prints the readable table');
    } finally {
      dir.remove();
    }
  });
});
