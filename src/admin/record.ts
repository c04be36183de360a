/** The audit event of a change made by an `Actor` through `src/admin/`'s operations. */
import type { Audit } from '../audit.ts';
import { actedBy, type Actor } from './people.ts';

/** Records a successful change; `login` is whom the event is about (default: the owner acting, none for an application). */
export function recordChange(audit: Audit, actor: Actor, type: string, detail: Record<string, unknown>, login?: string | null) {
  return audit.record({
    type,
    outcome: 'success',
    tenant: actor.tenant.id,
    login: login === undefined ? ('login' in actor.by ? actor.by.login : null) : login,
    ip: actor.ip,
    userAgent: actor.userAgent,
    detail: { ...actedBy(actor), ...detail },
  });
}
