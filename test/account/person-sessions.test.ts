// The owner's page of a person shows where the login is signed in — the
// profile's list: browser, address, times, apps — and signs one session out,
// or every one ("Sign out everywhere", after a confirmation): the browser
// signs in again, its refresh token is refused, its app is sent a logout
// token, and the audit names the owner. CSRF as every owner form; another
// login's session cannot be named; an owner's own page sends them to their
// profile. And what the login's factors have left of their recovery codes,
// only where a factor set up offers them. Both store set-ups, English and Dutch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, testIds, textOf } from '../support/browser.ts';
import { REDIRECT_URI, SETUPS, callbackReached, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, choosePin, linkApp } from '../support/factors.ts';
import { logoutEndpoint, verifyLogoutToken } from '../support/logout-endpoint.ts';
import { accountFixture, hiddenFields, noticeOf, signedIn, submit } from './support.ts';

const OWNER = { email: 'owner@acme.test' };
const JANE = { email: 'jane@acme.test', login: 'jane-acme' };
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

/** The session rows of a page: their testids and their sign-out forms' session ids. */
const rows = (html: string) =>
  [...html.matchAll(/<tr data-testid="(session(?:-current)?)">([^]*?)<\/tr>/g)].map((m) => ({ kind: m[1]!, html: m[2]!, id: /name="session" value="([^"]+)"/.exec(m[2]!)?.[1] }));

for (const setup of SETUPS) {
  describe(`the owner signs a person out from their page (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let endpoint: Awaited<ReturnType<typeof logoutEndpoint>>;

    before(async () => {
      endpoint = await logoutEndpoint();
      const doc = accountFixture();
      Object.assign(doc.tenants![0]!.clients![0]!, { backchannel_logout_uri: endpoint.url });
      server = await startServer(setup, { doc });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await endpoint.close();
    });

    const logoutsReceived = async () => {
      await server.latchkey.sessions.drain();
      return Promise.all(endpoint.tokens.splice(0).map((t) => verifyLogoutToken(rp, t)));
    };
    const auditOf = async (type: string) =>
      (await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'jane-acme', type, limit: 10 })).filter((e) => e.type === type);

    /** Jane at the portal in a browser of her own: its tokens and the session id the portal was given. */
    async function janeAtThePortal(userAgent: string) {
      const browser = new Browser(server.issuer, { 'user-agent': userAgent });
      const { page, pending } = await signIn(browser, rp, JANE);
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      const tokens = await rp.callback(page.url, pending);
      assert.ok(tokens.refresh_token);
      return { browser, tokens, sid: tokens.claims()!.sid as string };
    }

    const signsInAgain = async (browser: Browser) => testIds(await browser.get((await rp.authorize()).url)).includes('login-form');

    it("lists the person's sessions as the profile does, and signs one out: it signs in again, its refresh token is refused, its app is told", async () => {
      const firefox = await janeAtThePortal(FIREFOX);
      const safari = await janeAtThePortal(SAFARI);
      const { browser, page } = await signedIn(server, OWNER, '/account/users/jane-acme');
      const shown = rows(page.html);
      assert.deepEqual(
        shown.map((r) => r.kind),
        ['session', 'session'],
        "Jane's two browsers; none of them is this one",
      );
      const mac = shown.find((r) => r.html.includes('Safari on macOS'))!;
      assert.ok(mac && shown.some((r) => r.html.includes('Firefox on Linux')), 'the browsers named as on the profile');
      assert.match(mac.html, /127\.0\.0\.1/);
      assert.match(mac.html, /data-testid="session-apps">portal</);
      assert.match(mac.html, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);

      const forged = await browser.post('/account/users/jane-acme/sessions/end', { session: mac.id! });
      assert.equal(forged.status, 403, 'no CSRF token');
      const done = await submit(browser, page, 'end-session-form', { session: mac.id! });
      assert.equal(new URL(done.url).pathname, '/account/users/jane-acme', `${done.status} ${done.url}`);
      assert.match(noticeOf(done), /That session was signed out/);
      assert.deepEqual(
        rows(done.html).map((r) => r.html.includes('Firefox on Linux')),
        [true],
        'only the other one is left',
      );

      assert.ok(await signsInAgain(safari.browser), 'the signed-out browser signs in again');
      await assert.rejects(oidc.refreshTokenGrant(rp.config, safari.tokens.refresh_token!), 'and its refresh token is refused');
      assert.ok((await oidc.refreshTokenGrant(rp.config, firefox.tokens.refresh_token!)).access_token, "the other browser's still works");
      assert.ok(!(await signsInAgain(firefox.browser)), 'and its single sign-on holds');
      const [logout, ...more] = await logoutsReceived();
      assert.equal(more.length, 0);
      assert.deepEqual([logout?.sub, logout?.sid], ['jane-acme', safari.sid], 'the portal is told which session ended');
      const [event] = await auditOf('session.ended');
      assert.deepEqual(event?.detail, { by: 'acme-owner', sessions: 1 });

      // The Mac's session is gone; and another login's session cannot be named under Jane's page.
      const owner = await browser.get('/account/users/jane-acme');
      const csrf = hiddenFields(owner, 'end-session-form').csrf!;
      assert.equal((await browser.post('/account/users/jane-acme/sessions/end', { csrf, session: mac.id! })).status, 404, 'ended already');
      const [ownSession] = await server.latchkey.sessions.listSessions('acme-owner');
      assert.equal((await browser.post('/account/users/jane-acme/sessions/end', { csrf, session: ownSession!.id })).status, 404, "not Jane's");
      assert.equal((await server.latchkey.sessions.listSessions('acme-owner')).length, 1, "the owner's session holds");
    });

    it('a request of the session still running when it is signed out cannot bring it back by saving it at its end', async () => {
      const before = new Set((await server.latchkey.sessions.listSessions('jane-acme')).map((s) => s.id));
      const safari = await janeAtThePortal(SAFARI);
      const [record, ...others] = (await server.latchkey.sessions.listSessions('jane-acme')).filter((s) => !before.has(s.id));
      assert.ok(record && others.length === 0);
      // What oidc-provider holds for a request of this session (an authorization at the portal, say) while it runs.
      const held = await server.latchkey.provider.Session.findByUid(record.id);
      assert.ok(held?.accountId === 'jane-acme');

      const { browser, page } = await signedIn(server, OWNER, '/account/users/jane-acme');
      const done = await submit(browser, page, 'end-session-form', { session: record.id });
      assert.match(noticeOf(done), /That session was signed out/);
      // The request ends: oidc-provider saves every session it loaded, changed or not.
      held.authorizations = { ...held.authorizations, other: { sid: 'held-sid' } };
      await held.save(600);

      assert.equal(await server.latchkey.provider.Session.findByUid(record.id), undefined, 'the session stays ended');
      assert.deepEqual(
        (await server.latchkey.sessions.listSessions('jane-acme')).map((s) => s.id),
        [...before],
        'and is not listed again',
      );
      assert.ok(await signsInAgain(safari.browser), 'its browser signs in again');
      await assert.rejects(oidc.refreshTokenGrant(rp.config, safari.tokens.refresh_token!), 'and its refresh token is refused');
      await logoutsReceived();
    });

    it('a save that records the session again after its sign-out removed the record does not list it again', async () => {
      const before = new Set((await server.latchkey.sessions.listSessions('jane-acme')).map((s) => s.id));
      await janeAtThePortal(SAFARI);
      const [record] = (await server.latchkey.sessions.listSessions('jane-acme')).filter((s) => !before.has(s.id));
      assert.ok(record);
      const index = server.latchkey.stores.sessions;
      const recorded = await index.getSession(record.id);
      assert.ok(recorded);

      const { browser, page } = await signedIn(server, OWNER, '/account/users/jane-acme');
      assert.match(noticeOf(await submit(browser, page, 'end-session-form', { session: record.id })), /That session was signed out/);
      await logoutsReceived();
      // The last step of a save of this session that began before the sign-out: the session's own write was
      // refused, its record in the index is not.
      await index.recordSession(recorded);

      assert.deepEqual(
        (await server.latchkey.sessions.listSessions('jane-acme')).map((s) => s.id),
        [...before],
        'not listed',
      );
      assert.equal(await index.getSession(record.id), null, 'and its record is forgotten');
    });

    it('a code such a request issued under a grant the sign-out never saw is refused at the token endpoint', async () => {
      const before = new Set((await server.latchkey.sessions.listSessions('jane-acme')).map((s) => s.id));
      await janeAtThePortal(SAFARI);
      const [record] = (await server.latchkey.sessions.listSessions('jane-acme')).filter((s) => !before.has(s.id));
      assert.ok(record);
      const { provider } = server.latchkey;
      // What a request of the session, authorizing another app, writes before it saves the session: a new
      // grant and a code, neither yet named by the session.
      const grant = new provider.Grant({ accountId: 'jane-acme', clientId: 'portal' });
      grant.addOIDCScope('openid');
      const grantId = await grant.save();
      const verifier = oidc.randomPKCECodeVerifier();
      const client = (await provider.Client.find('portal'))!;
      const issue = async () =>
        new provider.AuthorizationCode({
          client,
          gty: 'authorization_code',
          accountId: 'jane-acme',
          grantId,
          scope: 'openid',
          redirectUri: REDIRECT_URI,
          sessionUid: record.id,
          authTime: Math.floor(Date.now() / 1000),
          acr: 'urn:latchkey:acr:1fa',
          amr: ['pwd'],
          codeChallenge: await oidc.calculatePKCECodeChallenge(verifier),
          codeChallengeMethod: 'S256',
        }).save();
      const exchange = (code: string) =>
        fetch(`${server.issuer}/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from('portal:s3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d').toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
        });
      // While the session lives, such a code is good: the check below is the session's end, nothing else.
      assert.equal((await exchange(await issue())).status, 200);
      const held = await issue();

      const { browser, page } = await signedIn(server, OWNER, '/account/users/jane-acme');
      assert.match(noticeOf(await submit(browser, page, 'end-session-form', { session: record.id })), /That session was signed out/);
      const refused = await exchange(held);
      assert.equal(refused.status, 400);
      assert.equal(((await refused.json()) as { error: string }).error, 'invalid_grant');
      await logoutsReceived();
    });

    it('signs the person out everywhere after a confirmation, in English and Dutch', async () => {
      const firefox = await janeAtThePortal(FIREFOX);
      const safari = await janeAtThePortal(SAFARI);
      await logoutsReceived();
      const { browser, page } = await signedIn(server, OWNER, '/account/users/jane-acme');
      assert.equal(rows(page.html).length, 3, "the earlier test's Firefox and the two new browsers");
      const dutch = await browser.request('/account/users/jane-acme', { headers: { 'accept-language': 'nl' } });
      assert.match(dutch.html, /Waar deze login is ingelogd/);
      assert.match(dutch.html, /data-testid="end-all-sessions">Overal uitloggen</);
      assert.match(dutch.html, /data-testid="end-session">Uitloggen</);

      const confirm = await submit(browser, page, 'end-all-sessions-form');
      assert.ok(testIds(confirm).includes('confirm-reset-form'), `a confirmation first: ${confirm.status}`);
      assert.match(textOf(confirm, 'confirm-text') ?? '', /Every session of Jane Doe/);
      assert.ok(!(await signsInAgain(safari.browser)), 'nothing ended before confirming');
      const done = await submit(browser, confirm, 'confirm-reset-form');
      assert.match(noticeOf(done), /Signed out everywhere/);
      assert.ok(testIds(done).includes('person-no-sessions'));

      for (const { browser: theirs, tokens } of [firefox, safari]) {
        assert.ok(await signsInAgain(theirs), 'each browser signs in again');
        await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'each refresh token is refused');
      }
      const sids = (await logoutsReceived()).map((c) => c.sid).sort();
      assert.ok(
        [firefox.sid, safari.sid].every((sid) => sids.includes(sid)),
        `the portal is told of each: ${sids.join(', ')}`,
      );
      const [event] = await auditOf('login.sessions_ended');
      assert.deepEqual(event?.detail, { by: 'acme-owner' });
      assert.ok(await signedIn(server, JANE), 'Jane signs in again');
    });

    it("an owner's own page lists their sessions and sends them to their profile to sign out", async () => {
      const { browser } = await signedIn(server, OWNER);
      const before = (await server.latchkey.sessions.listSessions('acme-owner')).length;
      const page = await browser.get('/account/users/acme-owner');
      assert.ok(
        rows(page.html).some((r) => r.kind === 'session-current'),
        'this browser, marked',
      );
      assert.ok(!testIds(page).includes('end-session-form') && !testIds(page).includes('end-all-sessions-form'));
      assert.ok(testIds(page).includes('own-sessions'));
      const csrf = hiddenFields(await browser.get('/account/users/jane-acme'), 'end-all-sessions-form').csrf!;
      const refused = await browser.post('/account/users/acme-owner/sessions/end-all', { csrf, confirm: 'yes' });
      assert.equal(refused.status, 400, 'not from here');
      assert.match(refused.html, /on your profile/);
      assert.equal((await server.latchkey.sessions.listSessions('acme-owner')).length, before, 'nothing ended');
    });
  });

  describe(`recovery codes left, on the owner's page of a person (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    before(async () => {
      server = await startServer(setup, { doc: accountFixture() });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it('shows how many codes are left where a factor set up offers them, "none left" when spent, nothing where no factor offers them', async () => {
      const person = await addPerson(server, 'manager', 'nurse');
      const [manager, nurse] = person.logins as [string, string];
      await linkApp(server, rp, person, manager);
      await choosePin(server, rp, person, '907146', nurse);
      const { browser } = await signedIn(server, OWNER);

      let page = await browser.get(`/account/users/${manager}`);
      assert.match(page.html, /<dt>Recovery codes<\/dt><dd data-testid="person-recovery-count" data-count="10">10 recovery codes left<\/dd>/);
      const dutch = await browser.request(`/account/users/${manager}`, { headers: { 'accept-language': 'nl' } });
      assert.match(dutch.html, /data-testid="person-recovery-count" data-count="10">[^<]*10[^<]*</);
      assert.doesNotMatch(dutch.html, /recovery codes left/);

      const pin = await browser.get(`/account/users/${nurse}`);
      assert.ok(!testIds(pin).includes('person-methods'), 'a PIN offers no recovery codes');

      await server.latchkey.stores.accounts.setFactorState(manager, 'recovery', null);
      page = await browser.get(`/account/users/${manager}`);
      assert.match(page.html, /data-testid="person-recovery-count" data-count="0">None left</);

      await server.latchkey.factors.get('totp').reset(manager);
      page = await browser.get(`/account/users/${manager}`);
      assert.ok(!testIds(page).includes('person-methods'), 'no factor set up that offers them');
    });
  });
}
