/**
 * A tenant's webhook subscriptions as its administrators manage them (the
 * owner's Webhooks page, the management API; docs/webhooks.md): the receiver's
 * URL and event types are checked, the signing secret is shown once, and each
 * change is audited. Delivery is `src/webhooks/`.
 */
import { badRequest, notFound } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Delivery, Subscription } from '../storage/webhooks/port.ts';
import { checkEvents, receiverRefusal } from '../webhooks/index.ts';
import { actedBy, type Actor } from './people.ts';

export type WebhookAdminDeps = Pick<Services, 'webhooks' | 'stores' | 'audit' | 'egress'>;

export interface AdminWebhooks {
  list(actor: Actor): Promise<Subscription[]>;
  /**
   * A new subscription and its signing secret (shown this once). 400 naming `url` or `events` when refused; a URL
   * naming a special-use address (`10.0.0.5`, `[::ffff:127.0.0.1]`) that `OUTBOUND_ALLOW` does not open is refused
   * here, a name resolving to one at every delivery.
   */
  subscribe(actor: Actor, url: string, events: string[]): Promise<{ subscription: Subscription; secret: string }>;
  /** 404 when the tenant has no such subscription. */
  remove(actor: Actor, id: string): Promise<void>;
  /** The tenant's most recent deliveries, newest first. */
  deliveries(actor: Actor, limit: number): Promise<Delivery[]>;
}

/**
 * Subscriptions a tenant may hold: every event is sent to each that matches,
 * so more would multiply one failed sign-in into that many requests, and
 * hold up every tenant's deliveries behind them.
 */
export const MAX_SUBSCRIPTIONS = 25;

export function adminWebhooks({ webhooks, stores, audit, egress }: WebhookAdminDeps): AdminWebhooks {
  return {
    list: (actor) => webhooks.list(actor.tenant.id),
    async subscribe(actor, url, events) {
      const refused = receiverRefusal(url, egress);
      if (refused === 'url') throw badRequest('errors.webhooks.url', { field: 'url' });
      if (refused) throw badRequest('errors.webhooks.address', { field: 'url', range: refused });
      const types = [...new Set(events.map((e) => e.trim()).filter(Boolean))];
      if (!checkEvents(types)) throw badRequest('errors.webhooks.events', { field: 'events' });
      const tooMany = () => badRequest('errors.webhooks.tooMany', { field: 'url', max: MAX_SUBSCRIPTIONS });
      if ((await webhooks.list(actor.tenant.id)).length >= MAX_SUBSCRIPTIONS) throw tooMany();
      const created = await webhooks.subscribe(actor.tenant.id, url, types);
      // Counted again after the insert: parallel requests all passed the check above. Of those
      // past the cap each removes its own, so at most the cap stays (a race may refuse one too many).
      if ((await webhooks.list(actor.tenant.id)).length > MAX_SUBSCRIPTIONS) {
        await webhooks.remove(actor.tenant.id, created.subscription.id);
        throw tooMany();
      }
      await audit.record({
        type: 'webhook.added',
        outcome: 'success',
        tenant: actor.tenant.id,
        ip: actor.ip,
        userAgent: actor.userAgent,
        detail: { ...actedBy(actor), subscription: created.subscription.id, url, events: types },
      });
      return created;
    },
    async remove(actor, id) {
      if (!(await webhooks.remove(actor.tenant.id, id))) throw notFound('errors.webhooks.noSuchSubscription');
      await audit.record({
        type: 'webhook.removed',
        outcome: 'success',
        tenant: actor.tenant.id,
        ip: actor.ip,
        userAgent: actor.userAgent,
        detail: { ...actedBy(actor), subscription: id },
      });
    },
    deliveries: (actor, limit) => stores.webhooks.listDeliveries(actor.tenant.id, limit),
  };
}
