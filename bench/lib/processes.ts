// Child processes the bench starts (and stops, by pid): the Latchkey server,
// the bare oidc-provider, a private Redis. Loopback addresses only.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../test/support/net.ts';
import { redisAnswers } from '../../test/support/redis.ts';

export const ROOT = join(import.meta.dirname, '..', '..');

export { freePort };

/**
 * The environment children start from: only what a Node process needs, so a
 * MONGODB_URI or REDIS_URL of the caller's shell never leaks into a run meant
 * for another store set-up.
 */
function baseEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];
  return Object.fromEntries(keep.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Child {
  pid: number;
  process: ChildProcess;
  /** The last lines the process wrote (stdout and stderr), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

function track(child: ChildProcess, name: string): Child {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 60) lines.shift();
  };
  if (child.stdout) createInterface({ input: child.stdout }).on('line', keep);
  if (child.stderr) createInterface({ input: child.stderr }).on('line', keep);
  const pid = child.pid;
  return {
    pid,
    process: child,
    output: () => lines.join('\n'),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      }, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers 200 (or the process exits / time runs out). */
async function waitReady(url: string, child: Child, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`${name} exited (${child.process.exitCode}):\n${child.output()}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await child.stop();
  throw new Error(`${name} did not answer ${url} within ${timeoutMs} ms:\n${child.output()}`);
}

/**
 * `node --import tsx src/main.ts` (what `npm start` runs) with `env`; resolves
 * when /healthz answers. The pid is the server process itself (no shell).
 */
export async function startLatchkey(env: Record<string, string>, extraNodeArgs: string[] = []): Promise<Child> {
  const child = track(
    spawn(process.execPath, [...extraNodeArgs, '--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...baseEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'Latchkey',
  );
  await waitReady(`${env.ISSUER}/healthz`, child, 'Latchkey');
  return child;
}

export interface BareReady {
  refreshTokens: string[];
}

/** `bench/bare-provider.ts`: resolves with the first JSON line it prints (its minted refresh tokens). */
export async function startBare(env: Record<string, string>, extraNodeArgs: string[] = []): Promise<Child & BareReady> {
  const proc = spawn(process.execPath, [...extraNodeArgs, '--import', 'tsx', 'bench/bare-provider.ts'], {
    cwd: ROOT,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = new Promise<BareReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the bare provider did not start within 60 s')), 60_000);
    proc.once('exit', (code) => reject(new Error(`the bare provider exited (${code})`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{"bareReady"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as BareReady);
    });
  });
  const child = track(proc, 'bare provider');
  try {
    const info = await ready;
    return { ...child, refreshTokens: info.refreshTokens };
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}:\n${child.output()}`);
  }
}

export interface BenchRedis {
  url: string;
  /** True when this bench started the Redis (nobody else writes to it). */
  private: boolean;
  /** The private redis-server's pid (its CPU can be counted); absent for a shared one. */
  pid?: number;
  stop(): Promise<void>;
}

/**
 * REDIS_URL when given (shared: memory is then measured from our keys only),
 * otherwise a private `redis-server` on a free loopback port, without
 * persistence, so that INFO's used_memory moves only with our writes.
 */
export async function startRedis(): Promise<BenchRedis> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, private: false, stop: async () => {} };
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'lk-bench-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) {
    const err = await new Promise<Error>((r) => proc.once('error', r));
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server could not start (${err.message}); install Redis or set REDIS_URL`);
  }
  const child = track(proc, 'redis-server');
  for (let i = 0; i < 100; i++) {
    if (await redisAnswers(port)) {
      return {
        url: `redis://127.0.0.1:${port}`,
        private: true,
        pid: child.pid,
        async stop() {
          await child.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await sleep(100);
  }
  await child.stop();
  throw new Error(`redis-server did not answer:\n${child.output()}`);
}
