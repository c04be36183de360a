// One read per request (src/storage/accounts/request-memo.ts) over the real
// SQLite account store, its reads counted: inside a request scope a hot record
// is read once and answered with copies; a write in the request is read back;
// another request, or code outside any request, reads the store.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { AccountStore, Client } from '../../src/storage/accounts/port.ts';
import { createSqliteAccountStore } from '../../src/storage/accounts/sqlite/index.ts';
import { inRequestScope, keptPerRequest } from '../../src/storage/accounts/request-memo.ts';
import { tempDir } from '../support/tmp.ts';

const dir = tempDir('lk-request-memo-');
after(() => dir.remove());
let count = 0;

const client = (clientId: string, secret: string): Client => ({
  clientId,
  tenant: 'acme',
  firstParty: true,
  metadata: { client_id: clientId, client_secret: secret, redirect_uris: ['https://app.example/cb'] },
});

/** A fresh SQLite store with its client and login reads counted (each a real read), and the same store behind the memo. */
async function counted() {
  const db = new Database(join(dir.path, `accounts-${++count}.db`));
  const inner = createSqliteAccountStore(db);
  await inner.init();
  const reads = { getClient: 0, getLogin: 0 };
  const failNext = { getClient: false };
  const counting: AccountStore = {
    ...inner,
    getClient: async (id) => {
      reads.getClient++;
      if (failNext.getClient) {
        failNext.getClient = false;
        throw new Error('store unreachable');
      }
      return inner.getClient(id);
    },
    getLogin: (id) => (reads.getLogin++, inner.getLogin(id)),
  };
  await inner.upsertClient(client('web', 'first'));
  return { store: keptPerRequest(counting), reads, failNext, close: () => db.close() };
}

describe('one read per request', () => {
  it('reads a client once in a request and answers later reads with copies', async () => {
    const { store, reads, close } = await counted();
    await inRequestScope(async () => {
      const [a, b] = await Promise.all([store.getClient('web'), store.getClient('web')]);
      const first = await store.getClient('web');
      first!.metadata.client_secret = 'changed by a caller';
      const again = await store.getClient('web');
      assert.equal(reads.getClient, 1, 'one store read for the whole request');
      assert.equal(again!.metadata.client_secret, 'first', 'a caller changing its object changes nothing for the next');
      assert.notEqual(a, b, 'each caller gets its own object');
      assert.deepEqual(a, b);
    });
    close();
  });

  it('a write in the request is read back: a rotated secret, a disabled login', async () => {
    const { store, reads, close } = await counted();
    await store.upsertTenant({ id: 'acme', name: 'Acme', owners: [], userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }], stepUpEnrollment: false });
    await store.createLogin({ id: 'l1', tenant: 'acme', email: 'l1@example.com', userType: 'staff', firstName: 'Ada', lastName: 'Lovelace' });
    await inRequestScope(async () => {
      assert.equal((await store.getClient('web'))!.metadata.client_secret, 'first');
      assert.equal((await store.getLogin('l1'))!.disabled, false);
      await store.upsertClient(client('web', 'second'));
      await store.setLoginDisabled('l1', true);
      assert.equal((await store.getClient('web'))!.metadata.client_secret, 'second');
      assert.equal((await store.getLogin('l1'))!.disabled, true);
    });
    assert.deepEqual(reads, { getClient: 2, getLogin: 2 });
    close();
  });

  it('an audit row or a grant record keeps what the request read', async () => {
    const { store, reads, close } = await counted();
    await inRequestScope(async () => {
      await store.getClient('web');
      await store.appendAudit({ tenant: 'acme', login: null, type: 'signin.success', outcome: 'success', time: new Date(), ip: null, userAgent: null });
      await store.addLoginGrant('l1', 'grant-1', new Date(Date.now() + 60_000));
      await store.getClient('web');
    });
    assert.equal(reads.getClient, 1);
    close();
  });

  it('a read in flight while the request writes is not kept', async () => {
    const { store, reads, close } = await counted();
    await inRequestScope(async () => {
      const reading = store.getClient('web');
      await store.upsertClient(client('web', 'second'));
      await reading;
      assert.equal((await store.getClient('web'))!.metadata.client_secret, 'second');
    });
    assert.equal(reads.getClient, 2);
    close();
  });

  it('a failed read is not kept: the next one asks the store again', async () => {
    const { store, reads, failNext, close } = await counted();
    failNext.getClient = true;
    await inRequestScope(async () => {
      await assert.rejects(store.getClient('web'), /store unreachable/);
      assert.equal((await store.getClient('web'))!.metadata.client_secret, 'first');
    });
    assert.equal(reads.getClient, 2);
    close();
  });

  it('each request reads for itself, and nothing is kept outside a request', async () => {
    const { store, reads, close } = await counted();
    await Promise.all([inRequestScope(() => store.getClient('web')), inRequestScope(() => store.getClient('web'))]);
    assert.equal(reads.getClient, 2, 'two requests, two reads');
    await store.getClient('web');
    await store.getClient('web');
    assert.equal(reads.getClient, 4, 'no request, no keeping');
    await inRequestScope(() => store.getClient('web'));
    await store.upsertClient(client('web', 'second'));
    assert.equal((await inRequestScope(() => store.getClient('web')))!.metadata.client_secret, 'second', 'a later request sees a write made between requests');
    close();
  });
});
