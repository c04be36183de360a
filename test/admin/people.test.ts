// The owner operations as every way in uses them (the pages, the API, SCIM):
// an application acting in its tenant adds, changes, disables and removes
// people with the same rules and audit as the owner's pages, never reaches
// another tenant's login, and never touches the owner's.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SETUPS, startServer, type TestServer } from '../support/latchkey.ts';
import { accountFixture } from '../account/support.ts';
import { adminPeople, derivedLoginId, checkPerson, type Actor, type AdminPeople } from '../../src/admin/people.ts';
import { routeDeps } from '../../src/services.ts';
import { LatchkeyError } from '../../src/errors.ts';

for (const setup of SETUPS) {
  describe(`the owner operations (${setup})`, () => {
    let server: TestServer;
    let people: AdminPeople;
    let app: Actor;

    before(async () => {
      server = await startServer(setup, { doc: accountFixture() });
      people = adminPeople(routeDeps(server.latchkey));
      const tenant = (await server.latchkey.stores.accounts.getTenant('acme'))!;
      app = { tenant, by: { client: 'portal' }, ip: '192.0.2.7', userAgent: 'provisioner/1' };
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const refused = (code: string, status: number, field?: string) => (err: unknown) =>
      err instanceof LatchkeyError && err.code === code && err.status === status && (field === undefined || err.detail.field === field);

    it('names the bad field in its own words or the caller’s', () => {
      const person = { firstName: 'Ann', lastName: 'Lee', email: 'ann@acme.test', userType: 'employee' };
      assert.throws(() => checkPerson({ ...person, email: 'not an email' }, app.tenant), refused('bad_request', 400, 'email'));
      assert.throws(() => checkPerson({ ...person, userType: 'boss' }, app.tenant), refused('bad_request', 400, 'userType'));
      assert.throws(
        () => checkPerson({ ...person, firstName: ' \u200b' }, app.tenant, { firstName: 'first_name', lastName: 'l', email: 'e', userType: 'u' }),
        refused('bad_request', 400, 'first_name'),
      );
      assert.deepEqual(checkPerson({ ...person, lastName: '  Lee   Smith ', email: ' ANN@acme.test' }, app.tenant), { ...person, lastName: 'Lee Smith' });
    });

    it('creates once per key, audited with the client; the same key again is the same login', async () => {
      const id = derivedLoginId('acme', 'portal\nkey-1');
      const person = checkPerson({ firstName: 'Ann', lastName: 'Lee', email: 'ann@acme.test', userType: 'employee' }, app.tenant);
      const results = await Promise.all([people.create(app, id, person), people.create(app, id, person), people.create(app, id, person)]);
      assert.equal(results.filter((r) => r.outcome === 'created').length, 1, 'parallel creates of one key make one login');
      assert.ok(results.every((r) => r.outcome !== 'namesakes' && r.login.id === id));
      const again = await people.create(app, id, person);
      assert.equal(again.outcome, 'existed');
      const added = await accounts().listAudit({ tenant: 'acme', login: id, type: 'login.added' });
      assert.equal(added.length, 1);
      assert.deepEqual(added[0]!.detail, { client: 'portal', userType: 'employee', invited: true });
      assert.equal(added[0]!.ip, '192.0.2.7');
      // Another tenant's login is never reached, even by its id.
      const globex = (await accounts().getTenant('globex'))!;
      await assert.rejects(people.login({ ...app, tenant: globex }, id), refused('not_found', 404));
      await assert.rejects(people.create({ ...app, tenant: globex }, id, { ...person, userType: 'boss' }), refused('not_found', 404));
    });

    it('disables (ending sessions), enables and removes a person; each audited once', async () => {
      const jane = await people.login(app, 'jane-acme');
      const disabled = await people.setDisabled(app, jane, true);
      assert.equal(disabled.disabled, true);
      assert.ok(await accounts().loginSessionsNotBefore('jane-acme'), 'her sessions end');
      await people.setDisabled(app, disabled, true);
      assert.equal((await accounts().listAudit({ tenant: 'acme', login: 'jane-acme', type: 'login.disabled' })).length, 1);
      assert.equal((await people.setDisabled(app, disabled, false)).disabled, false);
      const ann = await people.login(app, derivedLoginId('acme', 'portal\nkey-1'));
      assert.equal(await people.remove(app, ann), true);
      assert.equal(await people.remove(app, ann), false);
      assert.equal(await accounts().getLogin(ann.id), null);
      assert.equal(await accounts().findIdentityByEmail('ann@acme.test'), null, 'the email had no other login');
    });

    it('never lets an application change, reset, unlock, disable or remove the owner, nor an owner disable themselves', async () => {
      const owner = await people.login(app, 'acme-owner');
      const person = { firstName: 'Olga', lastName: 'Owner', email: 'attacker@evil.test', userType: 'owner' };
      await assert.rejects(people.update(app, owner, person), refused('forbidden', 403));
      await assert.rejects(people.resetFactor(app, owner, 'pin'), refused('forbidden', 403));
      await assert.rejects(people.unlock(app, owner), refused('forbidden', 403));
      await assert.rejects(people.setDisabled(app, owner, true), refused('forbidden', 403));
      await assert.rejects(people.remove(app, owner), refused('forbidden', 403));
      const self: Actor = { ...app, by: { login: 'acme-owner' } };
      await assert.rejects(people.setDisabled(self, owner, true), refused('bad_request', 400));
      await assert.rejects(people.remove(self, owner), refused('bad_request', 400));
      const stored = (await accounts().getLogin('acme-owner'))!;
      assert.deepEqual([stored.email, stored.disabled], ['owner@acme.test', false]);
    });
  });
}
