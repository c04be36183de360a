// An application runs its people in Latchkey through the management API:
// a token from Latchkey's token endpoint (openid-client, client_credentials),
// then every route — logins, resets, unlock, sessions, user types, audit,
// webhooks — with the same rules as the owner's pages. A token never reaches
// another tenant, a missing scope is a 403, bad input a problem naming the
// field, a stale If-Match a 412, one Idempotency-Key one login, too many
// requests a 429. Then the OpenAPI document: valid, and every route answers
// with the shapes it declares. On the embedded store and on MongoDB + Redis.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Browser } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, signIn, startServer, testClock, type TestClock, type TestServer } from '../support/latchkey.ts';
import { linkOf, startSmtp, type TestSmtp } from '../support/smtp.ts';
import { GLOBEX, PROVISIONER, READER, apiClient, apiFixture, tokenFor, type Recorded } from './support.ts';
import { apiRoutes } from '../../src/api/router.ts';
import { Problem } from '../../src/api/schemas.ts';
import { routeDeps } from '../../src/services.ts';
import { registerClient, rotateClientSecret } from '../../src/admin/clients.ts';

const RATE = 40;

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

for (const setup of SETUPS) {
  describe(`the management API (${setup})`, () => {
    let server: TestServer;
    let smtp: TestSmtp;
    let clock: TestClock;
    let token: string;
    const seen: Recorded[] = [];
    let call: ReturnType<typeof apiClient>;

    before(async () => {
      smtp = await startSmtp();
      clock = testClock();
      server = await startServer(setup, { doc: apiFixture(), now: clock.now, env: { SMTP_URL: smtp.url, API_RATE_LIMIT: String(RATE) } });
      call = apiClient(server.issuer, seen);
      token = await tokenFor(server.issuer, PROVISIONER);
    });
    after(async () => {
      await server.stop();
      await smtp.stop();
    });
    // Each test starts with a fresh rate window (the app's clock; the tokens keep the system's).
    beforeEach(() => clock.advance(61_000));

    const accounts = () => server.latchkey.stores.accounts;
    const newLogin = (over: Record<string, unknown> = {}) => ({
      email: `p-${Math.random().toString(36).slice(2, 10)}@acme.test`,
      firstName: 'Pat',
      lastName: 'Park',
      userType: 'employee',
      ...over,
    });

    it('grants at the token endpoint only the API scopes the client was given', async () => {
      await assert.rejects(tokenFor(server.issuer, READER, 'latchkey:logins.write'), (err: { error?: string }) => err.error === 'invalid_scope');
      // A scope nobody knows carries no right: the token endpoint passes it through, the API grants nothing for it.
      const odd = await tokenFor(server.issuer, GLOBEX, 'latchkey:everything');
      assert.equal((await call(odd, 'GET', '/logins')).status, 403);
      const readOnly = await tokenFor(server.issuer, READER, 'latchkey:logins.read');
      assert.equal((await call(readOnly, 'GET', '/logins')).status, 200);
      // A client that never signs people in has no authorization endpoint flow either.
      const portalToken = await tokenFor(server.issuer, { id: 'portal', secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d' }, '').catch((e: Error) => e);
      assert.ok(portalToken instanceof Error, 'the portal client has no client_credentials grant');
    });

    it('refuses a request without a live client-credentials token: 401 problem with WWW-Authenticate', async () => {
      for (const bearer of [null, 'not-a-token', `${token}x`]) {
        const r = await call(bearer, 'GET', '/logins');
        assert.equal(r.status, 401, String(bearer));
        assert.match(r.headers.get('content-type')!, /^application\/problem\+json/);
        assert.match(r.headers.get('www-authenticate')!, /^Bearer realm="latchkey", error="invalid_token"/);
        assert.equal(r.body.code, 'invalid_token');
      }
      // A person's access token (a sign-in's, not the client's own) is no API token either.
      const rp = await relyingParty(server.issuer);
      const { page, pending } = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(page));
      const personal = await rp.callback(page.url, pending);
      assert.equal((await call(personal.access_token, 'GET', '/logins')).status, 401);
    });

    it('answers 403 insufficient_scope for a route the token has no scope for, changing nothing', async () => {
      const readOnly = await tokenFor(server.issuer, READER, 'latchkey:logins.read');
      const before = (await accounts().listLogins('acme')).length;
      const r = await call(readOnly, 'POST', '/logins', { body: newLogin() });
      assert.equal(r.status, 403);
      assert.equal(r.body.code, 'insufficient_scope');
      assert.match(r.headers.get('www-authenticate')!, /scope="latchkey:logins.write"/);
      assert.equal((await call(readOnly, 'DELETE', '/logins/bob-emp')).status, 403);
      assert.equal((await call(readOnly, 'GET', '/audit')).status, 403);
      assert.equal((await accounts().listLogins('acme')).length, before);
      // A token asked for fewer scopes than the client has carries only those.
      const narrow = await tokenFor(server.issuer, PROVISIONER, 'latchkey:audit.read');
      assert.equal((await call(narrow, 'GET', '/logins')).status, 403);
      assert.equal((await call(narrow, 'GET', '/audit')).status, 200);
    });

    it('a scope taken from the client ends at once, even for a token issued before', async () => {
      const live = await tokenFor(server.issuer, PROVISIONER);
      const client = (await accounts().getClient(PROVISIONER.id))!;
      await accounts().upsertClient({ ...client, metadata: { ...client.metadata, api_scopes: ['latchkey:logins.read'] } });
      try {
        assert.equal((await call(live, 'GET', '/logins')).status, 200);
        assert.equal((await call(live, 'GET', '/audit')).status, 403);
      } finally {
        await accounts().upsertClient(client);
      }
    });

    it("a rotated secret ends the tokens got with the old one at once; the new secret's tokens work", async () => {
      const deps = routeDeps(server.latchkey);
      const tenant = (await accounts().getTenant('acme'))!;
      const actor = { tenant, by: { login: 'acme-owner' }, ip: null, userAgent: null };
      const { client, secret } = await registerClient(deps, actor, {
        name: 'Sync',
        redirectUris: ['https://sync.acme.test/callback'],
        firstParty: false,
        apiScopes: ['latchkey:logins.read'],
      });
      const app = { id: client.clientId, secret: secret! };
      const leaked = await tokenFor(server.issuer, app, 'latchkey:logins.read');
      assert.equal((await call(leaked, 'GET', '/logins')).status, 200);
      // Issued in an earlier second than the rotation: a token's `iat` counts whole seconds.
      await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
      const rotated = await rotateClientSecret(deps, actor, app.id);
      assert.equal((await call(leaked, 'GET', '/logins')).status, 401, "the old secret's token");
      await assert.rejects(tokenFor(server.issuer, app, 'latchkey:logins.read'), 'the old secret gets no token');
      assert.equal((await call(await tokenFor(server.issuer, { id: app.id, secret: rotated }, 'latchkey:logins.read'), 'GET', '/logins')).status, 200, "the new secret's");
    });

    it('never reaches another tenant: its logins are 404, its lists hold only its own', async () => {
      const globex = await tokenFor(server.issuer, GLOBEX);
      assert.equal((await call(globex, 'GET', '/logins/jane-emp')).status, 404);
      assert.equal((await call(globex, 'PATCH', '/logins/jane-emp', { body: { firstName: 'Mallory' } })).status, 404);
      assert.equal((await call(globex, 'POST', '/logins/jane-emp/disable')).status, 404);
      assert.equal((await call(globex, 'POST', '/logins/jane-emp/unlock')).status, 404);
      assert.equal((await call(globex, 'POST', '/logins/jane-emp/factors/pin/reset')).status, 404);
      assert.equal((await call(globex, 'DELETE', '/logins/jane-emp/sessions')).status, 404);
      assert.equal((await call(globex, 'DELETE', '/logins/jane-emp')).status, 404);
      const list = await call(globex, 'GET', '/logins?limit=200');
      assert.deepEqual(
        list.body.items.map((l: { id: string }) => l.id),
        ['gina-staff'],
      );
      const audit = await call(globex, 'GET', '/audit?login=jane-emp');
      assert.deepEqual(audit.body.items, []);
      // The other tenant's user type does not exist here either.
      const r = await call(globex, 'POST', '/logins', { body: newLogin({ userType: 'employee' }) });
      assert.equal(r.status, 400);
      assert.equal(r.body.errors[0].field, 'userType');
      const jane = (await accounts().getLogin('jane-emp'))!;
      assert.deepEqual([jane.firstName, jane.disabled], ['Jane', false]);
    });

    it('a factor reset through its own login of an email leaves the upstream links another tenant’s login of it uses', async () => {
      const identity = (await accounts().findIdentityByEmail('bob@acme.test'))!;
      const link = { issuer: 'https://upstream.example', subject: `bob-${setup}`, identityId: identity.id };
      await accounts().linkUpstream(link);
      const globex = await tokenFor(server.issuer, GLOBEX);
      const own = await call(globex, 'POST', '/logins', { body: newLogin({ email: 'bob@acme.test', userType: 'staff' }) });
      assert.equal(own.status, 201, JSON.stringify(own.body));
      assert.equal((await call(globex, 'POST', `/logins/${own.body.id}/factors/pin/reset`)).status, 200);
      assert.deepEqual(await accounts().listUpstreamLinks(identity.id), [link], 'Acme’s sign-in keeps its link');
      const [reset] = await accounts().listAudit({ tenant: 'globex', login: own.body.id, type: 'factor.pin.reset' });
      assert.deepEqual(reset!.detail, { client: GLOBEX.id, upstreamKept: 1 });
      assert.equal((await call(globex, 'DELETE', `/logins/${own.body.id}`)).status, 204);
      await accounts().unlinkUpstream(link);
    });

    it('adds a new email with an invitation, reads it with an ETag, finds it, changes it under If-Match', async () => {
      const person = newLogin({ firstName: ' Nia ', email: `NIA-${Date.now()}@acme.test` });
      const created = await call(token, 'POST', '/logins', { body: person, headers: { 'idempotency-key': `nia-${Date.now()}` } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.firstName, 'Nia');
      assert.equal(created.body.email, person.email.toLowerCase());
      assert.deepEqual(created.body.factors, []);
      const id = created.body.id as string;
      assert.equal(created.headers.get('location'), `${server.issuer}/api/v1/logins/${id}`);
      const mail = await smtp.next(person.email.toLowerCase());
      assert.match(mail.subject ?? '', /Acme Care/);
      const added = await accounts().listAudit({ tenant: 'acme', login: id, type: 'login.added' });
      assert.deepEqual(added[0]!.detail, { client: PROVISIONER.id, userType: 'employee', invited: true });

      const read = await call(token, 'GET', `/logins/${id}`);
      assert.equal(read.status, 200);
      const etag = read.headers.get('etag')!;
      assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
      assert.equal(etag, created.headers.get('etag'));

      const found = await call(token, 'GET', `/logins?email=${encodeURIComponent(person.email)}`);
      assert.deepEqual(
        found.body.items.map((l: { id: string }) => l.id),
        [id],
      );

      const changed = await call(token, 'PATCH', `/logins/${id}`, { body: { lastName: 'Parker', userType: 'manager' }, headers: { 'if-match': etag } });
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      assert.deepEqual([changed.body.lastName, changed.body.userType], ['Parker', 'manager']);
      assert.notEqual(changed.headers.get('etag'), etag);
      const edited = await accounts().listAudit({ tenant: 'acme', login: id, type: 'login.edited' });
      assert.deepEqual(edited[0]!.detail, { client: PROVISIONER.id, changed: ['lastName', 'userType'], from: 'employee', to: 'manager' });

      // The ETag read before the change is stale now: 412, nothing written.
      const stale = await call(token, 'PATCH', `/logins/${id}`, { body: { firstName: 'Late' }, headers: { 'if-match': etag } });
      assert.equal(stale.status, 412);
      assert.equal(stale.body.code, 'precondition_failed');
      assert.equal((await call(token, 'DELETE', `/logins/${id}`, { headers: { 'if-match': etag } })).status, 412);
      assert.equal((await accounts().getLogin(id))!.firstName, 'Nia');
      assert.equal(
        (await call(token, 'PATCH', `/logins/${id}`, { body: { firstName: 'Now' }, headers: { 'if-match': 'W/' + changed.headers.get('etag') } })).status,
        412,
        'a weak tag never matches',
      );
    });

    it('two changes from one read: exactly one is made, the other gets 412', async () => {
      const created = await call(token, 'POST', '/logins', { body: newLogin() });
      const etag = created.headers.get('etag')!;
      const id = created.body.id as string;
      const results = await Promise.all(
        ['One', 'Two', 'Three', 'Four'].map((firstName) => call(token, 'PATCH', `/logins/${id}`, { body: { firstName }, headers: { 'if-match': etag } })),
      );
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 412, 412, 412]);
      const winner = results.find((r) => r.status === 200)!.body.firstName;
      assert.equal((await accounts().getLogin(id))!.firstName, winner);
    });

    it('a removal under If-Match removes only the login as read: a change landing before its delete makes it a 412, and the login stays', async () => {
      const created = await call(token, 'POST', '/logins', { body: newLogin() });
      const id = created.body.id as string;
      const store = accounts();
      const { deleteLogin } = store;
      // Another client hands the login to another person just before this removal's delete.
      store.deleteLogin = async (loginId, expected) => {
        store.deleteLogin = deleteLogin;
        const { factors: _f, ...now } = (await store.getLogin(loginId))!;
        assert.ok(await store.updateLoginIf(now, { email: 'next-person@acme.test', userType: now.userType, firstName: now.firstName, lastName: now.lastName }));
        return deleteLogin.call(store, loginId, expected);
      };
      try {
        const removed = await call(token, 'DELETE', `/logins/${id}`, { headers: { 'if-match': created.headers.get('etag')! } });
        assert.equal(removed.status, 412, JSON.stringify(removed.body));
      } finally {
        store.deleteLogin = deleteLogin;
      }
      assert.equal((await accounts().getLogin(id))?.email, 'next-person@acme.test', 'the next person keeps the login');
      assert.equal((await call(token, 'DELETE', `/logins/${id}`)).status, 204, 'removed from a fresh read');
    });

    it('one Idempotency-Key makes one login: sent twice, and sent four times at once', async () => {
      const body = newLogin();
      const key = `retry-${Date.now()}`;
      const first = await call(token, 'POST', '/logins', { body, headers: { 'idempotency-key': key } });
      const again = await call(token, 'POST', '/logins', { body, headers: { 'idempotency-key': key } });
      assert.deepEqual([first.status, again.status], [201, 200]);
      assert.equal(again.body.id, first.body.id);
      assert.equal((await accounts().listLoginsForEmail('acme', body.email)).length, 1);

      const parallel = newLogin();
      const answers = await Promise.all(Array.from({ length: 4 }, () => call(token, 'POST', '/logins', { body: parallel, headers: { 'idempotency-key': 'at-once' } })));
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 201]);
      assert.equal(new Set(answers.map((a) => a.body.id)).size, 1);
      const logins = await accounts().listLoginsForEmail('acme', parallel.email);
      assert.equal(logins.length, 1);
      assert.equal((await accounts().listAudit({ tenant: 'acme', login: logins[0]!.id, type: 'login.added' })).length, 1, 'added, and audited, once');
      // Another client's same key is its own.
      const other = await call(await tokenFor(server.issuer, GLOBEX), 'POST', '/logins', {
        body: { ...parallel, email: parallel.email.replace('acme', 'globex'), userType: 'staff' },
        headers: { 'idempotency-key': 'at-once' },
      });
      assert.equal(other.status, 201);
      assert.notEqual(other.body.id, answers[0]!.body.id);
    });

    /** The mails to `email` once the outbox has been sent. */
    async function mailsTo(email: string) {
      await server.latchkey.mailer.drain();
      return smtp.to(email);
    }

    it('mails one email at most 5 invitations an hour, by adds and email changes; past them the login is made, nothing mailed, the last link kept, the refusal audited', async () => {
      const email = `flood-${Date.now()}@acme.test`;
      const add = () => call(token, 'POST', '/logins', { body: newLogin({ email, allowSameName: true }) });
      const added = [];
      for (let i = 0; i < 6; i++) added.push(await add());
      assert.deepEqual(
        added.map((a) => [a.status, a.body.invitation]),
        [...Array(5).fill([201, 'sent']), [201, 'rate_limited']],
      );
      // An email change to it is due an invitation too, and refused alike.
      const other = await add();
      const moved = await call(token, 'PATCH', `/logins/${added[0]!.body.id}`, { body: { email: `moved-${email}` } });
      assert.equal(moved.body.invitation, 'sent');
      const back = await call(token, 'PATCH', `/logins/${added[0]!.body.id}`, { body: { email, allowSameName: true } });
      assert.deepEqual([back.status, back.body.invitation, back.body.email], [200, 'rate_limited', email]);
      assert.equal(other.body.invitation, 'rate_limited');
      const logins = (await accounts().listLoginsForEmail('acme', email)).map((l) => l.id);
      assert.equal(logins.length, 7, 'every login made');

      const mails = await mailsTo(email);
      assert.equal(mails.length, 5, 'five invitations');
      // The refused ones made no link: the fifth mail's still works.
      assert.equal((await new Browser(server.issuer).get(linkOf(mails[4]!))).status, 200);
      const refused = (await accounts().listAudit({ tenant: 'acme', type: 'login.invited', person: { logins } })).filter((e) => e.outcome === 'failure');
      assert.equal(refused.length, 3);
      for (const e of refused) assert.deepEqual(e.detail, { client: PROVISIONER.id, reason: 'rate_limited' });

      clock.advance(3_600_001);
      assert.equal((await add()).body.invitation, 'sent', 'again after the hour');
      assert.equal((await mailsTo(email)).length, 6);
    });

    it('of 8 adds of one new email at once, at most 5 mail an invitation', async () => {
      const email = `burst-${Date.now()}@acme.test`;
      const answers = await Promise.all(Array.from({ length: 8 }, () => call(token, 'POST', '/logins', { body: newLogin({ email, allowSameName: true }) })));
      assert.deepEqual(
        answers.map((a) => a.status),
        Array(8).fill(201),
      );
      assert.deepEqual(answers.map((a) => a.body.invitation).sort(), [...Array(3).fill('rate_limited'), ...Array(5).fill('sent')]);
      assert.equal((await mailsTo(email)).length, 5);
    });

    it('asks before a second login of one email with the same name (409 namesake), and adds it when allowed', async () => {
      const r = await call(token, 'POST', '/logins', { body: { email: 'jane@acme.test', firstName: 'Jane', lastName: 'Doe', userType: 'manager' } });
      assert.equal(r.status, 409);
      assert.equal(r.body.code, 'namesake');
      assert.deepEqual(r.body.namesakes.sort(), ['jane-emp', 'jane-mgr']);
      assert.equal(r.body.suggestion, 'Doe (Manager)');
      const allowed = await call(token, 'POST', '/logins', { body: { email: 'jane@acme.test', firstName: 'Jane', lastName: 'Doe', userType: 'owner', allowSameName: true } });
      assert.equal(allowed.status, 201);
      assert.equal((await call(token, 'DELETE', `/logins/${allowed.body.id}`)).status, 204);
      assert.ok(await accounts().findIdentityByEmail('jane@acme.test'), 'her identity stays: she has other logins');
    });

    it('lists with filters and cursor paging, every login once', async () => {
      for (let i = 0; i < 5; i++) await call(token, 'POST', '/logins', { body: newLogin({ lastName: `Pager${i}`, userType: 'manager' }) });
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await call(token, 'GET', `/logins?q=pager&userType=manager&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(r.status, 200);
        assert.equal(r.body.total, 5);
        ids.push(...r.body.items.map((l: { id: string }) => l.id));
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 3);
      assert.equal(new Set(ids).size, 5);
      const disabled = await call(token, 'GET', '/logins?state=disabled');
      assert.ok(disabled.body.items.every((l: { disabled: boolean }) => l.disabled));
      assert.equal((await call(token, 'GET', '/logins?cursor=forged')).status, 400);
      assert.equal((await call(token, 'GET', `/logins?cursor=${Buffer.from('{"o":-1}').toString('base64url')}`)).status, 400);
    });

    it('disables a login (a sign-in is refused at once) and enables it; resets, unlocks, ends sessions; each audited with the client', async () => {
      const rp = await relyingParty(server.issuer);
      const disabled = await call(token, 'POST', '/logins/bob-emp/disable');
      assert.equal(disabled.status, 200);
      assert.equal(disabled.body.disabled, true);
      const refused = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
      assert.ok(!callbackReached(refused.page), 'a disabled login cannot sign in');
      assert.equal((await call(token, 'POST', '/logins/bob-emp/enable')).body.disabled, false);
      const back = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(back.page), 'enabled again, it signs in');

      const reset = await call(token, 'POST', '/logins/bob-emp/factors/totp/reset');
      assert.equal(reset.status, 200);
      assert.deepEqual(Object.keys(reset.body).sort(), ['kept', 'lifted']);
      assert.equal((await call(token, 'POST', '/logins/bob-emp/factors/sms/reset')).status, 404, 'no such factor');
      assert.equal((await call(token, 'POST', '/logins/bob-emp/factors/none/reset')).status, 404, 'a factor without a reset');
      assert.equal((await call(token, 'POST', '/logins/bob-emp/factors/PIN!/reset')).status, 400);
      const unlock = await call(token, 'POST', '/logins/bob-emp/unlock');
      assert.equal(unlock.status, 200);
      assert.equal((await call(token, 'DELETE', '/logins/bob-emp/sessions')).status, 204);
      const types = (await accounts().listAudit({ tenant: 'acme', login: 'bob-emp' })).filter((e) => e.detail?.client === PROVISIONER.id).map((e) => e.type);
      for (const type of ['login.disabled', 'login.enabled', 'factor.totp.reset', 'login.unlocked', 'login.sessions_ended']) assert.ok(types.includes(type), type);
    });

    it('lists a login’s sessions and ends one: that browser signs in again; another tenant sees none', async () => {
      const rp = await relyingParty(server.issuer);
      const browser = new Browser(server.issuer);
      const first = await signIn(browser, rp, { email: 'jane@acme.test', login: 'jane-emp' });
      assert.ok(callbackReached(first.page), `${first.page.status} ${first.page.url}`);
      const listed = await call(token, 'GET', '/logins/jane-emp/sessions');
      assert.equal(listed.status, 200);
      const items = listed.body.items as { id: string; apps: { clientId: string }[] }[];
      assert.ok(items.length >= 1, 'the sign-in is listed');
      assert.ok(items[0]!.apps.length >= 1, 'with the app it signed in to');
      const readOnly = await tokenFor(server.issuer, READER, 'latchkey:logins.read');
      assert.equal((await call(readOnly, 'DELETE', `/logins/jane-emp/sessions/${encodeURIComponent(items[0]!.id)}`)).status, 403, 'ending one needs the write scope');
      const globex = await tokenFor(server.issuer, GLOBEX);
      assert.equal((await call(globex, 'GET', '/logins/jane-emp/sessions')).status, 404);
      assert.equal((await call(globex, 'DELETE', `/logins/jane-emp/sessions/${encodeURIComponent(items[0]!.id)}`)).status, 404);

      for (const s of items) assert.equal((await call(token, 'DELETE', `/logins/jane-emp/sessions/${encodeURIComponent(s.id)}`)).status, 204);
      assert.equal((await call(token, 'DELETE', `/logins/jane-emp/sessions/${encodeURIComponent(items[0]!.id)}`)).status, 404, 'ended already');
      assert.deepEqual((await call(token, 'GET', '/logins/jane-emp/sessions')).body.items, []);
      const again = await browser.get((await rp.authorize()).url);
      assert.ok(again.html.includes('data-testid="login-form"') && !callbackReached(again), 'the ended session signs in again');
      const ended = (await accounts().listAudit({ tenant: 'acme', login: 'jane-emp', type: 'session.ended' })).filter((e) => e.detail?.client === PROVISIONER.id);
      assert.equal(ended.length, items.length, 'each ending is audited with the application that asked');
    });

    it('an API change is seen at once by a sign-in on another process', async () => {
      const { MONGODB_DB, REDIS_PREFIX, DATA_DIR } = server.env;
      const other = await startServer(setup, {
        doc: null,
        env: { DATA_DIR: DATA_DIR!, ...(MONGODB_DB ? { MONGODB_URI: server.env.MONGODB_URI!, MONGODB_DB, REDIS_PREFIX: REDIS_PREFIX! } : {}) },
      });
      try {
        const rp = await relyingParty(other.issuer);
        const first = await signIn(new Browser(other.issuer), rp, { email: 'jane@acme.test', login: 'jane-emp' });
        assert.ok(callbackReached(first.page), 'read (and cached) there first');
        assert.equal((await rp.callback(first.page.url, first.pending)).claims()!.family_name, 'Doe');

        const read = await call(token, 'GET', '/logins/jane-emp');
        const renamed = await call(token, 'PATCH', '/logins/jane-emp', { body: { lastName: 'Doe-Smith' }, headers: { 'if-match': read.headers.get('etag')! } });
        assert.equal(renamed.status, 200);
        const next = await signIn(new Browser(other.issuer), rp, { email: 'jane@acme.test', login: 'jane-emp' });
        assert.equal((await rp.callback(next.page.url, next.pending)).claims()!.family_name, 'Doe-Smith', 'the other process signs her in with the new name');

        assert.equal((await call(token, 'POST', '/logins/jane-emp/disable')).status, 200);
        // Her other login is the only one left to choose: the sign-in ends there, never as the disabled one.
        const after = await signIn(new Browser(other.issuer), rp, { email: 'jane@acme.test', login: 'jane-emp' });
        assert.ok(callbackReached(after.page), `${after.page.status} ${after.page.url}`);
        assert.equal((await rp.callback(after.page.url, after.pending)).claims()!.sub, 'jane-mgr', 'disabled through the API, not offered on the other process at once');
      } finally {
        await call(token, 'POST', '/logins/jane-emp/enable');
        await call(token, 'PATCH', '/logins/jane-emp', { body: { lastName: 'Doe' } });
        await other.stop();
      }
    });

    it('never lets the application change, disable or remove the tenant’s owner', async () => {
      for (const [method, path, body] of [
        ['PATCH', '/logins/acme-owner', { email: 'attacker@evil.test' }],
        ['POST', '/logins/acme-owner/disable', undefined],
        ['POST', '/logins/acme-owner/factors/pin/reset', undefined],
        ['DELETE', '/logins/acme-owner', undefined],
      ] as const) {
        const r = await call(token, method, path, body ? { body } : {});
        assert.equal(r.status, 403, `${method} ${path}`);
      }
      assert.equal((await accounts().getLogin('acme-owner'))!.email, 'owner@acme.test');
      assert.equal((await call(token, 'GET', '/logins/acme-owner')).status, 200, 'reading it is fine');
    });

    it('answers bad input with a problem naming the field, never a 500', async () => {
      const cases: [string, string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number, string?][] = [
        ['POST', '/logins', { body: newLogin({ email: 'not an email' }) }, 400, 'email'],
        ['POST', '/logins', { body: newLogin({ firstName: '' }) }, 400, 'firstName'],
        ['POST', '/logins', { body: newLogin({ lastName: 'x'.repeat(101) }) }, 400, 'lastName'],
        ['POST', '/logins', { body: newLogin({ userType: 'boss' }) }, 400, 'userType'],
        ['POST', '/logins', { body: newLogin({ role: 'admin' }) }, 400, 'role'],
        ['POST', '/logins', { body: newLogin({ firstName: { $ne: null } }) }, 400, 'firstName'],
        ['POST', '/logins', { body: [newLogin()] }, 400],
        ['POST', '/logins', { raw: '{"email":', headers: { 'content-type': 'application/json' } }, 400, 'body'],
        ['POST', '/logins', { raw: 'email=a@b.c', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
        ['POST', '/logins', { body: newLogin(), headers: { 'idempotency-key': 'x'.repeat(300) } }, 400, 'Idempotency-Key'],
        ['PATCH', '/logins/bob-emp', { body: { disabled: true } }, 400, 'disabled'],
        ['PATCH', '/logins/bob-emp', { body: { firstName: 'B' }, headers: { 'if-match': 'garbage' } }, 400, 'If-Match'],
        ['GET', '/logins?limit=0', {}, 400, 'limit'],
        ['GET', '/logins?state=gone', {}, 400, 'state'],
        ['GET', '/logins?q=a&q=b', {}, 400, 'q'],
        ['GET', '/logins?sort=email', {}, 400, 'sort'],
        ['GET', '/audit?type=DROP%20TABLE', {}, 400, 'type'],
        // A cursor holds only what a cursor given out can: a time that is a date, a login and type as the query takes them.
        ['GET', `/audit?cursor=${cursorOf({ b: 9e15, l: null, t: null })}`, {}, 400, 'cursor'],
        ['GET', `/audit?cursor=${cursorOf({ b: -1, l: null, t: null })}`, {}, 400, 'cursor'],
        ['GET', `/audit?cursor=${cursorOf({ b: 1, l: null, t: 'DROP TABLE' })}`, {}, 400, 'cursor'],
        ['POST', '/webhooks', { body: { url: 'http://example.com/hook', events: ['*'] } }, 400, 'url'],
        ['POST', '/webhooks', { body: { url: 'https://example.com/hook', events: ['Bad Event'] } }, 400, 'events'],
        ['GET', '/nothing-here', {}, 404],
        ['PUT', '/logins/bob-emp', { body: {} }, 405],
      ];
      for (const [method, path, options, status, field] of cases) {
        const r = await call(token, method, path, options);
        const what = `${method} ${path} ${JSON.stringify(options.body ?? options.raw ?? '')}`;
        assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
        assert.match(r.headers.get('content-type')!, /^application\/problem\+json/, what);
        assert.ok(Problem.safeParse(r.body).success, what);
        if (field)
          assert.ok(
            r.body.errors?.some((e: { field: string }) => e.field === field),
            `${what} names ${field}: ${JSON.stringify(r.body.errors)}`,
          );
      }
    });

    it('reads the audit log newest first, filtered, paged with a cursor', async () => {
      const all = await call(token, 'GET', '/audit?login=bob-emp&limit=500');
      assert.equal(all.status, 200);
      const times = all.body.items.map((e: { time: string }) => e.time);
      assert.deepEqual([...times].sort().reverse(), times, 'newest first');
      assert.ok(all.body.items.every((e: { login: string }) => e.login === 'bob-emp'));
      const paged: unknown[] = [];
      let cursor: string | null = null;
      do {
        const r = await call(token, 'GET', `/audit?login=bob-emp&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        paged.push(...r.body.items);
        cursor = r.body.nextCursor;
      } while (cursor);
      assert.deepEqual(paged, all.body.items, 'the pages hold every event once, in order');
      const typed = await call(token, 'GET', '/audit?type=login.disabled');
      assert.ok(typed.body.items.length > 0 && typed.body.items.every((e: { type: string }) => e.type === 'login.disabled'));
    });

    it('lists the user types', async () => {
      const r = await call(token, 'GET', '/user-types');
      assert.deepEqual(
        r.body.items.map((t: { id: string }) => t.id),
        ['owner', 'employee', 'manager'],
      );
    });

    it('adds, renames, sets the factor of and removes a user type; one in use is a 409', async () => {
      const created = await call(token, 'POST', '/user-types', { body: { name: 'Volunteer', secondFactor: 'none' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id as string;
      assert.equal((await call(token, 'POST', '/user-types', { body: { name: 'volunteer', secondFactor: 'none' } })).status, 409, 'the name is taken');
      assert.equal((await call(token, 'POST', '/user-types', { body: { name: 'X', secondFactor: 'sms' } })).status, 400);
      const changed = await call(token, 'PATCH', `/user-types/${id}`, { body: { name: 'Volunteers', secondFactor: 'pin' } });
      assert.deepEqual(changed.body, { id, name: 'Volunteers', secondFactor: 'pin' });
      const person = await call(token, 'POST', '/logins', { body: newLogin({ userType: id }) });
      assert.equal((await call(token, 'DELETE', `/user-types/${id}`)).status, 409, 'a login has it');
      await call(token, 'DELETE', `/logins/${person.body.id}`);
      assert.equal((await call(token, 'DELETE', `/user-types/${id}`)).status, 204);
      assert.equal((await call(await tokenFor(server.issuer, READER, 'latchkey:logins.read'), 'POST', '/user-types', { body: { name: 'Y', secondFactor: 'none' } })).status, 403);
      assert.equal((await call(await tokenFor(server.issuer, GLOBEX), 'PATCH', '/user-types/employee', { body: { name: 'Mine' } })).status, 404);
    });

    it('of parallel adds of one user type name, one is made and the others are a 409', async () => {
      const answers = await Promise.all(Array.from({ length: 4 }, () => call(token, 'POST', '/user-types', { body: { name: 'Night nurse', secondFactor: 'none' } })));
      assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409, 409]);
      const types = (await accounts().getTenant('acme'))!.userTypes.filter((t) => t.name === 'Night nurse');
      assert.equal(types.length, 1);
      assert.equal((await call(token, 'DELETE', `/user-types/${types[0]!.id}`)).status, 204);
    });

    it('holds at most 25 webhook subscriptions a tenant: the next is a 400 until one is removed', async () => {
      const have = (await call(token, 'GET', '/webhooks')).body.items.length as number;
      const made: string[] = [];
      for (let i = have; i < 25; i++) {
        const created = await call(token, 'POST', '/webhooks', { body: { url: `https://hooks.example/cap-${i}`, events: ['*'] } });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        made.push(created.body.id);
      }
      const over = await call(token, 'POST', '/webhooks', { body: { url: 'https://hooks.example/cap-over', events: ['*'] } });
      assert.equal(over.status, 400, JSON.stringify(over.body));
      assert.match(JSON.stringify(over.body), /the most it may have/);
      assert.equal((await call(token, 'GET', '/webhooks')).body.items.length, 25);
      clock.advance(61_000); // a fresh request window for the rest
      assert.equal((await call(token, 'DELETE', `/webhooks/${made[0]}`)).status, 204);
      const again = await call(token, 'POST', '/webhooks', { body: { url: 'https://hooks.example/cap-again', events: ['*'] } });
      assert.equal(again.status, 201, 'after one is removed');
      for (const id of [...made.slice(1), again.body.id as string]) assert.equal((await call(token, 'DELETE', `/webhooks/${id}`)).status, 204);
    });

    it('holds at most 25 webhook subscriptions however many creates arrive at once', async () => {
      clock.advance(61_000); // a fresh request window
      const have = (await call(token, 'GET', '/webhooks')).body.items.length as number;
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => call(token, 'POST', '/webhooks', { body: { url: `https://hooks.example/burst-${i}`, events: ['*'] } })),
      );
      const made = answers.filter((a) => a.status === 201).map((a) => a.body.id as string);
      assert.ok(
        answers.every((a) => a.status === 201 || a.status === 400),
        JSON.stringify(answers.map((a) => a.status)),
      );
      const held = (await call(token, 'GET', '/webhooks')).body.items.length as number;
      assert.ok(held <= 25, `at most 25 held, not ${held}`);
      assert.equal(held, have + made.length, 'every 201 is held, every 400 is not');
      clock.advance(61_000);
      for (const id of made) assert.equal((await call(token, 'DELETE', `/webhooks/${id}`)).status, 204);
    });

    it('manages webhook subscriptions: the secret shown once, listed without it, removed; the delivery log', async () => {
      const created = await call(token, 'POST', '/webhooks', { body: { url: 'https://hooks.example/latchkey', events: ['login.*'] } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(created.body.secret, /.{20,}/);
      const list = await call(token, 'GET', '/webhooks');
      const mine = list.body.items.find((s: { id: string }) => s.id === created.body.id);
      assert.deepEqual(mine, { id: created.body.id, url: 'https://hooks.example/latchkey', events: ['login.*'], createdAt: created.body.createdAt });
      assert.equal((await call(token, 'GET', '/webhooks/deliveries')).status, 200);
      const globex = await tokenFor(server.issuer, GLOBEX);
      assert.equal((await call(globex, 'DELETE', `/webhooks/${created.body.id}`)).status, 404, 'another tenant’s token cannot remove it');
      assert.equal((await call(token, 'DELETE', `/webhooks/${created.body.id}`)).status, 204);
      assert.equal((await call(token, 'DELETE', `/webhooks/${created.body.id}`)).status, 404);
      const audit = await accounts().listAudit({ tenant: 'acme', type: 'webhook.added' });
      assert.equal(audit[0]!.detail?.client, PROVISIONER.id);
    });

    it('limits each client’s requests: 429 with Retry-After, other clients unaffected, and again after the window', async () => {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof call>> | null = null;
      for (let i = 0; i < RATE + 2; i++) {
        last = await call(token, 'GET', '/user-types');
        statuses.push(last.status);
      }
      assert.equal(statuses.filter((s) => s === 200).length, RATE);
      assert.deepEqual(statuses.slice(RATE), [429, 429]);
      assert.equal(last!.body.code, 'rate_limited');
      const retry = Number(last!.headers.get('retry-after'));
      assert.ok(retry >= 1 && retry <= 60, String(retry));
      const globex = await tokenFor(server.issuer, GLOBEX);
      assert.equal((await call(globex, 'GET', '/user-types')).status, 200, 'another client has its own window');
      clock.advance(61_000);
      assert.equal((await call(token, 'GET', '/user-types')).status, 200);
    });

    it('publishes an OpenAPI 3.1 document that a validator accepts, and every route answers with the shapes it declares', async () => {
      const response = await fetch(`${server.issuer}/api/v1/openapi.json`);
      assert.equal(response.status, 200);
      const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
      assert.equal(document.openapi, '3.1.0');
      const validator = new Validator();
      const result = await validator.validate(document as never);
      assert.ok(result.valid, JSON.stringify(result.errors));

      const specs = apiRoutes(routeDeps(server.latchkey));
      const documented = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`));
      assert.deepEqual(documented.sort(), specs.map((s) => `${s.method} ${s.path}`).sort(), 'the document holds every route, and only those');
      const matcher = (path: string) => new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`);
      for (const spec of specs) {
        const answers = seen.filter(
          (a) => a.method === spec.method && matcher(spec.path).test(a.path) && !specs.some((o) => o !== spec && o.method === spec.method && o.path === a.path),
        );
        assert.ok(
          answers.some((a) => a.status < 300),
          `${spec.method} ${spec.path} was called successfully`,
        );
        for (const a of answers) {
          const declared = spec.responses[a.status] ?? ([400, 401, 403, 404, 413, 415, 429, 503].includes(a.status) ? { schema: Problem } : undefined);
          assert.ok(declared, `${spec.method} ${spec.path} answered ${a.status}, which it does not declare`);
          if (a.status >= 400) assert.match(a.type, /^application\/problem\+json/);
          if (declared.schema) {
            const parsed = declared.schema.safeParse(a.body);
            assert.ok(parsed.success, `${spec.method} ${a.path} ${a.status}: ${JSON.stringify(parsed.error?.issues)}`);
          } else assert.equal(a.body, '', `${spec.method} ${a.path} ${a.status} has no body`);
        }
      }
    });
  });
}
