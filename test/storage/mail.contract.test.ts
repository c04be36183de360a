// The outbox and one-time-link contracts (src/storage/outbox/port.ts,
// src/storage/links/port.ts), run against SQLite and MongoDB (FerretDB here),
// with the parallel cases through separate connections, as separate app
// processes would make them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mongoConnections, sqliteConnections } from '../support/connections.ts';
import type { OutboxStore, OutgoingMail } from '../../src/storage/outbox/port.ts';
import type { LinkStore } from '../../src/storage/links/port.ts';
import { createSqliteOutboxStore } from '../../src/storage/outbox/sqlite/index.ts';
import { createMongoOutboxStore } from '../../src/storage/outbox/mongo/index.ts';
import { createSqliteLinkStore } from '../../src/storage/links/sqlite/index.ts';
import { createMongoLinkStore } from '../../src/storage/links/mongo/index.ts';

interface Harness {
  /** Stores over `n` separate connections to one database. */
  open(n: number): Promise<{ outboxes: OutboxStore[]; links: LinkStore[] }>;
  cleanup(): Promise<void>;
}

function sqliteHarness(): Harness {
  const connections = sqliteConnections();
  return {
    async open(n) {
      const dbs = await connections.open(n);
      return { outboxes: dbs.map(createSqliteOutboxStore), links: dbs.map(createSqliteLinkStore) };
    },
    cleanup: () => connections.cleanup(),
  };
}

function mongoHarness(): Harness {
  const connections = mongoConnections();
  return {
    async open(n) {
      const dbs = await connections.open(n);
      const outboxes = dbs.map(createMongoOutboxStore);
      const links = dbs.map(createMongoLinkStore);
      await outboxes[0]!.init();
      await links[0]!.init();
      return { outboxes, links };
    },
    cleanup: () => connections.cleanup(),
  };
}

const mail = (i: number): OutgoingMail => ({
  kind: 'test',
  to: `p${i}@example.test`,
  subject: `s${i}`,
  text: `link https://id.example/reset/${i}`,
  html: `<p>${i}</p>`,
  tenant: 'acme',
});
const hashOf = (token: string) => createHash('sha256').update(token).digest('base64url');
const LEASE = 60_000;

for (const [name, make] of [
  ['sqlite', sqliteHarness],
  ['mongodb', mongoHarness],
] as const) {
  describe(`outbox contract (${name})`, () => {
    let h: Harness;
    before(() => {
      h = make();
    });
    after(() => h.cleanup());

    it('claims a due message once, with its content and attempt number; delivered drops its text', async () => {
      const {
        outboxes: [box],
      } = await h.open(1);
      const now = new Date();
      const id = await box!.enqueue(mail(1), now);
      assert.equal(await box!.pending(), 1);
      const [claimed, ...rest] = await box!.claim(now, LEASE, 10);
      assert.equal(rest.length, 0);
      assert.equal(claimed!.id, id);
      assert.equal(claimed!.attempt, 1);
      assert.equal(claimed!.to, 'p1@example.test');
      assert.equal(claimed!.text, mail(1).text);
      assert.deepEqual(await box!.claim(now, LEASE, 10), [], 'leased: not claimed again');
      await box!.delivered(id, claimed!.attempt, now);
      assert.equal(await box!.pending(), 0);
      assert.deepEqual(await box!.claim(new Date(now.getTime() + 10 * LEASE), LEASE, 10), [], 'delivered: never again');
    });

    it('a failed attempt is due again at its retry time; a lease that ends unsettled makes it due again', async () => {
      const {
        outboxes: [box],
      } = await h.open(1);
      const t0 = new Date();
      const id = await box!.enqueue(mail(2), t0);
      const [first] = await box!.claim(t0, LEASE, 10);
      const retryAt = new Date(t0.getTime() + 5_000);
      await box!.failed(id, first!.attempt, retryAt, 'connection refused');
      assert.deepEqual(await box!.claim(new Date(retryAt.getTime() - 1), LEASE, 10), []);
      const [second] = await box!.claim(retryAt, LEASE, 10);
      assert.equal(second!.attempt, 2);
      // The process holding attempt 2 dies: after the lease the message is due again.
      const later = new Date(retryAt.getTime() + LEASE);
      const [third] = await box!.claim(later, LEASE, 10);
      assert.equal(third!.attempt, 3);
      await box!.delivered(id, 2, later);
      assert.equal(await box!.pending(), 1, 'a stale attempt settles nothing');
      await box!.delivered(id, 3, later);
      assert.equal(await box!.pending(), 0);
    });

    it('parallel claimers over separate connections never get the same message', async () => {
      const { outboxes } = await h.open(4);
      const now = new Date();
      const ids = new Set<string>();
      for (let i = 0; i < 12; i++) ids.add(await outboxes[0]!.enqueue(mail(i), now));
      const rounds = await Promise.all(outboxes.flatMap((box) => [box.claim(now, LEASE, 12), box.claim(now, LEASE, 12)]));
      const claimed = rounds.flat().map((m) => m.id);
      assert.equal(new Set(claimed).size, claimed.length, 'no message claimed twice');
      assert.deepEqual(new Set(claimed), ids, 'every message claimed');
    });

    it('parallel claimers whose clocks straddle the edge of a lease window never get the same message', async () => {
      const { outboxes } = await h.open(4);
      const edge = (Math.floor(Date.now() / LEASE) + 1) * LEASE;
      const ids = new Set<string>();
      for (let i = 0; i < 12; i++) ids.add(await outboxes[0]!.enqueue(mail(i), new Date(edge - 10)));
      const clocks = [new Date(edge - 1), new Date(edge)];
      const rounds = await Promise.all(outboxes.flatMap((box) => clocks.flatMap((now) => [box.claim(now, LEASE, 12), box.claim(now, LEASE, 12)])));
      const claimed = rounds.flat().map((m) => m.id);
      assert.equal(new Set(claimed).size, claimed.length, 'no message claimed twice');
      assert.deepEqual(new Set(claimed), ids, 'every message claimed');
    });

    it('sweeps delivered messages only', async () => {
      const {
        outboxes: [box],
      } = await h.open(1);
      const now = new Date();
      const sent = await box!.enqueue(mail(3), now);
      await box!.enqueue(mail(4), new Date(now.getTime() + 1));
      const claimed = await box!.claim(now, LEASE, 1);
      await box!.delivered(sent, claimed[0]!.attempt, now);
      assert.equal(await box!.sweep(new Date(now.getTime() + 1)), 1);
      assert.equal(await box!.pending(), 1);
    });
  });

  describe(`one-time link contract (${name})`, () => {
    let h: Harness;
    before(() => {
      h = make();
    });
    after(() => h.cleanup());

    const FP = 'fingerprint-of-the-password';
    const link = (identityId: string, now: Date, ttlMs = 30 * 60_000) => ({
      purpose: 'reset' as const,
      identityId,
      createdAt: now,
      expiresAt: new Date(now.getTime() + ttlMs),
      passwordFingerprint: FP,
    });

    it('finds a link by its hash, uses it once, and says it was used', async () => {
      const {
        links: [store],
      } = await h.open(1);
      const now = new Date();
      const hash = hashOf(randomUUID());
      await store!.create(hash, link('id-1', now));
      assert.equal((await store!.find(hash, 'reset'))?.used, false);
      assert.equal(await store!.find(hash, 'invite'), null, 'another purpose');
      assert.equal((await store!.use(hash, 'reset', now, FP))?.identityId, 'id-1');
      assert.equal(await store!.use(hash, 'reset', now, FP), null, 'never twice');
      assert.equal((await store!.find(hash, 'reset'))?.used, true);
    });

    it('refuses an expired link but still finds it; a newer link voids the older one', async () => {
      const {
        links: [store],
      } = await h.open(1);
      const now = new Date();
      const old = hashOf(randomUUID());
      const expired = hashOf(randomUUID());
      await store!.create(expired, { ...link('id-x', new Date(now.getTime() - 60_000), 1_000), purpose: 'invite' });
      assert.equal(await store!.use(expired, 'invite', now, FP), null);
      assert.ok(await store!.find(expired, 'invite'), 'an expired link is still found, so the page can say so');
      await store!.create(old, link('id-2', now));
      const fresh = hashOf(randomUUID());
      await store!.create(fresh, link('id-2', new Date(now.getTime() + 1)));
      assert.equal(await store!.find(old, 'reset'), null, 'voided');
      assert.equal(await store!.use(old, 'reset', now, FP), null);
      assert.equal((await store!.use(fresh, 'reset', now, FP))?.identityId, 'id-2');
      assert.ok((await store!.sweep(new Date(now.getTime() + 31 * 60_000))) >= 3);
      assert.equal(await store!.find(fresh, 'reset'), null);
    });

    it('8 parallel creates for one identity over separate connections: exactly one of the links works', async () => {
      const { links } = await h.open(4);
      const now = new Date();
      const hashes = Array.from({ length: 8 }, () => hashOf(randomUUID()));
      await Promise.all(hashes.map((hash, i) => links[i % links.length]!.create(hash, link('id-parallel', now))));
      const found = await Promise.all(hashes.map((hash) => links[0]!.find(hash, 'reset')));
      assert.equal(found.filter(Boolean).length, 1, 'one link is found, the others are void');
      const used = await Promise.all(hashes.map((hash) => links[0]!.use(hash, 'reset', now, FP)));
      assert.equal(used.filter(Boolean).length, 1, 'and only that one is used');
    });

    it('8 parallel uses of one link over separate connections: exactly one wins', async () => {
      const { links } = await h.open(4);
      const now = new Date();
      const hash = hashOf(randomUUID());
      await links[0]!.create(hash, link('id-3', now));
      const results = await Promise.all(links.flatMap((s) => [s.use(hash, 'reset', now, FP), s.use(hash, 'reset', now, FP)]));
      assert.equal(results.filter(Boolean).length, 1);
    });

    it('uses a link only with the password it was made against; refused for another, it stays unused', async () => {
      const {
        links: [store],
      } = await h.open(1);
      const now = new Date();
      const hash = hashOf(randomUUID());
      await store!.create(hash, link('id-4', now));
      assert.equal((await store!.find(hash, 'reset'))?.passwordFingerprint, FP, 'found with its fingerprint');
      assert.equal(await store!.use(hash, 'reset', now, 'another password'), null, 'the password changed since');
      assert.equal((await store!.find(hash, 'reset'))?.used, false, 'a refused link is left as it was');
      assert.equal((await store!.use(hash, 'reset', now, FP))?.passwordFingerprint, FP);
      assert.equal(await store!.use(hash, 'reset', now, FP), null, 'never twice');
    });

    it('a link stored before fingerprints (none) is used with any password, once', async () => {
      const {
        links: [store],
      } = await h.open(1);
      const now = new Date();
      const hash = hashOf(randomUUID());
      const { passwordFingerprint: _, ...before } = link('id-5', now);
      await store!.create(hash, before);
      const found = await store!.find(hash, 'reset');
      assert.ok(found && !('passwordFingerprint' in found), 'no fingerprint');
      assert.equal((await store!.use(hash, 'reset', now, 'whatever it is now'))?.identityId, 'id-5');
      assert.equal(await store!.use(hash, 'reset', now, 'whatever it is now'), null, 'never twice');
    });

    it('8 parallel uses over separate connections, half of them for another password: exactly one wins, with the right one', async () => {
      const { links } = await h.open(4);
      for (let round = 0; round < 5; round++) {
        const now = new Date();
        const hash = hashOf(randomUUID());
        await links[0]!.create(hash, link(`id-6-${round}`, now));
        const tries = links.flatMap((s) => [s.use(hash, 'reset', now, 'another password'), s.use(hash, 'reset', now, FP)]);
        const results = await Promise.all(tries);
        assert.equal(results.filter(Boolean).length, 1, `round ${round}`);
        assert.ok(
          results.every((r, i) => !r || i % 2 === 1),
          `only a use with the password the link was made against, round ${round}`,
        );
      }
    });
  });
}
