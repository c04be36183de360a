// The Redis adapter's stored form of a model (src/storage/adapter/redis/codec.ts): what goes in, comes out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeModel, describeStored, encodeModel, isEncodedModel } from '../../src/storage/adapter/redis/codec.ts';

const id = 'kUpr74ySdKHpyeopJNgF14PrL-OKn-JSzSpiUGQ8bRk';
const accessToken = {
  iat: 1796133508,
  exp: 1796137108,
  accountId: 'password-0',
  grantId: '5N9TiZcZTwmrQ3OWk-xY2KZ2RU6qRd1iTcdcElPIlxt',
  gty: 'authorization_code',
  sessionUid: 'OXncdxOAIlCLDkftIX-Ee3Kit1Gjg2He4P4a6U0STzt',
  kind: 'AccessToken',
  jti: id,
  clientId: 'bench-app',
  scope: 'openid email profile offline_access',
  extra: { acr: 'urn:latchkey:acr:1fa', amr: ['pwd'], auth_time: 1796133508, note: 'ünïcødé / "quoted"' },
};

describe('the Redis adapter codec', () => {
  it('gives back the payload it was given, header fields included', () => {
    const value = encodeModel({ payload: { ...accessToken, consumed: 1796133600 }, id, model: 'AccessToken', grantable: true });
    assert.ok(isEncodedModel(value));
    assert.deepEqual(decodeModel(value, id, 'AccessToken'), { ...accessToken, consumed: 1796133600 });
  });

  it('stores the grant and the lookup field once, in the header, and the rest deflated', () => {
    const session = { iat: 1, exp: 2, uid: 'OXncdxOAIlCLDkftIX-Ee3Kit1Gjg2He4P4a6U0STzt', jti: 'v1.adapter.sealed', kind: 'Session', accountId: 'a' };
    const value = encodeModel({ payload: session, id, model: 'Session', lookup: 'uid', grantable: false });
    assert.equal(value.toString('latin1').split(session.uid).length, 2, 'the uid once');
    assert.deepEqual(decodeModel(value, id, 'Session', 'uid'), session);
    const token = encodeModel({ payload: accessToken, id, model: 'AccessToken', grantable: true });
    assert.equal(token.toString('latin1').split(accessToken.grantId).length, 2, 'the grantId once');
    assert.ok(token.length < JSON.stringify(accessToken).length / 2, `${token.length} B for ${JSON.stringify(accessToken).length} B of JSON`);
    assert.match(describeStored(token), /"sessionUid":"OXncdxOAIlCLDkftIX-Ee3Kit1Gjg2He4P4a6U0STzt"/);
  });

  it("stores of a jti that begins with the key's id only the rest", () => {
    const stored = id.slice(0, 32);
    const session = { iat: 1, exp: 2, uid: 'OXncdxOAIlCLDkftIX-Ee3Kit1Gjg2He4P4a6U0STzt', jti: id, kind: 'Session', accountId: 'a' };
    const value = encodeModel({ payload: session, id: stored, model: 'Session', lookup: 'uid', grantable: false });
    assert.deepEqual(decodeModel(value, stored, 'Session', 'uid'), session);
    assert.match(describeStored(value), new RegExp(`"jti":"${id.slice(32)}"`));
    assert.ok(!describeStored(value).includes(stored), 'the key says it');
  });

  it('keeps in the body what the key does not say: another jti or kind, a non-integer consumed, an id with control characters', () => {
    const odd = { jti: 'other', kind: 'Other', consumed: 1.5, grantId: 'a\x1eb', uid: '' };
    const value = encodeModel({ payload: odd, id, model: 'Session', lookup: 'uid', grantable: true });
    assert.deepEqual(decodeModel(value, id, 'Session', 'uid'), odd);
    const bare = { client_id: 'c', redirect_uris: ['https://rp.example/cb'] };
    assert.deepEqual(decodeModel(encodeModel({ payload: bare, id: 'c', model: 'Client', grantable: false }), 'c', 'Client'), bare);
  });

  it('refuses a value in an unknown format', () => {
    assert.throws(() => decodeModel(Buffer.from('{"payload":1}'), id, 'AccessToken'), /unknown stored format/);
  });
});
