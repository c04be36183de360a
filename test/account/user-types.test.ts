// The owner runs the tenant's user types: create one and give a person it
// (their next sign-in asks for its factor), rename it (the login choice and
// the profile say the new name), delete it only when no login has it, and set
// every type's factor on one form with one Save (a change in one row is never
// lost to another's), confirmed with what the people of that type will see.
// Only the tenant's owner, with the session's CSRF token and a recent sign-in.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, csrfOf, testIds, textOf } from '../support/browser.ts';
import { SETUPS, relyingParty, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, addPerson, hasForm, reachFactor } from '../support/factors.ts';
import { importSchema } from '../../src/import/index.ts';
import { USER_TYPES_MAX } from '../../src/storage/accounts/values.ts';
import { accountFixture, accountSignIn, errorOf, noticeOf, onAccountPage, policyChoices, savePolicy, signedIn, submit } from './support.ts';

const OWNER = { email: 'owner@acme.test' };
const rowsOf = (html: string) => [...html.matchAll(/<tr data-testid="user-type-([^"]+)"/g)].map((m) => m[1]!);

for (const setup of SETUPS) {
  describe(`the owner's user types (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: accountFixture(), env: SHORT_LOCKS, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const acme = async () => (await accounts().getTenant('acme'))!;
    const tenantAudit = async (type: string) => (await accounts().listAudit({ tenant: 'acme', type })).filter((e) => e.type === type);

    it('creates a user type; a person given it is asked for its factor at their next sign-in', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/user-types');
      assert.deepEqual(rowsOf(page.html), ['owner', 'employee', 'nurse', 'manager', 'staff']);
      const done = await submit(browser, page, 'add-user-type-form', { name: '  Night   nurse ', second_factor: 'pin' });
      assert.ok(onAccountPage(done, '/account/user-types'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /has been added/);
      assert.deepEqual(rowsOf(done.html).at(-1), 'night-nurse');
      assert.deepEqual((await acme()).userTypes.at(-1), { id: 'night-nurse', name: 'Night nurse', secondFactor: 'pin' });
      const [event] = await tenantAudit('user_type.added');
      assert.deepEqual(event?.detail, { by: 'acme-owner', userType: 'night-nurse', name: 'Night nurse', secondFactor: 'pin' });

      const again = await submit(browser, done, 'add-user-type-form', { name: 'night NURSE', second_factor: 'none' });
      assert.equal(again.status, 409, 'the same name (any case) twice is refused');
      assert.match(errorOf(again), /already a user type/);
      for (const [name, factor] of [
        ['', 'pin'],
        ['x'.repeat(101), 'pin'],
        ['Bad\u200bname', 'pin'],
        ['Fine', 'sms'],
      ]) {
        const bad = await submit(browser, done, 'add-user-type-form', { name: name!, second_factor: factor! });
        assert.equal(bad.status, 400, `${name!.slice(0, 10)}/${factor}`);
      }
      assert.equal((await acme()).userTypes.length, 6, 'nothing else was added');

      const person = await addPerson(server, 'night-nurse');
      const { page: factor } = await reachFactor(server, rp, person);
      assert.ok(hasForm(factor, 'choose-pin-form'), `the new type's PIN is chosen at the first sign-in: ${factor.status}`);
    });

    it('renames a user type: the profile and the Users page say the new name', async () => {
      const person = await addPerson(server, 'staff');
      const { browser, page } = await signedIn(server, OWNER, '/account/user-types');
      const form = await browser.get('/account/user-types/staff/rename');
      assert.ok(testIds(form).includes('rename-user-type-form'), `${form.status}`);
      const done = await submit(browser, form, 'rename-user-type-form', { name: 'Support staff' });
      assert.ok(onAccountPage(done, '/account/user-types'), `${done.status} ${errorOf(done)}`);
      assert.equal((await acme()).userTypes.find((t) => t.id === 'staff')!.name, 'Support staff');
      const [event] = await tenantAudit('user_type.renamed');
      assert.deepEqual(event?.detail, { by: 'acme-owner', userType: 'staff', from: 'Staff', to: 'Support staff' });
      const taken = await submit(browser, form, 'rename-user-type-form', { name: 'employee' });
      assert.equal(taken.status, 409, "another type's name is refused");
      assert.equal((await browser.get('/account/user-types/nobody/rename')).status, 403);
      assert.ok(page);

      const signIn = await accountSignIn(server, { email: person.email });
      assert.ok(onAccountPage(signIn.page), `${signIn.page.status} ${errorOf(signIn.page)}`);
      assert.equal(textOf(signIn.page, 'profile-user-type'), 'Support staff', 'the person sees the new name');
    });

    it('deletes a user type only when no login has it', async () => {
      const person = await addPerson(server, 'manager');
      const { browser, page } = await signedIn(server, OWNER, '/account/user-types');
      assert.ok(!testIds(page).includes('remove-type-manager'), 'no delete button for a type in use');
      const asked = await browser.post('/account/user-types/manager/remove', { csrf: csrfOf(page) });
      assert.equal(asked.status, 200);
      assert.ok(testIds(asked).includes('type-in-use'), 'says who still has it');
      const refused = await browser.post('/account/user-types/manager/remove', { csrf: csrfOf(page), confirm: 'yes' });
      assert.equal(refused.status, 409);
      assert.ok(
        (await acme()).userTypes.some((t) => t.id === 'manager'),
        'still there',
      );

      await accounts().upsertLogin({ id: person.logins[0]!, tenant: 'acme', email: person.email, userType: 'employee', firstName: 'Pat', lastName: 'Doe' });
      const confirm = await browser.post('/account/user-types/manager/remove', { csrf: csrfOf(page) });
      assert.ok(testIds(confirm).includes('confirm-remove-type-form'), `${confirm.status} ${errorOf(confirm)}`);
      const done = await submit(browser, confirm, 'confirm-remove-type-form');
      assert.ok(onAccountPage(done, '/account/user-types'), `${done.status} ${errorOf(done)}`);
      assert.ok(!(await acme()).userTypes.some((t) => t.id === 'manager'), 'deleted');
      assert.deepEqual((await tenantAudit('user_type.removed'))[0]?.detail, { by: 'acme-owner', userType: 'manager' });
      assert.equal((await browser.post('/account/user-types/manager/remove', { csrf: csrfOf(page), confirm: 'yes' })).status, 403);
      const users = await browser.get('/account/users?user_type=manager');
      assert.equal(users.status, 400, 'the Users filter no longer knows it');
    });

    it("sets every type's factor on one form: two rows changed at once are both saved, after a confirmation that says what their people will see", async () => {
      const nurse = await addPerson(server, 'nurse');
      const { browser, page } = await signedIn(server, OWNER, '/account/security');
      assert.equal(testIds(page).filter((id) => id === 'policies-form').length, 1, 'one form');
      assert.equal(testIds(page).filter((id) => id === 'policies-save').length, 1, 'one Save');
      const before = await acme();
      const employees = (await accounts().searchLogins({ tenant: 'acme', userType: 'employee', limit: 1 })).total;
      const nurses = (await accounts().searchLogins({ tenant: 'acme', userType: 'nurse', limit: 1 })).total;

      const asked = await savePolicy(browser, page, { employee: 'pin', nurse: 'totp' }, { confirm: false });
      assert.equal(asked.status, 200);
      assert.ok(testIds(asked).includes('confirm-policy-form'), `asks first: ${errorOf(asked)}`);
      assert.match(textOf(asked, 'policy-effect-employee') ?? '', new RegExp(`${employees} (person of this type chooses|people of this type choose)`));
      assert.match(textOf(asked, 'policy-effect-nurse') ?? '', new RegExp(`${nurses} (person of this type links|people of this type link) an authenticator app`));
      assert.deepEqual(await acme(), before, 'nothing changed before the confirmation');

      const done = await submit(browser, asked, 'confirm-policy-form');
      assert.ok(onAccountPage(done, '/account/security'), `${done.status} ${errorOf(done)}`);
      const after = (await acme()).userTypes;
      assert.equal(after.find((t) => t.id === 'employee')!.secondFactor, 'pin', 'the first row changed');
      assert.equal(after.find((t) => t.id === 'nurse')!.secondFactor, 'totp', 'and the second, with one Save');
      assert.deepEqual(
        policyChoices(done).filter(([t]) => t === 'employee' || t === 'nurse'),
        [
          ['employee', 'pin'],
          ['nurse', 'totp'],
        ],
      );
      const events = (await tenantAudit('policy.changed')).map((e) => e.detail);
      assert.ok(events.some((d) => d?.userType === 'employee' && d.to === 'pin'));
      assert.ok(events.some((d) => d?.userType === 'nurse' && d.from === 'pin' && d.to === 'totp'));

      const next = await reachFactor(server, rp, nurse);
      assert.ok(hasForm(next.page, 'link-authenticator-form'), `the nurse links an app at the next sign-in: ${next.page.status}`);

      // Types without logins change at once; a bad pair changes nothing.
      const empty = await savePolicy(browser, done, { 'night-nurse': 'none' }, { confirm: false });
      assert.ok(onAccountPage(empty, '/account/security') || testIds(empty).includes('confirm-policy-form'));
      const state = await acme();
      const refused = await browser.post('/account/security', { csrf: csrfOf(done), user_type: ['employee', 'employee'], second_factor: ['none', 'totp'], confirm: 'yes' });
      assert.equal(refused.status, 400, 'a type named twice');
      assert.deepEqual(await acme(), state);
      await savePolicy(browser, done, { employee: 'none', nurse: 'pin' });
    });

    it("refuses a non-owner (403) and leaves other tenants alone: another tenant's owner reaches only their own types", async () => {
      const before = await acme();
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
      const csrf = csrfOf(jane.page);
      for (const path of ['/account/user-types', '/account/user-types/staff/rename', '/account/user-types/staff/remove']) {
        assert.equal((await jane.browser.get(path)).status, 403, `GET ${path}`);
      }
      for (const [path, fields] of [
        ['/account/user-types', { name: 'Hacked', second_factor: 'none' }],
        ['/account/user-types/staff/rename', { name: 'Hacked' }],
        ['/account/user-types/staff/remove', { confirm: 'yes' }],
        ['/account/security', { user_type: 'staff', second_factor: 'totp', confirm: 'yes' }],
      ] as const) {
        assert.equal((await jane.browser.post(path, { csrf, ...fields })).status, 403, `POST ${path}`);
      }
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/user-types');
      assert.deepEqual(rowsOf(gina.page.html), ['boss', 'staff'], "Globex's own types only");
      const ginaCsrf = csrfOf(gina.page);
      assert.equal((await gina.browser.post('/account/user-types/nurse/rename', { csrf: ginaCsrf, name: 'Hacked' })).status, 403, "Acme's type is not hers");
      assert.equal((await gina.browser.post('/account/user-types/nurse/remove', { csrf: ginaCsrf, confirm: 'yes' })).status, 403);
      assert.equal((await gina.browser.post('/account/security', { csrf: ginaCsrf, user_type: 'nurse', second_factor: 'none', confirm: 'yes' })).status, 400);
      assert.deepEqual(await acme(), before, 'Acme unchanged');
    });

    it(`a tenant has at most ${USER_TYPES_MAX} user types, also when they are added in parallel; the page says so`, async () => {
      const start = (await acme()).userTypes.length;
      const type = (n: number) => ({ id: `bulk-${n}`, name: `Bulk ${n}`, secondFactor: 'none' as const });
      for (let n = start; n < USER_TYPES_MAX - 5; n++) assert.ok(await accounts().addUserType('acme', type(n)));
      const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => accounts().addUserType('acme', type(1000 + i))));
      assert.equal(burst.filter(Boolean).length, 5, 'only as many as the bound leaves room for');
      assert.equal((await acme()).userTypes.length, USER_TYPES_MAX);

      const { browser, page } = await signedIn(server, OWNER, '/account/user-types');
      const refused = await submit(browser, page, 'add-user-type-form', { name: 'One more', second_factor: 'none' });
      assert.equal(refused.status, 409);
      assert.match(errorOf(refused), new RegExp(`at most ${USER_TYPES_MAX} user types`));
      assert.equal((await acme()).userTypes.length, USER_TYPES_MAX);
      const tooLarge = accountFixture();
      tooLarge.tenants![0]!.userTypes.push(...Array.from({ length: USER_TYPES_MAX }, (_, n) => type(2000 + n)));
      const parsed = importSchema.safeParse(tooLarge);
      assert.ok(!parsed.success && parsed.error.issues.some((i) => /more than 100 user types/.test(i.message)), 'the import is bound alike');

      for (const t of (await acme()).userTypes.filter((u) => u.id.startsWith('bulk-'))) assert.equal(await accounts().deleteUserType('acme', t.id), 'deleted');
      assert.equal((await acme()).userTypes.length, start);
    });

    it('refuses a form without the session token or from another origin (403), and asks an old sign-in to sign in again first', async () => {
      const before = await acme();
      const { browser, page } = await signedIn(server, OWNER, '/account/user-types');
      const csrf = csrfOf(page);
      assert.equal((await browser.post('/account/user-types', { name: 'Forged', second_factor: 'none' })).status, 403);
      assert.equal((await browser.post('/account/user-types/staff/rename', { csrf: 'x'.repeat(43), name: 'Forged' })).status, 403);
      assert.equal((await browser.post('/account/user-types', { csrf, name: 'Forged', second_factor: 'none' }, { origin: 'http://evil.example' })).status, 403);
      assert.equal((await new Browser(server.issuer).post('/account/user-types', { csrf, name: 'Forged', second_factor: 'none' })).status, 403, 'no session');
      assert.deepEqual(await acme(), before);

      // Past the re-authentication window (15 minutes); the last test, so no other sign-in is made old.
      clock.advance(16 * 60_000);
      const old = await browser.post('/account/user-types', { csrf, name: 'Later', second_factor: 'none' });
      assert.ok(testIds(old).includes('login-form'), `an old sign-in signs in again first: ${old.status} ${old.url}`);
      assert.match(old.html, /name="email" value="owner@acme.test"/);
      assert.deepEqual(await acme(), before, 'nothing changed yet');
      assert.ok(testIds(await browser.get('/account/user-types/staff/rename')).includes('login-form'), 'the rename page too');
      assert.equal((await browser.get('/account/user-types')).status, 200, 'reading the list needs no new sign-in');
      assert.ok(!(await acme()).userTypes.some((t) => t.name === 'Later' || t.name === 'Forged'));
    });
  });
}
