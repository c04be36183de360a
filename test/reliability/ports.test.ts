// The tests' own servers take their ports so that no two can be given one:
// from the OS where a program can listen on port 0 and say which it got, and
// behind a front of ours, or started again on another, where it must be told
// its port in advance. A Redis of a test is taken as started only when the
// Redis answering on its port is that process, not another test's.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { deadEndpoint, listenOnFreePort, onSomePort, tcpFront } from '../support/net.ts';
import { redisPid, spawnRedis, startOwnRedis, type OwnRedis } from '../support/redis.ts';

/** An HTTP server on a port of its own that answers `name`. */
async function answering(name: string) {
  const server = createServer((_req, res) => res.end(name));
  const port = await listenOnFreePort(server);
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const text = (url: string) =>
  fetch(url).then(
    (r) => r.text(),
    () => 'no answer',
  );

describe('test ports', () => {
  it('a front keeps its address while the program behind it moves, and refuses while there is none', async () => {
    const front = await tcpFront();
    const first = await answering('first');
    const second = await answering('second');
    try {
      assert.equal(await text(`http://127.0.0.1:${front.port}/`), 'no answer', 'nothing behind it yet');
      front.to = first.port;
      assert.equal(await text(`http://127.0.0.1:${front.port}/`), 'first');
      front.to = second.port;
      assert.equal(await text(`http://127.0.0.1:${front.port}/`), 'second', 'the same address reaches the program started again on another port');
    } finally {
      await Promise.all([first.close(), second.close()]);
      await front.close();
    }
  });

  it('a dead endpoint never answers, for as long as it is held', async () => {
    const down = await deadEndpoint();
    try {
      await assert.rejects(fetch(down.url));
    } finally {
      await down.close();
    }
  });

  it('a program that must be told its port is started again on another when its port was taken, and only then', async () => {
    const tried: number[] = [];
    const port = await onSomePort(
      async (p) => {
        tried.push(p);
        if (tried.length < 3) throw new Error('taken');
        return p;
      },
      (err) => err.message === 'taken',
    );
    assert.equal(tried.length, 3);
    assert.equal(port, tried[2]);
    await assert.rejects(
      onSomePort(
        () => Promise.reject(new Error('broken')),
        (err) => err.message === 'taken',
      ),
      /broken/,
      'another failure is not retried',
    );
  });

  describe("a test's own Redis", () => {
    let own: OwnRedis;
    after(() => own?.stop());

    it('is the process that answers on its port, and one started on a port another Redis holds fails instead of passing for it', async () => {
      own = await startOwnRedis();
      const pid = await redisPid(own.port);
      assert.ok(pid && pid > 0);
      // Another test's redis-server given the same port: it cannot listen, and must not take the first one's answer for its own.
      await assert.rejects(spawnRedis(own.port, []), /could not listen on its port/);
      assert.equal(await redisPid(own.port), pid, 'the first Redis still answers there');
      await own.kill();
      assert.equal(await redisPid(own.port), null);
      await own.revive();
      const revived = await redisPid(own.port);
      assert.ok(revived && revived !== pid, 'revived on the same port as a new process');
    });
  });
});
