// Redis memory: INFO's used_memory, and a per-kind breakdown of our keys
// (MEMORY USAGE of a sample of each kind).
import type { Redis } from 'ioredis';

export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (!m) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

export interface KeyKind {
  kind: string;
  keys: number;
  /** Mean MEMORY USAGE of the sampled keys, in bytes. */
  meanBytes: number;
}

/** Our keys grouped by kind (`Session`, `AccessToken`, `uid`, `grant`, …): the segment after the prefix. */
export async function keyBreakdown(redis: Redis, prefix: string, samplePerKind = 200): Promise<KeyKind[]> {
  const byKind = new Map<string, string[]>();
  let cursor = '0';
  let seen = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const rest = key.slice(prefix.length);
      const kind = rest.slice(0, rest.indexOf(':') >= 0 ? rest.indexOf(':') : rest.length);
      const list = byKind.get(kind) ?? [];
      list.push(key);
      byKind.set(kind, list);
    }
    seen += keys.length;
  } while (cursor !== '0' && seen < 2_000_000);
  const out: KeyKind[] = [];
  for (const [kind, keys] of byKind) {
    const sample = keys.slice(0, samplePerKind);
    const pipeline = redis.pipeline();
    for (const key of sample) pipeline.memory('USAGE', key, 'SAMPLES', '0');
    const sizes = ((await pipeline.exec()) ?? []).map(([, v]) => Number(v)).filter((v) => Number.isFinite(v) && v > 0);
    out.push({ kind, keys: keys.length, meanBytes: sizes.length ? Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length) : 0 });
  }
  return out.sort((a, b) => b.keys * b.meanBytes - a.keys * a.meanBytes);
}

/** Σ MEMORY USAGE of every key under `prefix` (for a shared Redis, where used_memory moves with others' writes). */
export async function prefixBytes(redis: Redis, prefix: string): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (!keys.length) continue;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.memory('USAGE', key, 'SAMPLES', '0');
    for (const [, v] of (await pipeline.exec()) ?? []) total += Number(v) || 0;
  } while (cursor !== '0');
  return total;
}
