import { MongoServerError, type Collection, type OptionalUnlessRequiredId } from 'mongodb';

/** MongoDB's duplicate-key error (E11000): a unique index, `_id` included, refused the write. */
export const isDuplicateKey = (e: unknown): boolean => e instanceof MongoServerError && e.code === 11000;

/**
 * Takes the claim of one attempt of a queued item (a mail, a webhook
 * delivery, a back-channel logout) at `now`, for a lease of `leaseMs`.
 * False when another claimer has it.
 *
 * FerretDB 1.24's conditional updates are not atomic (docs/storage.md): two
 * claimers can both read the attempt count and both write the next, so a
 * queue's lease cannot rest on `updateOne({ attempts })`. A unique `_id`
 * insert is atomic on every backend, so markers decide. A claim inserts the
 * marker of its lease window and of the window before it: two claims of one
 * attempt less than a lease apart are in one window or two adjacent ones,
 * so they share a marker and only one gets both. One marker per window
 * would guard only claims in the same window; two on either side of an edge
 * would both pass. A claimer that dies holding its markers holds the attempt
 * back for two windows at most.
 *
 * `key` names the item and its attempt; `doc` makes a marker document for a
 * marker id (the item's id in it lets a settled item delete its markers).
 */
export async function takeClaim<T extends { _id: string }>(claims: Collection<T>, key: string, now: Date, leaseMs: number, doc: (id: string) => T): Promise<boolean> {
  const window = Math.floor(now.getTime() / leaseMs);
  try {
    // The window before first, and ordered, so the first duplicate stops it: a claim
    // lost to a holder of the earlier window leaves nothing; one lost on its own
    // window leaves only the marker before it, which no later claim needs. (Current
    // first, every poll that lost to a dead claimer would leave its own window's
    // marker and hold the next poll back, for ever.)
    await claims.insertMany([doc(`${key}:${window - 1}`), doc(`${key}:${window}`)] as OptionalUnlessRequiredId<T>[], { ordered: true });
    return true;
  } catch (e) {
    if (isDuplicateKey(e)) return false;
    throw e;
  }
}
