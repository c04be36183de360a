/**
 * Counts the store calls of one GET of the owner's Users page (a search, a
 * user-type filter, a deep page) on an in-process server whose people tenant
 * has `count` logins, per store method: how many of them a page of 50 makes
 * per login shown. The figures behind docs/performance.md's "The Users page".
 *
 *   node --import tsx bench/users-round-trips.ts [sqlite|mongo+redis] [count, default 1000]
 */
import { startServer, type StoreSetup } from '../test/support/latchkey.ts';
import { pathPlan, seedPeople, withPaths } from './paths/seed.ts';
import { ownerBrowser, usersCall, usersQueries } from './paths/users.ts';

const setup = (process.argv[2] ?? 'sqlite') as StoreSetup;
const count = Number(process.argv[3] ?? 1000);
const server = await startServer(setup, { doc: withPaths({}, pathPlan({ passkey: 0, recovery: 0, people: count }, [])) });
const counts = new Map<string, number>();

function wrap(name: string, target: object) {
  const obj = target as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const fn = obj[key];
    if (typeof fn !== 'function' || key === 'factory') continue;
    obj[key] = (...args: unknown[]) => {
      counts.set(`${name}.${key}`, (counts.get(`${name}.${key}`) ?? 0) + 1);
      return (fn as (...a: unknown[]) => unknown).apply(obj, args);
    };
  }
}

try {
  await seedPeople(server.env, count);
  const browser = await ownerBrowser(server.issuer);
  const { stores } = server.latchkey;
  wrap('accounts', stores.accounts);
  wrap('counters', stores.counters);
  for (const query of usersQueries(count)) {
    await usersCall(browser, query);
    counts.clear();
    await usersCall(browser, query);
    const rows = [...counts].sort((a, b) => a[0].localeCompare(b[0]));
    const total = (prefix: string) => rows.filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
    console.log(`\n${query.case} (${query.path}, ${query.rows} rows shown): accounts ${total('accounts.')}, counters ${total('counters.')}`);
    for (const [k, v] of rows) console.log(`  ${String(v).padStart(4)}  ${k}`);
  }
} finally {
  await server.stop();
}
