/**
 * The Hydra comparison of `npm run bench` (`BENCH_PEERS=hydra`): for one Latchkey set-up, each
 * Hydra store (PostgreSQL, SQLite) and variant (defaults, like for like — see bench/hydra.ts)
 * against the running Latchkey, per grant, in ABBA BAAB blocks as the bare-provider comparison.
 *
 * What is counted is every server-side process of each side, from /proc/<pid>/stat around each
 * round: Latchkey (+ the Redis and FerretDB this bench started, on MongoDB + Redis); Hydra + the
 * PostgreSQL backends serving its connections + the PostgreSQL server's own processes (postmaster,
 * WAL writer, background writer, checkpointer), which flush what Hydra writes. Set-up is not
 * counted: Hydra's start, its client and key, the login/consent flows that mint its refresh tokens,
 * the warm-up, and the `VACUUM ANALYZE` of its database before each grant's blocks.
 *
 * Environment: BENCH_HYDRA_STORES=postgres,sqlite (default: both beside Latchkey on SQLite, PostgreSQL
 * beside Latchkey on MongoDB + Redis), BENCH_HYDRA_VARIANTS=defaults,like,
 * BENCH_HYDRA_OPS (grants a side per grant type; default the bench's BENCH_TOKEN_OPS), HYDRA_PG.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { clockTicks } from './lib/proc.ts';
import { runPool } from './lib/pool.ts';
import { RefreshChains, tokenRequest, type Grant } from './lib/tokens.ts';
import { latency, round, table } from './lib/stats.ts';
import {
  HYDRA_TOKEN_PATH,
  hydraRefreshToken,
  hydraVersion,
  postgresAuxiliaries,
  postgresAvailable,
  postgresBackends,
  startHydra,
  vacuum,
  type HydraServer,
  type HydraStore,
  type HydraVariant,
} from './hydra.ts';

export const LIKE_FOR_LIKE_TARGET = 5;

export interface HydraParams {
  ops: number;
  blocks: number;
  concurrency: number;
  warmup: number;
  maxPhaseMs: number;
}

export interface HydraResult {
  store: HydraStore;
  variant: HydraVariant;
  grant: Grant;
  ops: number;
  /** CPU-ms per grant, all of the side's processes. */
  hydra_cpu_ms: number;
  latchkey_cpu_ms: number;
  /** CPU-ms per grant by process kind. */
  hydra_split: Record<string, number>;
  latchkey_split: Record<string, number>;
  /** Hydra ÷ Latchkey, pooled over every round. */
  ratio: number;
  ratio_spread: { blocks: number; min: number; median: number; max: number };
  hydra_latency_ms: { p50: number; p99: number; n: number };
  latchkey_latency_ms: { p50: number; p99: number; n: number };
  /** Processes of a kind that came or went during a round (their CPU then is partly missed); 0 expected. */
  churn: number;
}

export interface HydraPeerResult {
  version: string;
  results: HydraResult[];
  /** What was not measured, and why. */
  skipped: string[];
  /** Processes not counted on Latchkey's side (an outside MongoDB or Redis). */
  uncounted: string[];
}

type Processes = () => Record<string, number[]>;

interface Side {
  issuer: string;
  tokenPath: string;
  chains: RefreshChains;
  processes: Processes;
}

function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return NaN;
  }
}

/** Children of this bench process named `comm` (redis-server, ferretdb). */
function childPids(comm: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && name === comm) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Latchkey's server-side processes on `setup`: the server, and on MongoDB + Redis the Redis
 * (its pid from INFO) and the FerretDB this bench started.
 */
export async function latchkeyProcesses(setup: string, pid: number, redis: Redis | null): Promise<{ processes: Processes; uncounted: string[] }> {
  const kinds: Record<string, number[]> = { latchkey: [pid] };
  const uncounted: string[] = [];
  if (redis) {
    const info = await redis.info('server');
    const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    if (childPids('redis-server').includes(redisPid)) kinds.redis = [redisPid];
    else uncounted.push('Redis (not started by this bench: REDIS_URL)');
  }
  if (setup.startsWith('mongo')) {
    const ferret = childPids('ferretdb');
    if (ferret.length) kinds.ferretdb = ferret;
    else uncounted.push('MongoDB (not started by this bench: MONGODB_URI)');
  }
  return { processes: () => kinds, uncounted };
}

function hydraProcesses(server: HydraServer): Processes {
  if (!server.database) return () => ({ hydra: [server.pid] });
  return () => ({ hydra: [server.pid], postgres_backends: postgresBackends(server.database!), postgres_server: postgresAuxiliaries() });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measuredRound(side: Side, grant: Grant, count: number, params: HydraParams) {
  const kinds = side.processes();
  await sleep(150);
  const before = Object.fromEntries(Object.entries(kinds).map(([k, pids]) => [k, pids.map(cpuMsOf)]));
  const run = await runPool(count, params.concurrency, () => tokenRequest(side.issuer, grant, side.chains, side.tokenPath), params.maxPhaseMs);
  await sleep(150);
  const cpu: Record<string, number> = {};
  for (const [kind, pids] of Object.entries(kinds)) {
    cpu[kind] = pids.reduce((sum, pid, i) => {
      const delta = cpuMsOf(pid) - before[kind]![i]!;
      return Number.isFinite(delta) ? sum + delta : sum;
    }, 0);
  }
  const again = side.processes();
  let churn = 0;
  for (const [kind, pids] of Object.entries(again)) {
    const was = new Set(kinds[kind] ?? []);
    churn += pids.filter((p) => !was.has(p)).length + [...was].filter((p) => !pids.includes(p)).length;
  }
  return { cpu, ops: run.results.length, ms: run.results, churn };
}

/** ABBA BAAB blocks, Latchkey against one Hydra, for one grant type. */
async function alternate(store: HydraStore, variant: HydraVariant, grant: Grant, latchkey: Side, hydra: Side, params: HydraParams): Promise<HydraResult> {
  const blocks = Math.max(1, params.blocks);
  const perRound = Math.max(1, Math.floor(params.ops / (4 * blocks)));
  const total = () => ({ cpu: {} as Record<string, number>, ops: 0, ms: [] as number[] });
  const sums = new Map<Side, ReturnType<typeof total>>([
    [latchkey, total()],
    [hydra, total()],
  ]);
  const sum = (cpu: Record<string, number>) => Object.values(cpu).reduce((a, b) => a + b, 0);
  const blockRatios: number[] = [];
  let churn = 0;
  for (let block = 0; block < blocks; block++) {
    const mine = new Map<Side, { cpu: number; ops: number }>([
      [latchkey, { cpu: 0, ops: 0 }],
      [hydra, { cpu: 0, ops: 0 }],
    ]);
    for (const side of [latchkey, hydra, hydra, latchkey, hydra, latchkey, latchkey, hydra]) {
      const round = await measuredRound(side, grant, perRound, params);
      churn += round.churn;
      const all = sums.get(side)!;
      for (const [k, v] of Object.entries(round.cpu)) all.cpu[k] = (all.cpu[k] ?? 0) + v;
      all.ops += round.ops;
      all.ms.push(...round.ms);
      const m = mine.get(side)!;
      m.cpu += sum(round.cpu);
      m.ops += round.ops;
    }
    const [l, h] = [mine.get(latchkey)!, mine.get(hydra)!];
    blockRatios.push(h.cpu / h.ops / (l.cpu / l.ops));
  }
  const [l, h] = [sums.get(latchkey)!, sums.get(hydra)!];
  const sorted = [...blockRatios].sort((x, y) => x - y);
  const mid = (sorted.length - 1) / 2;
  const per = (cpu: Record<string, number>, n: number) => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(v / n, 3)]));
  return {
    store,
    variant,
    grant,
    ops: h.ops,
    hydra_cpu_ms: round(sum(h.cpu) / h.ops, 3),
    latchkey_cpu_ms: round(sum(l.cpu) / l.ops, 3),
    hydra_split: per(h.cpu, h.ops),
    latchkey_split: per(l.cpu, l.ops),
    ratio: round(sum(h.cpu) / h.ops / (sum(l.cpu) / l.ops), 3),
    ratio_spread: { blocks, min: round(sorted[0]!, 3), median: round((sorted[Math.floor(mid)]! + sorted[Math.ceil(mid)]!) / 2, 3), max: round(sorted.at(-1)!, 3) },
    hydra_latency_ms: latency(h.ms),
    latchkey_latency_ms: latency(l.ms),
    churn,
  };
}

function listEnv(name: string, fallback: string[]): string[] {
  return (
    process.env[name]
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean) ?? fallback
  );
}

/**
 * Every configured Hydra against the running Latchkey on one set-up. `latchkey.tokens` are the
 * refresh chains Latchkey's own phases use (they go on rotating here).
 */
export async function hydraPeer(opts: {
  setup: string;
  latchkey: { issuer: string; pid: number; tokens: RefreshChains; redis: Redis | null };
  rsaKey: Record<string, unknown>;
  params: HydraParams;
  log: (msg: string) => void;
}): Promise<HydraPeerResult> {
  const { setup, params, log } = opts;
  const stores = listEnv('BENCH_HYDRA_STORES', setup === 'sqlite' ? ['postgres', 'sqlite'] : ['postgres']) as HydraStore[];
  const variants = listEnv('BENCH_HYDRA_VARIANTS', ['defaults', 'like']) as HydraVariant[];
  const lk = await latchkeyProcesses(setup, opts.latchkey.pid, opts.latchkey.redis);
  const latchkey: Side = { issuer: opts.latchkey.issuer, tokenPath: '/token', chains: opts.latchkey.tokens, processes: lk.processes };
  const out: HydraPeerResult = { version: hydraVersion, results: [], skipped: [], uncounted: lk.uncounted };
  for (const store of stores) {
    if (store === 'postgres') {
      const pg = postgresAvailable();
      if (!pg.ok) {
        out.skipped.push(`Hydra on PostgreSQL: ${pg.why}`);
        log(`${setup}: Hydra on PostgreSQL skipped — ${pg.why}`);
        continue;
      }
    }
    for (const variant of variants) {
      log(`${setup}: starting Hydra ${hydraVersion} on ${store} (${variant})`);
      const server = await startHydra({ store, variant, rsaKey: opts.rsaKey });
      try {
        const chains = params.concurrency * 2;
        const tokens: string[] = [];
        for (let i = 0; i < chains; i++) {
          const minted = await hydraRefreshToken(server, `bench-hydra-${i}`);
          // Like for like means Latchkey's key: make sure Hydra signs with it, not with the one it generated.
          if (variant === 'like' && minted.idTokenKid !== opts.rsaKey.kid) throw new Error(`Hydra signed with ${minted.idTokenKid}, not Latchkey's key ${String(opts.rsaKey.kid)}`);
          tokens.push(minted.refreshToken);
        }
        const hydra: Side = { issuer: server.issuer, tokenPath: HYDRA_TOKEN_PATH, chains: new RefreshChains(tokens), processes: hydraProcesses(server) };
        // At the measured concurrency, so that Hydra's pool holds all its connections before the first round.
        await runPool(
          params.warmup,
          params.concurrency,
          (_w, i) => tokenRequest(server.issuer, i % 2 ? 'client_credentials' : 'refresh_token', hydra.chains, HYDRA_TOKEN_PATH),
          params.maxPhaseMs,
        );
        for (const grant of ['refresh_token', 'client_credentials'] as Grant[]) {
          vacuum(server);
          const r = await alternate(store, variant, grant, latchkey, hydra, params);
          out.results.push(r);
          log(
            `${setup}: Hydra ${store} ${variant} ${grant}: Hydra ${r.hydra_cpu_ms} CPU-ms ${JSON.stringify(r.hydra_split)}, Latchkey ${r.latchkey_cpu_ms} ${JSON.stringify(r.latchkey_split)}, ratio ${r.ratio} (blocks ${r.ratio_spread.min}–${r.ratio_spread.max})${r.churn ? `, ${r.churn} processes came or went` : ''}`,
          );
        }
      } finally {
        await server.stop();
      }
    }
  }
  return out;
}

/** The report's Hydra table, one row per set-up, store, variant and grant. */
export function hydraReport(rows: { setup: string; peer: HydraPeerResult }[]): string[] {
  const lines = [`Ory Hydra ${hydraVersion} against Latchkey (every server-side process; CPU-ms per grant; ratio = Hydra ÷ Latchkey)`];
  lines.push(
    table(
      ['setup', 'Hydra on', 'variant', 'grant', 'n', 'Hydra', 'Latchkey', 'ratio', 'blocks min/median/max', 'Hydra p50/p99', 'Latchkey p50/p99'],
      rows.flatMap(({ setup, peer }) =>
        peer.results.map((r) => [
          setup,
          r.store,
          r.variant === 'like' ? 'like for like' : 'defaults',
          r.grant,
          r.ops,
          r.hydra_cpu_ms,
          r.latchkey_cpu_ms,
          r.ratio,
          `${r.ratio_spread.min}/${r.ratio_spread.median}/${r.ratio_spread.max} (${r.ratio_spread.blocks})`,
          `${r.hydra_latency_ms.p50}/${r.hydra_latency_ms.p99}`,
          `${r.latchkey_latency_ms.p50}/${r.latchkey_latency_ms.p99}`,
        ]),
      ),
    ),
  );
  for (const { setup, peer } of rows) {
    for (const s of peer.skipped) lines.push(`  ${setup}: skipped ${s}`);
    for (const u of peer.uncounted) lines.push(`  ${setup}: not counted on Latchkey's side: ${u}`);
  }
  return lines;
}

/** The targets the Hydra rows meet or miss: like for like, Hydra ÷ Latchkey ≥ 5 per grant, set-up and store. */
export function hydraTargets<S extends string>(setup: S, peer: HydraPeerResult): { setup: S; target: string; value: number; met: boolean }[] {
  return peer.results
    .filter((r) => r.variant === 'like')
    .map((r) => ({ setup, target: `${r.grant}: Hydra (${r.store}, like for like) ≥ ${LIKE_FOR_LIKE_TARGET}× Latchkey`, value: r.ratio, met: r.ratio >= LIKE_FOR_LIKE_TARGET }));
}
