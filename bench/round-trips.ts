/**
 * Counts the store round trips of one password sign-in, one refresh grant and
 * one client-credentials grant, per store method, on an in-process server
 * (MongoDB + Redis, or SQLite): the numbers behind docs/performance.md's
 * "round trips" table. Every method of the three stores is wrapped after the
 * server starts, so what is counted is what the running code calls.
 *
 *   node --import tsx bench/round-trips.ts [sqlite|mongo+redis]
 */
import { startServer, type StoreSetup } from '../test/support/latchkey.ts';
import { benchDocument, usersFor } from './lib/seed.ts';
import { benchRelyingParty, signIn } from './lib/journey.ts';
import { RefreshChains, tokenRequest } from './lib/tokens.ts';
import { answeredFromRequest } from '../src/storage/accounts/request-memo.ts';

const setup = (process.argv[2] ?? 'mongo+redis') as StoreSetup;
const users = usersFor('password', 3);
const server = await startServer(setup, { doc: benchDocument(users, ['password']) });
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

const { stores } = server.latchkey;
wrap('accounts', stores.accounts);
wrap('counters', stores.counters);
// The adapter hands out one object per model; wrap each as it is made.
const factory = stores.adapter.factory.bind(stores.adapter);
const made = new Map<string, unknown>();
stores.adapter.factory = (model: string) => {
  if (!made.has(model)) {
    const adapter = factory(model);
    wrap(`adapter.${model}`, adapter);
    made.set(model, adapter);
  }
  return made.get(model) as ReturnType<typeof factory>;
};

const hits = () => stores.accountCache?.stats().hits ?? 0;
let hitsBefore = 0;
let keptBefore = 0;

function report(phase: string) {
  const rows = [...counts].sort((a, b) => a[0].localeCompare(b[0]));
  const total = (prefix: string) => rows.filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
  const cached = hits() - hitsBefore;
  const kept = answeredFromRequest() - keptBefore;
  const cache = stores.accountCache ? `, by the account cache ${cached}` : '';
  const reads = `of which answered by the request's own earlier read ${kept}${cache} (store: ${total('accounts.') - kept - cached})`;
  console.log(`\n${phase}: accounts ${total('accounts.')}, ${reads}, adapter ${total('adapter.')}, counters ${total('counters.')}`);
  for (const [k, v] of rows) console.log(`  ${String(v).padStart(3)}  ${k}`);
  counts.clear();
  hitsBefore = hits();
  keptBefore = answeredFromRequest();
}

try {
  const rp = await benchRelyingParty(server.issuer);
  // Warm up: oidc-provider creates its model adapters lazily.
  await signIn(server.issuer, rp, users[0]!);
  counts.clear();
  hitsBefore = hits();
  keptBefore = answeredFromRequest();
  const { refreshToken } = await signIn(server.issuer, rp, users[1]!);
  report(`one password sign-in (${setup})`);
  await tokenRequest(server.issuer, 'refresh_token', new RefreshChains([refreshToken!]));
  report('one refresh_token grant');
  await tokenRequest(server.issuer, 'client_credentials');
  report('one client_credentials grant');
} finally {
  await server.stop();
}
