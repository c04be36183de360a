// The MongoDB stores' markers (src/storage/mongo.ts) against FerretDB.
// takeClaim: claims of one attempt in adjacent lease windows exclude each
// other, and a claimer that died holding its markers holds the attempt back
// for two windows at most. holding: one writer at a time per document, a
// dead writer's marker taken over. The contract suites race real claimers
// and writers; this pins the rules themselves.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mongoConnections } from '../support/connections.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { BUSY, holding, oneWriterAtATime, takeClaim, type MarkerDoc } from '../../src/storage/mongo.ts';

const LEASE = 60_000;

/** A promise the test opens when it chooses (Node 20 has no Promise.withResolvers). */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
const W = 29_000_000 * LEASE; // the start of some lease window

describe('markers on MongoDB', () => {
  const connections = mongoConnections();
  after(() => connections.cleanup());

  const fresh = async () => {
    const [db] = await connections.open(1);
    const claims = db!.collection<{ _id: string; item: string }>('claims');
    return (k: string, at: number) => takeClaim(claims, k, new Date(at), LEASE, (_id) => ({ _id, item: k }));
  };

  it('one claim per attempt: the same window, the next, and a millisecond across the edge', async () => {
    const claim = await fresh();
    assert.equal(await claim('a:0', W + 10), true);
    assert.equal(await claim('a:0', W + 20), false, 'same window');
    assert.equal(await claim('a:0', W + LEASE + 5), false, 'the next window');
    assert.equal(await claim('b:0', W + LEASE - 1), true);
    assert.equal(await claim('b:0', W + LEASE), false, 'across the edge');
    assert.equal(await claim('c:0', W + LEASE), true);
    assert.equal(await claim('c:0', W + LEASE - 1), false, 'across the edge, the later clock first');
  });

  it('another attempt or item is not held back', async () => {
    const claim = await fresh();
    assert.equal(await claim('a:0', W), true);
    assert.equal(await claim('a:1', W), true);
    assert.equal(await claim('b:0', W), true);
  });

  it('markers of a claimer that died hold its attempt back for two windows at most, however often others try', async () => {
    const claim = await fresh();
    assert.equal(await claim('a:0', W + LEASE - 1), true);
    assert.equal(await claim('a:0', W + LEASE), false);
    assert.equal(await claim('a:0', W + 2 * LEASE - 1), false);
    assert.equal(await claim('a:0', W + 2 * LEASE), true, 'the lost claims left nothing in the way');
  });

  const markers = async () => (await connections.open(1))[0]!.collection<MarkerDoc>('writes');

  it('one writer at a time: a second is BUSY at once without waiting, and gets its turn when it waits', async () => {
    const m = await markers();
    const order: string[] = [];
    const [entered, release] = [gate(), gate()];
    const first = holding(m, 'doc', { staleMs: 60_000, waitMs: 0 }, async () => {
      order.push('first in');
      entered.open();
      await release.opened;
      order.push('first out');
      return 1;
    });
    await entered.opened;
    assert.equal(await holding(m, 'doc', { staleMs: 60_000, waitMs: 0 }, async () => 2), BUSY);
    assert.equal(await holding(m, 'other', { staleMs: 60_000, waitMs: 0 }, async () => 3), 3, 'another document is not held back');
    const waiting = oneWriterAtATime(m, 60_000)('doc', async () => {
      order.push('second');
      return 4;
    });
    await sleep(50);
    release.open();
    assert.deepEqual(await Promise.all([first, waiting]), [1, 4]);
    assert.deepEqual(order, ['first in', 'first out', 'second']);
    assert.equal(await m.countDocuments(), 0, 'markers are deleted after the write');
  });

  it("a marker held past its time (its writer died) is taken over; a live writer's is waited for, then BUSY", async () => {
    const m = await markers();
    await m.insertOne({ _id: 'dead', at: new Date(Date.now() - 11_000), token: 'dead writer' });
    assert.equal(await holding(m, 'dead', { staleMs: 10_000, waitMs: 0 }, async () => 'taken over'), 'taken over');
    await m.insertOne({ _id: 'live', at: new Date(), token: 'live writer' });
    const t0 = Date.now();
    assert.equal(await holding(m, 'live', { staleMs: 10_000, waitMs: 200 }, async () => 'never'), BUSY);
    assert.ok(Date.now() - t0 >= 200, 'it waited');
    // A marker from a clock far ahead never goes stale here: a write that must happen fails loudly instead of waiting on.
    await m.insertOne({ _id: 'ahead', at: new Date(Date.now() + 3_600_000), token: 'writer ahead' });
    await assert.rejects(
      oneWriterAtATime(m, 100)('ahead', async () => 'never'),
      /another writer still holds ahead/,
    );
  });

  it('a writer so slow that its marker was taken over does not delete the marker of the writer after it', async () => {
    const m = await markers();
    const [inFirst, inSecond, releaseFirst, releaseSecond] = [gate(), gate(), gate(), gate()];
    const first = holding(m, 'doc', { staleMs: 50, waitMs: 0 }, async () => {
      inFirst.open();
      await releaseFirst.opened;
    });
    await inFirst.opened;
    await sleep(60); // the first writer's marker is now past its 50 ms
    const second = holding(m, 'doc', { staleMs: 50, waitMs: 0 }, async () => {
      inSecond.open();
      await releaseSecond.opened;
      return 'second';
    });
    await inSecond.opened;
    releaseFirst.open();
    await first;
    assert.equal(await m.countDocuments({ _id: 'doc' }), 1, "the second writer's marker is still there");
    assert.equal(await holding(m, 'doc', { staleMs: 60_000, waitMs: 0 }, async () => 'third'), BUSY);
    releaseSecond.open();
    assert.equal(await second, 'second');
    assert.equal(await m.countDocuments(), 0);
  });
});
