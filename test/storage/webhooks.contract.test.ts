// The webhook store's contract (src/storage/webhooks/port.ts) on SQLite and
// MongoDB (FerretDB here): subscriptions per tenant, deliveries in order per
// subscription (a head leased or waiting holds back the rest), parallel
// claimers over separate connections never sending one delivery twice.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mongoConnections, sqliteConnections } from '../support/connections.ts';
import type { NewDelivery, WebhookStore } from '../../src/storage/webhooks/port.ts';
import { createSqliteWebhookStore } from '../../src/storage/webhooks/sqlite/index.ts';
import { createMongoWebhookStore } from '../../src/storage/webhooks/mongo/index.ts';

interface Harness {
  open(n: number): Promise<WebhookStore[]>;
  cleanup(): Promise<void>;
}

function sqliteHarness(): Harness {
  const connections = sqliteConnections();
  return { open: async (n) => (await connections.open(n)).map(createSqliteWebhookStore), cleanup: () => connections.cleanup() };
}

function mongoHarness(): Harness {
  const connections = mongoConnections();
  return {
    async open(n) {
      const stores = (await connections.open(n)).map(createMongoWebhookStore);
      await stores[0]!.init();
      return stores;
    },
    cleanup: () => connections.cleanup(),
  };
}

const LEASE = 60_000;
const sub = (tenant: string, id = randomUUID()) => ({ id, tenant, url: 'https://app.example/hooks', events: ['*'], secret: 'sealed', createdAt: new Date() });
const delivery = (subscription: string, n: number, tenant = 'acme'): NewDelivery => ({
  subscription,
  tenant,
  eventId: `e${n}`,
  type: 'signin.success',
  body: JSON.stringify({ n }),
});

for (const [name, make] of [
  ['sqlite', sqliteHarness],
  ['mongodb', mongoHarness],
] as const) {
  describe(`webhook store contract (${name})`, () => {
    let h: Harness;
    before(() => {
      h = make();
    });
    after(() => h.cleanup());

    it('keeps subscriptions per tenant and removes one with what it had still to send', async () => {
      const [store] = await h.open(1);
      const a = sub('acme');
      await store!.addSubscription(a);
      await store!.addSubscription(sub('globex'));
      assert.deepEqual(
        (await store!.listSubscriptions('acme')).map((s) => s.id),
        [a.id],
      );
      await store!.enqueue([delivery(a.id, 1)], new Date());
      assert.equal(await store!.removeSubscription('globex', a.id), false, "another tenant's id");
      assert.equal(await store!.removeSubscription('acme', a.id), true);
      assert.deepEqual(await store!.listSubscriptions('acme'), []);
      assert.deepEqual(await store!.claim(new Date(), LEASE, 10), []);
    });

    it('hands out a subscription in order: the head first, the next only once the head is delivered', async () => {
      const [store] = await h.open(1);
      const s = sub('acme');
      await store!.addSubscription(s);
      const t0 = new Date();
      await store!.enqueue([delivery(s.id, 1)], t0);
      await store!.enqueue([delivery(s.id, 2), delivery(s.id, 3)], t0);
      const [first, ...none] = await store!.claim(t0, LEASE, 10);
      assert.equal(none.length, 0, 'one head per subscription');
      assert.equal(first!.eventId, 'e1');
      assert.deepEqual(await store!.claim(t0, LEASE, 10), [], 'the leased head holds back the rest');
      await store!.failed(first!.id, first!.attempt, new Date(t0.getTime() + 5_000), 503, 'the receiver answered 503');
      assert.deepEqual(await store!.claim(new Date(t0.getTime() + 4_999), LEASE, 10), [], 'waiting for its retry, it still holds them back');
      const again = await store!.claim(new Date(t0.getTime() + 5_000), LEASE, 10);
      assert.equal(again[0]!.eventId, 'e1');
      assert.equal(again[0]!.attempt, 2);
      await store!.delivered(again[0]!.id, again[0]!.attempt, 200, new Date(t0.getTime() + 5_000));
      const next = await store!.claim(new Date(t0.getTime() + 5_000), LEASE, 10);
      assert.equal(next[0]!.eventId, 'e2');
      const log = await store!.listDeliveries('acme', 10);
      assert.equal(log.find((d) => d.eventId === 'e1')!.lastStatus, 200);
      assert.ok(log.find((d) => d.eventId === 'e1')!.deliveredAt);
    });

    it('a lease that ends unsettled (the sender died) makes the head due again', async () => {
      const [store] = await h.open(1);
      const s = sub('acme');
      await store!.addSubscription(s);
      const t0 = new Date();
      await store!.enqueue([delivery(s.id, 1)], t0);
      const [first] = await store!.claim(t0, LEASE, 10);
      const [second] = await store!.claim(new Date(t0.getTime() + LEASE), LEASE, 10);
      assert.equal(second!.id, first!.id);
      assert.equal(second!.attempt, 2);
      await store!.delivered(first!.id, first!.attempt, 200, new Date());
      assert.equal((await store!.listDeliveries('acme', 1))[0]!.deliveredAt, null, 'a stale attempt settles nothing');
    });

    it('parallel claimers over separate connections take each head once', async () => {
      const stores = await h.open(4);
      const subs = Array.from({ length: 6 }, () => sub('acme'));
      for (const s of subs) await stores[0]!.addSubscription(s);
      const now = new Date();
      await stores[0]!.enqueue(
        subs.flatMap((s, i) => [delivery(s.id, i * 10), delivery(s.id, i * 10 + 1)]),
        now,
      );
      const claimed = (await Promise.all(stores.flatMap((s) => [s.claim(now, LEASE, 20), s.claim(now, LEASE, 20)]))).flat();
      assert.equal(claimed.length, subs.length, 'the head of each subscription, nothing behind it');
      assert.equal(new Set(claimed.map((d) => d.id)).size, claimed.length, 'none twice');
      assert.deepEqual(new Set(claimed.map((d) => d.subscription)), new Set(subs.map((s) => s.id)));
    });

    it('parallel claimers whose clocks straddle the edge of a lease window take each head once', async () => {
      const stores = await h.open(4);
      const subs = Array.from({ length: 6 }, () => sub('acme'));
      for (const s of subs) await stores[0]!.addSubscription(s);
      const edge = (Math.floor(Date.now() / LEASE) + 1) * LEASE;
      await stores[0]!.enqueue(
        subs.map((s, i) => delivery(s.id, i)),
        new Date(edge - 10),
      );
      const clocks = [new Date(edge - 1), new Date(edge)];
      const claimed = (await Promise.all(stores.flatMap((s) => clocks.flatMap((now) => [s.claim(now, LEASE, 20), s.claim(now, LEASE, 20)])))).flat();
      assert.equal(new Set(claimed.map((d) => d.id)).size, claimed.length, 'none twice');
      assert.equal(claimed.length, subs.length, 'each head once');
    });
  });
}
