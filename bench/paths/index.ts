/**
 * The paths `npm run bench` measures beside the password sign-in and the
 * token grants (docs/performance.md, "The other paths"): passkey sign-ins
 * (after the password, and alone), recovery-code sign-ins, the management
 * API's list and create, the Users page at 10,000 logins, and what the
 * known-browser and per-address counters cost a sign-in. bench/run.ts calls
 * `pathPlanFor` and `withPaths` when it seeds, `runPaths` once the sign-in
 * phases are done, and `pathsJson`, `pathsReport` and `requiredPathResults`
 * when it reports.
 *
 * Phases (BENCH_PHASES): passkey, recovery, api, users, counters.
 */
import * as oidc from 'openid-client';
import { relyingParty, type RelyingParty } from '../../test/support/latchkey.ts';
import { runPool } from '../lib/pool.ts';
import { latency, round, table } from '../lib/stats.ts';
import { passkeyAlone, passwordThen, type PathSignIn, type PathStep, type PathUser } from './journey.ts';
import { PASSKEY_EXPECTED, PasskeyLogins } from './passkey.ts';
import { RECOVERY_EXPECTED, RecoveryLogins } from './recovery.ts';
import { apiCalls, apiToken } from './api.ts';
import { ownerBrowser, usersCall, usersQueries, type UsersCase } from './users.ts';
import { countersPhase, type CountersResult } from './counters.ts';
import { PATHS_CLIENT, pathPlan, seedPeople, type PathPlan } from './seed.ts';

export { withPaths } from './seed.ts';
export type { PathPlan } from './seed.ts';

export const PATH_PHASES = ['passkey', 'recovery', 'api', 'users', 'counters'] as const;
export type PathPhase = (typeof PATH_PHASES)[number];

type Mode = 'full' | 'quick' | 'smoke';

interface Sizes {
  /** Measured sign-ins per concurrency level, per sign-in path. */
  signIns: number;
  warmup: number;
  /** Logins of the Users page's tenant. */
  people: number;
  /** Calls per API call kind, and per Users page query. */
  apiCalls: number;
  apiConcurrency: number;
  usersCalls: number;
  usersConcurrency: number;
  /** Counter-call sign-ins per variant, and the alternating blocks they are spread over. */
  counterSignIns: number;
  counterBlocks: number;
}

const SIZES: Record<Mode, Sizes> = {
  full: { signIns: 60, warmup: 4, people: 10_000, apiCalls: 400, apiConcurrency: 4, usersCalls: 100, usersConcurrency: 2, counterSignIns: 12_000, counterBlocks: 10 },
  quick: { signIns: 12, warmup: 2, people: 10_000, apiCalls: 200, apiConcurrency: 4, usersCalls: 20, usersConcurrency: 2, counterSignIns: 3_000, counterBlocks: 5 },
  // Once each, but enough calls that a 10-ms clock tick cannot read zero.
  smoke: { signIns: 1, warmup: 1, people: 200, apiCalls: 20, apiConcurrency: 2, usersCalls: 4, usersConcurrency: 1, counterSignIns: 200, counterBlocks: 1 },
};

/** Which logins the paths need, for `withPaths` and `seedPeople`. */
export function pathPlanFor(mode: Mode, levels: number[], factors: string[], phases: Set<string>): PathPlan {
  const s = SIZES[mode];
  const top = Math.max(...levels);
  const perPath = s.signIns * levels.length + s.warmup;
  return pathPlan(
    {
      passkey: phases.has('passkey') ? top : 0,
      // Ten codes per login, and no two sign-ins of one login at once.
      recovery: phases.has('recovery') ? Math.ceil(perPath / 10) + top : 0,
      people: phases.has('users') || phases.has('api') ? s.people : 0,
    },
    factors,
  );
}

type Measured = <T>(pid: number, fn: () => Promise<T>) => Promise<{ cpu: number; threads: Record<string, number>; value: T }>;

export interface PathContext {
  setup: string;
  mode: Mode;
  issuer: string;
  pid: number;
  levels: number[];
  maxPhaseMs: number;
  phases: Set<string>;
  plan: PathPlan;
  /** The server's environment: the counters phase builds the same services from it. */
  env: Record<string, string>;
  /** The bench's private redis-server, whose CPU the counters phase adds; null when none (SQLite, or a shared Redis). */
  redisPid: number | null;
  measured: Measured;
  log: (msg: string) => void;
}

export type SignInPath = 'passkey_second_factor' | 'passkey_alone' | 'recovery_code';

export interface PathSignInRow {
  path: SignInPath;
  concurrency: number;
  sign_ins: number;
  server_cpu_ms: number;
  threads_cpu_ms: Record<string, number>;
  latency_ms: Partial<Record<PathStep, { p50: number; p99: number; n: number }>>;
  truncated: boolean;
}

export interface CallRow {
  call: string;
  concurrency: number;
  ops: number;
  server_cpu_ms: number;
  latency_ms: { p50: number; p99: number; n: number };
}

export interface PathsResult {
  todo: string[];
  sign_in: PathSignInRow[];
  api: CallRow[];
  users: { logins: number; seed_ms: number; calls: CallRow[] } | null;
  counters: CountersResult | null;
}

const perOp = (threads: Record<string, number>, n: number) => Object.fromEntries(Object.entries(threads).map(([k, v]) => [k, round(v / n)]));

async function callPhase(ctx: PathContext, call: string, count: number, concurrency: number, op: (w: number, i: number) => Promise<number>): Promise<CallRow> {
  const { cpu, value } = await ctx.measured(ctx.pid, () => runPool(count, concurrency, op, ctx.maxPhaseMs));
  const row: CallRow = { call, concurrency, ops: value.results.length, server_cpu_ms: round(cpu / value.results.length, 3), latency_ms: latency(value.results) };
  ctx.log(`${ctx.setup}: ${call} ×${concurrency}: ${row.ops} calls, ${row.server_cpu_ms} server CPU-ms each, p50/p99 ${row.latency_ms.p50}/${row.latency_ms.p99} ms`);
  return row;
}

async function signInPhase(ctx: PathContext, path: SignInPath, count: number, op: (worker: number) => Promise<PathSignIn>): Promise<PathSignInRow[]> {
  const rows: PathSignInRow[] = [];
  for (const level of ctx.levels) {
    const { cpu, threads, value } = await ctx.measured(ctx.pid, () => runPool(count, level, (w) => op(w), ctx.maxPhaseMs));
    const n = value.results.length;
    const steps: PathSignInRow['latency_ms'] = {};
    for (const step of ['authorize', 'password', 'factor', 'passkey', 'token', 'total'] as PathStep[]) {
      const values = value.results.map((r) => r.ms[step]).filter((v): v is number => v !== undefined);
      if (values.length) steps[step] = latency(values);
    }
    const row: PathSignInRow = {
      path,
      concurrency: level,
      sign_ins: n,
      server_cpu_ms: round(cpu / n),
      threads_cpu_ms: perOp(threads, n),
      latency_ms: steps,
      truncated: value.truncated,
    };
    rows.push(row);
    ctx.log(`${ctx.setup}: ${path} ×${level}: ${n} sign-ins, ${row.server_cpu_ms} server CPU-ms each, total p50/p99 ${steps.total?.p50}/${steps.total?.p99} ms`);
  }
  return rows;
}

export async function runPaths(ctx: PathContext): Promise<PathsResult> {
  const s = SIZES[ctx.mode];
  const result: PathsResult = { todo: [], sign_in: [], api: [], users: null, counters: null };
  const needsRp = (ctx.phases.has('passkey') && ctx.plan.passkey.length) || (ctx.phases.has('recovery') && ctx.plan.recovery.length);
  let rp: RelyingParty | null = null;
  if (needsRp) {
    rp = await relyingParty(ctx.issuer, PATHS_CLIENT.id, PATHS_CLIENT.secret);
    // The ID token's signature checked too, as the password sign-ins' relying party does.
    oidc.enableNonRepudiationChecks(rp.config);
  }

  if (ctx.phases.has('passkey')) {
    if (!ctx.plan.passkeys) result.todo.push('passkey: not measured — src/factors/registry.ts does not offer "passkey"');
    else {
      const logins = new PasskeyLogins(ctx.issuer);
      const users = ctx.plan.passkey;
      const pick = (w: number): PathUser => users[w % users.length]!;
      ctx.log(`${ctx.setup}: registering ${users.length} passkeys`);
      await runPool(users.length, 2, (_w, i) => passwordThen(ctx.issuer, rp!, users[i]!, logins.enrol, PASSKEY_EXPECTED.second), ctx.maxPhaseMs);
      const second = (w: number) => passwordThen(ctx.issuer, rp!, pick(w), logins.verify, PASSKEY_EXPECTED.second);
      const alone = (w: number) => passkeyAlone(ctx.issuer, rp!, logins.authenticator, logins.credentialOf, pick(w), PASSKEY_EXPECTED.alone);
      await runPool(s.warmup * 2, 1, (_w, i) => (i % 2 ? alone(0) : second(0)), ctx.maxPhaseMs);
      result.sign_in.push(...(await signInPhase(ctx, 'passkey_second_factor', s.signIns, second)));
      result.sign_in.push(...(await signInPhase(ctx, 'passkey_alone', s.signIns, alone)));
    }
  }

  if (ctx.phases.has('recovery')) {
    if (!ctx.plan.recovery.length) result.todo.push('recovery: not measured — src/factors/registry.ts does not offer "totp"');
    else {
      const logins = new RecoveryLogins(ctx.plan.recovery);
      ctx.log(`${ctx.setup}: linking ${logins.users.length} apps (their recovery codes kept)`);
      await runPool(logins.users.length, 2, (_w, i) => passwordThen(ctx.issuer, rp!, logins.users[i]!, logins.enrol, RECOVERY_EXPECTED), ctx.maxPhaseMs);
      const once = async () => {
        const user = logins.acquire();
        if (!user) throw new Error('recovery: no login with a code left is free (pool too small)');
        try {
          return await passwordThen(ctx.issuer, rp!, user, logins.use, RECOVERY_EXPECTED);
        } finally {
          logins.release(user);
        }
      };
      await runPool(s.warmup, 1, once, ctx.maxPhaseMs);
      result.sign_in.push(...(await signInPhase(ctx, 'recovery_code', s.signIns, once)));
    }
  }

  // The people are written only now, so that no earlier phase runs beside 10,000 more identities.
  let seedMs = 0;
  if (ctx.plan.people > 0) {
    seedMs = await seedPeople(ctx.env, ctx.plan.people);
    // SQLite's writes held the event loop: let the keep-alive sockets the server closed meanwhile be seen closed before the next request.
    await new Promise((r) => setTimeout(r, 500));
    ctx.log(`${ctx.setup}: ${ctx.plan.people} logins written for the Users page in ${(seedMs / 1000).toFixed(1)} s`);
  }

  // The Users page before the API adds logins to its tenant, so the seeded totals hold.
  if (ctx.phases.has('users') && ctx.plan.people > 0) {
    const browser = await ownerBrowser(ctx.issuer);
    const calls: CallRow[] = [];
    for (const query of usersQueries(ctx.plan.people)) {
      await usersCall(browser, query);
      calls.push(await callPhase(ctx, `users_${query.case}` satisfies `users_${UsersCase}`, s.usersCalls, s.usersConcurrency, () => usersCall(browser, query)));
    }
    result.users = { logins: ctx.plan.people, seed_ms: round(seedMs, 0), calls };
  }

  if (ctx.phases.has('api') && ctx.plan.people > 0) {
    const token = await apiToken(ctx.issuer);
    const api = apiCalls(ctx.issuer, token, { q: usersQueries(ctx.plan.people)[0]!.path.split('q=')[1]!, userType: 'staff' });
    await runPool(20, 2, api.list, ctx.maxPhaseMs);
    await runPool(20, 2, api.create, ctx.maxPhaseMs);
    result.api.push(await callPhase(ctx, 'api_list_50', s.apiCalls, s.apiConcurrency, api.list));
    result.api.push(await callPhase(ctx, 'api_create', s.apiCalls, s.apiConcurrency, api.create));
  }

  if (ctx.phases.has('counters')) {
    result.counters = await countersPhase(ctx.env, { perVariant: s.counterSignIns, blocks: s.counterBlocks, redisPid: ctx.redisPid });
    const c = result.counters;
    ctx.log(
      `${ctx.setup}: counters (${c.store}): ${c.variants.map((v) => `${v.variant} ${v.cpu_ms} CPU-ms / ${v.round_trips} calls`).join(', ')} per sign-in; extra ${c.extra_cpu_ms.unknown} (unknown browser), ${c.extra_cpu_ms.known} (known)`,
    );
  }
  return result;
}

/** Pooled over the levels: server CPU-ms per sign-in of `path`, and the latencies of all its sign-ins. */
function pooled(rows: PathSignInRow[], path: SignInPath): { cpu: number; n: number } {
  const mine = rows.filter((r) => r.path === path);
  const n = mine.reduce((a, r) => a + r.sign_ins, 0);
  return { cpu: n ? mine.reduce((a, r) => a + r.server_cpu_ms * r.sign_ins, 0) / n : NaN, n };
}

/** The JSON of a set-up's paths, with the pooled figures the headline checks read. */
export function pathsJson(paths: PathsResult | null, passwordSignInCpuMs: number) {
  if (!paths) return null;
  const signIn = Object.fromEntries(
    (['passkey_second_factor', 'passkey_alone', 'recovery_code'] as SignInPath[])
      .filter((p) => paths.sign_in.some((r) => r.path === p))
      .map((p) => [p, { server_cpu_ms: round(pooled(paths.sign_in, p).cpu), sign_ins: pooled(paths.sign_in, p).n, levels: paths.sign_in.filter((r) => r.path === p) }]),
  );
  const counters = paths.counters
    ? {
        ...paths.counters,
        share_of_password_sign_in: {
          unknown: round(paths.counters.extra_cpu_ms.unknown / passwordSignInCpuMs, 4),
          known: round(paths.counters.extra_cpu_ms.known / passwordSignInCpuMs, 4),
          password_sign_in_cpu_ms: round(passwordSignInCpuMs),
        },
      }
    : null;
  const calls = Object.fromEntries([...paths.api, ...(paths.users?.calls ?? [])].map((c) => [c.call, c]));
  return { todo: paths.todo, sign_in: signIn, calls, users: paths.users ? { logins: paths.users.logins, seed_ms: paths.users.seed_ms } : null, counters };
}

/** The figures each enabled phase must produce in every set-up (dotted paths under `setups.<name>.paths`). */
export function requiredPathResults(phases: Set<string>, plan: PathPlan): string[] {
  const latencyOf = (p: string) => [`${p}.server_cpu_ms`, `${p}.latency_ms.p50`, `${p}.latency_ms.p99`];
  return [
    ...(phases.has('passkey') && plan.passkeys ? ['sign_in.passkey_second_factor.server_cpu_ms', 'sign_in.passkey_alone.server_cpu_ms'] : []),
    ...(phases.has('recovery') && plan.recovery.length ? ['sign_in.recovery_code.server_cpu_ms'] : []),
    ...(phases.has('api') && plan.people ? [...latencyOf('calls.api_list_50'), ...latencyOf('calls.api_create')] : []),
    ...(phases.has('users') && plan.people ? (['search', 'user_type', 'deep_page'] as UsersCase[]).flatMap((c) => latencyOf(`calls.users_${c}`)) : []),
    ...(phases.has('counters') ? [0, 1, 2].flatMap((i) => [`counters.variants.${i}.cpu_ms`, `counters.variants.${i}.round_trips`]) : []),
  ];
}

/** The readable table of every set-up's paths. */
export function pathsReport(results: { setup: string; paths: PathsResult | null }[]): string[] {
  const out: string[] = [];
  const withPaths = results.filter((r) => r.paths);
  if (!withPaths.length) return out;
  const rows = withPaths.flatMap((r) => r.paths!.sign_in.map((row) => ({ setup: r.setup, row })));
  if (rows.length) {
    const s = (row: PathSignInRow, step: PathStep) => (row.latency_ms[step] ? `${row.latency_ms[step]!.p50}/${row.latency_ms[step]!.p99}` : '—');
    out.push('Other sign-ins (complete journeys; server CPU-ms per sign-in; latency p50/p99 ms)');
    out.push(
      table(
        ['setup', 'path', 'conc', 'n', 'CPU-ms', 'password', 'factor', 'passkey', 'token', 'total'],
        rows.map(({ setup, row }) => [
          setup,
          row.path,
          row.concurrency,
          row.sign_ins,
          row.server_cpu_ms,
          s(row, 'password'),
          s(row, 'factor'),
          s(row, 'passkey'),
          s(row, 'token'),
          s(row, 'total'),
        ]),
      ),
    );
    out.push('');
  }
  const calls = withPaths.flatMap((r) => [...r.paths!.api, ...(r.paths!.users?.calls ?? [])].map((c) => ({ setup: r.setup, c, logins: r.paths!.users?.logins })));
  if (calls.length) {
    out.push(`Management API and the Users page (tenant of ${calls[0]!.logins ?? '?'} logins; server CPU-ms per call; latency p50/p99 ms)`);
    out.push(
      table(
        ['setup', 'call', 'conc', 'n', 'CPU-ms', 'p50/p99'],
        calls.map(({ setup, c }) => [setup, c.call, c.concurrency, c.ops, c.server_cpu_ms, `${c.latency_ms.p50}/${c.latency_ms.p99}`]),
      ),
    );
    out.push('');
  }
  const counters = withPaths.filter((r) => r.paths!.counters);
  if (counters.length) {
    out.push('Attempt counters of a password sign-in (micro-bench, alternating blocks; CPU-ms per sign-in: the app side + redis-server)');
    out.push(
      table(
        ['setup', 'store', 'variant', 'n', 'app', 'redis', 'CPU-ms', 'blocks min/max', 'calls', 'by method'],
        counters.flatMap((r) =>
          r.paths!.counters!.variants.map((v) => [
            r.setup,
            r.paths!.counters!.store,
            v.variant,
            v.sign_ins,
            v.app_cpu_ms,
            v.redis_cpu_ms ?? '—',
            v.cpu_ms,
            `${v.blocks_cpu_ms.min}/${v.blocks_cpu_ms.max}`,
            v.round_trips,
            Object.entries(v.calls)
              .map(([k, n]) => `${k} ${n}`)
              .join(', '),
          ]),
        ),
      ),
    );
    for (const r of counters) {
      const c = r.paths!.counters!;
      out.push(
        `  ${r.setup}: known-browser check + address window cost ${c.extra_cpu_ms.unknown} CPU-ms and ${c.extra_round_trips.unknown} calls per sign-in from an unknown browser; ${c.extra_cpu_ms.known} CPU-ms and ${c.extra_round_trips.known} calls from a known one`,
      );
    }
    out.push('');
  }
  return out;
}
