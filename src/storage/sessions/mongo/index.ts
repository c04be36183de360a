import type { Db } from 'mongodb';
import { logoutId, type ClaimedLogout, type Logout, type SessionRecord, type SessionStore } from '../port.ts';
import { isDuplicateKey, takeClaim } from '../../mongo.ts';

interface SessionDoc {
  /** The session's uid. */
  _id: string;
  key: string;
  loginId: string;
  /** Absent in a record written before the tenant was kept. */
  tenant?: string | null;
  /** An array: client ids may hold characters a field name may not. */
  clients: { clientId: string; sid: string }[];
  signedInAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  userAgent: string | null;
  ip: string | null;
}

interface LogoutDoc {
  _id: string;
  clientId: string;
  sid: string;
  loginId: string;
  tenant: string | null;
  attempts: number;
  dueAt: Date;
  createdAt: Date;
  deliveredAt: Date | null;
  lastError: string | null;
}

interface RunDoc {
  /** `{job}:{window}`: the unique insert decides who runs the job in that window. */
  _id: string;
  job: string;
  window: number;
}

interface ClaimDoc {
  /** `{logout}:{attempts}:{lease window}`: the unique inserts decide who takes this attempt (`takeClaim`). */
  _id: string;
  logout: string;
}

const toSession = (d: SessionDoc): SessionRecord => ({
  uid: d._id,
  key: d.key,
  loginId: d.loginId,
  tenant: d.tenant ?? null,
  clients: Object.fromEntries(d.clients.map((c) => [c.clientId, c.sid])),
  signedInAt: d.signedInAt,
  lastSeenAt: d.lastSeenAt,
  expiresAt: d.expiresAt,
  userAgent: d.userAgent ?? null,
  ip: d.ip ?? null,
});

const toLogout = (d: LogoutDoc): Logout => ({
  id: d._id,
  clientId: d.clientId,
  sid: d.sid,
  loginId: d.loginId,
  tenant: d.tenant ?? null,
  attempts: d.attempts,
  createdAt: d.createdAt,
  deliveredAt: d.deliveredAt ?? null,
  lastError: d.lastError ?? null,
});

/**
 * The session index in the collection `sessions`, the logout queue in
 * `logouts` and `logout_claims`. FerretDB 1.24's conditional updates are not
 * atomic (docs/storage.md), so a claim is decided by unique inserts of
 * markers per logout, attempt and lease window (`takeClaim`); a logout is
 * unique per (client, sid) by its `_id`. No TTL index: the sweeps remove what
 * expired or was delivered.
 */
export function createMongoSessionStore(db: Db): SessionStore {
  const sessions = db.collection<SessionDoc>('sessions');
  const logouts = db.collection<LogoutDoc>('logouts');
  const claims = db.collection<ClaimDoc>('logout_claims');
  const runs = db.collection<RunDoc>('job_runs');
  const docOf = (r: SessionRecord) => ({
    key: r.key,
    loginId: r.loginId,
    clients: Object.entries(r.clients).map(([clientId, sid]) => ({ clientId, sid })),
    signedInAt: r.signedInAt,
    lastSeenAt: r.lastSeenAt,
    expiresAt: r.expiresAt,
  });
  return {
    async init() {
      await sessions.createIndex({ loginId: 1, expiresAt: 1 });
      await sessions.createIndex({ key: 1 });
      await logouts.createIndex({ deliveredAt: 1, dueAt: 1 });
      await claims.createIndex({ logout: 1 });
      await sessions.createIndex({ tenant: 1, signedInAt: 1 });
      await sessions.createIndex({ tenant: 1, lastSeenAt: 1 });
      await runs.createIndex({ job: 1, window: 1 });
    },
    async recordSession(r) {
      const seen = docOf(r);
      const browser = { tenant: r.tenant, userAgent: r.userAgent, ip: r.ip };
      const given = Object.fromEntries(Object.entries(browser).filter(([, v]) => v !== null));
      const missing = Object.fromEntries(Object.entries(browser).filter(([, v]) => v === null));
      await sessions.updateOne({ _id: r.uid }, { $set: { ...seen, ...given }, ...(Object.keys(missing).length ? { $setOnInsert: missing } : {}) }, { upsert: true });
    },
    async recordSessionIfAbsent(r) {
      try {
        await sessions.insertOne({ _id: r.uid, ...docOf(r), tenant: r.tenant, userAgent: r.userAgent, ip: r.ip });
        return true;
      } catch (e) {
        if (isDuplicateKey(e)) return false;
        throw e;
      }
    },
    async sessionsPast(tenant, { signedInBefore, lastSeenBefore }, afterUid, limit) {
      const past = [{ signedInAt: { $lt: signedInBefore } }, ...(lastSeenBefore ? [{ lastSeenAt: { $lt: lastSeenBefore } }] : [])];
      const docs = await sessions
        .find({ tenant, _id: { $gt: afterUid }, $or: past })
        .sort({ _id: 1 })
        .limit(limit)
        .toArray();
      return docs.map(toSession);
    },
    async setSessionTenant(uid, tenant) {
      await sessions.updateOne({ _id: uid }, { $set: { tenant } });
    },
    async claimRun(job, window) {
      // A window older than one taken is refused too: a run whose clock lags never repeats a later one.
      if (await runs.findOne({ job, window: { $gte: window } })) return false;
      try {
        await runs.insertOne({ _id: `${job}:${window}`, job, window });
      } catch (e) {
        if (isDuplicateKey(e)) return false;
        throw e;
      }
      await runs.deleteMany({ job, window: { $lt: window } });
      return true;
    },
    async touchSession(uid, at) {
      await sessions.updateOne({ _id: uid }, { $set: { lastSeenAt: at } });
    },
    async getSession(uid) {
      const doc = await sessions.findOne({ _id: uid });
      return doc ? toSession(doc) : null;
    },
    async listSessions(loginId, now) {
      const docs = await sessions
        .find({ loginId, expiresAt: { $gt: now } })
        .sort({ lastSeenAt: -1, _id: 1 })
        .toArray();
      return docs.map(toSession);
    },
    async removeSession(uid) {
      return (await sessions.deleteOne({ _id: uid })).deletedCount > 0;
    },
    async removeSessionByKey(key) {
      await sessions.deleteMany({ key });
    },
    async sweepSessions(before) {
      return (await sessions.deleteMany({ expiresAt: { $lt: before } })).deletedCount;
    },
    async enqueueLogouts(list, now) {
      let added = 0;
      for (const l of list) {
        try {
          await logouts.insertOne({
            _id: logoutId(l.clientId, l.sid),
            clientId: l.clientId,
            sid: l.sid,
            loginId: l.loginId,
            tenant: l.tenant,
            attempts: 0,
            dueAt: now,
            createdAt: now,
            deliveredAt: null,
            lastError: null,
          });
          added++;
        } catch (e) {
          if (!isDuplicateKey(e)) throw e;
        }
      }
      return added;
    },
    async claimLogouts(now, leaseMs, limit) {
      const due = await logouts
        .find({ deliveredAt: null, dueAt: { $lte: now } })
        .sort({ dueAt: 1, createdAt: 1 })
        .limit(limit)
        .toArray();
      const claimed: ClaimedLogout[] = [];
      for (const doc of due) {
        if (!(await takeClaim(claims, `${doc._id}:${doc.attempts}`, now, leaseMs, (_id) => ({ _id, logout: doc._id })))) continue;
        const leased = await logouts.updateOne(
          { _id: doc._id, attempts: doc.attempts, deliveredAt: null },
          { $set: { dueAt: new Date(now.getTime() + leaseMs) }, $inc: { attempts: 1 } },
        );
        if (leased.modifiedCount !== 1) continue;
        claimed.push({ ...toLogout(doc), attempts: doc.attempts + 1, attempt: doc.attempts + 1 });
      }
      return claimed;
    },
    async logoutDelivered(id, attempt, now) {
      await logouts.updateOne({ _id: id, attempts: attempt, deliveredAt: null }, { $set: { deliveredAt: now, lastError: null } });
      await claims.deleteMany({ logout: id });
    },
    async logoutFailed(id, attempt, retryAt, error) {
      await logouts.updateOne({ _id: id, attempts: attempt, deliveredAt: null }, { $set: { dueAt: retryAt, lastError: error.slice(0, 500) } });
    },
    async findLogout(clientId, sid) {
      const doc = await logouts.findOne({ _id: logoutId(clientId, sid) });
      return doc ? toLogout(doc) : null;
    },
    async pendingLogouts() {
      return logouts.countDocuments({ deliveredAt: null });
    },
    async sweepLogouts(before) {
      const { deletedCount } = await logouts.deleteMany({ deliveredAt: { $ne: null, $lt: before } });
      return deletedCount;
    },
  };
}
