/**
 * `npm run bench:api` — server CPU per management-API call (docs/api.md,
 * docs/performance.md): listing one page of 50 logins of a tenant of 2,000,
 * and adding a login (a new email: an identity, the login, the audit event, an
 * invitation queued). Latchkey runs as a child process on the embedded store
 * (SQLite).
 *
 *   BENCH_API_OPS (default 400 per operation), BENCH_API_CONCURRENCY (default 4).
 *
 * Prints one JSON line. Every loop is bounded; only loopback is used.
 */
import { tempDir } from '../test/support/tmp.ts';
import { cpuSplit } from './lib/proc.ts';
import { freePort, startLatchkey } from './lib/processes.ts';
import { seed } from './lib/seed.ts';
import { runPool } from './lib/pool.ts';
import { latency, round } from './lib/stats.ts';

const OPS = Number(process.env.BENCH_API_OPS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_API_CONCURRENCY ?? 4);
const LOGINS = 2_000;
const CLIENT = { id: 'bench-provisioner', secret: 'bench-provisioner-secret-5c2e8a1f9d3b7e0a4c6f' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run() {
  const setup = 'sqlite';
  const dir = tempDir('lk-bench-api-');
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = { NODE_ENV: 'test', PORT: String(port), ISSUER: issuer, DATA_DIR: dir.path, DEMO: 'false', LOG_LEVEL: 'warn', API_RATE_LIMIT: '1000000' };
  await seed(env, () => ({
    tenants: [
      {
        id: 'bench',
        name: 'Bench Co',
        userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
        logins: [],
        clients: [{ client_id: CLIENT.id, client_secret: CLIENT.secret, grant_types: ['client_credentials'], api_scopes: ['latchkey:logins.read', 'latchkey:logins.write'] }],
      },
    ],
  }));
  const server = await startLatchkey(env);
  try {
    const tokenResponse = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'latchkey:logins.read latchkey:logins.write' }),
    });
    const { access_token: token } = (await tokenResponse.json()) as { access_token: string };
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    let added = 0;
    const create = async () => {
      const n = added++;
      const started = performance.now();
      const res = await fetch(`${issuer}/api/v1/logins`, {
        method: 'POST',
        headers: { ...headers, 'idempotency-key': `bench-${n}` },
        body: JSON.stringify({ email: `new-${n}@bench.test`, firstName: 'Bench', lastName: `Person ${n}`, userType: 'staff' }),
      });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`create answered ${res.status}`);
      return performance.now() - started;
    };
    const list = async (_w: number, i: number) => {
      const started = performance.now();
      const res = await fetch(`${issuer}/api/v1/logins?limit=50&q=${i % 2 ? 'person' : ''}`, { headers });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`list answered ${res.status}`);
      return performance.now() - started;
    };
    // The tenant's 2,000 logins, through the API itself (unmeasured).
    await runPool(LOGINS, CONCURRENCY, create);
    await runPool(50, CONCURRENCY, list);
    const measure = async (op: (w: number, i: number) => Promise<number>) => {
      await sleep(200);
      const before = cpuSplit(server.pid);
      const { results } = await runPool(OPS, CONCURRENCY, op, 300_000);
      await sleep(200);
      const after = cpuSplit(server.pid);
      return { ops: results.length, server_cpu_ms: round((after.user + after.system - before.user - before.system) / results.length, 3), latency_ms: latency(results) };
    };
    const result = { setup, logins: LOGINS, concurrency: CONCURRENCY, list_50: await measure(list), create: await measure(create) };
    console.log(JSON.stringify(result));
  } finally {
    await server.stop();
    dir.remove();
  }
}

await run();
