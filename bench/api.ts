/**
 * `npm run bench:api` — server CPU per management-API call (docs/api.md,
 * docs/performance.md) on its own: listing one page of 50 logins of a tenant
 * of 2,000, and adding a login (a new email: an identity, the login, the
 * audit event, an invitation queued). Latchkey runs as a child process on the
 * embedded store (SQLite). `npm run bench` measures the same calls (its `api`
 * phase, bench/paths/api.ts) on both set-ups, at 10,000 logins.
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
import { apiCalls, apiToken } from './paths/api.ts';
import { API_CLIENT, API_SCOPES } from './paths/seed.ts';

const OPS = Number(process.env.BENCH_API_OPS ?? 400);
const CONCURRENCY = Number(process.env.BENCH_API_CONCURRENCY ?? 4);
const LOGINS = 2_000;
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
        clients: [{ client_id: API_CLIENT.id, client_secret: API_CLIENT.secret, grant_types: ['client_credentials'], api_scopes: API_SCOPES }],
      },
    ],
  }));
  const server = await startLatchkey(env);
  try {
    const { list, create } = apiCalls(issuer, await apiToken(issuer), { q: 'person', userType: 'staff' });
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
