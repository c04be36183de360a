import { randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import type { ClaimedDelivery, Delivery, Subscription, WebhookStore } from '../port.ts';
import { takeClaim } from '../../mongo.ts';

interface SubscriptionDoc extends Omit<Subscription, 'id'> {
  _id: string;
}

interface DeliveryDoc extends Omit<Delivery, 'id'> {
  _id: string;
  dueAt: Date;
}

const toSubscription = ({ _id, ...rest }: SubscriptionDoc): Subscription => ({ id: _id, ...rest });
const toDelivery = ({ _id, dueAt: _due, ...rest }: DeliveryDoc): Delivery => ({
  id: _id,
  ...rest,
  lastStatus: rest.lastStatus ?? null,
  lastError: rest.lastError ?? null,
  deliveredAt: rest.deliveredAt ?? null,
});

/**
 * Webhooks in the collections `webhook_subscriptions`, `webhook_deliveries`
 * and `webhook_claims`. FerretDB 1.24's conditional updates are not atomic
 * (docs/storage.md), so a head is leased by unique inserts of markers per
 * delivery, attempt and lease window (`takeClaim`), as in the outbox. `seq` orders one
 * subscription's deliveries: milliseconds, then a counter of this process.
 */
export function createMongoWebhookStore(db: Db): WebhookStore {
  const subs = db.collection<SubscriptionDoc>('webhook_subscriptions');
  const deliveries = db.collection<DeliveryDoc>('webhook_deliveries');
  const claims = db.collection<{ _id: string; delivery: string }>('webhook_claims');
  let counter = 0;

  return {
    async init() {
      await subs.createIndex({ tenant: 1, createdAt: 1 });
      await deliveries.createIndex({ subscription: 1, deliveredAt: 1, seq: 1 });
      await deliveries.createIndex({ tenant: 1, seq: -1 });
      await claims.createIndex({ delivery: 1 });
    },
    async addSubscription({ id, ...rest }) {
      await subs.insertOne({ _id: id, ...rest });
    },
    async listSubscriptions(tenant) {
      return (await subs.find({ tenant }).sort({ createdAt: 1, _id: 1 }).toArray()).map(toSubscription);
    },
    async removeSubscription(tenant, id) {
      if ((await subs.deleteOne({ _id: id, tenant })).deletedCount !== 1) return false;
      await deliveries.deleteMany({ subscription: id, deliveredAt: null });
      return true;
    },
    async enqueue(list, now) {
      if (!list.length) return;
      await deliveries.insertMany(
        list.map((d) => ({
          _id: randomUUID(),
          ...d,
          seq: now.getTime() * 1000 + (counter++ % 1000),
          attempts: 0,
          dueAt: now,
          createdAt: now,
          deliveredAt: null,
          lastStatus: null,
          lastError: null,
        })),
      );
    },
    async claim(now, leaseMs, limit) {
      const claimed: ClaimedDelivery[] = [];
      const pending = (await deliveries.distinct('subscription', { deliveredAt: null })) as string[];
      for (const subscription of pending) {
        if (claimed.length >= limit) break;
        const head = await deliveries.find({ subscription, deliveredAt: null }).sort({ seq: 1 }).limit(1).next();
        if (!head || head.dueAt > now) continue;
        if (!(await takeClaim(claims, `${head._id}:${head.attempts}`, now, leaseMs, (_id) => ({ _id, delivery: head._id })))) continue;
        const leased = await deliveries.updateOne(
          { _id: head._id, attempts: head.attempts, deliveredAt: null },
          { $set: { dueAt: new Date(now.getTime() + leaseMs) }, $inc: { attempts: 1 } },
        );
        if (leased.modifiedCount !== 1) continue;
        claimed.push({ ...toDelivery(head), attempts: head.attempts + 1, attempt: head.attempts + 1 });
      }
      return claimed;
    },
    async delivered(id, attempt, status, now) {
      await deliveries.updateOne({ _id: id, attempts: attempt }, { $set: { deliveredAt: now, lastStatus: status, lastError: null } });
      await claims.deleteMany({ delivery: id });
    },
    async failed(id, attempt, retryAt, status, error) {
      await deliveries.updateOne({ _id: id, attempts: attempt, deliveredAt: null }, { $set: { dueAt: retryAt, lastStatus: status, lastError: error.slice(0, 500) } });
    },
    async listDeliveries(tenant, limit) {
      return (await deliveries.find({ tenant }).sort({ seq: -1 }).limit(limit).toArray()).map(toDelivery);
    },
    async sweep(before) {
      return (await deliveries.deleteMany({ deliveredAt: { $ne: null, $lt: before } })).deletedCount;
    },
  };
}
