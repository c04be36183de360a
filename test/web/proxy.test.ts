// The client's address behind reverse proxies (src/web/proxy.ts): the
// rightmost X-Forwarded-For entry no trusted proxy wrote, by hops or by proxy
// ranges; whatever the client writes to the left changes nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddress, plainAddress } from '../../src/web/proxy.ts';
import { addressGroup } from '../../src/limits.ts';

describe('the client address behind proxies', () => {
  it('believes no header without trusted proxies', () => {
    assert.equal(clientAddress('198.51.100.9', '6.6.6.6', false), '198.51.100.9');
    assert.equal(clientAddress('::ffff:198.51.100.9', undefined, false), '198.51.100.9');
  });

  it('with hops, skips that many proxies from the right: a forged left part changes nothing', () => {
    assert.equal(clientAddress('10.0.0.2', '203.0.113.7', 1), '203.0.113.7');
    assert.equal(clientAddress('10.0.0.2', '6.6.6.6, 7.7.7.7, 203.0.113.7', 1), '203.0.113.7');
    assert.equal(clientAddress('10.0.0.2', '6.6.6.6, 203.0.113.7, 10.0.0.1', 2), '203.0.113.7');
    assert.equal(clientAddress('10.0.0.2', undefined, 1), '10.0.0.2', 'no header: the peer itself');
    assert.equal(clientAddress('10.0.0.2', '203.0.113.7', 3), '203.0.113.7', 'fewer entries than hops: the leftmost');
  });

  it('with ranges, walks from the right past every address inside them', () => {
    const ranges = ['10.0.0.0/8', 'fd00::/8'];
    assert.equal(clientAddress('10.0.0.2', '6.6.6.6, 203.0.113.7, 10.9.9.9', ranges), '203.0.113.7');
    assert.equal(clientAddress('fd00::2', '6.6.6.6, 2001:db8::5, fd00::1', ranges), '2001:db8::5');
    assert.equal(clientAddress('198.51.100.9', '203.0.113.7', ranges), '198.51.100.9', 'a peer that is no proxy of ours: its header means nothing');
    assert.equal(clientAddress('10.0.0.2', '10.0.0.3', ranges), '10.0.0.3', 'all proxies: the leftmost');
  });

  it('reads ports, brackets and IPv4-mapped addresses; a garbled entry stands for the proxy that wrote it', () => {
    assert.equal(plainAddress('203.0.113.7:51234'), '203.0.113.7');
    assert.equal(plainAddress('[2001:db8::5]:443'), '2001:db8::5');
    assert.equal(plainAddress('::FFFF:203.0.113.7'), '203.0.113.7');
    assert.equal(plainAddress('unknown'), null);
    assert.equal(clientAddress('10.0.0.2', '6.6.6.6, not-an-address', 1), '10.0.0.2');
  });

  it('groups IPv6 addresses by their /64 and keeps IPv4 addresses apart', () => {
    assert.equal(addressGroup('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressGroup('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(addressGroup('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressGroup('2001:0db8:0001:0002::'), '2001:db8:1:2::/64');
    assert.notEqual(addressGroup('2001:db8:1:3::1'), addressGroup('2001:db8:1:2::1'));
    assert.equal(addressGroup('203.0.113.7'), '203.0.113.7');
    assert.equal(addressGroup('::ffff:203.0.113.7'), '203.0.113.7', 'an IPv4 client of a dual-stack socket');
    assert.notEqual(addressGroup('::ffff:203.0.113.7'), addressGroup('::ffff:203.0.113.8'));
  });
});
