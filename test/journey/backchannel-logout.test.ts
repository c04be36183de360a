// Back-channel logout: an app with a `backchannel_logout_uri` hears of every
// session that ends — signed out at the app, an owner's reset, a changed
// password — through a real HTTP endpoint, with a logout token it verifies
// (signature by the provider's JWKS, iss, aud, events, sid, no nonce). An
// endpoint that is down gets it once it is back; one delivered is never sent
// again; each attempt is in the audit log. An endpoint at an address the
// operator did not open (OUTBOUND_ALLOW) gets nothing. On the embedded store
// and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, testIds } from '../support/browser.ts';
import { SETUPS, PASSWORD, callbackReached, fixture, relyingParty, signIn, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { hiddenFields, signedIn, submit, noticeOf } from '../account/support.ts';
import { logoutEndpoint, verifyLogoutToken } from '../support/logout-endpoint.ts';

for (const setup of SETUPS) {
  describe(`back-channel logout (${setup})`, () => {
    const clock = testClock();
    let server: TestServer;
    let endpoint: Awaited<ReturnType<typeof logoutEndpoint>>;
    let rp: RelyingParty;

    before(async () => {
      endpoint = await logoutEndpoint();
      const doc = fixture();
      Object.assign(doc.tenants![0]!.clients![0]!, { backchannel_logout_uri: endpoint.url });
      server = await startServer(setup, { doc, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await endpoint.close();
    });

    const received = async () => {
      await server.latchkey.sessions.drain();
      return Promise.all(endpoint.tokens.splice(0).map((t) => verifyLogoutToken(rp, t)));
    };
    const auditOf = (outcome: 'success' | 'failure') =>
      server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'session.backchannel_logout', limit: 100 }).then((events) => events.filter((e) => e.outcome === outcome));

    /** Bob signs in to the portal in a browser of his own; returns the browser and the ID token's claims. */
    async function bobAtThePortal() {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      const tokens = await rp.callback(page.url, pending);
      const claims = tokens.claims()!;
      assert.equal(typeof claims.sid, 'string', 'the ID token names its session');
      return { browser, tokens, sid: claims.sid as string };
    }

    it('discovery says it is supported, with the session', async () => {
      const meta = rp.config.serverMetadata() as Record<string, unknown>;
      assert.equal(meta.backchannel_logout_supported, true);
      assert.equal(meta.backchannel_logout_session_supported, true);
    });

    it('signing out at the app sends the app a logout token for that session, once', async () => {
      const { browser, tokens, sid } = await bobAtThePortal();
      const logout = await browser.get(oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token! }).href);
      assert.ok(testIds(logout).includes('logout-yes'), `the logout page: ${logout.status}`);
      const form = /<form id="op.logoutForm" method="post" action="([^"]+)"><input type="hidden" name="xsrf" value="([^"]+)"/.exec(logout.html);
      assert.ok(form);
      await browser.post(form[1]!, { xsrf: form[2]!, logout: 'yes' });
      const [claims, ...more] = await received();
      assert.equal(more.length, 0);
      assert.equal(claims?.sub, 'bob-emp');
      assert.equal(claims?.sid, sid);
      assert.ok((await auditOf('success')).some((e) => e.login === 'bob-emp' && e.detail?.client === 'portal'));
      // The same (client, sid) again — an owner's reset after the sign-out — sends nothing more.
      await server.latchkey.stores.sessions.enqueueLogouts([{ clientId: 'portal', sid, loginId: 'bob-emp', tenant: 'acme' }], new Date(clock.now()));
      assert.deepEqual(await received(), []);
    });

    it("signing out on the account pages, or a session ended on the profile, tells the session's apps", async () => {
      const { browser } = await signedIn(server, { email: 'bob@acme.test' });
      const pending = await rp.authorize();
      const sso = await browser.get(pending.url);
      assert.ok(callbackReached(sso), 'single sign-on to the portal');
      const sid = (await rp.callback(sso.url, pending)).claims()!.sid;
      const other = await bobAtThePortal();
      const profile = await browser.get('/account');
      const form = hiddenFields(profile, 'end-session-form');
      assert.ok(form.session, 'a sign-out button for the other browser');
      await browser.post('/account/profile/sessions/end', { csrf: form.csrf!, session: form.session });
      assert.deepEqual(
        (await received()).map((c) => c.sid),
        [other.sid],
      );
      await browser.post('/account/signout', { csrf: form.csrf! });
      assert.deepEqual(
        (await received()).map((c) => c.sid),
        [sid],
      );
    });

    it("an owner's reset sends one for each of the login's sessions", async () => {
      const first = await bobAtThePortal();
      const second = await bobAtThePortal();
      const owner = await signedIn(server, { email: 'owner@acme.test' });
      const done = await owner.browser.post('/account/users/bob-emp/reset-pin', { csrf: /name="csrf" value="([^"]+)"/.exec(owner.page.html)![1]!, confirm: 'yes' });
      assert.ok(done.status < 400, `the reset: ${done.status}`);
      const sids = (await received()).map((c) => c.sid).sort();
      assert.deepEqual(sids, [first.sid, second.sid].sort());
      const again = await first.browser.get((await rp.authorize()).url);
      assert.ok(testIds(again).includes('login-form'), 'the session is over');
    });

    it('a changed password sends one for the sessions it ends', async () => {
      const elsewhere = await bobAtThePortal();
      const { browser } = await signedIn(server, { email: 'bob@acme.test' });
      const form = await browser.get('/account/profile/password');
      const NEW = 'a brand new passphrase 7';
      const done = await submit(browser, form, 'change-password-form', { current_password: PASSWORD, password: NEW, password_confirm: NEW });
      assert.match(noticeOf(done), /password has been changed/);
      const ended = await received();
      assert.ok(
        ended.some((c) => c.sid === elsewhere.sid && c.sub === 'bob-emp'),
        'the other browser’s session at the portal',
      );
      await server.latchkey.stores.accounts.setPasswordHash(
        (await server.latchkey.stores.accounts.findIdentityByEmail('bob@acme.test'))!.id,
        await server.latchkey.hasher.hash(PASSWORD),
      );
    });

    it('an endpoint that is down gets the logout once it is back, with backoff, and the attempts are audited', async () => {
      const { sid } = await bobAtThePortal();
      endpoint.setDown(true);
      const failedBefore = (await auditOf('failure')).length;
      await server.latchkey.sessions.endLoginSessions(['bob-emp']);
      assert.deepEqual(await received(), [], 'not taken while down');
      assert.equal(await server.latchkey.stores.sessions.pendingLogouts(), 1);
      clock.advance(4_000);
      assert.equal(await server.latchkey.sessions.drain(), 0, 'not due again before its retry time');
      clock.advance(1_001);
      assert.equal(await server.latchkey.sessions.drain(), 0, 'the second attempt fails too');
      assert.equal((await auditOf('failure')).length, failedBefore + 2);
      endpoint.setDown(false);
      clock.advance(5_000);
      assert.deepEqual(await received(), [], 'the third waits twice as long');
      clock.advance(5_001);
      const [claims] = await received();
      assert.equal(claims?.sid, sid);
      assert.equal(await server.latchkey.stores.sessions.pendingLogouts(), 0);
    });
  });
}

for (const setup of SETUPS) {
  describe(`back-channel logout to an address the operator did not open (${setup})`, () => {
    let server: TestServer;
    let endpoint: Awaited<ReturnType<typeof logoutEndpoint>>;
    let rp: RelyingParty;

    before(async () => {
      endpoint = await logoutEndpoint();
      const doc = fixture();
      // A name that resolves to the endpoint's loopback address: judged where the socket would be made.
      Object.assign(doc.tenants![0]!.clients![0]!, { backchannel_logout_uri: `http://localhost:${endpoint.port}/backchannel-logout` });
      server = await startServer(setup, { doc, env: { OUTBOUND_ALLOW: 'none' } });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await endpoint.close();
    });

    it('is not sent: the endpoint sees no connection, and the audit log says why', async () => {
      const browser = new Browser(server.issuer);
      const { page } = await signIn(browser, rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(page));
      await server.latchkey.sessions.endLoginSessions(['bob-emp']);
      await server.latchkey.sessions.drain();
      assert.deepEqual(endpoint.tokens, []);
      assert.equal(endpoint.connections(), 0);
      const failures = (await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'session.backchannel_logout', limit: 10 })).filter((e) => e.outcome === 'failure');
      assert.equal(failures[0]?.detail?.error, 'refused: loopback address');
      assert.equal(await server.latchkey.stores.sessions.pendingLogouts(), 1, 'kept, to be tried again later');
    });
  });
}
