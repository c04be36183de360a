// The session store's contract (src/storage/sessions/port.ts) on SQLite and
// MongoDB (FerretDB here): a login's sessions, most recently seen first and
// never an expired one; logouts unique per (client, sid), leased to one
// claimer at a time across connections, retried when they fail, never sent
// again once delivered.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mongoConnections, sqliteConnections } from '../support/connections.ts';
import type { SessionRecord, SessionStore } from '../../src/storage/sessions/port.ts';
import { createSqliteSessionStore } from '../../src/storage/sessions/sqlite/index.ts';
import { createMongoSessionStore } from '../../src/storage/sessions/mongo/index.ts';

interface Harness {
  open(n: number): Promise<SessionStore[]>;
  cleanup(): Promise<void>;
}

function sqliteHarness(): Harness {
  const connections = sqliteConnections();
  return { open: async (n) => (await connections.open(n)).map(createSqliteSessionStore), cleanup: () => connections.cleanup() };
}

function mongoHarness(): Harness {
  const connections = mongoConnections();
  return {
    async open(n) {
      const stores = (await connections.open(n)).map(createMongoSessionStore);
      await stores[0]!.init();
      return stores;
    },
    cleanup: () => connections.cleanup(),
  };
}

const LEASE = 60_000;
const T0 = new Date('2026-03-01T10:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

const session = (loginId: string, over: Partial<SessionRecord> = {}): SessionRecord => ({
  uid: randomUUID(),
  key: randomUUID(),
  loginId,
  tenant: 'acme',
  clients: { 'app.example': 'sid-1', 'with.dots$and': 'sid-2' },
  signedInAt: T0,
  lastSeenAt: T0,
  expiresAt: at(3600_000),
  userAgent: 'Firefox',
  ip: '192.0.2.1',
  ...over,
});

for (const [name, make] of [
  ['sqlite', sqliteHarness],
  ['mongodb', mongoHarness],
] as const) {
  describe(`session store contract (${name})`, () => {
    let h: Harness;
    before(() => {
      h = make();
    });
    after(() => h.cleanup());

    it("lists a login's live sessions, most recently seen first, and no other login's", async () => {
      const [store] = await h.open(1);
      const old = session('alice', { lastSeenAt: at(1000) });
      const recent = session('alice', { lastSeenAt: at(5000) });
      const expired = session('alice', { expiresAt: at(2000) });
      await store!.recordSession(old);
      await store!.recordSession(recent);
      await store!.recordSession(expired);
      await store!.recordSession(session('bob'));
      const listed = await store!.listSessions('alice', at(3000));
      assert.deepEqual(
        listed.map((s) => s.uid),
        [recent.uid, old.uid],
      );
      assert.deepEqual(listed[0], recent, 'every field comes back, client ids with dots included');
      await store!.touchSession(old.uid, at(9000));
      assert.deepEqual(
        (await store!.listSessions('alice', at(3000))).map((s) => s.uid),
        [old.uid, recent.uid],
      );
      assert.equal(await store!.sweepSessions(at(3000)), 1);
      assert.equal(await store!.getSession(expired.uid), null);
    });

    it('replaces a record by uid and keeps the browser it first saw when none is given', async () => {
      const [store] = await h.open(1);
      const first = session('alice');
      await store!.recordSession(first);
      const again = { ...first, key: 'new-key', clients: { 'app.example': 'sid-9' }, lastSeenAt: at(500), userAgent: null, ip: null };
      await store!.recordSession(again);
      assert.deepEqual(await store!.getSession(first.uid), { ...again, userAgent: 'Firefox', ip: '192.0.2.1' });
      const bare = session('carol', { userAgent: null, ip: null });
      await store!.recordSession(bare);
      assert.deepEqual(await store!.getSession(bare.uid), bare);
    });

    it("keeps a record's tenant when a save names none, and sets it", async () => {
      const [store] = await h.open(1);
      const first = session('alice', { tenant: null });
      await store!.recordSession(first);
      assert.equal((await store!.getSession(first.uid))?.tenant, null, 'a record from before the tenant was kept');
      await store!.setSessionTenant(first.uid, 'acme');
      await store!.recordSession({ ...first, tenant: null, lastSeenAt: at(10) });
      assert.equal((await store!.getSession(first.uid))?.tenant, 'acme');
    });

    it('records a session found without a record, and never over one', async () => {
      const [store] = await h.open(1);
      const found = session('alice', { userAgent: null, ip: null });
      assert.equal(await store!.recordSessionIfAbsent(found), true);
      assert.deepEqual(await store!.getSession(found.uid), found);
      assert.equal(await store!.recordSessionIfAbsent({ ...found, clients: {}, lastSeenAt: at(99) }), false);
      assert.deepEqual(await store!.getSession(found.uid), found, 'the record kept is the first');
    });

    it("pages through a tenant's sessions signed in or last seen before a cut-off, in uid order", async () => {
      const [store] = await h.open(1);
      const tenant = randomUUID();
      const old = session('alice', { tenant, signedInAt: at(0), lastSeenAt: at(50_000) });
      const idle = session('bob', { tenant, signedInAt: at(20_000), lastSeenAt: at(20_000) });
      const fresh = session('carol', { tenant, signedInAt: at(20_000), lastSeenAt: at(50_000) });
      const elsewhere = session('dave', { tenant: randomUUID(), signedInAt: at(0), lastSeenAt: at(0) });
      for (const r of [old, idle, fresh, elsewhere]) await store!.recordSession(r);
      const cutoff = { signedInBefore: at(10_000), lastSeenBefore: at(30_000) };
      const all = await store!.sessionsPast(tenant, cutoff, '', 10);
      assert.deepEqual(
        all.map((r) => r.uid),
        [old.uid, idle.uid].sort(),
      );
      const [firstPage] = await store!.sessionsPast(tenant, cutoff, '', 1);
      assert.deepEqual(
        (await store!.sessionsPast(tenant, cutoff, firstPage!.uid, 10)).map((r) => r.uid),
        all.slice(1).map((r) => r.uid),
      );
      assert.deepEqual(
        (await store!.sessionsPast(tenant, { signedInBefore: at(10_000), lastSeenBefore: null }, '', 10)).map((r) => r.uid),
        [old.uid],
        'no idle test',
      );
      const untenanted = session('erin', { tenant: null, signedInAt: at(0), lastSeenAt: at(0) });
      await store!.recordSession(untenanted);
      assert.ok(
        (await store!.sessionsPast(null, cutoff, '', 1000)).some((r) => r.uid === untenanted.uid),
        'records without a tenant',
      );
    });

    it('gives the run of a job in a window to one caller of many, and never an older window', async () => {
      const stores = await h.open(3);
      const job = `job-${randomUUID()}`;
      const first = await Promise.all(stores.flatMap((s) => [s.claimRun(job, 100), s.claimRun(job, 100)]));
      assert.equal(first.filter(Boolean).length, 1);
      assert.equal(await stores[1]!.claimRun(job, 99), false, 'an older window');
      assert.equal(await stores[2]!.claimRun(job, 101), true, 'the next window');
      assert.equal(await stores[0]!.claimRun(`other-${job}`, 100), true, 'jobs apart');
    });

    it('forgets a session by uid or by the key the adapter stores it under', async () => {
      const [store] = await h.open(1);
      const a = session('alice');
      const b = session('alice');
      await store!.recordSession(a);
      await store!.recordSession(b);
      assert.equal(await store!.removeSession(a.uid), true);
      assert.equal(await store!.removeSession(a.uid), false);
      await store!.removeSessionByKey(b.key);
      assert.deepEqual(await store!.listSessions('alice', T0), []);
    });

    it('queues a logout once per (client, sid), also after it was delivered', async () => {
      const [store] = await h.open(1);
      const l = { clientId: 'app', sid: randomUUID(), loginId: 'alice', tenant: 'acme' };
      assert.equal(await store!.enqueueLogouts([l, l], T0), 1);
      assert.equal(await store!.enqueueLogouts([l, { ...l, clientId: 'other' }], T0), 1);
      const claimed = await store!.claimLogouts(T0, LEASE, 10);
      assert.equal(claimed.length, 2);
      const mine = claimed.find((c) => c.clientId === 'app')!;
      assert.deepEqual(
        { ...mine, id: undefined, createdAt: undefined },
        { ...l, id: undefined, attempts: 1, attempt: 1, createdAt: undefined, deliveredAt: null, lastError: null },
      );
      await store!.logoutDelivered(mine.id, mine.attempt, at(10));
      assert.equal(await store!.enqueueLogouts([l], at(20)), 0);
      assert.equal((await store!.findLogout('app', l.sid))!.deliveredAt!.getTime(), at(10).getTime());
      assert.deepEqual(
        (await store!.claimLogouts(at(LEASE + 1), LEASE, 10)).map((c) => c.clientId),
        ['other'],
        'the delivered one never comes back; the other one, not settled, does when its lease ends',
      );
    });

    it('leases a logout to one claimer; a failed one is due again at its retry time', async () => {
      const [store] = await h.open(1);
      const sid = randomUUID();
      await store!.enqueueLogouts([{ clientId: 'app', sid, loginId: 'alice', tenant: null }], T0);
      const [c] = await store!.claimLogouts(T0, LEASE, 10);
      assert.ok(c);
      assert.deepEqual(await store!.claimLogouts(at(1), LEASE, 10), [], 'leased');
      await store!.logoutFailed(c.id, c.attempt, at(5000), 'the receiver answered 503');
      assert.deepEqual(await store!.claimLogouts(at(4999), LEASE, 10), []);
      const [again] = await store!.claimLogouts(at(5000), LEASE, 10);
      assert.equal(again?.attempt, 2);
      assert.equal(again?.lastError, 'the receiver answered 503');
      // A late answer of the first attempt settles nothing.
      await store!.logoutDelivered(c.id, c.attempt, at(5001));
      assert.equal(await store!.pendingLogouts(), 1);
      await store!.logoutDelivered(again!.id, again!.attempt, at(5002));
      assert.equal(await store!.pendingLogouts(), 0);
      assert.equal(await store!.sweepLogouts(at(5003)), 1);
      assert.equal(await store!.findLogout('app', sid), null);
    });

    it('never hands one logout to two claimers on separate connections', async () => {
      const stores = await h.open(4);
      const list = Array.from({ length: 12 }, (_, i) => ({ clientId: 'app', sid: `s${i}-${randomUUID()}`, loginId: 'alice', tenant: 'acme' }));
      await stores[0]!.enqueueLogouts(list, T0);
      const results = await Promise.all(stores.flatMap((s) => [s.claimLogouts(T0, LEASE, 12), s.claimLogouts(T0, LEASE, 12)]));
      const ids = results.flat().map((c) => c.id);
      assert.equal(ids.length, 12);
      assert.equal(new Set(ids).size, 12);
    });

    it('never hands one logout to two claimers whose clocks straddle the edge of a lease window', async () => {
      // T0 is on a whole minute, the edge of a 60 s lease window.
      const stores = await h.open(4);
      const list = Array.from({ length: 12 }, (_, i) => ({ clientId: 'app', sid: `s${i}-${randomUUID()}`, loginId: 'alice', tenant: 'acme' }));
      await stores[0]!.enqueueLogouts(list, at(-10));
      const results = await Promise.all(stores.flatMap((s) => [at(-1), T0].flatMap((now) => [s.claimLogouts(now, LEASE, 12), s.claimLogouts(now, LEASE, 12)])));
      const ids = results.flat().map((c) => c.id);
      assert.equal(new Set(ids).size, ids.length, 'none twice');
      assert.equal(ids.length, 12);
    });
  });
}
