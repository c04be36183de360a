// A tenant's session lifetime, idle timeout and "stay signed in", set on the
// owner's Security settings and enforced by the server with the test clock:
// single sign-on to an app and the account pages end once a session is older
// than the lifetime or unused longer than the idle timeout; each use counts.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, signIn, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { errorOf, noticeOf, signedIn, submit } from '../account/support.ts';

const MINUTE = 60_000;
const BOB = { email: 'bob@acme.test' };

for (const setup of SETUPS) {
  describe(`session lifetime per tenant (${setup})`, () => {
    const clock = testClock();
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const ssoHolds = async (browser: Browser) => callbackReached(await browser.get((await rp.authorize()).url));
    const setPolicy = (lifetimeHours: number, idleMinutes: number, staySignedIn = true) =>
      server.latchkey.stores.accounts.setSessionPolicy('acme', { lifetimeHours, idleMinutes, staySignedIn });

    it('the owner sets it on the Security settings; out-of-range values are refused with the form again', async () => {
      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/security');
      const refused = await submit(owner.browser, owner.page, 'session-policy-form', { lifetime_hours: '0', idle_minutes: '0', stay_signed_in: 'on' });
      assert.equal(refused.status, 400);
      assert.match(errorOf(refused), /1 to 336 hours/);
      const tooIdle = await submit(owner.browser, owner.page, 'session-policy-form', { lifetime_hours: '1', idle_minutes: '61', stay_signed_in: 'on' });
      assert.equal(tooIdle.status, 400);
      const done = await submit(owner.browser, owner.page, 'session-policy-form', { lifetime_hours: '8', idle_minutes: '30', stay_signed_in: 'off' });
      assert.match(noticeOf(done), /applies to every session/);
      assert.deepEqual((await server.latchkey.stores.accounts.getTenant('acme'))?.sessionPolicy, { lifetimeHours: 8, idleMinutes: 30, staySignedIn: false });
      const [event] = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'policy.sessions_changed', limit: 1 });
      assert.deepEqual(event?.detail?.to, { lifetimeHours: 8, idleMinutes: 30, staySignedIn: false });
    });

    /** Signs Bob in to the portal in a new browser; returns the session cookie the provider set as it resumed. */
    async function sessionCookieOfSignIn() {
      const browser = new Browser(server.issuer);
      let page = await browser.get((await rp.authorize()).url);
      page = await browser.request(actionOf(page, 'login-form'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: BOB.email, password: PASSWORD, csrf: csrfOf(page) }),
      });
      // The journey's answer redirects to the provider, which sets the session cookie when it resumes.
      const resumed = await browser.request(page.headers.get('location')!);
      const cookie = resumed.headers.getSetCookie().find((c) => c.startsWith('_session='));
      assert.ok(cookie, `the session cookie is set: ${resumed.status}`);
      return cookie;
    }

    it('"stay signed in" off: the session cookie ends with the browser; on, it outlives it', async () => {
      await setPolicy(8, 30, false);
      assert.doesNotMatch(await sessionCookieOfSignIn(), /expires=|max-age=/i, 'a browser-session cookie');
      await setPolicy(8, 30, true);
      assert.match(await sessionCookieOfSignIn(), /expires=/i, 'a persistent cookie');
    });

    it('the idle timeout ends single sign-on; each use moves it on', async () => {
      await setPolicy(8, 30);
      const browser = new Browser(server.issuer);
      assert.ok(callbackReached((await signIn(browser, rp, BOB)).page));
      clock.advance(29 * MINUTE);
      assert.ok(await ssoHolds(browser), 'used within the idle time');
      clock.advance(29 * MINUTE);
      assert.ok(await ssoHolds(browser), 'the last use counts, not the sign-in');
      clock.advance(31 * MINUTE);
      const page = await browser.get((await rp.authorize()).url);
      assert.ok(testIds(page).includes('login-form'), 'idle too long: sign in again');
    });

    it('a silent request refused for idleness does not bring the session back', async () => {
      await setPolicy(8, 30);
      const browser = new Browser(server.issuer);
      assert.ok(callbackReached((await signIn(browser, rp, BOB)).page));
      clock.advance(31 * MINUTE);
      // prompt=none cannot show the login page: the provider answers the app with an error and saves the session.
      const silent = await browser.get((await rp.authorize({ prompt: 'none' })).url);
      assert.match(silent.url, /[?&]error=(login_required|interaction_required)/, `the app hears no one is signed in: ${silent.url}`);
      const page = await browser.get((await rp.authorize()).url);
      assert.ok(testIds(page).includes('login-form'), 'still idle too long: that refusal was no use of the session');
    });

    it('the lifetime ends single sign-on however active the session is', async () => {
      await setPolicy(1, 0);
      const browser = new Browser(server.issuer);
      assert.ok(callbackReached((await signIn(browser, rp, BOB)).page));
      for (let i = 0; i < 3; i++) {
        clock.advance(19 * MINUTE);
        assert.ok(await ssoHolds(browser), `still within the hour (${i})`);
      }
      clock.advance(4 * MINUTE);
      assert.ok(testIds(await browser.get((await rp.authorize()).url)).includes('login-form'), 'past the lifetime');
      const { page } = await signIn(new Browser(server.issuer), rp, BOB);
      assert.ok(callbackReached(page), 'a new sign-in starts a new lifetime');
    });

    it('the account pages keep to it too', async () => {
      await setPolicy(8, 30);
      const { browser } = await signedIn(server, BOB);
      clock.advance(20 * MINUTE);
      assert.equal((await browser.get('/account')).status, 200);
      clock.advance(20 * MINUTE);
      assert.equal((await browser.get('/account')).status, 200, 'a page view is a use');
      clock.advance(31 * MINUTE);
      const page = await browser.request('/account');
      assert.equal(page.status, 302, 'idle too long: the account pages sign in again');
      assert.match(page.headers.get('location') ?? '', /^\/account\/signin/);
      assert.ok(testIds(await browser.follow(page)).includes('login-form'), 'and so does single sign-on');
    });
  });
}
