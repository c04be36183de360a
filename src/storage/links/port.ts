/**
 * The one-time link port: links mailed to a person (a password reset, an
 * invitation), stored only under the SHA-256 of their token, so a dump of the
 * store yields no usable link.
 *
 * Implementations: `sqlite/` and `mongo/` (the account store's database).
 * Both pass the link contract in `test/storage/mail.contract.test.ts`.
 */

export type LinkPurpose = 'reset' | 'invite';

export interface OneTimeLink {
  purpose: LinkPurpose;
  identityId: string;
  createdAt: Date;
  expiresAt: Date;
  /**
   * What the link was made against: a fingerprint of the identity's password
   * at that moment (the caller's keyed hash of the stored hash, or of "no
   * password"). The store compares it and never interprets it. Links stored
   * before fingerprints have none and are not compared.
   */
  passwordFingerprint?: string;
}

export interface LinkStore {
  /** Creates tables / indexes. Idempotent; called once at start. */
  init(): Promise<void>;
  /**
   * Stores a link under `tokenHash` and voids every earlier link of the same
   * identity and purpose: only the newest one works.
   */
  create(tokenHash: string, link: OneTimeLink): Promise<void>;
  /**
   * The link of `purpose` under `tokenHash`, used or expired ones included (so
   * a page can say which), or null when there is none or it was voided.
   */
  find(tokenHash: string, purpose: LinkPurpose): Promise<(OneTimeLink & { used: boolean }) | null>;
  /**
   * Uses the link once: returns it when it exists, is unused and unexpired at
   * `now`, and was made against `passwordFingerprint` (the identity's password
   * as it is now; a link without a fingerprint matches any), and never again;
   * a refused link is left as it was. Of many parallel calls with one token,
   * exactly one gets the link.
   */
  use(tokenHash: string, purpose: LinkPurpose, now: Date, passwordFingerprint: string): Promise<OneTimeLink | null>;
  /** Forgets links that expired before `now`; returns how many. */
  sweep(now: Date): Promise<number>;
}
