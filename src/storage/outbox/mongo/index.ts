import { randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import type { OutboxStore, OutgoingMail, QueuedMail } from '../port.ts';
import { takeClaim } from '../../mongo.ts';

interface MailDoc extends OutgoingMail {
  _id: string;
  attempts: number;
  dueAt: Date;
  createdAt: Date;
  sentAt: Date | null;
  lastError?: string;
}

interface ClaimDoc {
  /** `{message}:{attempts}:{lease window}`: the unique inserts decide who takes this attempt (`takeClaim`). */
  _id: string;
  message: string;
}

/**
 * The outbox in the collections `outbox` and `outbox_claims`. FerretDB 1.24's
 * conditional updates are not atomic (docs/storage.md), so a claim is decided
 * by unique inserts of markers per message, attempt and lease window
 * (`takeClaim`): one caller wins, and a winner that died before leasing the
 * message holds it back for two windows at most. No TTL index: `sweep`
 * removes what was delivered.
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
        if (!(await takeClaim(claims, `${doc._id}:${doc.attempts}`, now, leaseMs, (_id) => ({ _id, message: doc._id })))) continue;
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
