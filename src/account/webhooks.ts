/**
 * The owner's Webhooks page (`GET /account/webhooks`, docs/webhooks.md): the
 * tenant's subscriptions (URL and event types, never the secret) and the
 * delivery log, newest first, with each delivery's last answer.
 */
import type Router from '@koa/router';
import type { Services } from '../services.ts';
import type { AccountKit } from './kit.ts';
import { formatTime } from './labels.ts';

const DELIVERIES_SHOWN = 50;

export function webhookRoutes(router: Router, kit: AccountKit, webhooks: Pick<Services, 'webhooks' | 'stores'>) {
  router.get('/webhooks', async (ctx) => {
    const signed = await kit.signedIn(ctx);
    if (!signed) return;
    kit.requireOwner(signed);
    const [subscriptions, deliveries] = await Promise.all([webhooks.webhooks.list(signed.tenant.id), webhooks.stores.webhooks.listDeliveries(signed.tenant.id, DELIVERIES_SHOWN)]);
    const urls = new Map(subscriptions.map((s) => [s.id, s.url]));
    kit.render(ctx, 'account/webhooks', signed, {
      section: 'webhooks',
      subscriptions: subscriptions.map((s) => ({ id: s.id, url: s.url, events: s.events.join(', '), created: formatTime(s.createdAt) })),
      deliveries: deliveries.map((d) => ({
        id: d.id,
        url: urls.get(d.subscription) ?? '—',
        type: d.type,
        eventId: d.eventId,
        created: formatTime(d.createdAt),
        state: d.deliveredAt ? 'delivered' : d.attempts > 0 ? 'retrying' : 'waiting',
        attempts: d.attempts,
        status: d.lastStatus,
        error: d.lastError,
      })),
    });
  });
}
