// The bench's software authenticator (bench/lib/authenticator.ts) against the
// server's own WebAuthn ceremonies (src/factors/passkey/ceremony.ts): what it
// makes registers, what it signs verifies, its sign count moves forward, and
// the ceremonies still refuse what they must — a replay, another origin's
// answer, a key the server does not hold. If the authenticator drifted from
// what browsers send, the bench's passkey figures would measure refusals.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createWebAuthn, newUserHandle } from '../../src/factors/passkey/ceremony.ts';
import { createSqliteCounterStore } from '../../src/storage/counters/sqlite/index.ts';
import type { Passkey } from '../../src/storage/accounts/port.ts';
import { SoftAuthenticator, type CreationOptions, type RequestOptions } from '../../bench/lib/authenticator.ts';
import { testClock } from '../support/latchkey.ts';

const ISSUER = 'http://127.0.0.1:4321';

describe('the bench’s software authenticator', () => {
  const db = new Database(':memory:');
  const clock = testClock();
  const webauthn = createWebAuthn({ issuer: ISSUER, counters: createSqliteCounterStore(db), now: clock.now });
  after(() => db.close());

  async function registered(authenticator: SoftAuthenticator): Promise<Passkey> {
    const handle = newUserHandle();
    const { options, challenge } = await webauthn.registrationOptions({ handle, name: 'ada@example.com', displayName: 'Ada', exclude: [], rpName: 'Acme' });
    const response = authenticator.create(options as CreationOptions);
    const result = await webauthn.verifyRegistration(challenge, JSON.stringify(response));
    assert.ok(result.ok, `registration refused: ${JSON.stringify(result)}`);
    assert.equal(result.credential.id, response.id);
    assert.equal(result.credential.userVerified, true);
    assert.equal(result.credential.deviceType, 'singleDevice');
    return { ...result.credential, loginId: 'l1', tenant: 'acme', userHandle: handle, name: 'k', createdAt: new Date(clock.now()), lastUsedAt: null };
  }

  async function signIn(authenticator: SoftAuthenticator, passkey: Passkey, discoverable: boolean) {
    const { options, challenge } = await webauthn.authenticationOptions(discoverable ? undefined : [passkey], discoverable ? 'required' : 'preferred');
    const text = JSON.stringify(authenticator.get(options as RequestOptions, passkey.id));
    const parsed = webauthn.parseAuthentication(text);
    assert.ok(parsed, 'the answer has the shape a browser posts');
    assert.equal(parsed.credentialId, passkey.id);
    assert.equal(parsed.userHandle, passkey.userHandle, 'a discoverable credential names its user');
    return { result: await webauthn.verifyAuthentication(challenge, parsed.response, passkey, discoverable), challenge, parsed };
  }

  it('registers, and signs in after the password and alone, the sign count moving forward', async () => {
    const authenticator = new SoftAuthenticator(ISSUER);
    let passkey = await registered(authenticator);
    for (const discoverable of [false, true, false]) {
      const { result } = await signIn(authenticator, passkey, discoverable);
      assert.ok(result.ok, `refused: ${JSON.stringify(result)}`);
      assert.equal(result.assertion.newCounter, passkey.counter + 1);
      assert.equal(result.assertion.userVerified, true);
      passkey = { ...passkey, counter: result.assertion.newCounter };
    }
  });

  it('is refused where a browser’s answer would be: a replay, another origin, a key the server does not hold', async () => {
    const authenticator = new SoftAuthenticator(ISSUER);
    const passkey = await registered(authenticator);
    const { result, challenge, parsed } = await signIn(authenticator, passkey, false);
    assert.ok(result.ok);
    assert.deepEqual(await webauthn.verifyAuthentication(challenge, parsed.response, passkey), { ok: false, failure: 'replayed' });

    const elsewhere = new SoftAuthenticator('http://127.0.0.1:9999');
    const { options, challenge: second } = await webauthn.registrationOptions({
      handle: newUserHandle(),
      name: 'eve@example.com',
      displayName: 'Eve',
      exclude: [],
      rpName: 'Acme',
    });
    assert.deepEqual(await webauthn.verifyRegistration(second, JSON.stringify(elsewhere.create(options as CreationOptions))), { ok: false, failure: 'unverified' });

    const other = new SoftAuthenticator(ISSUER);
    const otherKey = await registered(other);
    const { options: request, challenge: third } = await webauthn.authenticationOptions(undefined, 'required');
    const forged = webauthn.parseAuthentication(JSON.stringify(other.get(request as RequestOptions, otherKey.id)))!;
    // The other authenticator's signature presented for this passkey: the public key does not match.
    assert.deepEqual(await webauthn.verifyAuthentication(third, forged.response, { ...passkey, id: otherKey.id }, true), { ok: false, failure: 'unverified' });
  });

  it('honours the options: an excluded credential is not made again, a credential not allowed is not used', async () => {
    const authenticator = new SoftAuthenticator(ISSUER);
    const passkey = await registered(authenticator);
    const { options } = await webauthn.registrationOptions({ handle: passkey.userHandle, name: 'ada@example.com', displayName: 'Ada', exclude: [passkey], rpName: 'Acme' });
    assert.throws(() => authenticator.create(options as CreationOptions), /exclude/);
    const second = await registered(authenticator);
    const { options: request } = await webauthn.authenticationOptions([second]);
    assert.throws(() => authenticator.get(request as RequestOptions, passkey.id), /do not allow/);
  });
});
