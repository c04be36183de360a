import type { Db } from 'mongodb';
import type { LinkPurpose, LinkStore, OneTimeLink } from '../port.ts';
import { isDuplicateKey } from '../../mongo.ts';

interface LinkDoc {
  /** The SHA-256 of the token. */
  _id: string;
  purpose: LinkPurpose;
  identityId: string;
  createdAt: Date;
  expiresAt: Date;
  used: boolean;
  voided: boolean;
  /** Absent on links stored before fingerprints. */
  passwordFingerprint?: string;
}

const toLink = (d: LinkDoc): OneTimeLink => ({
  purpose: d.purpose,
  identityId: d.identityId,
  createdAt: d.createdAt,
  expiresAt: d.expiresAt,
  ...(d.passwordFingerprint === undefined ? {} : { passwordFingerprint: d.passwordFingerprint }),
});

/**
 * One-time links in the collection `one_time_links`. A link is used once by a
 * unique insert into `one_time_link_uses` (FerretDB 1.24's conditional
 * updates are not atomic, docs/storage.md); the flag on the link follows.
 * Only a link made against the password given is used (its fingerprint).
 *
 * Only the newest link of an identity and purpose works: `one_time_link_latest`
 * holds one document per identity and purpose naming it, replaced whole by
 * each new link, so of parallel creates exactly one is named (voiding the
 * others with an update, as before, let each of them live). Links stored
 * before it (no such document) keep working until a newer one is made.
 */
export function createMongoLinkStore(db: Db): LinkStore {
  const links = db.collection<LinkDoc>('one_time_links');
  const uses = db.collection<{ _id: string; expiresAt: Date }>('one_time_link_uses');
  const latest = db.collection<{ _id: string; token: string; expiresAt: Date }>('one_time_link_latest');
  const latestId = (purpose: LinkPurpose, identityId: string) => `${purpose}:${identityId}`;
  /** The link is its identity's newest of its purpose, or older than the pointers. */
  async function isNewest(doc: LinkDoc): Promise<boolean> {
    const pointer = await latest.findOne({ _id: latestId(doc.purpose, doc.identityId) });
    return !pointer || pointer.token === doc._id;
  }
  return {
    async init() {
      await links.createIndex({ identityId: 1, purpose: 1, createdAt: 1 });
      await links.createIndex({ expiresAt: 1 });
      await uses.createIndex({ expiresAt: 1 });
      await latest.createIndex({ expiresAt: 1 });
    },
    async create(tokenHash, link) {
      await links.updateMany({ identityId: link.identityId, purpose: link.purpose, used: false, voided: false }, { $set: { voided: true } });
      await links.insertOne({
        _id: tokenHash,
        purpose: link.purpose,
        identityId: link.identityId,
        createdAt: link.createdAt,
        expiresAt: link.expiresAt,
        used: false,
        voided: false,
        ...(link.passwordFingerprint === undefined ? {} : { passwordFingerprint: link.passwordFingerprint }),
      });
      const pointer = { _id: latestId(link.purpose, link.identityId), token: tokenHash, expiresAt: link.expiresAt };
      try {
        await latest.replaceOne({ _id: pointer._id }, pointer, { upsert: true });
      } catch (e) {
        // Two first links upserting at once: one inserted, the other replaces it.
        if (!isDuplicateKey(e)) throw e;
        await latest.replaceOne({ _id: pointer._id }, pointer);
      }
    },
    async find(tokenHash, purpose) {
      const doc = await links.findOne({ _id: tokenHash, purpose, voided: false });
      if (!doc || !(await isNewest(doc))) return null;
      const used = doc.used || (await uses.countDocuments({ _id: tokenHash }, { limit: 1 })) > 0;
      return { ...toLink(doc), used };
    },
    async use(tokenHash, purpose, now, passwordFingerprint) {
      const doc = await links.findOne({ _id: tokenHash, purpose, voided: false, used: false, expiresAt: { $gt: now } });
      // A link's fingerprint is written once, with the link: comparing the copy read is exact.
      if (!doc || (doc.passwordFingerprint !== undefined && doc.passwordFingerprint !== passwordFingerprint) || !(await isNewest(doc))) return null;
      try {
        await uses.insertOne({ _id: tokenHash, expiresAt: doc.expiresAt });
      } catch (e) {
        if (isDuplicateKey(e)) return null;
        throw e;
      }
      await links.updateOne({ _id: tokenHash }, { $set: { used: true } });
      return toLink(doc);
    },
    async sweep(now) {
      await uses.deleteMany({ expiresAt: { $lt: now } });
      await latest.deleteMany({ expiresAt: { $lt: now } });
      return (await links.deleteMany({ expiresAt: { $lt: now } })).deletedCount;
    },
  };
}
