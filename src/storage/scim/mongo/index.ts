import type { Db } from 'mongodb';
import { NO_REVISION, type ScimStore, type ScimToken, type ScimUser } from '../port.ts';
import { isDuplicateKey, oneWriterAtATime, type MarkerDoc } from '../../mongo.ts';

interface TokenDoc extends Omit<ScimToken, 'id'> {
  _id: string;
}

interface UserDoc {
  _id: string;
  tenant: string;
  loginId: string;
  userName: string | null;
  externalId: string | null;
  /** Absent on documents written before revisions were kept: those are at the first. */
  revision?: number;
}

/** A claim on a userName: its `_id` is the tenant and the lower-cased name, so only one login holds it. */
interface NameDoc {
  _id: string;
  loginId: string;
}

const toToken = ({ _id, ...rest }: TokenDoc): ScimToken => ({ id: _id, ...rest, revokedAt: rest.revokedAt ?? null });
const revisionOf = (d: UserDoc) => d.revision ?? 1;
const toUser = (d: UserDoc): ScimUser => ({ tenant: d.tenant, loginId: d.loginId, userName: d.userName ?? null, externalId: d.externalId ?? null, revision: revisionOf(d) });
const userKey = (tenant: string, loginId: string) => `${tenant}\n${loginId}`;
const nameKey = (tenant: string, userName: string) => `${tenant}\n${userName.toLowerCase()}`;

/**
 * SCIM in the collections `scim_tokens`, `scim_users` and `scim_user_names`.
 * A userName is claimed by a unique `_id` in `scim_user_names` before the
 * login's document takes it (no partial unique index is needed, which
 * FerretDB 1.24 may lack): of two logins, one claim wins. A login's
 * document is read, compared with the revision asked for and written while
 * its writer holds the login's marker in `scim_user_writes`, since
 * FerretDB's own conditional update is not atomic (docs/storage.md).
 */
export function createMongoScimStore(db: Db): ScimStore {
  const tokens = db.collection<TokenDoc>('scim_tokens');
  const users = db.collection<UserDoc>('scim_users');
  const names = db.collection<NameDoc>('scim_user_names');
  const writing = oneWriterAtATime(db.collection<MarkerDoc>('scim_user_writes'));

  async function claim(tenant: string, userName: string, loginId: string): Promise<boolean> {
    try {
      await names.insertOne({ _id: nameKey(tenant, userName), loginId });
      return true;
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
      const held = await names.findOne({ _id: nameKey(tenant, userName) });
      return held?.loginId === loginId;
    }
  }

  return {
    async init() {
      await tokens.createIndex({ hash: 1 }, { unique: true });
      await tokens.createIndex({ tenant: 1, createdAt: 1 });
      await users.createIndex({ tenant: 1, externalId: 1 });
    },
    async addToken({ id, ...rest }) {
      await tokens.insertOne({ _id: id, ...rest, revokedAt: null });
    },
    async findToken(hash) {
      const doc = await tokens.findOne({ hash, revokedAt: null });
      return doc ? toToken(doc) : null;
    },
    async listTokens(tenant) {
      return (await tokens.find({ tenant }).sort({ createdAt: 1, _id: 1 }).toArray()).map(toToken);
    },
    async revokeToken(tenant, id, now) {
      return (await tokens.updateOne({ _id: id, tenant, revokedAt: null }, { $set: { revokedAt: now } })).modifiedCount === 1;
    },
    async getUser(tenant, loginId) {
      const doc = await users.findOne({ _id: userKey(tenant, loginId) });
      return doc ? toUser(doc) : null;
    },
    async getUsers(tenant, loginIds) {
      if (!loginIds.length) return [];
      return (await users.find({ _id: { $in: loginIds.map((id) => userKey(tenant, id)) } }).toArray()).map(toUser);
    },
    async findByUserName(tenant, userName) {
      const held = await names.findOne({ _id: nameKey(tenant, userName) });
      if (!held) return null;
      const doc = await users.findOne({ _id: userKey(tenant, held.loginId) });
      // A claim whose login took another name meanwhile (or never finished taking it) names nobody.
      return doc && doc.userName !== null && doc.userName.toLowerCase() === userName.toLowerCase() ? toUser(doc) : null;
    },
    async findByExternalId(tenant, externalId) {
      return (await users.find({ tenant, externalId }).sort({ loginId: 1 }).toArray()).map(toUser);
    },
    async setUserIf(revision, u) {
      const id = userKey(u.tenant, u.loginId);
      return writing(id, async () => {
        const before = await users.findOne({ _id: id });
        if ((before ? revisionOf(before) : NO_REVISION) !== revision) return 'changed' as const;
        if (u.userName !== null && !(await claim(u.tenant, u.userName, u.loginId))) return 'taken' as const;
        const values = { tenant: u.tenant, loginId: u.loginId, userName: u.userName, externalId: u.externalId, revision: revision + 1 };
        if (before) await users.updateOne({ _id: id }, { $set: values });
        else {
          try {
            await users.insertOne({ _id: id, ...values });
          } catch (e) {
            // Only a writer that holds no marker (a process of an older version) inserts beside this one.
            if (isDuplicateKey(e)) return 'changed' as const;
            throw e;
          }
        }
        const old = before?.userName;
        if (old && (u.userName === null || old.toLowerCase() !== u.userName.toLowerCase())) await names.deleteOne({ _id: nameKey(u.tenant, old), loginId: u.loginId });
        return { revision: revision + 1 };
      });
    },
    async removeUser(tenant, loginId) {
      const doc = await writing(userKey(tenant, loginId), () => users.findOneAndDelete({ _id: userKey(tenant, loginId) }));
      if (doc?.userName) await names.deleteOne({ _id: nameKey(tenant, doc.userName), loginId });
    },
  };
}
