// Load without loss: a bounded load test of complete sign-ins over MongoDB +
// Redis across two app processes behind a round-robin balancer.
//
//   npm run load
//
// Starts FerretDB (unless MONGODB_URI is set), uses the Redis at REDIS_URL (or
// 127.0.0.1:6379, else a private redis-server), seeds LOAD_PEOPLE people
// (password only; a tenth with two logins, who choose one; a tenth with a
// PIN), starts two `npm start` processes with one configuration and the
// balancer, then runs LOAD_SIGNINS complete sign-ins (default 3000) at
// LOAD_CONCURRENCY (default 20), each through openid-client: authorize →
// password → [choose login] → [PIN] → code → token exchange → ID token
// validated (signature included). Bounded in count and in time
// (LOAD_MAX_MINUTES, default 15: no sign-in starts after it). Loopback only.
//
// Passes when no sign-in failed, none was left out, and the audit log holds
// exactly one `signin.success` per sign-in of the run. Prints p50/p95/p99 per
// step and overall; writes bench/results/load-latest.json.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import * as oidc from 'openid-client';
import { loadConfig } from '../config/index.ts';
import { createHasher } from '../src/crypto/password.ts';
import { builtInFactors } from '../src/factors/registry.ts';
import { AMR } from '../src/provider/acr.ts';
import type { ImportDocument } from '../src/import/index.ts';
import { Browser, actionOf, csrfOf, type Page } from '../test/support/browser.ts';
import { PASSWORD, REDIRECT_URI, callbackReached, relyingParty, submitLogin, type RelyingParty } from '../test/support/latchkey.ts';
import { startMongo } from '../test/support/mongo.ts';
import { startOwnRedis, type OwnRedis } from '../test/support/redis.ts';
import { tempDir } from '../test/support/tmp.ts';
import { seed, sharedKeys, startBalancer, startProcess } from '../test/support/processes.ts';
import { redisAnswers } from '../test/support/redis.ts';

const root = join(import.meta.dirname, '..');
const int = (name: string, fallback: number) => {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
};
const SIGNINS = int('LOAD_SIGNINS', 3000);
const CONCURRENCY = int('LOAD_CONCURRENCY', 20);
const PEOPLE = int('LOAD_PEOPLE', 200);
const MAX_MINUTES = int('LOAD_MAX_MINUTES', 15);
const PIN = '482913';
const TENANT = 'load';
const CLIENT_ID = 'load-app';
const CLIENT_SECRET = 'load-secret-3c9e1f0b7a5d8e2c6f0a4b9d1e7c';

type Kind = 'password' | 'select' | 'pin';
interface Person {
  email: string;
  kind: Kind;
  /** The login the sign-in ends with (the one chosen, for `select`). */
  loginId: string;
}
type Step = 'authorize' | 'password' | 'select' | 'pin' | 'token' | 'total';
const STEPS: Step[] = ['authorize', 'password', 'select', 'pin', 'token', 'total'];

/** A tenth choose between two logins, a tenth have a PIN, the rest sign in with the password only. */
function people(n: number): Person[] {
  return Array.from({ length: n }, (_, i) => {
    const kind: Kind = i % 10 === 3 ? 'select' : i % 10 === 7 ? 'pin' : 'password';
    const email = `person${String(i).padStart(4, '0')}@load.test`;
    return { email, kind, loginId: `p${i}-${kind === 'select' ? 'manager' : kind === 'pin' ? 'nurse' : 'employee'}` };
  });
}

function fixture(everyone: Person[], passwordHash: string): ImportDocument {
  return {
    identities: everyone.map((p) => ({ email: p.email, passwordHash })),
    tenants: [
      {
        id: TENANT,
        name: 'Load Care',
        userTypes: [
          { id: 'employee', name: 'Employee', secondFactor: 'none' },
          { id: 'manager', name: 'Manager', secondFactor: 'none' },
          { id: 'nurse', name: 'Nurse', secondFactor: 'pin' },
        ],
        logins: everyone.flatMap((p, i) => {
          const name = { firstName: 'Person', lastName: String(i) };
          if (p.kind === 'select') {
            return [
              { id: `p${i}-employee`, email: p.email, userType: 'employee', ...name },
              { id: `p${i}-manager`, email: p.email, userType: 'manager', ...name },
            ];
          }
          return [{ id: p.loginId, email: p.email, userType: p.kind === 'pin' ? 'nurse' : 'employee', ...name }];
        }),
        clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT_URI], first_party: true }],
      },
    ],
  };
}

function describePage(page: Page): string {
  return `${page.status} ${page.url} ${page.html.slice(0, 200).replace(/\s+/g, ' ')}`;
}

/** One complete sign-in; each step timed (ms). Throws on anything unexpected. */
async function signIn(issuer: string, rp: RelyingParty, person: Person, warmUp = false): Promise<Partial<Record<Step, number>>> {
  const ms: Partial<Record<Step, number>> = {};
  const browser = new Browser(issuer);
  const t0 = performance.now();
  let mark = t0;
  const lap = (step: Step) => {
    const now = performance.now();
    ms[step] = now - mark;
    mark = now;
  };

  const pending = await rp.authorize();
  let page = await browser.get(pending.url);
  if (!page.html.includes('data-testid="login-form"')) throw new Error(`authorize: expected the login page, got ${describePage(page)}`);
  lap('authorize');

  page = await submitLogin(browser, page, person.email, PASSWORD);
  lap('password');

  if (person.kind === 'select') {
    if (!page.html.includes('data-testid="select-form"')) throw new Error(`password: expected the choice of logins, got ${describePage(page)}`);
    page = await browser.post(actionOf(page, 'select-form'), { login: person.loginId, csrf: csrfOf(page) });
    lap('select');
  }
  if (person.kind === 'pin') {
    const form = warmUp ? 'choose-pin-form' : 'enter-pin-form';
    if (!page.html.includes(`data-testid="${form}"`)) throw new Error(`password: expected ${form}, got ${describePage(page)}`);
    page = await browser.post(actionOf(page, form), warmUp ? { pin: PIN, pin_confirm: PIN, csrf: csrfOf(page) } : { pin: PIN, csrf: csrfOf(page) });
    lap('pin');
  }
  if (!callbackReached(page)) throw new Error(`expected the relying party's callback, got ${describePage(page)}`);

  const tokens = await rp.callback(page.url, pending);
  const claims = tokens.claims();
  lap('token');
  ms.total = performance.now() - t0;
  if (claims?.sub !== person.loginId) throw new Error(`ID token for ${String(claims?.sub)}, expected ${person.loginId}`);
  const acr = person.kind === 'pin' ? builtInFactors.info('pin').acr : builtInFactors.info('none').acr;
  if (claims.acr !== acr) throw new Error(`ID token acr ${String(claims.acr)}, expected ${acr}`);
  if (!Array.isArray(claims.amr) || !claims.amr.includes(AMR.password)) throw new Error(`ID token amr ${JSON.stringify(claims.amr)} lacks pwd`);
  return ms;
}

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}
const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 10) / 10 : n);

async function main() {
  const started = new Date();
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const cleanUp = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch((err) => console.error('clean-up:', err));
  };
  process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));

  try {
    // Stores.
    const externalMongo = !!process.env.MONGODB_URI;
    if (!externalMongo) execFileSync(process.execPath, [join(root, 'scripts', 'ferretdb.mjs')], { stdio: 'inherit' });
    const mongo = await startMongo();
    cleanups.push(() => mongo.stop());
    let redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    let ownRedis: OwnRedis | null = null;
    if (!process.env.REDIS_URL && !(await redisAnswers(Number(new URL(redisUrl).port || 6379), new URL(redisUrl).hostname))) {
      ownRedis = await startOwnRedis();
      cleanups.push(() => ownRedis!.stop());
      redisUrl = ownRedis.url;
    }
    const redisPrefix = `lk-load:${randomBytes(6).toString('hex')}:`;
    cleanups.push(async () => {
      if (ownRedis) return;
      const redis = new Redis(redisUrl);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      await redis.quit();
    });

    // Two processes with one configuration, behind the balancer.
    const dir = tempDir('lk-load-');
    cleanups.push(() => dir.remove());
    const balancer = await startBalancer();
    cleanups.push(() => balancer.close());
    const issuer = `http://127.0.0.1:${balancer.port}`;
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      MAIL: 'off',
      ISSUER: issuer,
      DATA_DIR: dir.path,
      DEMO: 'false',
      MONGODB_URI: mongo.uri,
      MONGODB_DB: mongo.dbName,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: redisPrefix,
      ...sharedKeys(),
    };
    if (externalMongo) {
      cleanups.push(async () => {
        const client = new MongoClient(mongo.uri);
        await client.connect();
        await client.db(mongo.dbName).dropDatabase();
        await client.close();
      });
    }
    const config = loadConfig(env);
    const everyone = people(PEOPLE);
    const hash = await (await createHasher(config.argon2, config.keys.pepper)).hash(PASSWORD);
    await seed(env, fixture(everyone, hash));
    const apps = await Promise.all([startProcess(env), startProcess(env)]);
    cleanups.push(() => Promise.all(apps.map((a) => a.terminate())));
    balancer.backends.push(...apps.map((a) => a.port));

    const rp = await relyingParty(issuer, CLIENT_ID, CLIENT_SECRET);
    oidc.enableNonRepudiationChecks(rp.config);

    // The PIN people choose their PIN once, before the measured run.
    for (const person of everyone.filter((p) => p.kind === 'pin')) await signIn(issuer, rp, person, true);

    // The run: SIGNINS sign-ins over CONCURRENCY workers, person by person in turn.
    console.log(
      `load: ${SIGNINS} sign-ins at concurrency ${CONCURRENCY}, ${PEOPLE} people, 2 processes behind ${issuer}, MongoDB ${externalMongo ? mongo.uri : 'FerretDB 1.24'}, Redis ${redisUrl}`,
    );
    const samples: Record<Step, number[]> = Object.fromEntries(STEPS.map((s) => [s, []])) as unknown as Record<Step, number[]>;
    const failures: { index: number; email: string; error: string }[] = [];
    const runStart = new Date();
    const t0 = performance.now();
    const deadline = t0 + MAX_MINUTES * 60_000;
    let next = 0;
    let done = 0;
    let truncated = false;
    const progress = setInterval(() => {
      const s = (performance.now() - t0) / 1000;
      console.log(`  ${done}/${SIGNINS} after ${s.toFixed(0)} s (${(done / s).toFixed(1)}/s), ${failures.length} failed`);
    }, 15_000);
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, SIGNINS) }, async () => {
        while (next < SIGNINS) {
          if (performance.now() > deadline) {
            truncated = true;
            return;
          }
          const index = next++;
          const person = everyone[index % everyone.length]!;
          try {
            const ms = await signIn(issuer, rp, person);
            for (const step of STEPS) if (ms[step] !== undefined) samples[step].push(ms[step]);
          } catch (err) {
            failures.push({ index, email: person.email, error: (err as Error).message.slice(0, 300) });
            if (failures.length <= 3) console.error(`  sign-in #${index} (${person.email}) failed: ${(err as Error).message.slice(0, 300)}`);
          }
          done++;
        }
      }),
    );
    clearInterval(progress);
    const wallMs = performance.now() - t0;
    const attempted = done;

    // Every sign-in has its audit event: count them in MongoDB, beside the app.
    const client = new MongoClient(mongo.uri);
    await client.connect();
    const audited = await client
      .db(mongo.dbName)
      .collection('audit_events')
      .countDocuments({ tenant: TENANT, type: 'signin.success', time: { $gte: runStart } });
    await client.close();
    const succeeded = samples.total.length;

    const latency = Object.fromEntries(
      STEPS.filter((s) => samples[s].length).map((s) => {
        const v = samples[s];
        return [
          s,
          {
            n: v.length,
            p50: round(percentile(v, 50)),
            p95: round(percentile(v, 95)),
            p99: round(percentile(v, 99)),
            mean: round(v.reduce((a, b) => a + b, 0) / v.length),
            max: round(Math.max(...v)),
          },
        ];
      }),
    );
    const perProcess = Object.fromEntries(balancer.backends.map((p, i) => [`process${i + 1}`, balancer.served.filter((b) => b === p).length]));
    const result = {
      date: started.toISOString(),
      machine: {
        nproc: os.availableParallelism(),
        cpu: os.cpus()[0]?.model ?? 'unknown',
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        os: `${os.type()} ${os.release()}`,
        node: process.version,
      },
      setup: {
        processes: 2,
        balancer: 'round-robin (test/support/processes.ts)',
        mongodb: externalMongo ? 'MONGODB_URI' : 'FerretDB 1.24 (SQLite backend)',
        redis: ownRedis ? 'private redis-server' : redisUrl,
        argon2: config.argon2,
      },
      load: {
        signIns: SIGNINS,
        concurrency: CONCURRENCY,
        people: PEOPLE,
        mix: {
          password: everyone.filter((p) => p.kind === 'password').length,
          select: everyone.filter((p) => p.kind === 'select').length,
          pin: everyone.filter((p) => p.kind === 'pin').length,
        },
        maxMinutes: MAX_MINUTES,
      },
      outcome: {
        attempted,
        succeeded,
        failed: failures.length,
        truncated,
        auditedSignInSuccess: audited,
        wallSeconds: round(wallMs / 1000),
        signInsPerSecond: round(succeeded / (wallMs / 1000)),
        requestsPerProcess: perProcess,
      },
      latencyMs: latency,
      failures: failures.slice(0, 20),
      processes: apps.map((a) => ({
        running: a.child.exitCode === null && a.child.signalCode === null,
        errorLogLines: a.logs.filter((l) => /"level":(50|60)|unreachable|unavailable/.test(l)).length,
      })),
    };
    mkdirSync(join(root, 'bench', 'results'), { recursive: true });
    writeFileSync(join(root, 'bench', 'results', 'load-latest.json'), `${JSON.stringify(result, null, 2)}\n`);

    console.log(
      `\n${succeeded}/${SIGNINS} sign-ins in ${(wallMs / 1000).toFixed(1)} s (${result.outcome.signInsPerSecond}/s); ${failures.length} failed; audit signin.success: ${audited}`,
    );
    console.log(`requests per process: ${JSON.stringify(perProcess)}`);
    console.log('latency (ms)      n      p50     p95     p99    mean     max');
    for (const [step, l] of Object.entries(latency))
      console.log(`  ${step.padEnd(10)} ${String(l.n).padStart(6)} ${[l.p50, l.p95, l.p99, l.mean, l.max].map((x) => x.toFixed(1).padStart(7)).join(' ')}`);
    for (const f of failures.slice(0, 5)) console.log(`  failed #${f.index} ${f.email}: ${f.error}`);
    if (failures.length) {
      const kinds = new Map<string, number>();
      for (const f of failures) kinds.set(f.error.slice(0, 80), (kinds.get(f.error.slice(0, 80)) ?? 0) + 1);
      console.log('failures by kind:', Object.fromEntries(kinds));
    }
    for (const [i, app] of apps.entries()) {
      const alive = app.child.exitCode === null && app.child.signalCode === null;
      const errors = app.logs.filter((l) => /"level":(50|60)|unreachable|unavailable/.test(l));
      if (!alive || errors.length)
        console.log(
          `process ${i + 1}: ${alive ? 'running' : `exited (${app.child.exitCode ?? app.child.signalCode})`}; ${errors.length} error log lines${errors.length ? `, last: ${errors.at(-1)!.slice(0, 400)}` : ''}`,
        );
    }
    console.log(`machine: nproc ${result.machine.nproc}, ${result.machine.cpu}, Node ${result.machine.node}; bench/results/load-latest.json written`);

    const problems = [
      ...(failures.length ? [`${failures.length} sign-ins failed`] : []),
      ...(truncated || attempted < SIGNINS ? [`stopped after ${MAX_MINUTES} min with ${attempted} of ${SIGNINS} sign-ins`] : []),
      ...(audited !== succeeded ? [`${audited} signin.success audit events for ${succeeded} sign-ins`] : []),
    ];
    if (problems.length) {
      console.error(`LOAD TEST FAILED: ${problems.join('; ')}`);
      process.exitCode = 1;
    } else console.log('load test passed: zero failures, one audit event per sign-in');
  } finally {
    await cleanUp();
  }
}

await main();
