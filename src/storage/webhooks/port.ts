/**
 * The webhook port: a tenant's subscriptions (where to send which audit
 * events, with the secret that signs them) and the deliveries waiting to go.
 *
 * Deliveries of one subscription go out **in order**: only the oldest one not
 * yet delivered (its head) can be claimed, and a head that is leased to a
 * sender or waiting for its retry holds back the rest. Claims are leases
 * (atomic on every backend), so several app processes sending from one store
 * never send one delivery at once; a process that dies mid-send leaves it to
 * another when the lease ends. Delivery is at least once: every payload
 * carries its event's id, for the receiver to drop a duplicate.
 *
 * Implementations: `sqlite/` and `mongo/` (the account store's database).
 * Both pass `test/storage/webhooks.contract.test.ts`.
 */

export interface Subscription {
  id: string;
  tenant: string;
  url: string;
  /** Audit event types (`signin.success`), prefixes (`factor.*`) or `*` for every event. */
  events: string[];
  /** The signing secret, sealed (`src/crypto/secretbox.ts`); never stored in the clear. */
  secret: string;
  createdAt: Date;
}

export interface NewDelivery {
  subscription: string;
  tenant: string;
  /** The audit event's own id: the same in every delivery of the event. */
  eventId: string;
  type: string;
  /** The JSON body, as it is signed and sent. */
  body: string;
}

export interface Delivery extends NewDelivery {
  id: string;
  /** Order within the subscription. */
  seq: number;
  attempts: number;
  createdAt: Date;
  deliveredAt: Date | null;
  /** The receiver's last HTTP status, or null when it did not answer. */
  lastStatus: number | null;
  lastError: string | null;
}

/** A claimed delivery: `attempt` settles it. */
export type ClaimedDelivery = Delivery & { attempt: number };

export interface WebhookStore {
  init(): Promise<void>;
  addSubscription(subscription: Subscription): Promise<void>;
  /** The tenant's subscriptions, oldest first. */
  listSubscriptions(tenant: string): Promise<Subscription[]>;
  /** Removes it and what it had still to deliver. False when the tenant has no such subscription. */
  removeSubscription(tenant: string, id: string): Promise<boolean>;

  /** Queues deliveries, due at once, each after every earlier one of its subscription. */
  enqueue(deliveries: NewDelivery[], now: Date): Promise<void>;
  /**
   * Leases, for `leaseMs`, the head of each subscription that is due at `now`
   * (at most `limit`). Many parallel callers never get the same delivery, and
   * never two of one subscription.
   */
  claim(now: Date, leaseMs: number, limit: number): Promise<ClaimedDelivery[]>;
  /** The claim's attempt was accepted (2xx): the next of the subscription may go. */
  delivered(id: string, attempt: number, status: number, now: Date): Promise<void>;
  /** The claim's attempt failed: the head waits until `retryAt`, and the rest behind it. */
  failed(id: string, attempt: number, retryAt: Date, status: number | null, error: string): Promise<void>;
  /** The tenant's recent deliveries, newest first (the owner's delivery log). */
  listDeliveries(tenant: string, limit: number): Promise<Delivery[]>;
  /** Forgets deliveries delivered before `before`; returns how many. */
  sweep(before: Date): Promise<number>;
}
