import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { ClaimedDelivery, Delivery, Subscription, WebhookStore } from '../port.ts';

interface SubscriptionRow {
  id: string;
  tenant: string;
  url: string;
  events: string;
  secret: string;
  created_at: number;
}

interface DeliveryRow {
  id: string;
  seq: number;
  subscription: string;
  tenant: string;
  event_id: string;
  type: string;
  body: string;
  attempts: number;
  due_at: number;
  created_at: number;
  delivered_at: number | null;
  last_status: number | null;
  last_error: string | null;
}

const toSubscription = (r: SubscriptionRow): Subscription => ({
  id: r.id,
  tenant: r.tenant,
  url: r.url,
  events: JSON.parse(r.events) as string[],
  secret: r.secret,
  createdAt: new Date(r.created_at),
});
const toDelivery = (r: DeliveryRow): Delivery => ({
  id: r.id,
  seq: r.seq,
  subscription: r.subscription,
  tenant: r.tenant,
  eventId: r.event_id,
  type: r.type,
  body: r.body,
  attempts: r.attempts,
  createdAt: new Date(r.created_at),
  deliveredAt: r.delivered_at === null ? null : new Date(r.delivered_at),
  lastStatus: r.last_status,
  lastError: r.last_error,
});

/**
 * Webhooks in the SQLite tables `webhook_subscriptions` and
 * `webhook_deliveries` (its `seq` is the order). `claim` runs in a BEGIN
 * IMMEDIATE transaction, so processes sharing the file never lease one head twice.
 */
export function createSqliteWebhookStore(db: Database.Database): WebhookStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS webhook_subscriptions (
      id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      url TEXT NOT NULL,
      events TEXT NOT NULL,
      secret TEXT NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS webhook_subscriptions_tenant ON webhook_subscriptions (tenant, created_at);
    CREATE TABLE IF NOT EXISTS webhook_deliveries (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      subscription TEXT NOT NULL,
      tenant TEXT NOT NULL,
      event_id TEXT NOT NULL,
      type TEXT NOT NULL,
      body TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      due_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      delivered_at INTEGER,
      last_status INTEGER,
      last_error TEXT
    );
    CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (subscription, delivered_at, seq);
    CREATE INDEX IF NOT EXISTS webhook_deliveries_tenant ON webhook_deliveries (tenant, seq);
  `);
  const stmt = {
    addSub: db.prepare<[string, string, string, string, string, number]>(
      'INSERT INTO webhook_subscriptions (id, tenant, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    listSubs: db.prepare<[string], SubscriptionRow>('SELECT * FROM webhook_subscriptions WHERE tenant = ? ORDER BY created_at, id'),
    removeSub: db.prepare<[string, string]>('DELETE FROM webhook_subscriptions WHERE tenant = ? AND id = ?'),
    removeDeliveries: db.prepare<[string]>('DELETE FROM webhook_deliveries WHERE subscription = ? AND delivered_at IS NULL'),
    insert: db.prepare<[string, string, string, string, string, string, number, number]>(
      'INSERT INTO webhook_deliveries (id, subscription, tenant, event_id, type, body, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    heads: db.prepare<[], DeliveryRow>(
      `SELECT d.* FROM webhook_deliveries d JOIN (
         SELECT subscription, MIN(seq) AS head FROM webhook_deliveries WHERE delivered_at IS NULL GROUP BY subscription
       ) h ON d.seq = h.head`,
    ),
    lease: db.prepare<[number, string, number]>('UPDATE webhook_deliveries SET attempts = attempts + 1, due_at = ? WHERE id = ? AND attempts = ? AND delivered_at IS NULL'),
    delivered: db.prepare<[number, number, string, number]>('UPDATE webhook_deliveries SET delivered_at = ?, last_status = ?, last_error = NULL WHERE id = ? AND attempts = ?'),
    failed: db.prepare<[number, number | null, string, string, number]>(
      'UPDATE webhook_deliveries SET due_at = ?, last_status = ?, last_error = ? WHERE id = ? AND attempts = ? AND delivered_at IS NULL',
    ),
    recent: db.prepare<[string, number], DeliveryRow>('SELECT * FROM webhook_deliveries WHERE tenant = ? ORDER BY seq DESC LIMIT ?'),
    sweep: db.prepare<[number]>('DELETE FROM webhook_deliveries WHERE delivered_at IS NOT NULL AND delivered_at < ?'),
  };

  const claim = db.transaction((now: number, leaseMs: number, limit: number): ClaimedDelivery[] => {
    const claimed: ClaimedDelivery[] = [];
    for (const row of stmt.heads.all()) {
      if (claimed.length >= limit) break;
      if (row.due_at > now) continue;
      if (stmt.lease.run(now + leaseMs, row.id, row.attempts).changes !== 1) continue;
      claimed.push({ ...toDelivery(row), attempts: row.attempts + 1, attempt: row.attempts + 1 });
    }
    return claimed;
  });
  const enqueue = db.transaction((deliveries: Parameters<WebhookStore['enqueue']>[0], now: number) => {
    for (const d of deliveries) stmt.insert.run(randomUUID(), d.subscription, d.tenant, d.eventId, d.type, d.body, now, now);
  });
  const remove = db.transaction((tenant: string, id: string) => {
    if (stmt.removeSub.run(tenant, id).changes !== 1) return false;
    stmt.removeDeliveries.run(id);
    return true;
  });

  return {
    async init() {},
    async addSubscription(s) {
      stmt.addSub.run(s.id, s.tenant, s.url, JSON.stringify(s.events), s.secret, s.createdAt.getTime());
    },
    async listSubscriptions(tenant) {
      return stmt.listSubs.all(tenant).map(toSubscription);
    },
    async removeSubscription(tenant, id) {
      return remove.immediate(tenant, id);
    },
    async enqueue(deliveries, now) {
      enqueue.immediate(deliveries, now.getTime());
    },
    async claim(now, leaseMs, limit) {
      return claim.immediate(now.getTime(), leaseMs, limit);
    },
    async delivered(id, attempt, status, now) {
      stmt.delivered.run(now.getTime(), status, id, attempt);
    },
    async failed(id, attempt, retryAt, status, error) {
      stmt.failed.run(retryAt.getTime(), status, error.slice(0, 500), id, attempt);
    },
    async listDeliveries(tenant, limit) {
      return stmt.recent.all(tenant, limit).map(toDelivery);
    },
    async sweep(before) {
      return stmt.sweep.run(before.getTime()).changes;
    },
  };
}
