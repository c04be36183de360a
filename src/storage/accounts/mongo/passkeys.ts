// The passkeys of the MongoDB account store: one document per credential,
// its id the `_id`.
import { Binary, type Db } from 'mongodb';
import type { Passkey, PasskeyDeviceType, PasskeyStore } from '../port.ts';
import { checkedPasskey, checkedUse, countAdvances, credentialId, passkeyName } from '../passkey-values.ts';
import { str } from '../values.ts';
import { isDuplicateKey, oneWriterAtATime, type MarkerDoc } from '../../mongo.ts';

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
  // FerretDB writes a whole document back on every update, so a rename beside a sign-in could
  // write the old count back, and the passkey's next use would then be refused as a replay. Every
  // write of a passkey holds its marker (src/storage/mongo.ts).
  const writingPasskey = oneWriterAtATime(db.collection<MarkerDoc>('passkey_writes'));
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
      const cred = credentialId('credentialId', id);
      const update = { $set: { name: passkeyName(name) } };
      return writingPasskey(cred, async () => (await passkeys.updateOne({ _id: cred, login: str('loginId', loginId) }, update)).matchedCount === 1);
    },
    async deletePasskey(loginId, id) {
      const cred = credentialId('credentialId', id);
      return (await passkeys.deleteOne({ _id: cred, login: str('loginId', loginId) })).deletedCount === 1;
    },
    async deletePasskeys(loginId) {
      const login = str('loginId', loginId);
      return (await passkeys.deleteMany({ login })).deletedCount;
    },
    async recordPasskeyUse(id, use) {
      const u = checkedUse(use);
      const cred = credentialId('credentialId', id);
      if (!countAdvances(u)) return false;
      // Uses verified against one count run one at a time under the marker: the first moves the
      // count on, and the others' updates, conditional on the count they were verified against, miss.
      const update = { $set: { counter: u.newCounter, backedUp: u.backedUp, lastUsedAt: u.usedAt } };
      return writingPasskey(cred, async () => (await passkeys.updateOne({ _id: cred, counter: u.counter }, update)).matchedCount === 1);
    },
  };
  return {
    methods,
    async init() {
      await passkeys.createIndex({ login: 1, createdAt: 1, _id: 1 });
    },
    async dropLogin(loginId: string) {
      await methods.deletePasskeys(loginId);
    },
  };
}
