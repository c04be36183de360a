import { randomUUID } from 'node:crypto';
import { MongoServerError, type Db } from 'mongodb';
import type { OutboxStore, OutgoingMail, QueuedMail } from '../port.ts';

interface MailDoc extends OutgoingMail {
  _id: string;
  attempts: number;
  dueAt: Date;
  createdAt: Date;
  sentAt: Date | null;
  lastError?: string;
}

interface ClaimDoc {
  /** `{message}:{attempts}:{lease window}`: the unique insert decides who takes this attempt. */
  _id: string;
  message: string;
}

const DUPLICATE_KEY = 11000;
const isDuplicateKey = (e: unknown) => e instanceof MongoServerError && e.code === DUPLICATE_KEY;

/**
 * The outbox in the collections `outbox` and `outbox_claims`. FerretDB 1.24's
 * conditional updates are not atomic (docs/storage.md), so a claim is decided
 * by a unique insert of a marker per message, attempt and lease window: one
 * caller wins, and a winner that died before leasing the message leaves it to
 * the next window. No TTL index: `sweep` removes what was delivered.
 */
export function createMongoOutboxStore(db: Db): OutboxStore {
  const mails = db.collection<MailDoc>('outbox');
  const claims = db.collection<ClaimDoc>('outbox_claims');
  return {
    async init() {
      await mails.createIndex({ sentAt: 1, dueAt: 1 });
      await claims.createIndex({ message: 1 });
    },
    async enqueue(mail, now) {
      const id = randomUUID();
      await mails.insertOne({
        _id: id,
        kind: mail.kind,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        tenant: mail.tenant,
        attempts: 0,
        dueAt: now,
        createdAt: now,
        sentAt: null,
      });
      return id;
    },
    async claim(now, leaseMs, limit) {
      const due = await mails
        .find({ sentAt: null, dueAt: { $lte: now } })
        .sort({ dueAt: 1, createdAt: 1 })
        .limit(limit)
        .toArray();
      const claimed: QueuedMail[] = [];
      for (const doc of due) {
        try {
          await claims.insertOne({ _id: `${doc._id}:${doc.attempts}:${Math.floor(now.getTime() / leaseMs)}`, message: doc._id });
        } catch (e) {
          if (isDuplicateKey(e)) continue;
          throw e;
        }
        const leased = await mails.updateOne({ _id: doc._id, attempts: doc.attempts, sentAt: null }, { $set: { dueAt: new Date(now.getTime() + leaseMs) }, $inc: { attempts: 1 } });
        if (leased.modifiedCount !== 1) continue;
        claimed.push({
          id: doc._id,
          kind: doc.kind,
          to: doc.to,
          subject: doc.subject,
          text: doc.text,
          html: doc.html,
          tenant: doc.tenant ?? null,
          attempt: doc.attempts + 1,
          createdAt: doc.createdAt,
        });
      }
      return claimed;
    },
    async delivered(id, attempt, now) {
      await mails.updateOne({ _id: id, attempts: attempt }, { $set: { sentAt: now, text: '', html: '' }, $unset: { lastError: '' } });
      await claims.deleteMany({ message: id });
    },
    async failed(id, attempt, retryAt, error) {
      await mails.updateOne({ _id: id, attempts: attempt, sentAt: null }, { $set: { dueAt: retryAt, lastError: error.slice(0, 500) } });
    },
    async pending() {
      return mails.countDocuments({ sentAt: null });
    },
    async sweep(before) {
      return (await mails.deleteMany({ sentAt: { $ne: null, $lt: before } })).deletedCount;
    },
  };
}
