/**
 * The loop that drains a store queue (the mail outbox, the webhook deliveries)
 * in every serving process: one drain at a time in a process (other processes
 * are kept apart by the queue's leases), at once when asked and every
 * `intervalMs`, and a periodic sweep of what was settled long ago (the
 * queues have no TTL index; FerretDB offers none).
 */
import type { Logger } from './log.ts';

export interface QueueWorker {
  /** Drains what is due now; resolves with how many were delivered. */
  drain(): Promise<number>;
  /** `drain` without waiting for it; an unreachable store is logged, and the next round tries again. */
  kick(): void;
  close(): void;
}

export function queueWorker(opts: {
  drainOnce: () => Promise<number>;
  sweep: () => Promise<unknown>;
  log: Logger;
  waiting: string;
  running: boolean;
  intervalMs: number;
  sweepEveryMs: number;
}): QueueWorker {
  let draining: Promise<number> | null = null;
  const drain = () => {
    draining ??= opts.drainOnce().finally(() => {
      draining = null;
    });
    return draining;
  };
  const kick = () => {
    drain().catch((err: unknown) => opts.log.warn({ err: (err as Error).message }, opts.waiting));
  };
  const timers = opts.running ? [setInterval(kick, opts.intervalMs), setInterval(() => void opts.sweep().catch(() => {}), opts.sweepEveryMs)] : [];
  for (const t of timers) t.unref();
  return {
    drain,
    kick: () => (opts.running ? kick() : undefined),
    close: () => timers.forEach(clearInterval),
  };
}
