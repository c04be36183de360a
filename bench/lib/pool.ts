// A bounded load loop: `count` operations over `concurrency` workers, never
// longer than `maxMs` (no new operation starts after that).

export interface PoolResult<T> {
  results: T[];
  wallMs: number;
  /** True when the time bound stopped the loop before `count`. */
  truncated: boolean;
}

export async function runPool<T>(count: number, concurrency: number, op: (worker: number, index: number) => Promise<T>, maxMs = 600_000): Promise<PoolResult<T>> {
  const results: T[] = [];
  let next = 0;
  let failure: unknown = null;
  const started = performance.now();
  const deadline = started + maxMs;
  let truncated = false;
  const worker = async (w: number) => {
    while (failure === null) {
      if (next >= count) return;
      if (performance.now() > deadline) {
        truncated = true;
        return;
      }
      const index = next++;
      try {
        results.push(await op(w, index));
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, (_, w) => worker(w)));
  if (failure !== null) throw failure;
  return { results, wallMs: performance.now() - started, truncated };
}
