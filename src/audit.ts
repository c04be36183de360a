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
}

export function createAudit(accounts: AccountStore, log: Logger): Audit {
  return {
    async record(input) {
      const event: AuditEvent = {
        type: input.type,
        outcome: input.outcome,
        tenant: input.tenant ?? null,
        login: input.login ?? null,
        ip: input.ip ?? null,
        userAgent: input.userAgent?.slice(0, 512) ?? null,
        time: new Date(),
        ...(input.detail ? { detail: input.detail } : {}),
      };
      log.info({ audit: { ...event, time: undefined } }, `audit ${event.type} ${event.outcome}`);
      await accounts.appendAudit(event);
    },
  };
}
