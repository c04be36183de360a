// The passkeys of the MongoDB account store: one document per credential,
// its id the `_id`.
import { Binary, type Db } from 'mongodb';
import type { Passkey, PasskeyDeviceType, PasskeyStore } from '../port.ts';
import { checkedPasskey, checkedUse, countAdvances, credentialId, passkeyName } from '../passkey-values.ts';
import { str } from '../values.ts';
import { isDuplicateKey } from '../../mongo.ts';

interface PasskeyDoc {
  _id: string;
  login: string;
  tenant: string;
  userHandle: string;
  name: string;
  publicKey: Binary;
  counter: number;
  transports: string[];
  deviceType: string;
  backedUp: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** One per accepted (credential, count): the unique `_id` decides a race (see `recordPasskeyUse`). */
interface UseDoc {
  _id: string;
  credential: string;
  counter: number;
}

/** The driver reads binary fields as `Binary`; callers get a plain Uint8Array of its content. */
const bytes = (b: Binary): Uint8Array => Uint8Array.from(b.buffer.subarray(0, b.position));

const toPasskey = (d: PasskeyDoc): Passkey => ({
  id: d._id,
  loginId: d.login,
  tenant: d.tenant,
  userHandle: d.userHandle,
  name: d.name,
  publicKey: bytes(d.publicKey),
  counter: d.counter,
  transports: [...(d.transports ?? [])],
  deviceType: d.deviceType as PasskeyDeviceType,
  backedUp: d.backedUp === true,
  createdAt: d.createdAt,
  lastUsedAt: d.lastUsedAt ?? null,
});

/** The passkey methods on `db`, `init` for its indexes, and `dropLogin` for the login's deletion. */
export function mongoPasskeys(db: Db) {
  const passkeys = db.collection<PasskeyDoc>('passkeys');
  const uses = db.collection<UseDoc>('passkey_uses');
  const methods: PasskeyStore = {
    async addPasskey(passkey) {
      const p = checkedPasskey(passkey);
      try {
        await passkeys.insertOne({
          _id: p.id,
          login: p.loginId,
          tenant: p.tenant,
          userHandle: p.userHandle,
          name: p.name,
          publicKey: new Binary(p.publicKey),
          counter: p.counter,
          transports: p.transports,
          deviceType: p.deviceType,
          backedUp: p.backedUp,
          createdAt: p.createdAt,
          lastUsedAt: p.lastUsedAt,
        });
        return true;
      } catch (e) {
        if (isDuplicateKey(e)) return false;
        throw e;
      }
    },
    async getPasskey(id) {
      const doc = await passkeys.findOne({ _id: credentialId('credentialId', id) });
      return doc ? toPasskey(doc) : null;
    },
    async listPasskeys(loginId) {
      const docs = await passkeys
        .find({ login: str('loginId', loginId) })
        .sort({ createdAt: 1, _id: 1 })
        .toArray();
      return docs.map(toPasskey);
    },
    async renamePasskey(loginId, id, name) {
      const result = await passkeys.updateOne({ _id: credentialId('credentialId', id), login: str('loginId', loginId) }, { $set: { name: passkeyName(name) } });
      return result.matchedCount === 1;
    },
    async deletePasskey(loginId, id) {
      const cred = credentialId('credentialId', id);
      const result = await passkeys.deleteOne({ _id: cred, login: str('loginId', loginId) });
      if (result.deletedCount === 1) await uses.deleteMany({ credential: cred });
      return result.deletedCount === 1;
    },
    async deletePasskeys(loginId) {
      const login = str('loginId', loginId);
      const ids = (await passkeys.find({ login }, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
      const result = await passkeys.deleteMany({ login });
      if (ids.length) await uses.deleteMany({ credential: { $in: ids } });
      return result.deletedCount;
    },
    async recordPasskeyUse(id, use) {
      const u = checkedUse(use);
      const cred = credentialId('credentialId', id);
      if (!countAdvances(u)) return false;
      // FerretDB 1.24 runs a conditional update as read, compare, write, so two
      // uses verified against one count could both match. A unique insert is
      // atomic there: one marker per count the use moves on from decides. An
      // authenticator without a count (0 → 0) has nothing to race over.
      if (u.newCounter > 0) {
        try {
          await uses.insertOne({ _id: `${cred}:${u.counter}`, credential: cred, counter: u.counter });
        } catch (e) {
          if (isDuplicateKey(e)) return false;
          throw e;
        }
      }
      const result = await passkeys.updateOne({ _id: cred, counter: u.counter }, { $set: { counter: u.newCounter, backedUp: u.backedUp, lastUsedAt: u.usedAt } });
      if (result.matchedCount !== 1) return false;
      if (u.newCounter > 0) await uses.deleteMany({ credential: cred, counter: { $lt: u.counter } });
      return true;
    },
  };
  return {
    methods,
    async init() {
      await passkeys.createIndex({ login: 1, createdAt: 1, _id: 1 });
      await uses.createIndex({ credential: 1 });
    },
    async dropLogin(loginId: string) {
      await methods.deletePasskeys(loginId);
    },
  };
}
