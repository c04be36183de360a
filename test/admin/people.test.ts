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
import { importDocument } from '../../src/import/index.ts';
import type { MailMessage } from '../../src/mail/mailer.ts';
import { EMAIL_MAX } from '../../src/email.ts';

for (const setup of SETUPS) {
  describe(`the owner operations (${setup})`, () => {
    let server: TestServer;
    let people: AdminPeople;
    let app: Actor;
    const mailed: MailMessage[] = [];

    before(async () => {
      server = await startServer(setup, { doc: accountFixture() });
      const deps = routeDeps(server.latchkey);
      // Every message as it is queued, beside the real outbox.
      people = adminPeople({ ...deps, mailer: { ...deps.mailer, send: async (m) => (mailed.push(m), deps.mailer.send(m)) } });
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

    it('deletes the identity an email change leaves behind, password and upstream links, when no login of any tenant has the address', async () => {
      const hasher = server.latchkey.hasher;
      const old = await accounts().upsertIdentity({ email: 'leaver@acme.test', passwordHash: await hasher.hash('the leaver’s own password') });
      await accounts().linkUpstream({ issuer: 'https://idp.example', subject: 'leaver', identityId: old.id });
      const made = await people.create(
        app,
        derivedLoginId('acme', 'portal\nleaver'),
        checkPerson({ firstName: 'Lee', lastName: 'Ver', email: 'leaver@acme.test', userType: 'employee' }, app.tenant),
      );
      assert.equal(made.outcome, 'created');
      const login = await people.login(app, derivedLoginId('acme', 'portal\nleaver'));
      await people.update(app, login, checkPerson({ ...login, email: 'successor@acme.test' }, app.tenant));
      assert.equal(await accounts().findIdentityByEmail('leaver@acme.test'), null, 'no login has the old address: its identity is gone');
      assert.equal(await accounts().findIdentityByUpstream('https://idp.example', 'leaver'), null, 'and its upstream links');

      // Whoever is given the old address next (by any tenant) chooses a password of their own.
      const globex: Actor = { ...app, tenant: (await accounts().getTenant('globex'))!, by: { client: 'globex-app' } };
      const next = await people.create(globex, derivedLoginId('globex', 'newcomer'), { firstName: 'New', lastName: 'Comer', email: 'leaver@acme.test', userType: 'staff' });
      assert.equal(next.outcome, 'created');
      assert.equal((await accounts().findIdentityByEmail('leaver@acme.test'))!.passwordHash, null, 'the old password is not theirs');
      assert.equal(mailed.at(-1)?.kind, 'invitation');
    });

    it('keeps the identity an email change or a removal leaves while another login (of any tenant) has the address', async () => {
      const jane = await people.login(app, 'jane-acme');
      const hash = (await accounts().findIdentityByEmail('jane@acme.test'))!.passwordHash;
      const moved = await people.update(app, jane, checkPerson({ ...jane, email: 'jane.doe@acme.test' }, app.tenant));
      assert.equal(moved.outcome, 'updated');
      assert.equal((await accounts().findIdentityByEmail('jane@acme.test'))?.passwordHash, hash, 'her Globex login still signs in with it');
      const back = await people.login(app, 'jane-acme');
      await people.update(app, back, checkPerson({ ...back, email: 'jane@acme.test' }, app.tenant));
      assert.equal(await accounts().findIdentityByEmail('jane.doe@acme.test'), null, 'the address she left for a while has no identity left');
    });

    it('deletes the identity an import’s email change leaves behind, unless the file names the identity', async () => {
      const deps = { accounts: accounts(), hasher: server.latchkey.hasher, config: server.latchkey.config };
      const file = (email: string, identities: string[]) => ({
        identities: identities.map((e) => ({ email: e, password: 'an imported password' })),
        tenants: [{ ...accountFixture().tenants![1]!, logins: [{ id: 'imported-one', email, userType: 'staff', firstName: 'Ima', lastName: 'Ported' }] }],
      });
      await importDocument(file('ima@globex.test', ['ima@globex.test']), deps);
      await importDocument(file('ima.new@globex.test', ['ima.new@globex.test']), deps);
      assert.equal(await accounts().findIdentityByEmail('ima@globex.test'), null, 'the old address has no login and the file does not name it');
      await importDocument(file('ima.third@globex.test', ['ima.third@globex.test', 'ima.new@globex.test']), deps);
      assert.ok(await accounts().findIdentityByEmail('ima.new@globex.test'), 'named in the file: kept');
    });

    it('answers an add and an email change alike whether or not the address has a password anywhere, and mails the person either way', async () => {
      // Globex's application probes Jane's address (she has a password, from Acme) and an unknown one.
      const globex: Actor = { ...app, tenant: (await accounts().getTenant('globex'))!, by: { client: 'globex-app' } };
      const from = mailed.length;
      const probe = (key: string, email: string) => people.create(globex, derivedLoginId('globex', key), { firstName: 'Pro', lastName: `Be ${key}`, email, userType: 'boss' });
      const known = await probe('known', 'jane@acme.test');
      const unknown = await probe('unknown', 'nobody-yet@acme.test');
      const shape = (r: Awaited<ReturnType<typeof probe>>) => (r.outcome === 'created' ? { outcome: r.outcome, invited: r.invited, invitation: r.invitation } : r);
      assert.deepEqual(shape(known), shape(unknown));
      assert.deepEqual(shape(known), { outcome: 'created', invited: true, invitation: 'sent' });
      const audited = async (r: typeof known) => {
        const events = await accounts().listAudit({ tenant: 'globex', login: r.outcome === 'created' ? r.login.id : '' });
        return events.map((e) => [e.type, e.outcome, e.detail]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
      };
      assert.deepEqual(await audited(known), await audited(unknown), 'the audit tells them apart no more');
      const kinds = (to: string) =>
        mailed
          .slice(from)
          .filter((m) => m.to === to)
          .map((m) => m.kind);
      assert.deepEqual(kinds('jane@acme.test'), ['login_added'], 'Jane is told of the login, and signs in with her password');
      assert.deepEqual(kinds('nobody-yet@acme.test'), ['invitation']);

      const changed = await people.update(globex, await people.login(globex, derivedLoginId('globex', 'unknown')), {
        firstName: 'Pro',
        lastName: 'Be again',
        email: 'owner@acme.test',
        userType: 'boss',
      });
      assert.equal(changed.outcome === 'updated' && changed.invitation, 'sent', 'an email change to an address with a password answers as one to a new address');
      assert.deepEqual(kinds('owner@acme.test'), ['login_added']);
    });

    it(`takes emails of up to ${EMAIL_MAX} characters, and refuses longer ones`, () => {
      const at = '@acme.test';
      const person = { firstName: 'Long', lastName: 'Name', userType: 'employee' };
      const longest = `${'a'.repeat(64)}.${'b'.repeat(EMAIL_MAX - 65 - at.length)}${at}`;
      assert.equal(longest.length, 254);
      assert.equal(checkPerson({ ...person, email: longest }, app.tenant).email, longest);
      assert.throws(() => checkPerson({ ...person, email: `c${longest}` }, app.tenant), refused('bad_request', 400, 'email'));
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
