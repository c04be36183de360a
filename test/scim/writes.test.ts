// How SCIM writes a User, on both store set-ups. A PATCH or PUT writes the
// User only while it is as that request read it: its SCIM values (userName,
// externalId) first, conditional on their revision, then what changes of the
// login, conditional on the login as read. Of two changes made from one
// read, whatever each changes, one is made and the other is not written over
// it — with If-Match it gets 412, without it is applied again to the User as
// it is now. A change of the login by another writer (the pages, the API)
// between the two writes puts the SCIM values back. A deactivation is never
// undone by a request that did not ask to activate. And a refused change
// (403 for the tenant's owner) writes nothing, not even the userName or
// externalId.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SETUPS, startServer, type TestServer } from '../support/latchkey.ts';
import type { AccountStore, LoginProfile } from '../../src/storage/accounts/port.ts';
import type { ScimStore } from '../../src/storage/scim/port.ts';
import { EMAIL_MAX } from '../../src/email.ts';
import { LatchkeyError } from '../../src/errors.ts';
import { checkPerson } from '../../src/admin/people.ts';
import { NewLogin } from '../../src/api/schemas.ts';
import { ImportError, validateImport } from '../../src/import/index.ts';

const SCIM_JSON = 'application/scim+json';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const EXT = 'urn:latchkey:params:scim:schemas:extension:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function signal() {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fire, fired };
}

const within = <T>(p: Promise<T>, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 10_000))]);

/**
 * Holds the first write of a User's SCIM values — each request's first
 * write — until `release`, and tells when it arrived and when it was made.
 * The hook only delays a store call, as a slow network would, and changes
 * no answer. Pinning both requests' first writes pins their interleaving:
 * the second is sent once the first has read the User and waits at its
 * write, so both have read before either writes.
 */
function holdScimWrites(scim: ScimStore, loginId: string, count: number) {
  const held = Array.from({ length: count }, () => ({ arrived: signal(), release: signal(), wrote: signal() }));
  let calls = 0;
  const { setUserIf } = scim;
  scim.setUserIf = async (revision, user) => {
    const slot = user.loginId === loginId ? held[calls++] : undefined;
    if (!slot) return setUserIf.call(scim, revision, user);
    slot.arrived.fire();
    await within(slot.release.fired, 'the test to release a write');
    try {
      return await setUserIf.call(scim, revision, user);
    } finally {
      slot.wrote.fire();
    }
  };
  return { held, restore: () => Object.assign(scim, { setUserIf }) };
}

for (const setup of SETUPS) {
  describe(`SCIM writes (${setup})`, () => {
    let server: TestServer;
    let token: string;
    const accounts = () => server.latchkey.stores.accounts;
    const scimStore = () => server.latchkey.stores.scim;

    before(async () => {
      server = await startServer(setup);
      token = (await server.latchkey.scimTokens.create('acme', 'Entra ID', 'acme-owner')).token;
    });
    after(() => server.stop());

    async function scim(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(`${server.issuer}/scim/v2${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: SCIM_JSON, ...(body === undefined ? {} : { 'content-type': SCIM_JSON }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as Json };
    }

    let made = 0;
    async function newUser() {
      const userName = `leaver${++made}@acme.test`;
      const answer = await scim('POST', '/Users', {
        schemas: [USER, EXT],
        userName,
        externalId: `ext-${made}`,
        name: { givenName: 'Lee', familyName: 'Leaver' },
        emails: [{ value: userName, type: 'work', primary: true }],
        active: true,
        [EXT]: { userType: 'employee' },
      });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      return { id: answer.body.id as string, etag: answer.headers.get('etag')! };
    }

    const deactivate = { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] };
    const rename = { schemas: [PATCH], Operations: [{ op: 'replace', path: 'name.givenName', value: 'Renamed' }] };
    const newUserName = (to: string) => ({ schemas: [PATCH], Operations: [{ op: 'replace', path: 'userName', value: to }] });

    /** Two PATCHes of one User from one read: `first` is sent first and its write is made first, then `second`'s. */
    async function race(id: string, first: unknown, second: unknown, headers: Record<string, string>) {
      const hold = holdScimWrites(scimStore(), id, 2);
      try {
        const one = scim('PATCH', `/Users/${id}`, first, headers);
        await within(hold.held[0]!.arrived.fired, 'the first PATCH to read');
        const two = scim('PATCH', `/Users/${id}`, second, headers);
        await within(hold.held[1]!.arrived.fired, 'the second PATCH to read');
        hold.held[0]!.release.fire();
        await within(hold.held[0]!.wrote.fired, 'the first write');
        hold.held[1]!.release.fire();
        const [a, b] = await Promise.all([one, two]);
        return { first: a, second: b, login: (await accounts().getLogin(id))!, user: await scim('GET', `/Users/${id}`) };
      } finally {
        hold.restore();
      }
    }

    for (const first of ['rename', 'deactivate'] as const) {
      const [one, two] = first === 'rename' ? [rename, deactivate] : [deactivate, rename];
      it(`two PATCHes from one If-Match, the ${first} written first: it is made, the other gets 412 and writes nothing`, async () => {
        const { id, etag } = await newUser();
        const { first: won, second: lost, login } = await race(id, one, two, { 'if-match': etag });
        assert.equal(won.status, 200, JSON.stringify(won.body));
        assert.equal(lost.status, 412, JSON.stringify(lost.body));
        assert.deepEqual(
          { disabled: login.disabled, firstName: login.firstName },
          first === 'rename' ? { disabled: false, firstName: 'Renamed' } : { disabled: true, firstName: 'Lee' },
        );
      });

      it(`two PATCHes without If-Match, the ${first} written first: both are made, and the login stays deactivated`, async () => {
        const { id } = await newUser();
        const { first: a, second: b, login } = await race(id, one, two, {});
        const [deactivated, renamed] = first === 'rename' ? [b, a] : [a, b];
        assert.deepEqual([deactivated.status, renamed.status], [200, 200], JSON.stringify([deactivated.body, renamed.body]));
        assert.deepEqual({ disabled: login.disabled, firstName: login.firstName }, { disabled: true, firstName: 'Renamed' });
        if (first === 'deactivate') assert.equal(renamed.body.active, false, 'the rename, made again from a fresh read, answers the User deactivated');
      });
    }

    it('two userName changes from one If-Match: the first is made, the other gets 412 and its name is not taken', async () => {
      const { id, etag } = await newUser();
      const { first, second, user } = await race(id, newUserName(`first-${id}@acme.test`), newUserName(`second-${id}@acme.test`), { 'if-match': etag });
      assert.deepEqual([first.status, second.status], [200, 412], JSON.stringify([first.body, second.body]));
      assert.equal(user.body.userName, `first-${id}@acme.test`);
      const named = await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "second-${id}@acme.test"`)}`);
      assert.equal(named.body.totalResults, 0, 'the refused name is free');
    });

    it('an externalId change and a deactivation from one If-Match: one is made, the other gets 412', async () => {
      const { id, etag } = await newUser();
      const externalId = { schemas: [PATCH], Operations: [{ op: 'replace', path: 'externalId', value: 'moved-ext' }] };
      const { first, second, login, user } = await race(id, deactivate, externalId, { 'if-match': etag });
      assert.deepEqual([first.status, second.status], [200, 412], JSON.stringify([first.body, second.body]));
      assert.equal(login.disabled, true);
      assert.equal(user.body.externalId, `ext-${made}`, 'the externalId as it was');
    });

    it('a rename and a delete from one If-Match, the rename written first: the delete gets 412 and the User stays', async () => {
      const { id, etag } = await newUser();
      const hold = holdScimWrites(scimStore(), id, 2);
      try {
        const renamed = scim('PATCH', `/Users/${id}`, newUserName(`kept-${id}@acme.test`), { 'if-match': etag });
        await within(hold.held[0]!.arrived.fired, 'the PATCH to read');
        const removed = scim('DELETE', `/Users/${id}`, undefined, { 'if-match': etag });
        await within(hold.held[1]!.arrived.fired, 'the DELETE to read');
        hold.held[0]!.release.fire();
        await within(hold.held[0]!.wrote.fired, 'the rename');
        hold.held[1]!.release.fire();
        assert.deepEqual([(await renamed).status, (await removed).status], [200, 412]);
      } finally {
        hold.restore();
      }
      assert.ok(await accounts().getLogin(id), 'the login stays');
      assert.equal((await scim('GET', `/Users/${id}`)).body.userName, `kept-${id}@acme.test`);
    });

    /** Runs `write` just before the SCIM request's own write of the login: another writer changes the login between the two. */
    function editBetween(id: string, write: (accounts: AccountStore) => Promise<void>) {
      const store = accounts();
      const { updateLoginIf } = store;
      let done = false;
      store.updateLoginIf = async (expected: LoginProfile, next) => {
        if (expected.id === id && !done) {
          done = true;
          await write(Object.assign(Object.create(store) as AccountStore, { updateLoginIf }));
        }
        return updateLoginIf.call(store, expected, next);
      };
      return () => Object.assign(store, { updateLoginIf });
    }

    const ownerEdit = (id: string) => async (store: AccountStore) => {
      const login = (await store.getLogin(id))!;
      const { factors: _f, ...read } = login;
      assert.ok(await store.updateLoginIf(read, { firstName: login.firstName, lastName: 'Edited', email: login.email, userType: login.userType }));
    };

    it("a userName change from an If-Match while the owner edits the login: 412, the name is put back and the owner's edit kept", async () => {
      const { id, etag } = await newUser();
      const before_ = (await scim('GET', `/Users/${id}`)).body.userName;
      const restore = editBetween(id, ownerEdit(id));
      try {
        const answer = await scim('PATCH', `/Users/${id}`, newUserName(`between-${id}@acme.test`), { 'if-match': etag });
        assert.equal(answer.status, 412, JSON.stringify(answer.body));
      } finally {
        restore();
      }
      const user = (await scim('GET', `/Users/${id}`)).body;
      assert.deepEqual([user.userName, user.name.familyName], [before_, 'Edited']);
      const named = await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "between-${id}@acme.test"`)}`);
      assert.equal(named.body.totalResults, 0, 'the new name is let go');
    });

    it('the same change without If-Match is made again from a fresh read: both the new name and the edit stay', async () => {
      const { id } = await newUser();
      const restore = editBetween(id, ownerEdit(id));
      try {
        const answer = await scim('PATCH', `/Users/${id}`, newUserName(`again-${id}@acme.test`));
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
      } finally {
        restore();
      }
      const user = (await scim('GET', `/Users/${id}`)).body;
      assert.deepEqual([user.userName, user.name.familyName], [`again-${id}@acme.test`, 'Edited']);
    });

    it('a rename, a group move or a PUT without `active` leaves a deactivated login deactivated', async () => {
      const { id } = await newUser();
      assert.equal((await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] })).status, 200);
      const renamed = await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'name.familyName', value: 'Left' }] });
      assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
      assert.equal((await scim('PATCH', '/Groups/manager', { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: id }] }] })).status, 204);
      const { active: _active, ...withoutActive } = (await scim('GET', `/Users/${id}`)).body;
      assert.equal((await scim('PUT', `/Users/${id}`, { ...withoutActive, name: { givenName: 'Lee', familyName: 'Gone' } })).status, 200);
      const login = (await accounts().getLogin(id))!;
      assert.deepEqual([login.disabled, login.lastName, login.userType], [true, 'Gone', 'manager']);
    });

    it("a refused change of the tenant's owner (403) writes nothing: not its userName, not its externalId", async () => {
      const before = await scim('GET', '/Users/acme-owner');
      assert.equal(before.status, 200);
      const kept = { userName: before.body.userName, externalId: before.body.externalId };
      const takeOver = [
        { op: 'replace', path: 'userName', value: 'taken-over@evil.test' },
        { op: 'replace', path: 'externalId', value: 'attacker-ext' },
      ];
      assert.equal((await scim('PATCH', '/Users/acme-owner', { schemas: [PATCH], Operations: takeOver })).status, 403);
      const put = await scim('PUT', '/Users/acme-owner', { ...before.body, userName: 'taken-over@evil.test', externalId: 'attacker-ext' });
      assert.equal(put.status, 403, JSON.stringify(put.body));
      const after_ = await scim('GET', '/Users/acme-owner');
      assert.deepEqual({ userName: after_.body.userName, externalId: after_.body.externalId }, kept);
      assert.equal((await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "taken-over@evil.test"')}`)).body.totalResults, 0, 'the name is not held');

      // A group's new members are all checked before any moves: with the owner among them, nobody moves.
      const { id } = await newUser();
      const add = await scim('PATCH', '/Groups/manager', { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: id }, { value: 'acme-owner' }] }] });
      assert.equal(add.status, 403, JSON.stringify(add.body));
      assert.equal((await accounts().getLogin(id))!.userType, 'employee');
      assert.equal((await accounts().getLogin('acme-owner'))!.userType, before.body[EXT].userType);
    });

    it(`takes a ${EMAIL_MAX}-character email end to end — a User made, a second login of it named email#userType, each replaced and deactivated — and refuses one character more as the pages, the API and the import do`, async () => {
      const domain = '@acme.test';
      const email = `${'l'.repeat(64)}.${'o'.repeat(EMAIL_MAX - 65 - domain.length)}${domain}`;
      assert.equal(email.length, EMAIL_MAX);
      const body = (userName: string, userType: string, active: boolean) => ({
        schemas: [USER, EXT],
        userName,
        name: { givenName: 'Lon', familyName: 'Gest' },
        emails: [{ value: email, type: 'work', primary: true }],
        active,
        [EXT]: { userType },
      });
      const made = await scim('POST', '/Users', body(email, 'employee', true));
      assert.equal(made.status, 201, JSON.stringify(made.body));
      assert.equal((await accounts().getLogin(made.body.id))!.email, email);
      // A second login of the email made elsewhere is named `email#manager` (longer than 256) the first time SCIM shows it.
      await accounts().createLogin({ id: 'longest-mgr', tenant: 'acme', email, userType: 'manager', firstName: 'Lon', lastName: 'Gest (Manager)' });
      const second = await scim('GET', '/Users/longest-mgr');
      assert.equal(second.body.userName, `${email}#manager`);
      for (const [id, userName, userType] of [
        [made.body.id as string, email, 'employee'],
        ['longest-mgr', `${email}#manager`, 'manager'],
      ] as const) {
        const put = await scim('PUT', `/Users/${id}`, body(userName, userType, false));
        assert.equal(put.status, 200, JSON.stringify(put.body));
        assert.equal((await accounts().getLogin(id))!.disabled, true, 'deactivated');
        const patched = await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: true }] });
        assert.equal(patched.status, 200, JSON.stringify(patched.body));
      }

      const tooLong = `x${email}`;
      const refused = await scim('POST', '/Users', { ...body(tooLong, 'employee', true), emails: [{ value: tooLong, primary: true }] });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(await accounts().findIdentityByEmail(tooLong), null, 'nothing made');
      const tenant = (await accounts().getTenant('acme'))!;
      assert.throws(
        () => checkPerson({ firstName: 'Lon', lastName: 'Gest', email: tooLong, userType: 'employee' }, tenant),
        (err) => err instanceof LatchkeyError && err.status === 400 && err.detail.field === 'email',
      );
      assert.equal(NewLogin.safeParse({ email: tooLong, firstName: 'Lon', lastName: 'Gest', userType: 'employee' }).success, false, 'the API refuses it');
      assert.equal(NewLogin.safeParse({ email, firstName: 'Lon', lastName: 'Gest', userType: 'employee' }).success, true);
      await assert.rejects(
        validateImport({ identities: [{ email: tooLong }] }, accounts(), server.latchkey.config),
        (err) => err instanceof ImportError && /identities\[0\]\.email/.test(err.message),
      );
      await validateImport({ identities: [{ email }] }, accounts(), server.latchkey.config);
    });
  });
}
