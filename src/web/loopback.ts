import { specialUse } from './egress.ts';

/**
 * A host named by its loopback address (`localhost`, `127.x.x.x`, `[::1]`,
 * `[::ffff:127.0.0.1]`): a receiver on this machine, which webhooks may reach
 * over plain http. Whether a request may go there at all is the outgoing
 * guard's to say (`src/web/egress.ts`, `OUTBOUND_ALLOW`).
 */
export const isLoopbackHost = (hostname: string) => hostname === 'localhost' || specialUse(hostname) === 'loopback';
