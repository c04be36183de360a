import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
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

/**
 * A document's write marker left by a process that died mid-write is taken
 * over after this long (wall-clock time: it only restores liveness). Writes
 * that must happen wait for it, and a write holds it for milliseconds.
 */
export const WRITER_STALE_MS = 10_000;

/** A writer's marker: its `_id` names what is being written, `at` is when it was taken, `token` whose it is. */
export interface MarkerDoc {
  _id: string;
  at: Date;
  token: string;
}

/** What `holding` answers when another writer holds the marker. */
export const BUSY: unique symbol = Symbol('busy');

/**
 * Runs `write` as the one writer holding the marker `_id: id` in `markers`,
 * and deletes the marker after it. FerretDB 1.24 runs an update as a read and
 * a write of the whole document (docs/storage.md), so two writers of one
 * document can undo each other; writers that all hold the same marker
 * cannot, since a unique `_id` insert is atomic on every backend.
 *
 * When another writer holds it: `waitMs` 0 answers BUSY at once (a write
 * that may be skipped, such as a rehash); otherwise this polls until the
 * marker is free or `waitMs` has passed, then answers BUSY. A marker older
 * than `staleMs` (its writer died) is taken over.
 */
export async function holding<T>(markers: Collection<MarkerDoc>, id: string, opts: { staleMs: number; waitMs: number }, write: () => Promise<T>): Promise<T | typeof BUSY> {
  const token = randomUUID();
  const mark = async (): Promise<boolean> => {
    try {
      await markers.insertOne({ _id: id, at: new Date(), token });
      return true;
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw e;
    }
  };
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    if (await mark()) break;
    const stale = await markers.deleteOne({ _id: id, at: { $lt: new Date(Date.now() - opts.staleMs) } });
    if (stale.deletedCount === 1 && (await mark())) break;
    if (Date.now() >= deadline) return BUSY;
    await sleep(5 + Math.random() * 10);
  }
  try {
    return await write();
  } finally {
    // Deleted only after the write: a writer that marks later reads what this one wrote. Only
    // its own: a writer so slow that its marker was taken over leaves the new one in place.
    await markers.deleteOne({ _id: id, token });
  }
}

/**
 * `holding` for writes that must happen (a person's password change, an
 * owner's disable): each waits for the writer before it, which takes
 * milliseconds, and takes over a dead writer's marker after `staleMs`.
 */
export function oneWriterAtATime(markers: Collection<MarkerDoc>, staleMs = WRITER_STALE_MS) {
  return async <T>(id: string, write: () => Promise<T>): Promise<T> => {
    const done = await holding(markers, id, { staleMs, waitMs: staleMs + 1_000 }, write);
    if (done === BUSY) throw new Error(`${markers.collectionName}: another writer still holds ${id}`);
    return done;
  };
}
