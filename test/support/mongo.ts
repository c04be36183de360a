// A MongoDB for tests: MONGODB_URI from outside when given (a real MongoDB),
// otherwise a FerretDB v1.24 process of this test file's own (SQLite backend,
// temp dir, free loopback port). Each caller gets a database of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { ROOT } from './layout.ts';

export interface TestMongo {
  uri: string;
  /** A fresh database name. */
  dbName: string;
  /** Stops the FerretDB process and removes its data (a no-op for an outside MongoDB). */
  stop(): Promise<void>;
  /** Outage tests: kills the FerretDB process, keeping its data. Null for an outside MongoDB. */
  kill: (() => Promise<void>) | null;
  /** Outage tests: starts FerretDB again on the same port and data. */
  revive: (() => Promise<void>) | null;
}

const binary = () => process.env.LATCHKEY_FERRETDB ?? join(ROOT, '.cache', 'ferretdb');

async function spawnFerret(listen: string, dir: string): Promise<{ child: ChildProcess; uri: string }> {
  const child = spawn(binary(), ['-listen', listen, '-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const uri = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`FerretDB did not start: ${stderr}`)), 15_000);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`FerretDB exited (${code}): ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^ready (\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { child, uri };
}

async function killChild(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

export async function startMongo(): Promise<TestMongo> {
  const dbName = `lk_test_${randomBytes(6).toString('hex')}`;
  if (process.env.MONGODB_URI) {
    return { uri: process.env.MONGODB_URI, dbName, stop: async () => {}, kill: null, revive: null };
  }
  const dir = mkdtempSync(join(tmpdir(), 'lk-ferretdb-'));
  const first = await spawnFerret('127.0.0.1:0', dir);
  let child = first.child;
  const uri = first.uri;
  const hostPort = new URL(uri).host;
  return {
    uri,
    dbName,
    kill: () => killChild(child),
    async revive() {
      ({ child } = await spawnFerret(hostPort, dir));
    },
    async stop() {
      await killChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
