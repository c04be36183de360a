/**
 * `npm run bench` — server CPU per operation against Latchkey started as a
 * child process, on the embedded store and on MongoDB + Redis. Method and
 * latest numbers: docs/performance.md.
 *
 *   npm run bench                    full run (10,000 sessions: tens of minutes on 2 cores)
 *   BENCH_QUICK=1 npm run bench      quick run (under 3 minutes on 2 cores)
 *   BENCH_SMOKE=1 npm run bench      one sign-in, SQLite accounts + Redis (the smoke test)
 *
 * Also: BENCH_OUT=path (default bench/results/latest.json), BENCH_SETUPS=sqlite,mongo+redis,
 * BENCH_PHASES=login,tokens,memory,passkey,recovery,api,users,counters, BENCH_POLICIES=password,pin,totp, BENCH_SESSIONS, BENCH_SIGNINS / BENCH_TOKEN_OPS (counts per phase),
 * BENCH_CPU_PROF=dir (servers run with --cpu-prof into dir; see bench/profile-summary.ts),
 * MONGODB_URI (else FerretDB), REDIS_URL (else a private redis-server).
 * BENCH_PEERS=hydra adds Ory Hydra (built on first use; needs Go) to the token comparison: bench/hydra-phase.ts.
 * Every load loop is bounded in count and time; only loopback addresses are used.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Config } from '../config/index.ts';
import { startMongo, type TestMongo } from '../test/support/mongo.ts';
import { ensureFerretdb } from '../scripts/ferretdb.mjs';
import { tempDir } from '../test/support/tmp.ts';
import { cpuSplit, machine, rssBytes, threadCpuMs, threadDelta } from './lib/proc.ts';
import { ROOT, freePort, startBare, startLatchkey, startRedis, type BenchRedis, type Child } from './lib/processes.ts';
import { benchClientMetadata, benchDocument, seed, usersFor, type BenchUser, type Policy } from './lib/seed.ts';
import { bareSignIn, benchRelyingParty, signIn, type SignInResult, type Step } from './lib/journey.ts';
import { HASHES, TotpLogins, pinDriver, type FactorDriver, type FactorStage } from './lib/factors.ts';
import { RefreshChains, tokenRequest, type Grant } from './lib/tokens.ts';
import { measureFloor, type FloorSample } from './lib/floor.ts';
import { REDIS_MODEL_CODES } from '../src/storage/adapter/redis/index.ts';
import { keyBreakdown, prefixBytes, usedMemory, type KeyKind } from './lib/redis-memory.ts';
import { runPool } from './lib/pool.ts';
import { latency, mean, round, table } from './lib/stats.ts';
import { PATH_PHASES, pathPlanFor, pathsJson, pathsReport, requiredPathResults, runPaths, withPaths, type PathPlan, type PathsResult } from './paths/index.ts';
import { hydraPeer, hydraReport, hydraTargets, type HydraPeerResult } from './hydra-phase.ts';

type Mode = 'full' | 'quick' | 'smoke';
type SetupName = 'sqlite' | 'mongo+redis' | 'sqlite+redis';

interface ModeParams {
  setups: SetupName[];
  /** Concurrency levels of the sign-in phases. */
  levels: number[];
  /** Measured sign-ins per level (password-only). */
  signIns: number;
  /** Measured sign-ins per level for the PIN and TOTP policies. */
  factorSignIns: number;
  warmupSignIns: number;
  warmupTokens: number;
  /** Grants per server in the token comparison. */
  tokenOps: number;
  /** ABBA BAAB blocks the token ops are spread over (more alternation, less drift). */
  tokenBlocks: number;
  tokenConcurrency: number;
  /** Sign-ins of the memory phase (Redis set-ups). */
  memorySessions: number;
  floorSamples: number;
  /** Upper bound of any one load loop. */
  maxPhaseMs: number;
  /** The sign-in policies measured (when this checkout offers their factors). */
  policies: Policy[];
}

const MODES: Record<Mode, ModeParams> = {
  full: {
    setups: ['sqlite', 'mongo+redis'],
    levels: [1, 4, 16],
    signIns: 120,
    factorSignIns: 60,
    warmupSignIns: 24,
    warmupTokens: 200,
    tokenOps: 4000,
    tokenBlocks: 10,
    tokenConcurrency: 4,
    memorySessions: 10_000,
    floorSamples: 40,
    maxPhaseMs: 900_000,
    policies: ['password', 'pin', 'totp'],
  },
  quick: {
    setups: ['sqlite', 'mongo+redis'],
    levels: [1, 4],
    signIns: 24,
    factorSignIns: 12,
    warmupSignIns: 8,
    warmupTokens: 60,
    tokenOps: 2400,
    tokenBlocks: 6,
    tokenConcurrency: 4,
    memorySessions: 300,
    floorSamples: 16,
    maxPhaseMs: 60_000,
    policies: ['password', 'pin', 'totp'],
  },
  smoke: {
    setups: ['sqlite+redis'],
    levels: [1],
    signIns: 1,
    factorSignIns: 1,
    warmupSignIns: 1,
    warmupTokens: 10,
    tokenOps: 80,
    tokenBlocks: 1,
    tokenConcurrency: 2,
    memorySessions: 2,
    floorSamples: 2,
    maxPhaseMs: 20_000,
    policies: ['password'],
  },
};

/** Keycloak's published sizing ("Concepts for sizing CPU and memory resources"), per vCPU. */
const KEYCLOAK = { passwordLoginsPerS: 15, refreshPerS: 120, clientCredentialsPerS: 200 };
const TARGETS = { efficiency: 0.8, tokenRatio: 1.15, redisBytes: 2048, latchkeyOwnMs: 2 };

const mode: Mode = process.env.BENCH_SMOKE === '1' ? 'smoke' : process.env.BENCH_QUICK === '1' ? 'quick' : 'full';
const params = MODES[mode];
const setups = (process.env.BENCH_SETUPS?.split(',').map((s) => s.trim()) as SetupName[] | undefined) ?? params.setups;
const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'latest.json');
const profArgs = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
const POLICIES: Policy[] = ['password', 'pin', 'totp'];
/** BENCH_PHASES=login,tokens,memory and the other paths' (bench/paths/; default all) — e.g. to profile one phase alone. */
const phases = new Set(process.env.BENCH_PHASES?.split(',').map((s) => s.trim()) ?? ['login', 'tokens', 'memory', ...PATH_PHASES]);
/** BENCH_PEERS=hydra: other servers in the token comparison (none by default: no Go needed). */
const peers = new Set(process.env.BENCH_PEERS?.split(',').map((s) => s.trim()) ?? []);
if (process.env.BENCH_SIGNINS) params.signIns = Number(process.env.BENCH_SIGNINS);
if (process.env.BENCH_TOKEN_OPS) params.tokenOps = Number(process.env.BENCH_TOKEN_OPS);
if (process.env.BENCH_SESSIONS) params.memorySessions = Number(process.env.BENCH_SESSIONS);
if (process.env.BENCH_MAX_PHASE_MS) params.maxPhaseMs = Number(process.env.BENCH_MAX_PHASE_MS);
if (process.env.BENCH_POLICIES) params.policies = params.policies.filter((p) => process.env.BENCH_POLICIES!.split(',').includes(p));
/** Logins per policy: at least the highest concurrency, so no two sign-ins of one identity overlap (its attempt counter). */
const USERS_PER_POLICY = Math.max(...params.levels, params.tokenConcurrency, 4);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
const t0 = performance.now();

// ---------------------------------------------------------------- results

interface LoginLevel {
  policy: Policy;
  concurrency: number;
  sign_ins: number;
  server_cpu_ms: number;
  /** Server CPU-ms per sign-in by thread kind. */
  threads_cpu_ms: Record<string, number>;
  efficiency: number;
  sign_ins_per_s: number;
  latency_ms: Partial<Record<Step, { p50: number; p99: number; n: number }>>;
  truncated: boolean;
}

/** oidc-provider alone: the bare provider's code flow (no password, no pages). */
interface BareFlow {
  concurrency: number;
  sign_ins: number;
  server_cpu_ms: number;
  threads_cpu_ms: Record<string, number>;
  latency_ms: Partial<Record<Step, { p50: number; p99: number; n: number }>>;
}

interface TokenResult {
  grant: Grant;
  ops: number;
  server_cpu_ms: number;
  bare_cpu_ms: number;
  ratio: number;
  /** The ratio of each ABBA BAAB block on its own: how much it moved within the run. */
  ratio_spread: { blocks: number; min: number; median: number; max: number };
  keycloak_cpu_ms: number;
  latchkey_latency_ms: { p50: number; p99: number; n: number };
  bare_latency_ms: { p50: number; p99: number; n: number };
}

interface MemoryResult {
  sessions: number;
  redis_private: boolean;
  method: string;
  redis_used_memory_delta: number;
  redis_bytes: number;
  /** The same less the authorization codes still alive at the reading (they expire 60 s after issue). */
  redis_bytes_without_codes: number;
  keys: KeyKind[];
  rss_before_bytes: number;
  rss_after_bytes: number;
}

interface SetupResult {
  setup: SetupName;
  stores: { accounts: string; provider: string };
  policies: Policy[];
  todo: string[];
  floor: FloorSample[];
  login: LoginLevel[];
  bare_flow: BareFlow[];
  tokens: TokenResult[];
  memory: MemoryResult | null;
  rss_end_bytes: number;
  sessions_created: number;
  argon2: Config['argon2'] | null;
  /** The other paths (bench/paths/), when their phases ran. */
  paths: PathsResult | null;
  pathPlan: PathPlan | null;
  hydra?: HydraPeerResult;
}

// ---------------------------------------------------------------- shared services

let redis: BenchRedis | null = null;
let mongo: TestMongo | null = null;
const running = new Set<Child>();

async function sharedRedis(): Promise<BenchRedis> {
  redis ??= await startRedis();
  return redis;
}

async function sharedMongo(): Promise<TestMongo> {
  // A fresh clone has no FerretDB yet: build it on first use, as `npm test` does.
  if (!process.env.MONGODB_URI && !process.env.LATCHKEY_FERRETDB) process.env.LATCHKEY_FERRETDB = ensureFerretdb();
  mongo ??= await startMongo();
  return mongo;
}

async function stopAll() {
  for (const child of running) await child.stop().catch(() => {});
  running.clear();
  await redis?.stop().catch(() => {});
  await mongo?.stop().catch(() => {});
  redis = null;
  mongo = null;
}

// ---------------------------------------------------------------- measurement

/**
 * Server CPU (ms) spent while `fn` runs: /proc/<pid>/stat before and after,
 * with a short settle on each side; and the same split by thread (main = the
 * event loop; other = libuv's pool, where argon2 runs, and V8's helpers, which
 * Node 20 leaves unnamed; kernel = stime of the whole process).
 */
async function measured<T>(pid: number, fn: () => Promise<T>): Promise<{ cpu: number; threads: Record<string, number>; value: T }> {
  await sleep(150);
  const before = cpuSplit(pid);
  const threadsBefore = threadCpuMs(pid);
  const value = await fn();
  await sleep(150);
  const after = cpuSplit(pid);
  const threads = threadDelta(threadsBefore, threadCpuMs(pid));
  threads.kernel = after.system - before.system;
  return { cpu: after.user + after.system - before.user - before.system, threads, value };
}

const perOp = (threads: Record<string, number>, n: number) => Object.fromEntries(Object.entries(threads).map(([k, v]) => [k, round(v / n)]));

// ---------------------------------------------------------------- one set-up

async function runSetup(name: SetupName, floors: FloorSample[]): Promise<SetupResult> {
  const dir = tempDir('lk-bench-');
  const bareDir = tempDir('lk-bench-bare-');
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const tag = randomBytes(4).toString('hex');
  const env: Record<string, string> = { NODE_ENV: 'test', PORT: String(port), ISSUER: issuer, DATA_DIR: dir.path, DEMO: 'false', LOG_LEVEL: 'warn' };
  // The management-API phase makes more calls than one client may in a minute.
  if (PATH_PHASES.some((p) => phases.has(p))) env.API_RATE_LIMIT = '1000000';
  if (name === 'mongo+redis') {
    const m = await sharedMongo();
    env.MONGODB_URI = m.uri;
    env.MONGODB_DB = `lk_bench_${tag}`;
  }
  let redisClient: Redis | null = null;
  let redisInfo: BenchRedis | null = null;
  if (name.endsWith('+redis')) {
    redisInfo = await sharedRedis();
    env.REDIS_URL = redisInfo.url;
    // As long as the default `latchkey:`, since every key carries it and the memory phase counts it.
    env.REDIS_PREFIX = `${tag}:`;
    redisClient = new Redis(redisInfo.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    await redisClient.connect();
  }

  const result: SetupResult = {
    setup: name,
    stores: { accounts: env.MONGODB_URI ? 'mongodb' : 'sqlite', provider: env.REDIS_URL ? 'redis' : 'sqlite' },
    policies: [],
    todo: [],
    floor: [],
    login: [],
    bare_flow: [],
    tokens: [],
    memory: null,
    rss_end_bytes: NaN,
    sessions_created: 0,
    argon2: null,
    paths: null,
    pathPlan: null,
  };

  let server: Child | null = null;
  let bare: (Child & { refreshTokens: string[] }) | null = null;
  try {
    // Seed before the server starts (for SQLite the server then opens the same file).
    // TOTP needs a login per sign-in within a 30-second step: enough for every measured one.
    const poolSize: Record<Policy, number> = {
      password: USERS_PER_POLICY,
      pin: USERS_PER_POLICY,
      totp: params.factorSignIns * params.levels.length + Math.min(2, params.warmupSignIns) + 4,
    };
    const users: Record<Policy, BenchUser[]> = { password: [], pin: [], totp: [] };
    const { config, factors } = await seed(env, (available) => {
      const policies = params.policies.filter((p) => p === 'password' || available.includes(p));
      for (const p of policies) users[p] = usersFor(p, poolSize[p]);
      result.pathPlan = pathPlanFor(mode, params.levels, available, phases);
      return withPaths(
        benchDocument(
          policies.flatMap((p) => users[p]),
          policies,
        ),
        result.pathPlan,
      );
    });

    result.argon2 = config.argon2;
    result.policies = POLICIES.filter((p) => users[p].length > 0);
    for (const p of params.policies) {
      if (!result.policies.includes(p)) result.todo.push(`${p}: not measured — src/factors/registry.ts does not offer "${p}" (offers: ${factors.join(', ')})`);
    }
    const totp = new TotpLogins(users.totp);
    const drivers: Record<Policy, FactorDriver | undefined> = { password: undefined, pin: pinDriver, totp: totp.driver };

    log(`${name}: starting Latchkey on ${issuer}`);
    server = await startLatchkey(env, profArgs);
    running.add(server);
    const rp = await benchRelyingParty(issuer);
    const pid = server.pid;

    /** One sign-in of `policy` by the worker's login (TOTP: a login free in this step); `expect` checks the factor page's stage. */
    const once = async (policy: Policy, worker: number, expect: FactorStage | 'any' = 'verify'): Promise<SignInResult> => {
      const user = policy === 'totp' ? await totp.acquire(expect !== 'enroll', performance.now() + params.maxPhaseMs) : users[policy][worker % users[policy].length]!;
      try {
        result.sessions_created++;
        const r = await signIn(issuer, rp, user, drivers[policy]);
        if (policy !== 'password' && expect !== 'any' && r.factorStage !== expect)
          throw new Error(`${user.loginId}: the ${policy} page asked to ${r.factorStage}, expected ${expect}`);
        return r;
      } finally {
        if (policy === 'totp') totp.release(user);
      }
    };

    // Set-up, not measured: each PIN login chooses its PIN, each TOTP login links its app.
    if (users.pin.length) await runPool(users.pin.length, 2, (_, i) => signIn(issuer, rp, users.pin[i]!, pinDriver), params.maxPhaseMs);
    if (users.totp.length) {
      log(`${name}: linking ${users.totp.length} TOTP logins`);
      await runPool(users.totp.length, 2, (w) => once('totp', w, 'enroll'), params.maxPhaseMs);
    }

    // Warm-up: JIT, templates, connections, caches. Its refresh tokens feed the token phase.
    log(`${name}: warm-up (${params.warmupSignIns} sign-ins, ${params.warmupTokens} grants)`);
    const warm = await runPool(params.warmupSignIns, Math.min(2, params.warmupSignIns), (w) => once('password', w), params.maxPhaseMs);
    const refreshTokens = warm.results.map((r) => r.refreshToken).filter((t): t is string => !!t);
    if (!refreshTokens.length) throw new Error('the warm-up sign-ins returned no refresh token');
    if (users.pin.length) await runPool(Math.min(2, params.warmupSignIns), 1, (w) => once('pin', w), params.maxPhaseMs);
    const chains = new RefreshChains(refreshTokens);
    await runPool(params.warmupTokens, 2, (_w, i) => tokenRequest(issuer, i % 2 ? 'client_credentials' : 'refresh_token', chains), params.maxPhaseMs);

    // Memory first on Redis, so that no earlier phase's short-lived keys expire inside it.
    if (redisClient && redisInfo && phases.has('memory')) result.memory = await memoryPhase(name, redisClient, redisInfo, env.REDIS_PREFIX!, pid, (w) => once('password', w));

    // The floor, in the bench process while the server idles.
    const floor1 = await measureFloor(config, params.floorSamples, 1);
    const floor2 = await measureFloor(config, Math.max(2, params.floorSamples), 2);
    result.floor.push(floor1, floor2);
    floors.push(floor1);
    log(`${name}: floor ${floor1.cpuMs.toFixed(1)} CPU-ms per argon2id verification (2 at once: ${floor2.cpuMs.toFixed(1)})`);
    // (measured again after the password phases, below)

    for (const policy of phases.has('login') ? result.policies : []) {
      if (policy === 'totp') {
        // Every linked login free again (a step after its last use), then a warm-up outside the measurement.
        const waited = await totp.allFree();
        if (waited > 1000) log(`${name}: waited ${(waited / 1000).toFixed(0)} s for the next TOTP step`);
        await runPool(Math.min(2, params.warmupSignIns), 1, (w) => once('totp', w), params.maxPhaseMs);
      }
      for (const level of params.levels) {
        const count = policy === 'password' ? params.signIns : params.factorSignIns;
        const { cpu, threads, value } = await measured(pid, () => runPool(count, level, (w) => once(policy, w), params.maxPhaseMs));
        const n = value.results.length;
        const steps: LoginLevel['latency_ms'] = {};
        for (const step of ['authorize', 'password', 'factor', 'token', 'total'] as Step[]) {
          const values = value.results.map((r) => r.ms[step]).filter((v): v is number => v !== undefined);
          if (values.length) steps[step] = latency(values);
        }
        const row: LoginLevel = {
          policy,
          concurrency: level,
          sign_ins: n,
          server_cpu_ms: round(cpu / n),
          threads_cpu_ms: perOp(threads, n),
          efficiency: NaN,
          sign_ins_per_s: round((n * 1000) / value.wallMs),
          latency_ms: steps,
          truncated: value.truncated,
        };
        result.login.push(row);
        log(`${name}: ${policy} ×${level}: ${n} sign-ins, ${row.server_cpu_ms} server CPU-ms each (${JSON.stringify(row.threads_cpu_ms)}), ${row.sign_ins_per_s}/s`);
      }
      if (policy === 'password') {
        // The floor again after the password phases: drift on a shared machine shows, and averages out.
        const again = await measureFloor(config, params.floorSamples, 1);
        result.floor.push(again);
        floors.push(again);
      }
    }

    // The other paths: passkeys, recovery codes, the management API, the Users page, the attempt counters.
    if (PATH_PHASES.some((p) => phases.has(p))) {
      result.paths = await runPaths({
        setup: name,
        mode,
        issuer,
        pid,
        levels: params.levels,
        maxPhaseMs: params.maxPhaseMs,
        phases,
        plan: result.pathPlan!,
        env,
        redisPid: redisInfo?.private ? (redisInfo.pid ?? null) : null,
        measured,
        log,
      });
    }

    // Token endpoint: Latchkey against the bare provider on the same adapter and keys.
    if (!phases.has('tokens')) {
      result.rss_end_bytes = rssBytes(pid);
      return result;
    }
    const bareEnv: Record<string, string> = {
      NODE_ENV: 'test',
      PORT: String(await freePort()),
      DATA_DIR: dir.path,
      BARE_SQLITE_DIR: bareDir.path,
      LOG_LEVEL: 'warn',
      BENCH_CLIENT: JSON.stringify(benchClientMetadata()),
      BARE_REFRESH_TOKENS: String(Math.max(refreshTokens.length, 2)),
    };
    bareEnv.ISSUER = `http://127.0.0.1:${bareEnv.PORT}`;
    if (env.REDIS_URL) {
      bareEnv.REDIS_URL = env.REDIS_URL;
      bareEnv.REDIS_PREFIX = `lk-bench-bare:${tag}:`;
    }
    bare = await startBare(bareEnv, profArgs);
    running.add(bare);
    const bareIssuer = bareEnv.ISSUER;
    const bareTokens = new RefreshChains(bare.refreshTokens);
    await runPool(params.warmupTokens, 2, (_w, i) => tokenRequest(bareIssuer, i % 2 ? 'client_credentials' : 'refresh_token', bareTokens), params.maxPhaseMs);

    // oidc-provider's own share of a sign-in: the bare provider's code flow at the same levels.
    if (phases.has('login')) {
      const bareRp = await benchRelyingParty(bareIssuer);
      await runPool(params.warmupSignIns, Math.min(2, params.warmupSignIns), () => bareSignIn(bareIssuer, bareRp), params.maxPhaseMs);
      for (const level of params.levels) {
        const { cpu, threads, value } = await measured(bare.pid, () => runPool(params.signIns, level, () => bareSignIn(bareIssuer, bareRp), params.maxPhaseMs));
        const n = value.results.length;
        const steps: BareFlow['latency_ms'] = {};
        for (const step of ['authorize', 'token', 'total'] as Step[]) steps[step] = latency(value.results.map((r) => r.ms[step]!));
        result.bare_flow.push({ concurrency: level, sign_ins: n, server_cpu_ms: round(cpu / n), threads_cpu_ms: perOp(threads, n), latency_ms: steps });
        log(`${name}: bare oidc-provider code flow ×${level}: ${round(cpu / n)} CPU-ms each (${JSON.stringify(perOp(threads, n))})`);
      }
    }
    for (const grant of ['refresh_token', 'client_credentials'] as Grant[]) {
      result.tokens.push(await tokenPhase(name, grant, { pid, issuer, tokens: chains }, { pid: bare.pid, issuer: bareIssuer, tokens: bareTokens }));
    }
    if (peers.has('hydra')) {
      const rsaKey = config.keys.jwks.keys.find((k) => k.kty === 'RSA');
      if (!rsaKey) throw new Error("Hydra like for like needs Latchkey's RSA signing key, and this configuration has none");
      const hydraParams = {
        ops: Number(process.env.BENCH_HYDRA_OPS ?? params.tokenOps),
        blocks: params.tokenBlocks,
        concurrency: params.tokenConcurrency,
        warmup: params.warmupTokens,
        maxPhaseMs: params.maxPhaseMs,
      };
      result.hydra = await hydraPeer({ setup: name, latchkey: { issuer, pid, tokens: chains, redis: redisClient }, rsaKey, params: hydraParams, log });
    }
    result.rss_end_bytes = rssBytes(pid);
    return result;
  } finally {
    for (const child of [bare, server]) {
      if (!child) continue;
      await child.stop().catch(() => {});
      running.delete(child);
    }
    await redisClient?.quit().catch(() => redisClient?.disconnect());
    dir.remove();
    bareDir.remove();
  }
}

async function memoryPhase(name: SetupName, client: Redis, info: BenchRedis, prefix: string, pid: number, op: (worker: number) => Promise<SignInResult>): Promise<MemoryResult> {
  const n = params.memorySessions;
  log(`${name}: memory — ${n} sign-ins${mode === 'full' ? '' : ` (${mode} mode: fewer than the full run's 10,000)`}`);
  // A private Redis: INFO used_memory before and after. A shared one (REDIS_URL given): the
  // MEMORY USAGE of our own keys, since others' writes move used_memory too.
  const measure = () => (info.private ? usedMemory(client) : prefixBytes(client, prefix));
  await sleep(200);
  const codeBytes = (kinds: KeyKind[]) => kinds.filter((k) => k.kind === REDIS_MODEL_CODES.AuthorizationCode).reduce((a, k) => a + k.keys * k.meanBytes, 0);
  const codesBefore = codeBytes(await keyBreakdown(client, prefix));
  const rssBefore = rssBytes(pid);
  const before = await measure();
  const run = await runPool(n, 4, (w) => op(w), mode === 'full' ? 3_600_000 : params.maxPhaseMs);
  await sleep(200);
  const after = await measure();
  const done = run.results.length;
  const keys = await keyBreakdown(client, prefix);
  // Authorization codes (60 s TTL, kept consumed to catch a replay) still alive at the reading.
  const codes = codeBytes(keys) - codesBefore;
  const result: MemoryResult = {
    sessions: done,
    redis_private: info.private,
    method: info.private ? 'INFO used_memory, after − before' : 'Σ MEMORY USAGE of our keys, after − before (shared Redis)',
    redis_used_memory_delta: after - before,
    redis_bytes: Math.round((after - before) / done),
    redis_bytes_without_codes: Math.round((after - before - codes) / done),
    keys,
    rss_before_bytes: rssBefore,
    rss_after_bytes: rssBytes(pid),
  };
  log(
    `${name}: ${result.redis_bytes} Redis bytes per session (${result.redis_bytes_without_codes} without the 60-s authorization codes); server RSS ${(result.rss_after_bytes / 2 ** 20).toFixed(0)} MiB after ${done} sessions`,
  );
  return result;
}

interface Target {
  pid: number;
  issuer: string;
  tokens: RefreshChains;
}

/**
 * ABBA BAAB blocks of rounds (Latchkey, bare, bare, Latchkey, …) so that drift on
 * a shared machine falls on both alike; the headline ratio pools every round,
 * and each block's own ratio shows how far it moved during the run.
 */
async function tokenPhase(name: SetupName, grant: Grant, latchkey: Target, bare: Target): Promise<TokenResult> {
  const blocks = Math.max(1, params.tokenBlocks);
  const perRound = Math.max(1, Math.floor(params.tokenOps / (4 * blocks)));
  const total = () => ({ cpu: 0, ops: 0, ms: [] as number[] });
  const sums = new Map<Target, ReturnType<typeof total>>([
    [latchkey, total()],
    [bare, total()],
  ]);
  const blockRatios: number[] = [];
  for (let block = 0; block < blocks; block++) {
    const mine = new Map<Target, ReturnType<typeof total>>([
      [latchkey, total()],
      [bare, total()],
    ]);
    for (const target of [latchkey, bare, bare, latchkey, bare, latchkey, latchkey, bare]) {
      const { cpu, value } = await measured(target.pid, () =>
        runPool(perRound, params.tokenConcurrency, () => tokenRequest(target.issuer, grant, target.tokens), params.maxPhaseMs),
      );
      for (const sum of [sums.get(target)!, mine.get(target)!]) {
        sum.cpu += cpu;
        sum.ops += value.results.length;
        sum.ms.push(...value.results);
      }
    }
    const [l, b] = [mine.get(latchkey)!, mine.get(bare)!];
    blockRatios.push(l.cpu / l.ops / (b.cpu / b.ops));
  }
  const l = sums.get(latchkey)!;
  const b = sums.get(bare)!;
  const sorted = [...blockRatios].sort((x, y) => x - y);
  const result: TokenResult = {
    grant,
    ops: l.ops,
    server_cpu_ms: round(l.cpu / l.ops, 3),
    bare_cpu_ms: round(b.cpu / b.ops, 3),
    ratio: round(l.cpu / l.ops / (b.cpu / b.ops), 3),
    ratio_spread: {
      blocks,
      min: round(sorted[0]!, 3),
      median: round(sorted[Math.floor((sorted.length - 1) / 2)]! / 2 + sorted[Math.ceil((sorted.length - 1) / 2)]! / 2, 3),
      max: round(sorted.at(-1)!, 3),
    },
    keycloak_cpu_ms: round(1000 / (grant === 'refresh_token' ? KEYCLOAK.refreshPerS : KEYCLOAK.clientCredentialsPerS), 2),
    latchkey_latency_ms: latency(l.ms),
    bare_latency_ms: latency(b.ms),
  };
  log(`${name}: ${grant}: Latchkey ${result.server_cpu_ms} CPU-ms, bare ${result.bare_cpu_ms} CPU-ms, ratio ${result.ratio} (blocks ${sorted.map((r) => round(r, 2)).join(' ')})`);
  return result;
}

// ---------------------------------------------------------------- report

function pooledLogin(rows: LoginLevel[], policy: Policy): { cpu: number; n: number } {
  const mine = rows.filter((r) => r.policy === policy);
  const n = mine.reduce((a, r) => a + r.sign_ins, 0);
  return { cpu: mine.reduce((a, r) => a + r.server_cpu_ms * r.sign_ins, 0) / n, n };
}

function report(results: SetupResult[], floors: FloorSample[], config: { argon2: Config['argon2'] }) {
  const floor = round(mean(floors.map((f) => f.cpuMs)));
  // A PIN sign-in verifies two argon2id hashes (password and PIN): its floor is twice the password's.
  for (const r of results) for (const row of r.login) row.efficiency = round((HASHES[row.policy] * floor) / row.server_cpu_ms, 3);

  // Headline numbers: the production set-up (MongoDB + Redis) when it ran, else the one that did.
  const head = results.find((r) => r.setup === 'mongo+redis') ?? results[0]!;
  const login = pooledLogin(head.login, 'password');
  const none = { ratio: NaN, server_cpu_ms: NaN, bare_cpu_ms: NaN, keycloak_cpu_ms: NaN };
  const refresh = head.tokens.find((t) => t.grant === 'refresh_token') ?? none;
  const cc = head.tokens.find((t) => t.grant === 'client_credentials') ?? none;
  const memory = results.find((r) => r.memory)?.memory ?? null;

  /** Where a password sign-in's server CPU goes: the hash, oidc-provider's own code flow (the bare provider's), the rest (Latchkey's). */
  const breakdown = (r: SetupResult) => {
    const pooled = pooledLogin(r.login, 'password');
    const bare = r.bare_flow.length ? r.bare_flow.reduce((a, b) => a + b.server_cpu_ms * b.sign_ins, 0) / r.bare_flow.reduce((a, b) => a + b.sign_ins, 0) : NaN;
    return { floor_cpu_ms: floor, oidc_provider_cpu_ms: round(bare), latchkey_cpu_ms: round(pooled.cpu - floor - bare) };
  };

  const perSetup = Object.fromEntries(
    results.map((r) => {
      const pooled = pooledLogin(r.login, 'password');
      return [
        r.setup,
        {
          stores: r.stores,
          policies: r.policies,
          todo: r.todo,
          floor: r.floor.map((f) => ({ parallel: f.parallel, cpu_ms: round(f.cpuMs), wall_ms: round(f.wallMs), samples: f.samples })),
          login: { server_cpu_ms: round(pooled.cpu), efficiency: round(floor / pooled.cpu, 3), sign_ins: pooled.n, breakdown: breakdown(r), levels: r.login },
          bare_flow: r.bare_flow,
          tokens: r.tokens,
          memory: r.memory,
          paths: pathsJson(r.paths, pooled.cpu),
          rss_end_bytes: r.rss_end_bytes,
          sessions_created: r.sessions_created,
          ...(r.hydra ? { hydra: r.hydra } : {}),
        },
      ];
    }),
  );

  const targets = results.flatMap((r) => {
    const pooled = pooledLogin(r.login, 'password');
    const list = [
      ...(pooled.n
        ? [{ setup: r.setup, target: `sign-in efficiency ≥ ${TARGETS.efficiency}`, value: round(floor / pooled.cpu, 3), met: floor / pooled.cpu >= TARGETS.efficiency }]
        : []),
      ...r.tokens.map((t) => ({ setup: r.setup, target: `${t.grant} ≤ ${TARGETS.tokenRatio}× bare`, value: t.ratio, met: t.ratio <= TARGETS.tokenRatio })),
    ];
    const own = breakdown(r).latchkey_cpu_ms;
    if (pooled.n && Number.isFinite(own))
      list.push({ setup: r.setup, target: `Latchkey's own share of a sign-in ≤ ${TARGETS.latchkeyOwnMs} CPU-ms`, value: own, met: own <= TARGETS.latchkeyOwnMs });
    if (r.memory)
      list.push({ setup: r.setup, target: `Redis ≤ ${TARGETS.redisBytes} B per session`, value: r.memory.redis_bytes, met: r.memory.redis_bytes <= TARGETS.redisBytes });
    if (r.hydra) list.push(...hydraTargets(r.setup, r.hydra));
    return list;
  });

  const json = {
    mode,
    date: new Date().toISOString(),
    machine: machine(),
    argon2: config.argon2,
    headline_setup: head.setup,
    login: {
      efficiency: round(floor / login.cpu, 3),
      server_cpu_ms: round(login.cpu),
      floor_cpu_ms: floor,
      sign_ins: login.n,
      breakdown: breakdown(head),
      keycloak_cpu_ms: round(1000 / KEYCLOAK.passwordLoginsPerS, 1),
      target_efficiency: TARGETS.efficiency,
    },
    refresh: {
      ratio: refresh.ratio,
      server_cpu_ms: refresh.server_cpu_ms,
      bare_cpu_ms: refresh.bare_cpu_ms,
      keycloak_cpu_ms: refresh.keycloak_cpu_ms,
      target_ratio: TARGETS.tokenRatio,
    },
    client_credentials: { ratio: cc.ratio, server_cpu_ms: cc.server_cpu_ms, bare_cpu_ms: cc.bare_cpu_ms, keycloak_cpu_ms: cc.keycloak_cpu_ms, target_ratio: TARGETS.tokenRatio },
    session: {
      redis_bytes: memory?.redis_bytes ?? null,
      redis_bytes_without_codes: memory?.redis_bytes_without_codes ?? null,
      sessions: memory?.sessions ?? 0,
      rss_bytes: memory?.rss_after_bytes ?? null,
      rss_note: memory && mode !== 'full' ? `${mode} mode: RSS after ${memory.sessions} sessions, not 10,000` : undefined,
      target_bytes: TARGETS.redisBytes,
    },
    targets,
    todo: [...new Set(results.flatMap((r) => [...r.todo, ...(r.paths?.todo ?? [])]))],
    setups: perSetup,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(json, null, 2)}\n`);
  const missing = [
    ...missingResults(json),
    ...results.flatMap((r) => (r.pathPlan ? missingIn(json.setups[r.setup]?.paths, requiredPathResults(phases, r.pathPlan)).map((p) => `setups.${r.setup}.paths.${p}`) : [])),
  ];

  // The readable table.
  const m = json.machine;
  const out: string[] = [];
  out.push(
    `Latchkey bench (${mode}) — ${m.nproc} × ${m.cpu}, Node ${m.node}; argon2id m=${config.argon2.memoryCost} KiB t=${config.argon2.timeCost} p=${config.argon2.parallelism}`,
  );
  out.push(`floor: ${floor} CPU-ms per argon2id verification (mean of ${floors.length} measurements in this run)`);
  out.push('');
  out.push('Sign-in (complete journeys; server CPU-ms per sign-in; latency p50/p99 ms)');
  out.push(
    table(
      ['setup', 'policy', 'conc', 'n', 'CPU-ms', 'efficiency', 'sign-ins/s', 'authorize', 'password', 'factor', 'token', 'total'],
      results.flatMap((r) =>
        r.login.map((row) => {
          const s = (step: Step) => (row.latency_ms[step] ? `${row.latency_ms[step]!.p50}/${row.latency_ms[step]!.p99}` : '—');
          return [
            r.setup,
            row.policy,
            row.concurrency,
            row.sign_ins,
            row.server_cpu_ms,
            row.efficiency,
            row.sign_ins_per_s,
            s('authorize'),
            s('password'),
            s('factor'),
            s('token'),
            s('total'),
          ];
        }),
      ),
    ),
  );
  if (login.n) {
    out.push(
      `Keycloak publishes ${KEYCLOAK.passwordLoginsPerS} password sign-ins/s per vCPU ≈ ${json.login.keycloak_cpu_ms} CPU-ms each (with a cheaper hash); Latchkey (${head.setup}): ${json.login.server_cpu_ms} CPU-ms.`,
    );
    out.push("Where a password-only sign-in goes (CPU-ms): argon2id floor + oidc-provider alone (bare provider, same flow without a password) + the rest, Latchkey's own");
    for (const r of results) {
      const b = breakdown(r);
      out.push(`  ${r.setup}: ${round(pooledLogin(r.login, 'password').cpu)} = ${b.floor_cpu_ms} + ${b.oidc_provider_cpu_ms} + ${b.latchkey_cpu_ms}`);
    }
  }
  out.push('');
  out.push('Token endpoint (server CPU-ms per grant; same adapter and keys; alternating rounds)');
  out.push(
    table(
      ['setup', 'grant', 'n', 'Latchkey', 'bare', 'ratio', 'blocks min/median/max', 'Keycloak', 'Latchkey p50/p99', 'bare p50/p99'],
      results.flatMap((r) =>
        r.tokens.map((t) => [
          r.setup,
          t.grant,
          t.ops,
          t.server_cpu_ms,
          t.bare_cpu_ms,
          t.ratio,
          `${t.ratio_spread.min}/${t.ratio_spread.median}/${t.ratio_spread.max} (${t.ratio_spread.blocks})`,
          t.keycloak_cpu_ms,
          `${t.latchkey_latency_ms.p50}/${t.latchkey_latency_ms.p99}`,
          `${t.bare_latency_ms.p50}/${t.bare_latency_ms.p99}`,
        ]),
      ),
    ),
  );
  out.push('');
  const hydraRows = results.flatMap((r) => (r.hydra ? [{ setup: r.setup, peer: r.hydra }] : []));
  if (hydraRows.length) out.push(...hydraReport(hydraRows), '');
  for (const r of results) {
    if (r.memory) {
      const mm = r.memory;
      out.push(
        `Memory (${r.setup}): ${mm.redis_bytes} Redis bytes per signed-in session, ${mm.redis_bytes_without_codes} without the authorization codes still alive (60 s TTL) (${mm.method}: +${mm.redis_used_memory_delta} B over ${mm.sessions} sign-ins); server RSS ${(mm.rss_before_bytes / 2 ** 20).toFixed(0)} → ${(mm.rss_after_bytes / 2 ** 20).toFixed(0)} MiB after ${mm.sessions} sessions${mode === 'full' ? '' : ` (${mode} mode: not 10,000)`}`,
      );
      out.push(`  keys: ${mm.keys.map((k) => `${k.kind} ${k.keys}×${k.meanBytes} B`).join(', ')}`);
    }
    out.push(`RSS (${r.setup}) at the end: ${(r.rss_end_bytes / 2 ** 20).toFixed(0)} MiB after ${r.sessions_created} sign-ins`);
  }
  out.push('');
  out.push('Targets');
  out.push(
    table(
      ['setup', 'target', 'value', 'met'],
      targets.map((t) => [t.setup, t.target, t.value, t.met ? 'yes' : 'NO']),
    ),
  );
  out.push(...pathsReport(results));
  for (const todo of json.todo) out.push(`TODO ${todo}`);
  out.push('');
  out.push(`written to ${OUT}`);
  console.log(out.join('\n'));
  // The bench keeps itself from rotting: every headline figure must have been measured.
  if (missing.length) {
    console.error(`bench: these results were not measured (not a finite positive number): ${missing.join(', ')}`);
    process.exitCode = 1;
  }
}

/** The headline figures every mode must produce, by the phase that measures them. */
const REQUIRED_RESULTS: Record<string, string[]> = {
  login: ['login.efficiency', 'login.server_cpu_ms', 'login.floor_cpu_ms'],
  tokens: ['refresh.ratio', 'refresh.server_cpu_ms', 'refresh.bare_cpu_ms', 'client_credentials.ratio'],
  memory: ['session.redis_bytes'],
};

function missingResults(json: unknown): string[] {
  const redis = setups.some((s) => s !== 'sqlite');
  return missingIn(
    json,
    Object.entries(REQUIRED_RESULTS).flatMap(([phase, paths]) => (phases.has(phase) && (phase !== 'memory' || redis) ? paths : [])),
  );
}

/** The dotted paths of `json` that do not lead to a finite positive number. */
function missingIn(json: unknown, wanted: string[]): string[] {
  const at = (path: string) => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), json);
  return wanted.filter((path) => {
    const value = at(path);
    return !(typeof value === 'number' && Number.isFinite(value) && value > 0);
  });
}

// ---------------------------------------------------------------- main

async function main() {
  log(`mode ${mode}; set-ups ${setups.join(', ')}`);
  const results: SetupResult[] = [];
  const floors: FloorSample[] = [];
  for (const name of setups) results.push(await runSetup(name, floors));
  report(results, floors, { argon2: results[0]!.argon2! });
}

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) return;
  interrupted = true;
  void stopAll().then(() => process.exit(130));
});

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await stopAll();
}
