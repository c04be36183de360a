import type { AccountStore, AuditEvent, AuditOutcome } from './storage/accounts/port.ts';
import type { Logger } from './log.ts';

export interface AuditInput {
  type: string;
  outcome: AuditOutcome;
  tenant?: string | null;
  login?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  detail?: Record<string, unknown>;
}

/** Writes security events to the audit log (and the process log). */
export interface Audit {
  record(event: AuditInput): Promise<void>;
  /**
   * Writes what the anonymous limit held back in windows that have ended (one
   * row per kind, `detail.suppressed`), then deletes events older than the
   * retention. Runs by itself every minute; `now` is for tests.
   */
  sweep(now?: Date): Promise<void>;
  /** Stops the periodic sweep. */
  close(): void;
}

export interface AuditOptions {
  /** Events older than this many days are deleted (`AUDIT_RETENTION_DAYS`). */
  retentionDays: number;
  /**
   * Events without a login (a failed password for an unknown email, an
   * upstream callback nobody started) cost an attacker nothing to cause: of
   * each kind (type, tenant, outcome) at most this many rows a minute per
   * process, the rest counted in a summary row.
   */
  anonymousPerMinute: number;
  /** The clock (tests). */
  now?: () => Date;
  /** 0 turns the periodic sweep off (tests call `sweep`). */
  sweepEveryMs?: number;
}

const WINDOW_MS = 60_000;
const DAY_MS = 86_400_000;
// Kinds are few (types are constants, tenants are Latchkey's own), but never let the table grow unchecked.
const MAX_KINDS = 1_000;

interface Window {
  start: number;
  written: number;
  suppressed: number;
  sample: AuditEvent;
}

export function createAudit(accounts: AccountStore, log: Logger, opts: AuditOptions): Audit {
  const now = opts.now ?? (() => new Date());
  const windows = new Map<string, Window>();

  const append = (event: AuditEvent) => accounts.appendAudit(event);

  // A summary of the window that ended: the kind, with how many events it held back and since when.
  const summary = (w: Window): AuditEvent => ({
    ...w.sample,
    ip: null,
    userAgent: null,
    time: new Date(w.start + WINDOW_MS),
    detail: { suppressed: w.suppressed, since: new Date(w.start).toISOString() },
  });

  async function flushEnded(at: number): Promise<void> {
    for (const [kind, w] of windows) {
      if (at - w.start < WINDOW_MS) continue;
      windows.delete(kind);
      if (w.suppressed > 0) await append(summary(w));
    }
  }

  async function anonymous(event: AuditEvent): Promise<void> {
    const at = event.time.getTime();
    const kind = JSON.stringify([event.type, event.tenant, event.outcome]);
    let w = windows.get(kind);
    if (w && at - w.start >= WINDOW_MS) {
      windows.delete(kind);
      if (w.suppressed > 0) await append(summary(w));
      w = undefined;
    }
    if (!w) {
      if (windows.size >= MAX_KINDS) await flushEnded(at);
      if (windows.size >= MAX_KINDS) {
        // Still full of live windows: drop the oldest, keeping its count.
        const [oldestKind, oldest] = windows.entries().next().value as [string, Window];
        windows.delete(oldestKind);
        if (oldest.suppressed > 0) await append(summary(oldest));
      }
      w = { start: at, written: 0, suppressed: 0, sample: event };
      windows.set(kind, w);
    }
    if (w.written < opts.anonymousPerMinute) {
      w.written++;
      await append(event);
    } else {
      w.suppressed++;
    }
  }

  async function sweep(at = now()): Promise<void> {
    await flushEnded(at.getTime());
    const before = new Date(at.getTime() - opts.retentionDays * DAY_MS);
    while ((await accounts.deleteAuditBefore(before)) > 0);
  }

  const every = opts.sweepEveryMs ?? WINDOW_MS;
  const timer = every > 0 ? setInterval(() => sweep().catch((err: unknown) => log.warn({ err }, 'audit sweep failed')), every) : null;
  timer?.unref();

  return {
    async record(input) {
      const event: AuditEvent = {
        type: input.type,
        outcome: input.outcome,
        tenant: input.tenant ?? null,
        login: input.login ?? null,
        ip: input.ip ?? null,
        userAgent: input.userAgent?.slice(0, 512) ?? null,
        time: now(),
        ...(input.detail ? { detail: input.detail } : {}),
      };
      log.info({ audit: { ...event, time: undefined } }, `audit ${event.type} ${event.outcome}`);
      if (event.login === null) await anonymous(event);
      else await append(event);
    },
    sweep,
    close() {
      if (timer) clearInterval(timer);
    },
  };
}
