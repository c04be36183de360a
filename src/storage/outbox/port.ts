/**
 * The outbox port: mail waiting to be delivered. A message is written here
 * first and sent by a worker (`src/mail/outbox.ts`), so a mail server that is
 * down delays a message and loses none.
 *
 * Several app processes drain one outbox: `claim` leases a message to one
 * caller at a time (a conditional update, atomic on every backend), and a
 * lease that ends without `delivered` or `failed` (the process died) makes the
 * message due again. Delivery is at least once; a message is sent twice only
 * when a send outlasts its lease.
 *
 * Implementations: `sqlite/` and `mongo/` (the account store's database).
 * Both pass `test/storage/outbox.contract.test.ts`.
 */

export interface OutgoingMail {
  /** What the message is (`password_reset`, `invitation`, `notice.password_changed`, …), for logs. */
  kind: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The tenant the message speaks for, or null. */
  tenant: string | null;
}

export interface QueuedMail extends OutgoingMail {
  id: string;
  /** The attempt this claim is (1 for the first). */
  attempt: number;
  createdAt: Date;
}

export interface OutboxStore {
  /** Creates tables / indexes. Idempotent; called once at start. */
  init(): Promise<void>;
  /** Stores a message due at once; returns its id. */
  enqueue(mail: OutgoingMail, now: Date): Promise<string>;
  /**
   * Leases up to `limit` messages due at `now` for `leaseMs`: until then no
   * other call returns them. Many parallel callers never get the same message.
   */
  claim(now: Date, leaseMs: number, limit: number): Promise<QueuedMail[]>;
  /**
   * The claim's attempt succeeded: the message is sent, and its text is
   * dropped (a dump of the store shows no link that was mailed).
   */
  delivered(id: string, attempt: number, now: Date): Promise<void>;
  /** The claim's attempt failed: due again at `retryAt`. */
  failed(id: string, attempt: number, retryAt: Date, error: string): Promise<void>;
  /** Messages not delivered yet. */
  pending(): Promise<number>;
  /** Forgets delivered messages sent before `before`; returns how many. */
  sweep(before: Date): Promise<number>;
}
