// Several Latchkey app processes (`src/main.ts`, as `npm start` runs it) with
// one configuration behind one issuer, and a round-robin balancer in front of
// them, so consecutive requests of one browser land on different processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { createInterface } from 'node:readline';
import { listenOnFreePort } from './net.ts';
import { randomBytes } from 'node:crypto';
import { testSigningKeys } from './keys.ts';
import { ROOT, nodeArgs } from './layout.ts';
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createServices } from '../../src/services.ts';
import { importDocument, type ImportDocument } from '../../src/import/index.ts';

const root = ROOT;

/** Production-shaped key material, the same for every process. */
export function sharedKeys(): Record<string, string> {
  const rsa = testSigningKeys()[0]!;
  return {
    LATCHKEY_JWKS: JSON.stringify({ keys: [{ ...rsa, kid: 'k1' }] }),
    LATCHKEY_COOKIE_KEYS: randomBytes(32).toString('base64url'),
    LATCHKEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    LATCHKEY_PEPPER: randomBytes(32).toString('base64url'),
  };
}

/** Imports a document into the stores the environment names (before the processes start). */
export async function seed(env: Record<string, string>, doc: ImportDocument): Promise<void> {
  const config = loadConfig(env);
  const services = await createServices(config, createLogger('silent'), { workers: false });
  try {
    await importDocument(doc, { accounts: services.stores.accounts, hasher: services.hasher, config });
  } finally {
    await services.close();
  }
}

export interface AppProcess {
  port: number;
  child: ChildProcess;
  logs: string[];
  /** Sends SIGTERM and resolves with the exit code. */
  terminate(): Promise<number | null>;
}

/** Starts `src/main` on a port the OS picks (`PORT=0`) and resolves once it says which. */
export async function startProcess(env: Record<string, string>): Promise<AppProcess> {
  const child = spawn(process.execPath, nodeArgs('src/main'), {
    cwd: root,
    env: { ...process.env, ...env, PORT: '0', LOG_LEVEL: env.LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  child.stderr!.on('data', (d) => logs.push(String(d)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave a half-started process behind (it would keep the test run alive).
      child.kill('SIGKILL');
      reject(new Error(`process did not start:\n${logs.join('\n')}`));
    }, 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line);
      if (line.includes('Latchkey listening')) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited ${code}:\n${logs.join('\n')}`));
    });
  });
  return {
    port,
    child,
    logs,
    terminate() {
      if (child.exitCode !== null) return Promise.resolve(child.exitCode);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface Balancer {
  port: number;
  /** The backends' ports, in the order requests go round them (filled in once they listen). */
  backends: number[];
  /** Which backend served each request, in order. */
  served: number[];
  close(): Promise<void>;
}

/**
 * Round-robin HTTP balancer on a loopback port the OS picks, in front of
 * `backends` (ports; the array is kept, so the processes can be started
 * once the balancer's address, their issuer, is known).
 */
export async function startBalancer(backends: number[] = []): Promise<Balancer> {
  let next = 0;
  const served: number[] = [];
  const server: Server = createServer((req, res) => {
    const backend = backends[next++ % backends.length]!;
    served.push(backend);
    const upstream = request({ host: '127.0.0.1', port: backend, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  const port = await listenOnFreePort(server);
  return {
    port,
    backends,
    served,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
