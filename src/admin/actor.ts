/**
 * Who changes a tenant through the operations of `src/admin/` (the account
 * pages, the management API, SCIM): the tenant, the login or client acting,
 * and where the request came from, for the audit log.
 */
import type { Audit } from '../audit.ts';

export interface Actor {
  /** The tenant changed: every operation reads and changes this tenant only. */
  tenant: string;
  /** Recorded as the event's `by`: the owner's login id, or e.g. `client:ID` for an API client. */
  by: string;
  /** The login acting, recorded as the event's login when the event is not about another one (null for an API client). */
  login?: string | null;
  ip?: string | null;
  userAgent?: string | null;
}

/** Records a successful change made by `actor`; `login` is whom the event is about (default: the actor). */
export function recordChange(audit: Audit, actor: Actor, type: string, detail: Record<string, unknown>, login?: string | null) {
  return audit.record({
    type,
    outcome: 'success',
    tenant: actor.tenant,
    login: login === undefined ? (actor.login ?? null) : login,
    ip: actor.ip ?? null,
    userAgent: actor.userAgent ?? null,
    detail: { by: actor.by, ...detail },
  });
}
