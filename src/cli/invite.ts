/**
 * `npm run cli -- invite EMAIL --tenant TENANT` (docs/mail.md): mails the
 * person an invitation to choose a password, in the tenant's name; run it
 * again to send a new one (the earlier link stops working), at most
 * `LINKS_PER_HOUR` an hour per person. The message waits in the outbox until a
 * server's mail worker sends it.
 */
import type { RecoveryDeps } from '../recovery/routes.ts';
import { LINKS_PER_HOUR, sendInvitation } from '../recovery/routes.ts';

export async function invite(email: string, tenantId: string, deps: Pick<RecoveryDeps, 'config' | 'links' | 'accounts' | 'mailer' | 'audit' | 'counters'>): Promise<string> {
  const sent = await sendInvitation(deps, { email, tenantId, by: 'cli' });
  if (!sent) throw new Error(`${email} has no login in tenant "${tenantId}"`);
  if (sent.outcome === 'rate_limited')
    throw new Error(`${email} was sent ${LINKS_PER_HOUR} invitations in the past hour: none sent now, the latest link still works; try again later`);
  return `invitation for ${email} queued; its link works until ${sent.expiresAt!.toISOString()}`;
}
