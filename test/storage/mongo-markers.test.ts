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
    const first = holding(m, 'doc', { staleMs: 60_000, waitMs: 0 }, async () => {
      order.push('first in');
      await sleep(100);
      order.push('first out');
      return 1;
    });
    await sleep(30);
    assert.equal(await holding(m, 'doc', { staleMs: 60_000, waitMs: 0 }, async () => 2), BUSY);
    assert.equal(await holding(m, 'other', { staleMs: 60_000, waitMs: 0 }, async () => 3), 3, 'another document is not held back');
    const waiting = oneWriterAtATime(m, 60_000)('doc', async () => {
      order.push('second');
      return 4;
    });
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
    let second: Promise<unknown> | null = null;
    await holding(m, 'doc', { staleMs: 50, waitMs: 0 }, async () => {
      await sleep(80);
      // Past its time: the next writer takes the marker over and is still writing when this one ends.
      second = holding(m, 'doc', { staleMs: 50, waitMs: 0 }, () => sleep(200));
      await sleep(50);
    });
    assert.equal(await m.countDocuments({ _id: 'doc' }), 1, "the second writer's marker is still there");
    assert.equal(await holding(m, 'doc', { staleMs: 60_000, waitMs: 0 }, async () => 'third'), BUSY);
    await second;
    assert.equal(await m.countDocuments(), 0);
  });
});
