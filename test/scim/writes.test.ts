// How SCIM writes a User, on both store set-ups. A PATCH or PUT writes only
// what it changes, in one write conditional on the login as that request
// read it: of two changes made from one read, one is made and the other is
// not written over it — with If-Match it gets 412, without it is applied
// again to the User as it is now. A deactivation is never undone by a request
// that did not ask to activate. And a refused change (403 for the tenant's
// owner) writes nothing, not even the userName or externalId.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SETUPS, startServer, type TestServer } from '../support/latchkey.ts';
import type { AccountStore, LoginProfile } from '../../src/storage/accounts/port.ts';

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

type Write = 'deactivate' | 'rename';

/**
 * Pins one interleaving of two requests' writes to a login: both have read
 * it before either writes; `first`'s write lands, then `second`'s, and only
 * then does `first` go on (to read the login again). The hooks only delay
 * store calls — as a slow network would — and change no answer; each delays
 * the first write of its kind only.
 */
function pinWrites(accounts: AccountStore, id: string, first: Write) {
  const kindOf = (loginId: string, change: { disabled?: boolean; firstName?: string }): Write | null =>
    loginId !== id ? null : change.disabled === true ? 'deactivate' : change.firstName === 'Renamed' ? 'rename' : null;
  const arrived = { deactivate: signal(), rename: signal() };
  const wrote = { deactivate: signal(), rename: signal() };
  const pinned = new Set<Write>();
  const pin = async (kind: Write | null, write: () => Promise<boolean>) => {
    if (!kind || pinned.has(kind)) return write();
    pinned.add(kind);
    const other: Write = kind === 'rename' ? 'deactivate' : 'rename';
    arrived[kind].fire();
    if (kind === first) await within(arrived[other].fired, `the ${other} to read`);
    else await within(wrote[first].fired, `the ${first} to write`);
    try {
      return await write();
    } finally {
      wrote[kind].fire();
      if (kind === first) await within(wrote[other].fired, `the ${other} to write`);
    }
  };
  const { setLoginDisabled, updateLoginIf } = accounts;
  accounts.setLoginDisabled = (loginId, disabled) => pin(kindOf(loginId, { disabled }), () => setLoginDisabled.call(accounts, loginId, disabled));
  accounts.updateLoginIf = (expected: LoginProfile, next) => pin(kindOf(expected.id, next), () => updateLoginIf.call(accounts, expected, next));
  return () => Object.assign(accounts, { setLoginDisabled, updateLoginIf });
}

for (const setup of SETUPS) {
  describe(`SCIM writes (${setup})`, () => {
    let server: TestServer;
    let token: string;
    const accounts = () => server.latchkey.stores.accounts;

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

    /** A deactivation (a leaver) and a rename of one User at once, from one read; `first` writes first. */
    async function race(first: Write, ifMatch: boolean) {
      const { id, etag } = await newUser();
      const headers: Record<string, string> = ifMatch ? { 'if-match': etag } : {};
      const unpin = pinWrites(accounts(), id, first);
      try {
        const [deactivate, rename] = await Promise.all([
          scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] }, headers),
          scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'name.givenName', value: 'Renamed' }] }, headers),
        ]);
        return { deactivate, rename, login: (await accounts().getLogin(id))! };
      } finally {
        unpin();
      }
    }

    for (const first of ['rename', 'deactivate'] as const) {
      it(`two PATCHes from one If-Match, the ${first} written first: it is made, the other gets 412 and writes nothing`, async () => {
        const { deactivate, rename, login } = await race(first, true);
        const [won, lost] = first === 'rename' ? [rename, deactivate] : [deactivate, rename];
        assert.equal(won.status, 200, JSON.stringify(won.body));
        assert.equal(lost.status, 412, JSON.stringify(lost.body));
        assert.deepEqual(
          { disabled: login.disabled, firstName: login.firstName },
          first === 'rename' ? { disabled: false, firstName: 'Renamed' } : { disabled: true, firstName: 'Lee' },
        );
      });

      it(`two PATCHes without If-Match, the ${first} written first: both are made, and the login stays deactivated`, async () => {
        const { deactivate, rename, login } = await race(first, false);
        assert.deepEqual([deactivate.status, rename.status], [200, 200], JSON.stringify([deactivate.body, rename.body]));
        assert.deepEqual({ disabled: login.disabled, firstName: login.firstName }, { disabled: true, firstName: 'Renamed' });
        if (first === 'deactivate') assert.equal(rename.body.active, false, 'the rename, made again from a fresh read, answers the User deactivated');
      });
    }

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
  });
}
