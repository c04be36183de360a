// Ending a login's sessions (an owner's reset, a changed password) within one
// second: sessions and tokens carry whole seconds, the cut-off is the reset's
// instant. A sign-in earlier in the reset's second is ended; one finishing
// after the reset in that same second holds; and the reset returns at once,
// without waiting for the clock to reach the next second.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, testIds } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, signIn, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { endLoginSessions } from '../../src/provider/revocation.ts';

const BOB = { email: 'bob@acme.test' };

for (const setup of SETUPS) {
  describe(`a reset within one second (${setup})`, () => {
    // The app's clock stands still 200 ms into a second already past, so every step below falls in that second.
    const clock = testClock({ at: (Math.floor(Date.now() / 1000) - 1) * 1000 + 200 });
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it("ends a sign-in made earlier in the reset's second and keeps one made just after it in that second", async () => {
      const earlier = new Browser(server.issuer);
      const first = await signIn(earlier, rp, BOB);
      assert.ok(callbackReached(first.page), `${first.page.status} ${first.page.url}`);
      const old = await rp.callback(first.page.url, first.pending);

      clock.advance(100);
      const second = Math.floor(clock.now() / 1000);
      const cutOff = await endLoginSessions(server.latchkey.stores.accounts, server.latchkey.provider, ['bob-emp'], clock.now);
      assert.equal(cutOff.getTime(), clock.now(), "the cut-off is the reset's instant");

      const again = await earlier.get((await rp.authorize()).url);
      assert.ok(testIds(again).includes('login-form'), 'the earlier session signs in again');
      await assert.rejects(oidc.refreshTokenGrant(rp.config, old.refresh_token!), 'the earlier refresh token stops working');

      clock.advance(100);
      assert.equal(Math.floor(clock.now() / 1000), second, "still the reset's second");
      const later = new Browser(server.issuer);
      const next = await signIn(later, rp, BOB);
      assert.ok(callbackReached(next.page), `a sign-in after the reset is not taken for one it ended: ${next.page.status} ${next.page.url}`);
      const tokens = await rp.callback(next.page.url, next.pending);
      assert.ok(tokens.claims()!.auth_time! > second, "its sign-in time is past the reset's second");
      assert.equal((await oidc.fetchUserInfo(rp.config, tokens.access_token, 'bob-emp')).sub, 'bob-emp', 'its access token works');
      assert.ok((await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).access_token, 'its refresh token works');
      assert.ok(callbackReached(await later.get((await rp.authorize()).url)), 'its session signs in without asking again');
    });
  });
}

describe('a reset returns without waiting (sqlite)', () => {
  let server: TestServer;

  // The store's own timers would be mocked too: the embedded store needs none.
  before(async () => {
    server = await startServer('sqlite');
  });
  after(() => server.stop());

  it('resolves while no timer can fire', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let settled = false;
    const reset = endLoginSessions(server.latchkey.stores.accounts, server.latchkey.provider, ['bob-emp']).finally(() => {
      settled = true;
    });
    // Let the store's work run (each round gives promises and I/O callbacks a turn); no timer fires meanwhile.
    for (let i = 0; i < 50 && !settled; i++) await new Promise((resolve) => setImmediate(resolve));
    t.mock.timers.reset();
    assert.ok(settled, 'the reset waited for a timer');
    assert.ok((await reset) instanceof Date);
  });
});
