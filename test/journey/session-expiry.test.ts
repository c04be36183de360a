// A session that reaches its tenant's idle timeout or lifetime ends like a
// signed-out one: the sweep of a serving process finds it in the sessions
// index, destroys it and queues a back-channel logout for each of its apps,
// which a real endpoint receives and verifies — once, with two Latchkey
// instances on one store sweeping at the same time. The test clock ages the
// sessions. On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, testIds } from '../support/browser.ts';
import { SETUPS, callbackReached, fixture, relyingParty, signIn, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { logoutEndpoint, verifyLogoutToken } from '../support/logout-endpoint.ts';
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createLatchkey, type Latchkey } from '../../src/server.ts';

const MINUTE = 60_000;

for (const setup of SETUPS) {
  describe(`sessions that outlive the tenant's limits end with a back-channel logout (${setup})`, () => {
    const clock = testClock();
    let server: TestServer;
    let second: Latchkey;
    let endpoint: Awaited<ReturnType<typeof logoutEndpoint>>;
    let rp: RelyingParty;

    before(async () => {
      endpoint = await logoutEndpoint();
      const doc = fixture();
      Object.assign(doc.tenants![0]!.clients![0]!, { backchannel_logout_uri: endpoint.url });
      server = await startServer(setup, { doc, now: clock.now });
      await server.latchkey.stores.accounts.setSessionPolicy('acme', { lifetimeHours: 2, idleMinutes: 30, staySignedIn: true });
      // A second serving instance on the same store and clock, as a second app process behind the balancer.
      second = await createLatchkey(loadConfig(server.env), createLogger('silent'), { now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await second?.close();
      await server?.stop();
      await endpoint?.close();
    });

    const instances = () => [server.latchkey, second];
    /** Both instances sweep at once, then both send what is queued; resolves with the tokens the endpoint took, verified. */
    async function sweepAndDeliver() {
      const ended = await Promise.all(instances().map((l) => l.sessions.expireOutlived()));
      await Promise.all(instances().map((l) => l.sessions.drain()));
      // A timer's drain may still hold a lease on one: it is delivered when the queue is empty.
      for (let i = 0; i < 100 && (await server.latchkey.stores.sessions.pendingLogouts()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
      return { ended: ended.reduce((a, b) => a + b, 0), claims: await Promise.all(endpoint.tokens.splice(0).map((t) => verifyLogoutToken(rp, t))) };
    }
    const endedEvents = async (login: string) =>
      (await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'session.ended', limit: 100 })).filter((e) => e.login === login);

    async function bobAtThePortal() {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      const sid = (await rp.callback(page.url, pending)).claims()!.sid as string;
      return { browser, sid };
    }

    it('past the idle timeout the session ends and its app gets one verified logout token, though two instances sweep', async () => {
      const { browser, sid } = await bobAtThePortal();
      clock.advance(29 * MINUTE);
      assert.deepEqual(await sweepAndDeliver(), { ended: 0, claims: [] }, 'within the idle timeout nothing ends');
      assert.equal((await server.latchkey.sessions.listSessions('bob-emp')).length, 1);

      clock.advance(2 * MINUTE);
      const { ended, claims } = await sweepAndDeliver();
      assert.ok(ended <= 1, `ended by one sweep (${ended})`);
      assert.equal(claims.length, 1, 'one logout token');
      assert.equal(claims[0]!.sub, 'bob-emp');
      assert.equal(claims[0]!.sid, sid, "the sid of the session's ID token");
      assert.deepEqual(await server.latchkey.sessions.listSessions('bob-emp'), [], 'no longer listed');
      const events = await endedEvents('bob-emp');
      assert.equal(events.length, 1, 'audited once');
      assert.deepEqual(events[0]!.detail, { reason: 'idle', sessions: 1 });

      clock.advance(2 * MINUTE);
      assert.deepEqual(await sweepAndDeliver(), { ended: 0, claims: [] }, 'never again');
      assert.ok(testIds(await browser.get((await rp.authorize()).url)).includes('login-form'), 'the browser signs in again');
    });

    it('past the lifetime the session ends however active it is', async () => {
      const { browser, sid } = await bobAtThePortal();
      for (let i = 0; i < 4; i++) {
        clock.advance(25 * MINUTE);
        assert.ok(callbackReached(await browser.get((await rp.authorize()).url)), `in use (${i})`);
        assert.deepEqual((await sweepAndDeliver()).claims, [], 'within the lifetime nothing ends');
      }
      clock.advance(21 * MINUTE);
      const { claims } = await sweepAndDeliver();
      assert.deepEqual(
        claims.map((c) => c.sid),
        [sid],
      );
      assert.equal((await endedEvents('bob-emp')).filter((e) => e.detail?.reason === 'lifetime').length, 1);
    });
  });
}
