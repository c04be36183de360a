// The MongoDB queues' claim markers (src/storage/mongo.ts, takeClaim) against
// FerretDB: claims of one attempt in adjacent lease windows exclude each
// other, and a claimer that died holding its markers holds the attempt back
// for two windows at most. The contract suites race real claimers across a
// window's edge; this pins the rule itself.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mongoConnections } from '../support/connections.ts';
import { takeClaim } from '../../src/storage/mongo.ts';

const LEASE = 60_000;
const W = 29_000_000 * LEASE; // the start of some lease window

describe('claim markers on MongoDB', () => {
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
});
