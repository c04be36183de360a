// What the known-browser check and the per-address window cost a password
// sign-in: the counter calls POST /login and the end of the journey make
// (src/known-browsers.ts, src/limits.ts), run in this process through the
// services the server builds from the same configuration — so on the same
// counter store (SQLite, or Redis) — in three variants, side by side in
// alternating blocks so that drift falls on all alike:
//   unknown   a browser that never signed in as the identity (every bench
//             sign-in): the address window, the identity's counter, the mark;
//   known     a browser marked for the identity: the mark check, its own
//             counter, the mark renewed; no address window;
//   bare      the identity's attempt counter alone (what a sign-in would pay
//             without either feature).
// CPU is this process's (process.cpuUsage: the app's side of every call) plus
// redis-server's own when it is the bench's private one. Round trips are the
// counter store's calls, counted per sign-in.
import type { Context } from 'koa';
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createServices } from '../../src/services.ts';
import { passwordKey } from '../../src/limits.ts';
import { KNOWN_BROWSER_COOKIE } from '../../src/known-browsers.ts';
import { cpuMs } from '../lib/proc.ts';
import { round } from '../lib/stats.ts';

export type CounterVariant = 'unknown' | 'known' | 'bare';
const VARIANTS: CounterVariant[] = ['unknown', 'known', 'bare'];

export interface CounterVariantResult {
  variant: CounterVariant;
  sign_ins: number;
  /** App-side CPU-ms per sign-in (this process), and the private redis-server's, and both. */
  app_cpu_ms: number;
  redis_cpu_ms: number | null;
  cpu_ms: number;
  /** Counter-store calls per sign-in, by method. */
  round_trips: number;
  calls: Record<string, number>;
  /** The variant's CPU per sign-in in each block: how far it moved during the run. */
  blocks_cpu_ms: { min: number; max: number };
}

export interface CountersResult {
  store: string;
  blocks: number;
  variants: CounterVariantResult[];
  /** unknown − bare and known − bare, CPU-ms per sign-in: the two features' cost. */
  extra_cpu_ms: { unknown: number; known: number };
  extra_round_trips: { unknown: number; known: number };
}

const silent = createLogger('silent');

/** A Koa context as far as the known-browser code reads and writes it: the one cookie. */
function cookieContext(token: string | null): { ctx: Context; token: () => string | null } {
  let value = token;
  const ctx = {
    cookies: {
      get: (name: string) => (name === KNOWN_BROWSER_COOKIE ? (value ?? undefined) : undefined),
      set: (name: string, v: string) => {
        if (name === KNOWN_BROWSER_COOKIE) value = v;
      },
    },
  } as unknown as Context;
  return { ctx, token: () => value };
}

export async function countersPhase(env: Record<string, string>, opts: { perVariant: number; blocks: number; redisPid: number | null }): Promise<CountersResult> {
  const services = await createServices(loadConfig(env), silent, { workers: false });
  const { browsers, limiter } = services;
  const counters = services.stores.counters as unknown as Record<string, (...a: unknown[]) => unknown>;
  let calls = new Map<string, number>();
  for (const key of Object.keys(counters)) {
    const fn = counters[key];
    if (typeof fn !== 'function' || key === 'close' || key === 'ping') continue;
    counters[key] = (...args: unknown[]) => {
      calls.set(key, (calls.get(key) ?? 0) + 1);
      return fn.apply(counters, args);
    };
  }
  try {
    const people = Array.from({ length: 64 }, (_, i) => ({ email: `counter-${i}@bench.test`, address: `127.0.${Math.floor(i / 8)}.${(i % 8) + 1}` }));
    // Each person's browser, marked once (as after a first sign-in), for the known variant.
    const known = new Map<string, string>();
    for (const p of people) {
      const jar = cookieContext(null);
      await browsers.remember(jar.ctx, p.email);
      known.set(p.email, jar.token()!);
    }
    const right = async () => true;
    const signIn: Record<CounterVariant, (i: number) => Promise<void>> = {
      async unknown(i) {
        const p = people[i % people.length]!;
        const jar = cookieContext(null);
        const counter = await browsers.passwordCounter(jar.ctx, p.email, p.address);
        if (counter.known || !(await limiter.run(counter.keys, right)).passed) throw new Error('counters: an unknown browser was not let through');
        await browsers.remember(jar.ctx, p.email);
      },
      async known(i) {
        const p = people[i % people.length]!;
        const jar = cookieContext(known.get(p.email)!);
        const counter = await browsers.passwordCounter(jar.ctx, p.email, p.address);
        if (!counter.known || !(await limiter.run(counter.keys, right)).passed) throw new Error('counters: a known browser was not let through');
        await browsers.remember(jar.ctx, p.email);
      },
      async bare(i) {
        const p = people[i % people.length]!;
        if (!(await limiter.run({ targets: [passwordKey(p.email)] }, right)).passed) throw new Error('counters: the attempt counter refused');
      },
    };
    // Warm-up: JIT, the scripts loaded, the statements prepared.
    for (const v of VARIANTS) for (let i = 0; i < 100; i++) await signIn[v](i);

    const sums = new Map(VARIANTS.map((v) => [v, { app: 0, redis: 0, n: 0, blocks: [] as number[], calls: new Map<string, number>() }]));
    const perRound = Math.max(1, Math.floor(opts.perVariant / (2 * opts.blocks)));
    const redisCpu = () => (opts.redisPid ? cpuMs(opts.redisPid) : 0);
    for (let b = 0; b < opts.blocks; b++) {
      // A, B, C, C, B, A — and the next block starts where this one ended.
      const order = b % 2 ? [...VARIANTS].reverse() : VARIANTS;
      const block = new Map(VARIANTS.map((v) => [v, { cpu: 0, n: 0 }]));
      for (const v of [...order, ...[...order].reverse()]) {
        calls = new Map();
        const redisBefore = redisCpu();
        const before = process.cpuUsage();
        for (let i = 0; i < perRound; i++) await signIn[v](b * perRound + i);
        const used = process.cpuUsage(before);
        const app = (used.user + used.system) / 1000;
        const redis = redisCpu() - redisBefore;
        const s = sums.get(v)!;
        s.app += app;
        s.redis += redis;
        s.n += perRound;
        for (const [k, c] of calls) s.calls.set(k, (s.calls.get(k) ?? 0) + c);
        block.get(v)!.cpu += app + redis;
        block.get(v)!.n += perRound;
      }
      for (const v of VARIANTS) sums.get(v)!.blocks.push(block.get(v)!.cpu / block.get(v)!.n);
    }
    const variants = VARIANTS.map((v): CounterVariantResult => {
      const s = sums.get(v)!;
      const perCall = Object.fromEntries([...s.calls].sort().map(([k, c]) => [k, round(c / s.n, 2)]));
      return {
        variant: v,
        sign_ins: s.n,
        app_cpu_ms: round(s.app / s.n, 4),
        redis_cpu_ms: opts.redisPid ? round(s.redis / s.n, 4) : null,
        cpu_ms: round((s.app + s.redis) / s.n, 4),
        round_trips: round([...s.calls.values()].reduce((a, c) => a + c, 0) / s.n, 2),
        calls: perCall,
        blocks_cpu_ms: { min: round(Math.min(...s.blocks), 4), max: round(Math.max(...s.blocks), 4) },
      };
    });
    const of = (v: CounterVariant) => variants.find((r) => r.variant === v)!;
    return {
      store: services.stores.kinds.provider,
      blocks: opts.blocks,
      variants,
      extra_cpu_ms: { unknown: round(of('unknown').cpu_ms - of('bare').cpu_ms, 4), known: round(of('known').cpu_ms - of('bare').cpu_ms, 4) },
      extra_round_trips: { unknown: round(of('unknown').round_trips - of('bare').round_trips, 2), known: round(of('known').round_trips - of('bare').round_trips, 2) },
    };
  } finally {
    await services.close();
  }
}
