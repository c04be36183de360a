// A MongoDB for tests: MONGODB_URI from outside when given (a real MongoDB),
// otherwise a FerretDB v1.24 process of this test file's own (SQLite backend,
// temp dir, free loopback port). Each caller gets a database of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

export interface TestMongo {
  uri: string;
  /** A fresh database name. */
  dbName: string;
  /** Stops the FerretDB process (a no-op for an outside MongoDB). */
  stop(): Promise<void>;
  /** The FerretDB process, for outage tests (null for an outside MongoDB). */
  process: ChildProcess | null;
}

export async function startMongo(): Promise<TestMongo> {
  const dbName = `lk_test_${randomBytes(6).toString('hex')}`;
  if (process.env.MONGODB_URI) {
    return { uri: process.env.MONGODB_URI, dbName, stop: async () => {}, process: null };
  }
  const binary = process.env.LATCHKEY_FERRETDB ?? join(import.meta.dirname, '..', '..', '.cache', 'ferretdb');
  const dir = mkdtempSync(join(tmpdir(), 'lk-ferretdb-'));
  const child = spawn(binary, ['-listen', '127.0.0.1:0', '-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  return {
    uri,
    dbName,
    process: child,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
