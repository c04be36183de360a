// SCIM 2.0 end to end, on both store set-ups: what a provisioning client
// (Microsoft Entra, Okta) sends — discovery, lookups by filter, paging,
// create, replace, Entra's and Okta's PATCH, delete, group membership — over
// a tenant's bearer token; a deactivated user cannot sign in and their
// sessions end; another tenant's token sees nothing; a revoked token is refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Browser, csrfOf, testIds, textOf } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, signIn, startServer, submitLogin, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { noticeOf, signedIn, submit } from '../account/support.ts';
import { runCli } from '../support/cli.ts';

const SCIM_JSON = 'application/scim+json';
const EXT = 'urn:latchkey:params:scim:schemas:extension:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Answer {
  status: number;
  type: string;
  headers: Headers;
  body: Json;
}

function client(issuer: string, token: string | null) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(`${issuer}/scim/v2${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': SCIM_JSON } : {}),
        accept: SCIM_JSON,
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, body: text ? (JSON.parse(text) as Json) : {} };
  };
}

const q = (filter: string) => `/Users?filter=${encodeURIComponent(filter)}`;
const userNames = (a: Answer) => (a.body.Resources as Json[]).map((r) => r.userName as string).sort();

function assertScimError(a: Answer, status: number, scimType?: string) {
  assert.equal(a.status, status, JSON.stringify(a.body));
  assert.match(a.type, /^application\/scim\+json/);
  assert.deepEqual(a.body.schemas, [ERROR]);
  assert.equal(a.body.status, String(status));
  if (scimType) assert.equal(a.body.scimType, scimType);
  assert.equal(typeof a.body.detail, 'string');
}

const newUser = (userName: string, more: Json = {}) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', EXT],
  userName,
  externalId: `ext-${userName}`,
  name: { givenName: 'Nina', familyName: 'North' },
  emails: [{ value: userName, type: 'work', primary: true }],
  active: true,
  ...more,
});

for (const setup of SETUPS) {
  describe(`SCIM (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let scim: ReturnType<typeof client>;
    let acmeToken: string;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { now: clock.now });
      rp = await relyingParty(server.issuer);
      acmeToken = (await server.latchkey.scimTokens.create('acme', 'Entra ID', 'acme-owner')).token;
      scim = client(server.issuer, acmeToken);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const audit = (login: string, type: string) => accounts().listAudit({ tenant: 'acme', login, type });

    it('describes itself: ServiceProviderConfig, ResourceTypes and Schemas, as application/scim+json', async () => {
      const spc = await scim('GET', '/ServiceProviderConfig');
      assert.equal(spc.status, 200);
      assert.match(spc.type, /^application\/scim\+json/);
      assert.equal(spc.body.patch.supported, true);
      assert.equal(spc.body.filter.supported, true);
      assert.equal(spc.body.bulk.supported, false);
      assert.equal(spc.body.etag.supported, true);
      assert.equal(spc.body.authenticationSchemes[0].type, 'oauthbearertoken');
      const types = await scim('GET', '/ResourceTypes');
      assert.deepEqual(
        (types.body.Resources as Json[]).map((r) => r.endpoint),
        ['/Users', '/Groups'],
      );
      assert.equal(types.body.Resources[0].schemaExtensions[0].schema, EXT);
      const schemas = await scim('GET', '/Schemas');
      assert.deepEqual(
        (schemas.body.Resources as Json[]).map((s) => s.id),
        ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:core:2.0:Group', EXT],
      );
      const user = await scim('GET', '/Schemas/urn:ietf:params:scim:schemas:core:2.0:User');
      assert.ok((user.body.attributes as Json[]).some((a) => a.name === 'userName' && a.uniqueness === 'server'));
      assertScimError(await scim('GET', '/Nothing'), 404);
    });

    it('refuses a request without a valid token, and one of a revoked token', async () => {
      assertScimError(await client(server.issuer, null)('GET', '/Users'), 401);
      const bad = await client(server.issuer, 'lk_scim_' + 'A'.repeat(43))('GET', '/Users');
      assertScimError(bad, 401);
      assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer/);
      const { token, record } = await server.latchkey.scimTokens.create('acme', 'Okta', 'acme-owner');
      assert.equal((await client(server.issuer, token)('GET', '/Users')).status, 200);
      assert.equal(await server.latchkey.scimTokens.revoke('globex', record.id, 'cli'), false, "another tenant's owner cannot revoke it");
      assert.equal(await server.latchkey.scimTokens.revoke('acme', record.id, 'acme-owner'), true);
      assertScimError(await client(server.issuer, token)('GET', '/Users'), 401);
      assertScimError(await client(server.issuer, token)('POST', '/Users', newUser('revoked@acme.test')), 401);
      assert.deepEqual(await accounts().listLoginsForEmail('acme', 'revoked@acme.test'), [], 'a revoked token changes nothing');
      const stored = (await server.latchkey.stores.scim.listTokens('acme')).find((t) => t.id === record.id)!;
      assert.ok(!JSON.stringify(stored).includes(token.slice(8)), 'the store holds a hash, never the token');
      const events = await accounts().listAudit({ tenant: 'acme', type: 'scim.token.revoked' });
      assert.equal(events[0]?.detail?.token, record.id);
    });

    it("lists the tenant's logins as Users; two logins of one email are two Users with one email and their own userNames", async () => {
      const all = await scim('GET', '/Users');
      assert.equal(all.status, 200);
      assert.deepEqual(all.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
      assert.ok(userNames(all).includes('bob@acme.test'));
      assert.ok(!userNames(all).includes('gina@globex.test'), "another tenant's login is not listed");
      const jane = await scim('GET', q('emails.value eq "JANE@acme.test"'));
      assert.equal(jane.body.totalResults, 2);
      assert.deepEqual(userNames(jane), ['jane@acme.test', 'jane@acme.test#manager']);
      const byName = await scim('GET', q('userName eq "jane@acme.test#manager"'));
      assert.deepEqual(
        (byName.body.Resources as Json[]).map((r) => r.id),
        ['jane-mgr'],
      );
      const manager = byName.body.Resources[0] as Json;
      assert.deepEqual(manager.name, { givenName: 'Jane', familyName: 'Doe', formatted: 'Jane Doe' });
      assert.equal(manager.active, true);
      assert.deepEqual(manager.emails, [{ value: 'jane@acme.test', type: 'work', primary: true }]);
      assert.equal(manager[EXT].userType, 'manager');
      assert.equal(manager.groups[0].value, 'manager');
      // The name stays once shown, also when the login moves to another user type.
      await accounts().upsertLogin({ id: 'jane-mgr', tenant: 'acme', email: 'jane@acme.test', userType: 'employee', firstName: 'Jane', lastName: 'Doe' });
      assert.equal((await scim('GET', '/Users/jane-mgr')).body.userName, 'jane@acme.test#manager');
      await accounts().upsertLogin({ id: 'jane-mgr', tenant: 'acme', email: 'jane@acme.test', userType: 'manager', firstName: 'Jane', lastName: 'Doe' });
    });

    it('filters with eq, sw, co, and, not, on userName, emails.value, externalId, active and displayName; pages with startIndex and count', async () => {
      assert.deepEqual(userNames(await scim('GET', q('userName sw "JANE@"'))), ['jane@acme.test', 'jane@acme.test#manager']);
      assert.deepEqual(userNames(await scim('GET', q('displayName co "baker"'))), ['bob@acme.test']);
      assert.deepEqual(userNames(await scim('GET', q('userName sw "jane" and urn:latchkey:params:scim:schemas:extension:2.0:User:userType eq "manager"'))), [
        'jane@acme.test#manager',
      ]);
      assert.deepEqual(userNames(await scim('GET', q('emails[type eq "work" and value co "bob"]'))), ['bob@acme.test']);
      assert.deepEqual(userNames(await scim('GET', q('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@acme.test"'))), ['bob@acme.test']);
      assert.equal((await scim('GET', q('active eq false'))).body.totalResults, 0);
      assert.equal((await scim('GET', q('active eq true and not (userName sw "jane")'))).body.totalResults, 2);
      assert.equal((await scim('GET', q('userName eq "nobody@acme.test"'))).body.totalResults, 0);
      assert.equal((await scim('GET', q('userName eq "gina@globex.test"'))).body.totalResults, 0, "another tenant's login is never found");

      const first = await scim('GET', '/Users?startIndex=1&count=2');
      const second = await scim('GET', '/Users?startIndex=3&count=2');
      assert.equal(first.body.totalResults, 4);
      assert.equal(first.body.itemsPerPage, 2);
      assert.equal(second.body.startIndex, 3);
      assert.equal(second.body.Resources.length, 2);
      const ids = [...first.body.Resources, ...second.body.Resources].map((r: Json) => r.id);
      assert.equal(new Set(ids).size, 4, 'pages do not overlap');
      assert.equal((await scim('GET', '/Users?count=0')).body.Resources.length, 0);
      assert.equal((await scim('GET', '/Users?startIndex=0&count=1')).body.startIndex, 1);

      const only = await scim('GET', `/Users/bob-emp?attributes=userName,${encodeURIComponent(`${EXT}:userType`)}`);
      assert.deepEqual(Object.keys(only.body).sort(), ['id', 'meta', 'schemas', 'userName', EXT].sort(), 'attributes');
      const without = await scim('GET', '/Users?excludedAttributes=emails,name&count=1');
      assert.ok(without.body.Resources[0].userName && !without.body.Resources[0].emails && !without.body.Resources[0].name, 'excludedAttributes');

      assertScimError(await scim('GET', q('userName eq')), 400, 'invalidFilter');
      assertScimError(await scim('GET', q('userName xx "a"')), 400, 'invalidFilter');
      assertScimError(await scim('GET', q('(userName eq "a"')), 400, 'invalidFilter');
      assertScimError(await scim('GET', '/Users?count=abc'), 400, 'invalidValue');
    });

    it('creates a user as Entra does (look up by userName, then POST), once; a new email is invited', async () => {
      const userName = 'nina@acme.test';
      assert.equal((await scim('GET', q(`userName eq "${userName}"`))).body.totalResults, 0);
      const made = await scim('POST', '/Users', newUser(userName, { [EXT]: { userType: 'manager' } }));
      assert.equal(made.status, 201, JSON.stringify(made.body));
      assert.equal(made.headers.get('location'), `${server.issuer}/scim/v2/Users/${made.body.id}`);
      assert.match(made.headers.get('etag') ?? '', /^W\/"/);
      assert.equal(made.body.userName, userName);
      assert.equal(made.body.externalId, `ext-${userName}`);
      assert.equal(made.body[EXT].userType, 'manager');
      const login = (await accounts().getLogin(made.body.id))!;
      assert.deepEqual([login.tenant, login.email, login.userType, login.firstName, login.lastName, login.disabled], ['acme', userName, 'manager', 'Nina', 'North', false]);
      const added = await audit(login.id, 'login.added');
      assert.match(String(added[0]?.detail?.client), /^scim:/, 'audited as the SCIM client');
      assert.ok((await audit(login.id, 'login.invited')).length, 'the new email is invited');
      assert.equal((await scim('GET', q(`externalId eq "ext-${userName}"`))).body.Resources[0].id, login.id);

      assertScimError(await scim('POST', '/Users', newUser(userName.toUpperCase())), 409, 'uniqueness');
      assertScimError(await scim('POST', '/Users', newUser('bob@acme.test')), 409, 'uniqueness');
      // Parallel creates of one userName make one login.
      const race = await Promise.all([1, 2, 3].map(() => scim('POST', '/Users', newUser('race@acme.test'))));
      assert.deepEqual(race.map((r) => r.status).sort(), [201, 409, 409]);
      assert.equal((await accounts().listLoginsForEmail('acme', 'race@acme.test')).length, 1);

      // A second login of an existing email: a User of its own, with the same email.
      const second = await scim('POST', '/Users', newUser('jane.manager@acme.test', { emails: [{ value: 'jane@acme.test', primary: true }], [EXT]: { userType: 'Employee' } }));
      assert.equal(second.status, 201, JSON.stringify(second.body));
      assert.equal(second.body[EXT].userType, 'employee', 'a user type by its name');
      assert.equal((await accounts().listLoginsForEmail('acme', 'jane@acme.test')).length, 3);

      assertScimError(await scim('POST', '/Users', newUser('bad@acme.test', { [EXT]: { userType: 'astronaut' } })), 400, 'invalidValue');
      assertScimError(await scim('POST', '/Users', newUser('noname@acme.test', { name: {} })), 400, 'invalidValue');
      assertScimError(await scim('POST', '/Users', newUser('x', { emails: [{ value: 'not-an-email' }] })), 400, 'invalidValue');
      assertScimError(await scim('POST', '/Users', { userName: '' }), 400, 'invalidValue');
      assertScimError(await scim('POST', '/Users', '{"userName": '), 400, 'invalidSyntax');
      assertScimError(await scim('POST', '/Users', 'userName=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415);
      const plainJson = await scim('POST', '/Users', newUser('okta@acme.test'), { 'content-type': 'application/json; charset=utf-8' });
      assert.equal(plainJson.status, 201, `application/json is read too: ${JSON.stringify(plainJson.body)}`);
    });

    it('deactivates a user with Entra\'s PATCH (Replace active "False"): their sessions end and they cannot sign in; Okta\'s PATCH turns them back on', async () => {
      const browser = new Browser(server.issuer);
      const first = await signIn(browser, rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(first.page));
      const tokens = await rp.callback(first.page.url, first.pending);
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, true);

      const read = await scim('GET', '/Users/bob-emp');
      const etag = read.headers.get('etag')!;
      assert.equal(etag, read.body.meta.version);
      assert.equal((await scim('GET', '/Users/bob-emp', undefined, { 'if-none-match': etag })).status, 304, 'unchanged since read');
      const off = await scim('PATCH', '/Users/bob-emp', { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] }, { 'if-match': etag });
      assert.equal(off.status, 200, JSON.stringify(off.body));
      assert.equal(off.body.active, false);
      assert.notEqual(off.headers.get('etag'), etag, 'a new version');
      assert.equal((await accounts().getLogin('bob-emp'))!.disabled, true);
      assert.match(String((await audit('bob-emp', 'login.disabled'))[0]?.detail?.client), /^scim:/);

      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token ended');
      await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'the refresh token ended');
      let page = await browser.get((await rp.authorize()).url);
      assert.ok(testIds(page).includes('login-form'), 'the single sign-on session ended');
      page = await submitLogin(browser, page, 'bob@acme.test', PASSWORD);
      assert.ok(!callbackReached(page), `a deactivated user cannot sign in: ${page.status} ${page.url}`);
      assert.equal((await scim('GET', q('active eq false'))).body.Resources[0].id, 'bob-emp');

      assertScimError(await scim('PATCH', '/Users/bob-emp', { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] }, { 'if-match': etag }), 412);
      const on = await scim('PATCH', '/Users/bob-emp', { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] });
      assert.equal(on.body.active, true);
      const again = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
      assert.ok(callbackReached(again.page), 'active again, they sign in');

      assertScimError(await scim('PATCH', '/Users/acme-owner', { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] }), 403);
      assertScimError(await scim('PATCH', '/Users/acme-owner', { schemas: [PATCH], Operations: [{ op: 'replace', path: 'name.givenName', value: 'Mallory' }] }), 403);
      assertScimError(await scim('DELETE', '/Users/acme-owner'), 403);
      const owner = (await accounts().getLogin('acme-owner'))!;
      assert.deepEqual([owner.disabled, owner.firstName], [false, 'Olga'], "an application never changes the tenant's owner");
    });

    it('changes names and email with PATCH as Entra and Okta send them, and with PUT', async () => {
      const made = await scim('POST', '/Users', newUser('paul@acme.test', { [EXT]: { userType: 'employee' } }));
      const id = made.body.id as string;
      const entra = await scim('PATCH', `/Users/${id}`, {
        schemas: [PATCH],
        Operations: [
          { op: 'Replace', path: 'name.givenName', value: 'Paulo' },
          { op: 'Add', path: 'name.familyName', value: 'Pike' },
          { op: 'Replace', path: 'emails[type eq "work"].value', value: 'paulo@acme.test' },
          { op: 'Replace', path: 'externalId', value: 'entra-42' },
        ],
      });
      assert.equal(entra.status, 200, JSON.stringify(entra.body));
      let login = (await accounts().getLogin(id))!;
      assert.deepEqual([login.firstName, login.lastName, login.email], ['Paulo', 'Pike', 'paulo@acme.test']);
      assert.equal(entra.body.userName, 'paul@acme.test', 'the userName is the directory’s, not the email');
      assert.deepEqual((await audit(id, 'login.edited'))[0]?.detail?.changed, ['firstName', 'lastName', 'email']);

      const okta = await scim('PATCH', `/Users/${id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', value: { id, userName: 'paulo@acme.test', name: { givenName: 'Paul' }, [`${EXT}:userType`]: 'manager' } }],
      });
      assert.equal(okta.status, 200, JSON.stringify(okta.body));
      login = (await accounts().getLogin(id))!;
      assert.deepEqual([login.firstName, login.lastName, login.userType], ['Paul', 'Pike', 'manager']);
      assert.equal(okta.body.userName, 'paulo@acme.test');
      assert.equal((await scim('GET', q('userName eq "paul@acme.test"'))).body.totalResults, 0, 'the old name is free');

      const removed = await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'externalId' }] });
      assert.equal(removed.body.externalId, undefined);

      const put = await scim('PUT', `/Users/${id}`, { ...newUser('paulo@acme.test'), name: { givenName: 'P', familyName: 'Pike' }, externalId: 'again' });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.equal(put.body.name.givenName, 'P');
      assert.equal(put.body[EXT].userType, 'manager', 'a replace without a user type keeps it');

      assertScimError(await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'userName', value: 'bob@acme.test' }] }), 409, 'uniqueness');
      assertScimError(await scim('PATCH', `/Users/${id}`, { Operations: [{ op: 'replace', path: 'active', value: false }] }), 400, 'invalidSyntax');
      assertScimError(await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove' }] }), 400, 'noTarget');
      assertScimError(await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] }), 400, 'invalidValue');
      assertScimError(await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'emails[type eq', value: 'x' }] }), 400, 'invalidPath');
      assert.equal((await accounts().getLogin(id))!.disabled, false, 'refused patches change nothing');
    });

    it('deletes a user: their sessions end, the login is gone, and so is the User', async () => {
      const made = await scim('POST', '/Users', newUser('dora@acme.test'));
      const id = made.body.id as string;
      assert.equal((await scim('DELETE', `/Users/${id}`)).status, 204);
      assert.equal(await accounts().getLogin(id), null);
      assertScimError(await scim('GET', `/Users/${id}`), 404);
      assertScimError(await scim('DELETE', `/Users/${id}`), 404);
      assert.match(String((await audit(id, 'login.removed'))[0]?.detail?.client), /^scim:/);
      // Made again under the same userName, it is a fresh user.
      assert.equal((await scim('POST', '/Users', newUser('dora@acme.test'))).status, 201);

      // A user removed elsewhere (the owner's pages) leaves its name to be taken again.
      const erin = await scim('POST', '/Users', newUser('erin@acme.test'));
      assert.ok(await accounts().deleteLogin(erin.body.id as string));
      const other = await scim('POST', '/Users', newUser('fred@acme.test'));
      const renamed = await scim('PATCH', `/Users/${other.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'userName', value: 'Erin@acme.test' }] });
      assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
      assert.equal(renamed.body.userName, 'Erin@acme.test');
    });

    it('shows user types as Groups with their members; adding a member moves the login to that type', async () => {
      const groups = await scim('GET', '/Groups');
      assert.deepEqual(
        (groups.body.Resources as Json[]).map((g) => g.displayName),
        ['Owner', 'Employee', 'Manager'],
      );
      const found = await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "manager"')}&excludedAttributes=members`);
      assert.equal(found.body.totalResults, 1);
      assert.equal(found.body.Resources[0].id, 'manager');
      assert.equal(found.body.Resources[0].members, undefined, 'excludedAttributes=members');
      const manager = await scim('GET', '/Groups/manager');
      assert.ok((manager.body.members as Json[]).some((m) => m.value === 'jane-mgr'));
      assert.ok(!(manager.body.members as Json[]).some((m) => m.value === 'bob-emp'));

      // Entra adds with a value list; Okta removes with a filter path.
      const add = await scim('PATCH', '/Groups/manager', { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: 'bob-emp' }] }] });
      assert.equal(add.status, 204, JSON.stringify(add.body));
      assert.equal((await accounts().getLogin('bob-emp'))!.userType, 'manager');
      assert.deepEqual((await audit('bob-emp', 'login.edited'))[0]?.detail, {
        client: `scim:${(await server.latchkey.stores.scim.listTokens('acme'))[0]!.id}`,
        changed: ['userType'],
        from: 'employee',
        to: 'manager',
      });
      assert.equal((await scim('GET', '/Users/bob-emp')).body[EXT].userType, 'manager');
      const remove = await scim('PATCH', '/Groups/manager', { schemas: [PATCH], Operations: [{ op: 'remove', path: 'members[value eq "bob-emp"]' }] });
      assert.equal(remove.status, 204);
      assert.equal((await accounts().getLogin('bob-emp'))!.userType, 'manager', 'taken out of a group, a login stays in its type until it is added to another');
      await scim('PATCH', '/Groups/employee', { schemas: [PATCH], Operations: [{ op: 'add', value: { members: [{ value: 'bob-emp' }] } }] });
      assert.equal((await accounts().getLogin('bob-emp'))!.userType, 'employee');

      assertScimError(
        await scim('PATCH', '/Groups/employee', { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: 'gina-staff' }] }] }),
        400,
        'invalidValue',
      );
      assert.equal((await accounts().getLogin('gina-staff'))!.userType, 'staff', "another tenant's login is never moved");
      assertScimError(await scim('PATCH', '/Groups/employee', { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'Staff' }] }), 400, 'mutability');
      assertScimError(await scim('GET', '/Groups/staff'), 404);
      assertScimError(await scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Manager' }), 409, 'uniqueness');
      assertScimError(await scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Interns' }), 403);
    });

    it('refuses what would only cost — a body nested past 32 levels, a group change adding over 1,000 members, a User of over 100 emails — with 400, never a 500', async () => {
      const made = await scim('POST', '/Users', newUser('costly@acme.test'));
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const deep = `{"schemas":["${PATCH}"],"Operations":[{"op":"add","path":"emails","value":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`;
      assertScimError(await scim('PATCH', `/Users/${made.body.id}`, deep), 400, 'invalidSyntax');
      const members = Array.from({ length: 1001 }, (_, i) => ({ value: `nobody-${i}` }));
      assertScimError(await scim('PATCH', '/Groups/manager', { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: members }] }), 400, 'tooMany');
      const emails = Array.from({ length: 101 }, (_, i) => ({ value: `costly${i}@acme.test` }));
      assertScimError(await scim('PATCH', `/Users/${made.body.id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'emails', value: emails }] }), 400, 'invalidValue');
      const or = Array.from({ length: 51 }, (_, i) => `userName eq "x${i}"`).join(' or ');
      assertScimError(await scim('GET', q(or)), 400, 'invalidFilter');
      assert.equal((await scim('GET', `/Users/${made.body.id}`)).body.emails.length, 1, 'nothing changed');
    });

    it("another tenant's token sees and changes nothing of this tenant", async () => {
      const globex = client(server.issuer, (await server.latchkey.scimTokens.create('globex', 'Okta', 'cli')).token);
      const list = await globex('GET', '/Users');
      assert.deepEqual(
        (list.body.Resources as Json[]).map((r) => r.id),
        ['gina-staff'],
      );
      assertScimError(await globex('GET', '/Users/jane-emp'), 404);
      assertScimError(await globex('PATCH', '/Users/jane-emp', { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] }), 404);
      assertScimError(await globex('PUT', '/Users/jane-emp', newUser('jane@acme.test')), 404);
      assertScimError(await globex('DELETE', '/Users/jane-emp'), 404);
      assertScimError(await globex('GET', '/Groups/manager'), 404);
      assertScimError(await globex('PATCH', '/Groups/staff', { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: 'jane-emp' }] }] }), 400);
      assert.equal((await globex('GET', q('userName eq "jane@acme.test"'))).body.totalResults, 0);
      assert.equal((await globex('GET', q('emails.value eq "jane@acme.test"'))).body.totalResults, 0);
      const jane = (await accounts().getLogin('jane-emp'))!;
      assert.deepEqual([jane.tenant, jane.userType, jane.disabled], ['acme', 'employee', false]);
    });

    it('lets the operator make, list and revoke tokens with the CLI', async () => {
      const made = await runCli(['scim', 'token', 'create', '--tenant', 'acme', '--label', 'Okta'], server.env);
      assert.equal(made.code, 0, made.stderr);
      const token = /bearer token \(shown once\): (lk_scim_\S+)/.exec(made.stdout)?.[1];
      assert.ok(token, made.stdout);
      const id = /^token (\S+)/.exec(made.stdout)![1]!;
      assert.equal((await client(server.issuer, token)('GET', '/Users?count=1')).status, 200);
      const listed = await runCli(['scim', 'token', 'list', '--tenant', 'acme'], server.env);
      assert.match(listed.stdout, new RegExp(`${id}  Okta  made .* by cli`));
      assert.ok(!listed.stdout.includes(token), 'a token is never shown again');
      assert.equal((await runCli(['scim', 'token', 'revoke', '--tenant', 'globex', id], server.env)).code, 1, "another tenant's token");
      assert.equal((await runCli(['scim', 'token', 'create', '--tenant', 'nowhere'], server.env)).code, 1);
      assert.equal((await runCli(['scim', 'token', 'create'], server.env)).code, 2);
      assert.equal((await runCli(['scim', 'token', 'revoke', '--tenant', 'acme', id], server.env)).code, 0);
      assertScimError(await client(server.issuer, token)('GET', '/Users'), 401);
      const events = await accounts().listAudit({ tenant: 'acme', type: 'scim.token.created' });
      assert.ok(events.some((e) => e.detail?.token === id && e.detail?.via === 'cli'));
    });

    // Last: it moves the clock on past the re-authentication window.
    it("gives the owner a page to make a token (shown once) and revoke it, with CSRF and a recent sign-in; others can't", async () => {
      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/scim');
      assert.equal(textOf(owner.page, 'scim-endpoint'), `${server.issuer}/scim/v2`);
      assert.ok(testIds(owner.page).includes('nav-scim'));
      const shown = await submit(owner.browser, owner.page, 'scim-create-form', { label: 'Entra ID' });
      assert.equal(shown.status, 200);
      assert.equal(shown.headers.get('cache-control'), 'no-store');
      const token = textOf(shown, 'scim-token')!;
      assert.match(token, /^lk_scim_/);
      assert.equal((await client(server.issuer, token)('GET', '/Users?count=1')).status, 200, 'the token works');
      const again = await owner.browser.get('/account/scim');
      assert.ok(!again.html.includes(token), 'shown once');
      const id = (await server.latchkey.stores.scim.listTokens('acme')).at(-1)!.id;
      assert.ok(testIds(again).includes(`revoke-${id}`));
      const made = await accounts().listAudit({ tenant: 'acme', type: 'scim.token.created', login: 'acme-owner' });
      assert.ok(
        made.some((e) => e.detail?.token === id && e.detail?.label === 'Entra ID'),
        'audited',
      );

      const badLabel = await submit(owner.browser, again, 'scim-create-form', { label: '\u0007' });
      assert.equal(badLabel.status, 400);
      assert.ok(testIds(badLabel).includes('error'));
      assert.equal((await owner.browser.post('/account/scim/tokens', { label: 'No CSRF' })).status, 403, 'no CSRF token');
      assert.equal((await owner.browser.post(`/account/scim/tokens/${id}/revoke`, { confirm: 'yes' })).status, 403, 'no CSRF token');

      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-emp' });
      assert.ok(!testIds(jane.page).includes('nav-scim'), 'not in the menu of a non-owner');
      assert.equal((await jane.browser.get('/account/scim')).status, 403, 'a non-owner');
      assert.equal((await jane.browser.post(`/account/scim/tokens/${id}/revoke`, { csrf: csrfOf(jane.page), confirm: 'yes' })).status, 403, 'a non-owner');
      assert.equal((await owner.browser.post(`/account/scim/tokens/other-${id}/revoke`, { csrf: csrfOf(again), confirm: 'yes' })).status, 403);

      const confirm = await owner.browser.post(`/account/scim/tokens/${id}/revoke`, { csrf: csrfOf(again) });
      assert.ok(testIds(confirm).includes('confirm-revoke-form'), 'a confirmation first');
      assert.equal((await client(server.issuer, token)('GET', '/Users?count=1')).status, 200, 'nothing revoked before confirming');
      const done = await submit(owner.browser, confirm, 'confirm-revoke-form');
      assert.equal(new URL(done.url).pathname, '/account/scim');
      assert.match(noticeOf(done), /revoked/);
      assertScimError(await client(server.issuer, token)('GET', '/Users'), 401);
      const revoked = await accounts().listAudit({ tenant: 'acme', type: 'scim.token.revoked', login: 'acme-owner' });
      assert.ok(revoked.some((e) => e.detail?.token === id));

      // Long after the sign-in, a new token needs the password again.
      clock.advance((server.latchkey.config.account.reauthSeconds + 60) * 1000);
      const stale = await owner.browser.request('/account/scim/tokens', {
        method: 'POST',
        body: new URLSearchParams({ label: 'Late', csrf: csrfOf(again) }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(stale.status, 303);
      assert.match(stale.headers.get('location') ?? '', /^\/account\/signin\?reauth=1/);
      assert.ok(!(await server.latchkey.stores.scim.listTokens('acme')).some((t) => t.label === 'Late'), 'no token without signing in again');
    });
  });

  describe(`SCIM request limit (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();
    const LIMIT = 4;

    before(async () => {
      server = await startServer(setup, { now: clock.now, env: { API_RATE_LIMIT: String(LIMIT), API_RATE_WINDOW_SECONDS: '60' } });
    });
    after(() => server.stop());

    it("counts each token's requests in a sliding window: past the limit 429 with Retry-After, another token unaffected, and again after the window", async () => {
      const one = client(server.issuer, (await server.latchkey.scimTokens.create('acme', 'Entra ID', 'acme-owner')).token);
      const two = client(server.issuer, (await server.latchkey.scimTokens.create('acme', 'Okta', 'acme-owner')).token);
      const answers = await Promise.all(Array.from({ length: LIMIT + 3 }, () => one('GET', '/Users?count=1')));
      assert.deepEqual(answers.map((a) => a.status).sort(), [...Array(LIMIT).fill(200), ...Array(3).fill(429)]);
      const refused = answers.find((a) => a.status === 429)!;
      assertScimError(refused, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After');
      assert.equal((await two('GET', '/Users?count=1')).status, 200, 'another token has its own window');
      clock.advance(61_000);
      assert.equal((await one('GET', '/Users?count=1')).status, 200, 'after the window');
    });
  });
}
