// A session saved before the sessions index existed has no record there, so
// nothing lists or ends it. A serving process's start records every such
// session it finds in the provider's storage: it is then on the profile's
// "Where you're signed in", and "Sign out everywhere else" ends it (its app
// hears of it). On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Browser, testIds } from '../support/browser.ts';
import { SETUPS, callbackReached, fixture, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { hiddenFields, signedIn } from '../account/support.ts';
import { logoutEndpoint, verifyLogoutToken } from '../support/logout-endpoint.ts';

for (const setup of SETUPS) {
  describe(`sessions from before the sessions index (${setup})`, () => {
    let server: TestServer;
    let endpoint: Awaited<ReturnType<typeof logoutEndpoint>>;
    let rp: RelyingParty;

    before(async () => {
      endpoint = await logoutEndpoint();
      const doc = fixture();
      Object.assign(doc.tenants![0]!.clients![0]!, { backchannel_logout_uri: endpoint.url });
      server = await startServer(setup, { doc });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server?.stop();
      await endpoint?.close();
    });

    it('are listed after the next start, and "sign out everywhere else" ends them', async () => {
      const old = new Browser(server.issuer, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' });
      const { page, pending } = await signIn(old, rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(page));
      const sid = (await rp.callback(page.url, pending)).claims()!.sid as string;
      // As a session saved before the index: in the provider's storage only.
      const [record] = await server.latchkey.sessions.listSessions('bob-emp');
      assert.ok(record);
      assert.equal(await server.latchkey.stores.sessions.removeSession(record.id), true);
      assert.deepEqual(await server.latchkey.sessions.listSessions('bob-emp'), [], 'unlisted, as before the index');

      await server.restart();
      let listed = await server.latchkey.sessions.listSessions('bob-emp');
      for (let i = 0; i < 100 && listed.length === 0; i++) {
        await sleep(50);
        listed = await server.latchkey.sessions.listSessions('bob-emp');
      }
      assert.deepEqual(
        listed.map((s) => [s.id, s.apps.map((a) => a.clientId)]),
        [[record.id, ['portal']]],
        'listed after the start, with the app it signed in to',
      );
      assert.ok(callbackReached(await old.get((await rp.authorize()).url)), 'its single sign-on still holds');

      const { browser, page: profile } = await signedIn(server, { email: 'bob@acme.test' });
      assert.ok(profile.html.includes(record.id), 'on "Where you\'re signed in"');
      const form = hiddenFields(profile, 'end-other-sessions-form');
      const done = await browser.post('/account/profile/sessions/end-others', form);
      assert.ok(done.status < 400, `sign out everywhere else: ${done.status}`);
      await server.latchkey.sessions.drain();
      const claims = await Promise.all(endpoint.tokens.splice(0).map((t) => verifyLogoutToken(rp, t)));
      assert.deepEqual(
        claims.map((c) => c.sid),
        [sid],
        'its app gets a logout token',
      );
      assert.ok(testIds(await old.get((await rp.authorize()).url)).includes('login-form'), 'the old browser signs in again');
    });
  });
}
