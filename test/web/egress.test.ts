// Outgoing requests to URLs a tenant or an app chose (src/web/egress.ts): every
// special-use address is refused where the socket is made — a name resolving
// to one, a literal one, one behind a redirect — unless the operator opened it;
// public addresses and opened ranges go through.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EgressTooLarge, MAX_RESPONSE_BYTES, createEgress, egressRefusal, refusalReason, refusedRange, specialUse } from '../../src/web/egress.ts';

describe('the special-use address classifier', () => {
  const cases: [string, string | null][] = [
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.5', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.254', 'shared'],
    ['100.128.0.1', null],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', null],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'translation'],
    ['192.168.1.1', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.7', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    ['8.8.8.8', null],
    ['93.184.215.14', null],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::FFFF:10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:8.8.8.8', null],
    ['::127.0.0.1', 'reserved'],
    ['::ffff:0:7f00:1', 'reserved'],
    ['64:ff9b::a00:1', 'translation'],
    ['64:ff9b:1::1', 'translation'],
    ['100::1', 'reserved'],
    ['2001::1', 'translation'],
    ['2001:2::1', 'benchmarking'],
    ['2001:10::1', 'reserved'],
    ['2001:db8::1', 'documentation'],
    ['2002:a00:1::1', 'translation'],
    ['3fff::1', 'documentation'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['4000::1', 'reserved'],
    ['2606:4700:4700::1111', null],
    ['2a00:1450:4001:80b::200e', null],
  ];
  for (const [address, range] of cases) {
    it(`${address} is ${range ?? 'public'}`, () => assert.equal(specialUse(address), range));
  }

  it('reads the reasons it writes, and nothing else', () => {
    assert.equal(refusedRange(refusalReason('private')), 'private');
    assert.equal(refusedRange('refused: evil address'), null);
    assert.equal(refusedRange('the receiver answered 500'), null);
  });
});

describe('the guarded fetch', () => {
  let receiver: Server;
  let port: number;
  const received: string[] = [];
  before(async () => {
    receiver = createServer((req, res) => {
      received.push(`${req.method} ${req.headers.host}${req.url}`);
      if (req.url === '/redirect-to-metadata') res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      else if (req.url === '/redirect-to-loopback') res.writeHead(302, { location: `http://127.0.0.1:${port}/landed` }).end();
      else if (req.url === '/big') res.end(Buffer.alloc(MAX_RESPONSE_BYTES + 1, 'a'));
      else if (req.url === '/big-chunked') {
        // No declared length: the body is counted as it is read.
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 'b');
        let sent = 0;
        const more = () => {
          while (sent <= MAX_RESPONSE_BYTES * 4) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
        res.on('error', () => undefined);
      } else if (req.url === '/sized') res.end(Buffer.alloc(MAX_RESPONSE_BYTES, 'c'));
      else if (req.url === '/none') res.writeHead(204).end();
      else res.end('ok');
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = (receiver.address() as AddressInfo).port;
  });
  after(() => receiver.close());

  /** The refusal a guarded request failed with; fails the test when it got through or failed otherwise. */
  async function refused(promise: Promise<Response>) {
    const err = await promise.then(
      () => assert.fail('the request went through'),
      (e: unknown) => e,
    );
    const refusal = egressRefusal(err);
    assert.ok(refusal, `refused by the guard, not by the network: ${String(err)} ${String((err as Error).cause)}`);
    return refusal;
  }

  it('refuses a name that resolves to a loopback address: nothing reaches the receiver', async () => {
    const egress = createEgress({ allow: [] });
    received.length = 0;
    const refusal = await refused(egress.fetch(`http://localhost:${port}/`, { method: 'POST', body: 'x' }));
    assert.equal(refusal.range, 'loopback');
    assert.equal(refusal.message, 'refused: loopback address');
    assert.deepEqual(received, []);
    await egress.close();
  });

  it('judges the address connected to: a name that passed the early check and now answers the receiver’s address (rebinding) is refused', async () => {
    const egress = createEgress({ allow: [], lookup: (_host, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }]) });
    assert.equal(egress.refusedUrl(`http://rebind.test:${port}/`), null, 'a name passes the early check');
    received.length = 0;
    assert.equal((await refused(egress.fetch(`http://rebind.test:${port}/`, { method: 'POST', body: '{}' }))).range, 'loopback');
    assert.deepEqual(received, []);
    await egress.close();
  });

  it('refuses a name that resolves to private and metadata addresses without connecting', async () => {
    const egress = createEgress({
      allow: [],
      lookup: (host, _options, callback) =>
        callback(
          null,
          host === 'metadata.test'
            ? [{ address: '169.254.169.254', family: 4 }]
            : [
                { address: '10.0.0.5', family: 4 },
                { address: 'fd00::5', family: 6 },
              ],
        ),
    });
    assert.equal((await refused(egress.fetch('https://internal.test/'))).range, 'private');
    assert.equal((await refused(egress.fetch('https://metadata.test/latest/meta-data/'))).range, 'link-local');
    await egress.close();
  });

  it('keeps only the allowed answers of a name with both kinds', async () => {
    const egress = createEgress({
      allow: [],
      lookup: (_h, _o, callback) =>
        callback(null, [
          { address: '10.0.0.5', family: 4 },
          { address: '127.0.0.1', family: 4 },
        ]),
    });
    await refused(egress.fetch(`http://mixed.test:${port}/`));
    await egress.close();
    received.length = 0;
    const opened = createEgress({
      allow: ['127.0.0.0/8'],
      lookup: (_h, _o, callback) =>
        callback(null, [
          { address: '10.0.0.5', family: 4 },
          { address: '127.0.0.1', family: 4 },
        ]),
    });
    const res = await opened.fetch(`http://mixed.test:${port}/only-loopback`);
    assert.equal(res.status, 200, 'the opened answer is used, the private one dropped');
    assert.deepEqual(received, [`GET mixed.test:${port}/only-loopback`]);
    await opened.close();
  });

  it('refuses literal addresses before anything is sent, in every spelling', async () => {
    const egress = createEgress({ allow: [] });
    received.length = 0;
    for (const url of [
      `http://127.0.0.1:${port}/`,
      `http://0x7f.1:${port}/`,
      `http://2130706433:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://[::1]:${port}/`,
      'https://169.254.169.254/latest/meta-data/',
      'https://10.0.0.5/',
      'https://[fd00::1]/',
      'https://0.0.0.0/',
    ]) {
      assert.ok(egress.refusedUrl(url), `${url} refused early`);
      await refused(egress.fetch(url));
    }
    assert.deepEqual(received, []);
    await egress.close();
  });

  it('reads an answer of at most 1 MiB, and stops one longer, declared or not, with EgressTooLarge', async () => {
    const egress = createEgress({ allow: ['127.0.0.1/32'] });
    const sized = await egress.fetch(`http://127.0.0.1:${port}/sized`);
    assert.equal((await sized.arrayBuffer()).byteLength, MAX_RESPONSE_BYTES, 'the most is read whole');
    assert.equal(sized.url, `http://127.0.0.1:${port}/sized`, 'the answer still says where it came from');
    assert.equal((await egress.fetch(`http://127.0.0.1:${port}/none`)).status, 204);
    const declared = await egress.fetch(`http://127.0.0.1:${port}/big`).then(
      () => assert.fail('a declared length past the most is refused before its body is read'),
      (e: unknown) => e,
    );
    assert.ok((declared as Error).cause instanceof EgressTooLarge, String((declared as Error).cause));
    const chunked = await egress.fetch(`http://127.0.0.1:${port}/big-chunked`);
    assert.equal(chunked.status, 200);
    await assert.rejects(chunked.text(), (e: unknown) => e instanceof EgressTooLarge);
    await egress.close();
  });

  it('a redirect does not escape: a followed redirect to an internal address is refused', async () => {
    const opened = createEgress({ allow: [`127.0.0.1/32`] });
    received.length = 0;
    await refused(opened.fetch(`http://127.0.0.1:${port}/redirect-to-metadata`));
    assert.deepEqual(received, [`GET 127.0.0.1:${port}/redirect-to-metadata`]);
    await opened.close();
    const byName = createEgress({ allow: ['localhost'] });
    await refused(byName.fetch(`http://localhost:${port}/redirect-to-loopback`));
    await byName.close();
  });

  it('lets the operator open ranges and host names, and nothing beside them', async () => {
    const egress = createEgress({ allow: ['127.0.0.0/8', '::ffff:10.1.2.0/120', 'receiver.internal'] });
    received.length = 0;
    assert.equal((await egress.fetch(`http://127.0.0.1:${port}/a`)).status, 200);
    assert.equal((await egress.fetch(`http://localhost:${port}/b`)).status, 200);
    assert.deepEqual(received, [`GET 127.0.0.1:${port}/a`, `GET localhost:${port}/b`]);
    assert.equal(egress.refusal('10.1.2.9'), null, 'the IPv4-mapped range opens its IPv4 addresses');
    assert.equal(egress.refusal('::ffff:10.1.2.9'), null);
    assert.equal(egress.refusal('10.1.3.9'), 'private');
    assert.equal(egress.refusal('10.9.9.9', 'receiver.internal'), null, 'an opened name reaches what it resolves to');
    assert.equal(egress.refusal('10.9.9.9', 'RECEIVER.internal.'), null);
    assert.equal(egress.refusal('10.9.9.9', 'other.internal'), 'private');
    assert.equal(egress.refusal('::1'), 'loopback', 'the IPv4 loopback range does not open the IPv6 one');
    assert.equal(egress.refusal('8.8.8.8'), null);
    await egress.close();
  });
});
