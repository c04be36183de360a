/**
 * Signed webhooks (docs/webhooks.md): a tenant's subscriptions receive the
 * audit events of the types they name, as JSON signed with HMAC-SHA256 over
 * `{timestamp}.{body}`, through the store's delivery queue — in order per
 * subscription, at least once, with the event's id for de-duplication, retried
 * with backoff while the receiver is down, every process sending.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Audit } from '../audit.ts';
import type { Logger } from '../log.ts';
import type { SecretBox } from '../crypto/secretbox.ts';
import { constantTimeEqual } from '../crypto/equal.ts';
import { queueWorker } from '../queue-worker.ts';
import { isLoopbackHost } from '../web/loopback.ts';
import { egressRefusal, refusalReason, type AddressRange, type Egress } from '../web/egress.ts';
import type { ClaimedDelivery, Subscription, WebhookStore } from '../storage/webhooks/port.ts';

export const SIGNATURE_HEADER = 'Latchkey-Signature';
export const EVENT_ID_HEADER = 'Latchkey-Event-Id';

const LEASE_MS = 60_000;
const BATCH = 20;
const SEND_TIMEOUT_MS = 5_000;
const FIRST_RETRY_MS = 5_000;
const LONGEST_RETRY_MS = 3_600_000;
/** A process reads a tenant's subscriptions again after this long: a change made elsewhere takes effect within it. */
const SUBSCRIPTIONS_CACHE_MS = 5_000;
const KEEP_DELIVERED_MS = 30 * 24 * 3_600_000;
const SWEEP_EVERY_MS = 10 * 60_000;
const EVENT = /^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$/;

/** `t={unix seconds},v1={hex HMAC-SHA256(secret, t + "." + body)}`. */
export function sign(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver does (docs/webhooks.md has the same in a few lines): the signature matches and is recent. */
export function verify(secret: string, header: string | null, body: string, nowSeconds = Math.floor(Date.now() / 1000), toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries((header ?? '').split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || typeof parts.v1 !== 'string') return false;
  return constantTimeEqual(sign(secret, t, body), `t=${t},v1=${parts.v1}`);
}

/** Whether a subscription to `events` receives an event of `type`. */
export const wants = (events: readonly string[], type: string) => events.some((e) => e === '*' || e === type || (e.endsWith('.*') && type.startsWith(e.slice(0, -1))));

/** A receiver's URL: https, or http to this machine (a local receiver). */
export function checkUrl(url: string): boolean {
  if (!URL.canParse(url) || url.length > 2048) return false;
  const u = new URL(url);
  if (u.username || u.password) return false;
  return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname));
}

/**
 * Why a receiver's URL is refused when it is subscribed: `url` (not a
 * receiver URL, see `checkUrl`), or the special-use range of the literal
 * address it names (`private`, `link-local`, …) unless `OUTBOUND_ALLOW` opens
 * it; null when it may be subscribed. A name is judged at every delivery.
 */
export function receiverRefusal(url: string, egress: Pick<Egress, 'refusedUrl'>): 'url' | AddressRange | null {
  if (!checkUrl(url)) return 'url';
  return egress.refusedUrl(url);
}

export const checkEvents = (events: readonly string[]) => events.length > 0 && events.length <= 50 && events.every((e) => EVENT.test(e));

export const retryDelayMs = (attempt: number) => Math.min(FIRST_RETRY_MS * 2 ** Math.min(attempt - 1, 20), LONGEST_RETRY_MS);

export interface Webhooks {
  /** A new subscription; returns it with its signing secret, which is shown this once. */
  subscribe(tenant: string, url: string, events: string[]): Promise<{ subscription: Subscription; secret: string }>;
  list(tenant: string): Promise<Subscription[]>;
  remove(tenant: string, id: string): Promise<boolean>;
  /** Queues a delivery of the event for each subscription that wants it. */
  publish(event: { tenant: string; type: string; payload: Record<string, unknown> }): Promise<void>;
  /** Sends what is due; returns how many were delivered. */
  drain(): Promise<number>;
  close(): void;
}

export interface WebhookDeps {
  store: WebhookStore;
  box: SecretBox;
  /** Deliveries reach no special-use address that `OUTBOUND_ALLOW` does not open. */
  egress: Pick<Egress, 'fetch'>;
  log: Logger;
  now?: () => number;
  /** A serving process sends; the CLI only manages subscriptions. */
  worker?: boolean;
  intervalMs?: number;
}

const secretContext = (s: Pick<Subscription, 'tenant' | 'id'>) => `webhook:${s.tenant}:${s.id}`;

export function createWebhooks({ store, box, egress, log, now = Date.now, worker = true, intervalMs = 2_000 }: WebhookDeps): Webhooks {
  const cache = new Map<string, { at: number; subs: Subscription[] }>();
  const subscriptionsOf = async (tenant: string) => {
    const hit = cache.get(tenant);
    if (hit && now() - hit.at < SUBSCRIPTIONS_CACHE_MS) return hit.subs;
    const subs = await store.listSubscriptions(tenant);
    cache.set(tenant, { at: now(), subs });
    return subs;
  };

  /** One attempt at one delivery; true when the receiver took it. */
  async function send(d: ClaimedDelivery, subscription: Subscription | undefined): Promise<boolean> {
    if (!subscription) {
      await store.failed(d.id, d.attempt, new Date(now() + LONGEST_RETRY_MS), null, 'subscription removed');
      return false;
    }
    const secret = box.open(subscription.secret, secretContext(subscription));
    let status: number | null = null;
    try {
      const res = await egress.fetch(subscription.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Latchkey-Webhooks/1',
          [EVENT_ID_HEADER]: d.eventId,
          [SIGNATURE_HEADER]: sign(secret, Math.floor(now() / 1000), d.body),
        },
        body: d.body,
      });
      status = res.status;
      await res.body?.cancel();
      if (status < 200 || status >= 300) throw new Error(`the receiver answered ${status}`);
      await store.delivered(d.id, d.attempt, status, new Date(now()));
      return true;
    } catch (err) {
      const retryAt = new Date(now() + retryDelayMs(d.attempt));
      const refused = egressRefusal(err);
      if (refused) {
        // Nothing was sent. The owner reads the range; the name and address it resolved to are the operator's to see.
        log.warn(
          { subscription: subscription.id, tenant: subscription.tenant, host: refused.host, address: refused.address, range: refused.range, attempt: d.attempt, retryAt },
          'webhook refused: the receiver is at a special-use address (OUTBOUND_ALLOW opens one); will retry',
        );
        await store.failed(d.id, d.attempt, retryAt, null, refusalReason(refused.range as AddressRange));
        return false;
      }
      log.warn({ err: (err as Error).message, subscription: subscription.id, attempt: d.attempt, retryAt }, 'webhook not delivered; will retry');
      await store.failed(d.id, d.attempt, retryAt, status, (err as Error).message);
      return false;
    }
  }

  async function drainOnce(): Promise<number> {
    let delivered = 0;
    for (;;) {
      const batch = await store.claim(new Date(now()), LEASE_MS, BATCH);
      if (batch.length === 0) return delivered;
      const byTenant = new Map<string, Subscription[]>();
      for (const d of batch) if (!byTenant.has(d.tenant)) byTenant.set(d.tenant, await store.listSubscriptions(d.tenant));
      // One head per subscription at a time: the batch's deliveries belong to different subscriptions.
      const sent = await Promise.all(
        batch.map((d) =>
          send(
            d,
            byTenant.get(d.tenant)!.find((s) => s.id === d.subscription),
          ),
        ),
      );
      delivered += sent.filter(Boolean).length;
    }
  }
  const loop = queueWorker({
    drainOnce,
    // The delivery log keeps a month.
    sweep: () => store.sweep(new Date(now() - KEEP_DELIVERED_MS)),
    log,
    waiting: 'webhook queue unavailable; deliveries wait',
    running: worker,
    intervalMs,
    sweepEveryMs: SWEEP_EVERY_MS,
  });

  return {
    async subscribe(tenant, url, events) {
      const id = randomUUID();
      const secret = randomBytes(32).toString('base64url');
      const subscription: Subscription = { id, tenant, url, events: [...new Set(events)], secret: box.seal(secret, secretContext({ tenant, id })), createdAt: new Date(now()) };
      await store.addSubscription(subscription);
      cache.delete(tenant);
      return { subscription, secret };
    },
    list: (tenant) => store.listSubscriptions(tenant),
    async remove(tenant, id) {
      cache.delete(tenant);
      return store.removeSubscription(tenant, id);
    },
    async publish({ tenant, type, payload }) {
      const subs = (await subscriptionsOf(tenant)).filter((s) => wants(s.events, type));
      if (!subs.length) return;
      const eventId = randomUUID();
      const body = JSON.stringify({ id: eventId, type, ...payload });
      await store.enqueue(
        subs.map((s) => ({ subscription: s.id, tenant, eventId, type, body })),
        new Date(now()),
      );
      loop.kick();
    },
    drain: loop.drain,
    close() {
      loop.close();
    },
  };
}

/** The audit log, with each event of a tenant published to the tenant's webhooks; a webhook never fails the action. */
export function withWebhooks(audit: Audit, webhooks: Webhooks, log: Logger, now: () => number = Date.now): Audit {
  return {
    ...audit,
    async record(event) {
      await audit.record(event);
      if (!event.tenant) return;
      const { type, tenant, login, outcome, ip, userAgent, detail } = event;
      await webhooks
        .publish({
          tenant,
          type,
          payload: { time: new Date(now()).toISOString(), tenant, login: login ?? null, outcome, ip: ip ?? null, userAgent: userAgent ?? null, detail: detail ?? {} },
        })
        .catch((err: unknown) => log.warn({ err: (err as Error).message, type }, 'webhook delivery not queued'));
    },
  };
}
