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
 */
export function createMongoLinkStore(db: Db): LinkStore {
  const links = db.collection<LinkDoc>('one_time_links');
  const uses = db.collection<{ _id: string; expiresAt: Date }>('one_time_link_uses');
  return {
    async init() {
      await links.createIndex({ identityId: 1, purpose: 1, createdAt: 1 });
      await links.createIndex({ expiresAt: 1 });
      await uses.createIndex({ expiresAt: 1 });
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
    },
    async find(tokenHash, purpose) {
      const doc = await links.findOne({ _id: tokenHash, purpose, voided: false });
      if (!doc) return null;
      const used = doc.used || (await uses.countDocuments({ _id: tokenHash }, { limit: 1 })) > 0;
      return { ...toLink(doc), used };
    },
    async use(tokenHash, purpose, now, passwordFingerprint) {
      const doc = await links.findOne({ _id: tokenHash, purpose, voided: false, used: false, expiresAt: { $gt: now } });
      // A link's fingerprint is written once, with the link: comparing the copy read is exact.
      if (!doc || (doc.passwordFingerprint !== undefined && doc.passwordFingerprint !== passwordFingerprint)) return null;
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
      return (await links.deleteMany({ expiresAt: { $lt: now } })).deletedCount;
    },
  };
}
