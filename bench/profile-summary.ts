/**
 * Summarises a V8 CPU profile (`--cpu-prof`, e.g. from `BENCH_CPU_PROF=dir npm run bench`):
 * where the main thread's time went, by function (self time) and by module,
 * plus the inclusive time of the functions whose name matches a filter.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=25] [inclusive-filter-regex]
 *
 * argon2 runs on libuv's pool threads, which a CPU profile does not sample:
 * what this shows is the work around the hash.
 */
import { readFileSync } from 'node:fs';
import { table } from './lib/stats.ts';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg, filter] = process.argv.slice(2);
if (!file) {
  console.error('usage: bench/profile-summary.ts <file.cpuprofile> [top] [inclusive-filter-regex]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const top = Number(topArg ?? 25);

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
const total = [...self.values()].reduce((a, b) => a + b, 0);

function where(n: Node): string {
  const url = n.callFrame.url.replace(/^file:\/\//, '');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.includes('/src/')) return `src/${url.split('/src/')[1]}`;
  if (url.startsWith('node:')) return url;
  return url ? url.split('/').slice(-2).join('/') : `(${n.callFrame.functionName || 'program'})`;
}

const fn = new Map<string, number>();
const mod = new Map<string, number>();
for (const [id, ms] of self) {
  const n = byId.get(id)!;
  const key = `${n.callFrame.functionName || '(anonymous)'} ${where(n)}:${n.callFrame.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + ms);
  mod.set(where(n), (mod.get(where(n)) ?? 0) + ms);
}

const pct = (ms: number) => `${((100 * ms) / total).toFixed(1)}%`;
const rows = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, ms]) => [k, Math.round(ms), pct(ms)]);
console.log(`${file}: ${Math.round(total)} ms sampled on the main thread (${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s wall)\n`);
console.log(table(['function (self time)', 'ms', 'share'], rows(fn)));
console.log('');
console.log(table(['module (self time)', 'ms', 'share'], rows(mod)));

if (filter) {
  // Inclusive time: each sample counts once for every matching frame on its stack.
  const re = new RegExp(filter);
  const inclusive = new Map<string, number>();
  for (const [id, ms] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      const key = `${n.callFrame.functionName || '(anonymous)'} ${where(n)}:${n.callFrame.lineNumber + 1}`;
      if (re.test(key) && !seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
      }
    }
  }
  console.log('');
  console.log(table([`inclusive /${filter}/`, 'ms', 'share'], rows(inclusive)));
}
