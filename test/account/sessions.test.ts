// "Where you're signed in" on the profile: two browsers (two cookie jars)
// signed in as Bob each see both sessions, with browser, address and apps;
// "sign out everywhere else" ends the other's single sign-on and its refresh
// token and keeps this one's; one session can be signed out alone; another
// person's session cannot be named. On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, testIds } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { hiddenFields, noticeOf, signedIn, submit } from './support.ts';

const BOB = { email: 'bob@acme.test' };
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

/** The session rows of a profile page: their testids (current or not) and their forms' session ids. */
const rows = (html: string) =>
  [...html.matchAll(/<tr data-testid="(session(?:-current)?)">([^]*?)<\/tr>/g)].map((m) => ({ kind: m[1]!, html: m[2]!, id: /name="session" value="([^"]+)"/.exec(m[2]!)?.[1] }));

for (const setup of SETUPS) {
  describe(`sessions people can see (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup);
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    /** The portal's tokens for the browser's session (signed in already: single sign-on). */
    async function portalTokens(browser: Browser) {
      const pending = await rp.authorize();
      const page = await browser.get(pending.url);
      assert.ok(callbackReached(page), `single sign-on: ${page.status} ${page.url}`);
      return rp.callback(page.url, pending);
    }

    it('"sign out everywhere else" ends the other browser\'s sign-in and refresh token, and keeps this one\'s', async () => {
      const here = await signedIn(server, BOB);
      const hereTokens = await portalTokens(here.browser);
      const there = new Browser(server.issuer, { 'user-agent': FIREFOX });
      const signedInThere = await signIn(there, rp, BOB);
      assert.ok(callbackReached(signedInThere.page));
      const thereTokens = await rp.callback(signedInThere.page.url, signedInThere.pending);
      assert.ok(thereTokens.refresh_token);

      const profile = await here.browser.get('/account');
      const shown = rows(profile.html);
      assert.deepEqual(shown.map((r) => r.kind).sort(), ['session', 'session-current']);
      const other = shown.find((r) => r.kind === 'session')!;
      assert.match(other.html, /Firefox on Linux/);
      assert.match(other.html, /127\.0\.0\.1/);
      assert.match(other.html, /data-testid="session-apps">portal</);
      assert.match(shown.find((r) => r.kind === 'session-current')!.html, /Latchkey account, portal|portal, Latchkey account/);

      const done = await submit(here.browser, profile, 'end-other-sessions-form');
      assert.match(noticeOf(done), /signed out everywhere else/);
      assert.ok(testIds(done).includes('no-other-sessions'));
      const again = await there.get((await rp.authorize()).url);
      assert.ok(testIds(again).includes('login-form'), "the other browser's single sign-on is over");
      await assert.rejects(oidc.refreshTokenGrant(rp.config, thereTokens.refresh_token!), "the other browser's refresh token is revoked");
      assert.ok((await oidc.refreshTokenGrant(rp.config, hereTokens.refresh_token!)).access_token, "this browser's refresh token works");
      assert.ok(callbackReached(await here.browser.get((await rp.authorize()).url)), "this browser's single sign-on holds");
      const [event] = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'bob-emp', type: 'session.ended', limit: 1 });
      assert.equal(event?.detail?.sessions, 1);
    });

    it('signs out one session alone, and never one of another person', async () => {
      const here = await signedIn(server, BOB);
      const there = new Browser(server.issuer, { 'user-agent': SAFARI });
      assert.ok(callbackReached((await signIn(there, rp, BOB)).page));
      const jane = new Browser(server.issuer);
      assert.ok(callbackReached((await signIn(jane, rp, { email: 'jane@acme.test', login: 'jane-emp' })).page));
      const [janeSession] = await server.latchkey.sessions.listSessions('jane-emp');
      assert.ok(janeSession);

      let profile = await here.browser.get('/account');
      const csrf = hiddenFields(profile, 'end-other-sessions-form').csrf!;
      const refused = await here.browser.post('/account/profile/sessions/end', { csrf, session: janeSession.id });
      assert.equal(refused.status, 404, "another person's session is not Bob's to end");
      assert.ok(callbackReached(await jane.get((await rp.authorize()).url)), "Jane's session holds");
      const own = rows(profile.html).find((r) => r.kind === 'session-current')!;
      assert.equal(own.id, undefined, 'this browser has no sign-out button of its own here');

      const others = rows(profile.html).filter((r) => r.kind === 'session');
      assert.equal(others.length, 2, "the earlier test's browser and the Mac");
      const mac = others.find((r) => r.html.includes('Safari on macOS'))!;
      profile = await here.browser.post('/account/profile/sessions/end', { csrf, session: mac.id! });
      profile = await here.browser.follow(profile);
      assert.match(noticeOf(profile), /session was signed out/);
      assert.ok(testIds(await there.get((await rp.authorize()).url)).includes('login-form'), 'the Mac signs in again');
      assert.deepEqual(
        rows(profile.html).map((r) => r.kind),
        ['session-current', 'session'],
        'this browser stays signed in, and the other one',
      );
    });
  });
}
