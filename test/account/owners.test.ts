// A tenant's owners: an owner adds another (who then runs the tenant's pages
// at their next sign-in), takes one off (never the last, also when two remove
// each other), cannot reset their own factor from the page (another owner
// can), and the operator's `add-owner` and `reset-factor`. Only owners, with
// the session's CSRF token and a recent sign-in. Embedded store and MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { csrfOf, testIds, textOf } from '../support/browser.ts';
import { SETUPS, startServer, testClock, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, addPerson, auditOf } from '../support/factors.ts';
import { runCli } from '../support/cli.ts';
import { addOwner } from '../../src/admin/owners.ts';
import { accountFixture, errorOf, noticeOf, onAccountPage, signedIn, submit } from './support.ts';

const OWNER = { email: 'owner@acme.test' };
const JANE = { email: 'jane@acme.test', login: 'jane-acme' };
const ownerRows = (html: string) => [...html.matchAll(/<tr data-testid="owner-([^"]+)"/g)].map((m) => m[1]!);

for (const setup of SETUPS) {
  describe(`the tenant's owners (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: accountFixture(), env: SHORT_LOCKS, now: clock.now });
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const owners = async () => (await accounts().getTenant('acme'))!.owners;

    it('adds an owner by email: at their next sign-in they run the owner pages; an email of several logins asks for the user type', async () => {
      const before = await signedIn(server, JANE);
      assert.equal((await before.browser.get('/account/owners')).status, 403, 'Jane is no owner yet');

      const { browser, page } = await signedIn(server, OWNER, '/account/owners');
      assert.deepEqual(ownerRows(page.html), ['acme-owner']);
      assert.ok(testIds(page).includes('last-owner'), 'the only owner has no remove button');
      const unknown = await submit(browser, page, 'add-owner-form', { email: 'nobody@acme.test', user_type: '' });
      assert.equal(unknown.status, 400);
      assert.match(errorOf(unknown), /No login of this organisation/);
      const ginas = await submit(browser, page, 'add-owner-form', { email: 'gina@globex.test', user_type: '' });
      assert.equal(ginas.status, 400, "another tenant's login cannot be made an owner here");

      const two = await addPerson(server, 'employee', 'staff');
      const ambiguous = await submit(browser, page, 'add-owner-form', { email: two.email, user_type: '' });
      assert.equal(ambiguous.status, 400);
      assert.match(errorOf(ambiguous), /several logins here \(employee, staff\)/);
      const chosen = await submit(browser, page, 'add-owner-form', { email: two.email.toUpperCase(), user_type: 'staff' });
      assert.ok(onAccountPage(chosen, '/account/owners'), `${chosen.status} ${errorOf(chosen)}`);
      assert.deepEqual(await owners(), ['acme-owner', two.logins[1]]);

      const done = await submit(browser, page, 'add-owner-form', { email: 'Jane@Acme.test', user_type: '' });
      assert.ok(onAccountPage(done, '/account/owners'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /now an owner/);
      assert.deepEqual(await owners(), ['acme-owner', two.logins[1], 'jane-acme']);
      assert.deepEqual((await auditOf(server, 'jane-acme', 'owner.added'))[0]?.detail, { by: 'acme-owner' });
      const again = await submit(browser, page, 'add-owner-form', { email: 'jane@acme.test', user_type: '' });
      assert.match(noticeOf(again), /already an owner/);

      const now = await signedIn(server, JANE, '/account/users');
      assert.ok(testIds(now.page).includes('nav-owners'), 'Jane sees the owner pages');
      assert.equal((await now.browser.get('/account/owners')).status, 200);
    });

    it('an owner cannot reset their own factor, disable or remove another owner; another owner resets theirs', async () => {
      await accounts().setFactorState('jane-acme', 'pin', { hash: 'a-hash-of-an-old-pin', setAt: 1 });
      const jane = await signedIn(server, JANE, '/account/users');
      assert.ok(!testIds(jane.page).includes('reset-pin-jane-acme'), 'no reset button for herself');
      const own = await jane.browser.post('/account/users/jane-acme/reset/pin', { csrf: csrfOf(jane.page), confirm: 'yes' });
      assert.equal(own.status, 400);
      assert.match(textOf(own, 'error-message') ?? '', /another owner can/);
      assert.ok((await accounts().getLogin('jane-acme'))!.factors.pin, 'not reset');
      for (const kind of ['disable', 'remove']) {
        const refused = await jane.browser.post(`/account/users/acme-owner/${kind}`, { csrf: csrfOf(jane.page), confirm: 'yes' });
        assert.equal(refused.status, 403, kind);
        assert.match(textOf(refused, 'error-message') ?? '', /take them off the owners first/);
      }
      assert.equal((await accounts().getLogin('acme-owner'))!.disabled, false);

      const olga = await signedIn(server, OWNER, '/account/users');
      assert.ok(testIds(olga.page).includes('reset-pin-jane-acme'));
      const reset = await olga.browser.post('/account/users/jane-acme/reset/pin', { csrf: csrfOf(olga.page), confirm: 'yes' });
      assert.ok(onAccountPage(reset, '/account/users'), `${reset.status} ${errorOf(reset)}`);
      assert.equal((await accounts().getLogin('jane-acme'))!.factors.pin, undefined, 'another owner reset it');
      assert.ok(testIds(await jane.browser.get('/account/users')).includes('login-form'), "the reset ended Jane's session");
    });

    it('takes an owner off (they lose the pages), never the last: two owners removing each other at once leave one', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/owners');
      const others = (await owners()).filter((o) => o !== 'acme-owner' && o !== 'jane-acme');
      for (const id of others) {
        const confirm = await browser.post(`/account/owners/${id}/remove`, { csrf: csrfOf(page) });
        assert.ok(testIds(confirm).includes('confirm-remove-owner-form'), `${confirm.status} ${errorOf(confirm)}`);
        const done = await submit(browser, confirm, 'confirm-remove-owner-form');
        assert.ok(onAccountPage(done, '/account/owners'), `${done.status} ${errorOf(done)}`);
      }
      assert.deepEqual(await owners(), ['acme-owner', 'jane-acme']);
      assert.deepEqual((await auditOf(server, others[0]!, 'owner.removed'))[0]?.detail, { by: 'acme-owner' });

      const jane = await signedIn(server, JANE, '/account/owners');
      const [a, b] = await Promise.all([
        browser.post('/account/owners/jane-acme/remove', { csrf: csrfOf(page), confirm: 'yes' }),
        jane.browser.post('/account/owners/acme-owner/remove', { csrf: csrfOf(jane.page), confirm: 'yes' }),
      ]);
      const statuses = [a.status, b.status].sort();
      assert.equal((await owners()).length, 1, `one owner is left (${statuses})`);
      assert.ok(statuses.includes(409) || statuses.includes(403), `the second removal was refused: ${statuses}`);
      const [left] = await owners();
      const leftBrowser = left === 'acme-owner' ? browser : jane.browser;
      const leftPage = left === 'acme-owner' ? page : jane.page;
      const last = await leftBrowser.post(`/account/owners/${left}/remove`, { csrf: csrfOf(leftPage), confirm: 'yes' });
      assert.equal(last.status, 409, 'the last owner stays');
      assert.deepEqual(await owners(), [left]);
      const gone = left === 'acme-owner' ? jane.browser : browser;
      assert.equal((await gone.get('/account/users')).status, 403, 'the removed owner has no owner pages');
      if (left !== 'acme-owner') await accounts().addOwner('acme', 'acme-owner');
      await accounts().removeOwner('acme', 'jane-acme');
    });

    it("refuses non-owners (403), forged forms (403) and another tenant's owner (403), and asks an old sign-in to sign in again", async () => {
      const before = await owners();
      const jane = await signedIn(server, JANE);
      const csrf = csrfOf(jane.page);
      assert.equal((await jane.browser.get('/account/owners')).status, 403);
      assert.equal((await jane.browser.get('/account/owners/acme-owner/remove')).status, 403);
      assert.equal((await jane.browser.post('/account/owners', { csrf, email: 'jane@acme.test' })).status, 403);
      assert.equal((await jane.browser.post('/account/owners/acme-owner/remove', { csrf, confirm: 'yes' })).status, 403);
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/owners');
      assert.deepEqual(ownerRows(gina.page.html), ['gina-owner']);
      assert.equal((await gina.browser.post('/account/owners/acme-owner/remove', { csrf: csrfOf(gina.page), confirm: 'yes' })).status, 403);
      assert.equal((await gina.browser.post('/account/owners', { csrf: csrfOf(gina.page), email: 'owner@acme.test' })).status, 400, 'an Acme login is unknown in Globex');
      const { browser, page } = await signedIn(server, OWNER, '/account/owners');
      assert.equal((await browser.post('/account/owners', { email: 'jane@acme.test' })).status, 403, 'no token');
      assert.equal((await browser.post('/account/owners', { csrf: csrfOf(page), email: 'jane@acme.test' }, { origin: 'http://evil.example' })).status, 403, 'another origin');
      assert.deepEqual(await owners(), before);

      clock.advance(16 * 60_000);
      const old = await browser.post('/account/owners', { csrf: csrfOf(page), email: 'jane@acme.test' });
      assert.ok(testIds(old).includes('login-form'), `an old sign-in signs in again first: ${old.status}`);
      assert.deepEqual(await owners(), before, 'nothing changed yet');
    });

    it('a login disabled or removed while it is being made an owner (read before, written after) is no owner', async () => {
      const { audit } = server.latchkey;
      const actor = async () => ({ tenant: (await accounts().getTenant('acme'))!, by: { login: 'acme-owner' }, ip: null, userAgent: null });
      const disabled = await addPerson(server, 'staff');
      const read = (await accounts().getLogin(disabled.logins[0]!))!;
      await accounts().setLoginDisabled(read.id, true);
      await assert.rejects(addOwner({ accounts: accounts(), audit }, await actor(), read), (err: Error & { status?: number }) => err.status === 400);
      assert.ok(!(await owners()).includes(read.id), 'a disabled login is no owner');

      const removed = await addPerson(server, 'staff');
      const gone = (await accounts().getLogin(removed.logins[0]!))!;
      assert.ok(await accounts().deleteLogin(gone.id));
      await assert.rejects(addOwner({ accounts: accounts(), audit }, await actor(), gone), (err: Error & { status?: number }) => err.status === 404);
      assert.ok(!(await owners()).includes(gone.id), 'no owner id outlives its login');
      for (const id of [read.id, gone.id]) assert.deepEqual(await auditOf(server, id, 'owner.added'), []);
    });

    it('the operator adds an owner and resets a factor from the command line', async () => {
      const env = { ...server.env, LOG_LEVEL: 'silent' };
      const person = await addPerson(server, 'nurse', 'staff');
      const ambiguous = await runCli(['add-owner', person.email, '--tenant', 'acme'], env);
      assert.equal(ambiguous.code, 1);
      assert.match(ambiguous.stderr, /several logins here \(nurse, staff\)/);
      const added = await runCli(['add-owner', person.email, '--tenant', 'acme', '--user-type', 'nurse'], env);
      assert.equal(added.code, 0, added.stderr);
      assert.equal(added.stdout.trim(), `login acme/${person.logins[0]}: is now an owner`);
      assert.ok((await owners()).includes(person.logins[0]!));
      assert.deepEqual((await auditOf(server, person.logins[0]!, 'owner.added'))[0]?.detail, { by: 'cli' });

      await accounts().setFactorState(person.logins[0]!, 'pin', { hash: 'a-hash-of-an-old-pin', setAt: 1 });
      const reset = await runCli(['reset-factor', person.email, '--tenant', 'acme', '--user-type', 'nurse'], env);
      assert.equal(reset.code, 0, reset.stderr);
      assert.match(reset.stdout, new RegExp(`login acme/${person.logins[0]}: reset pin;`));
      assert.equal((await accounts().getLogin(person.logins[0]!))!.factors.pin, undefined);
      assert.ok(await accounts().loginSessionsNotBefore(person.logins[0]!), 'its sessions ended');
      assert.deepEqual((await auditOf(server, person.logins[0]!, 'factor.pin.reset'))[0]?.detail, { by: 'cli' });
      for (const args of [
        ['reset-factor', person.email],
        ['add-owner', 'not-an-email', '--tenant', 'acme'],
        ['reset-factor', person.email, '--tenant', 'nope'],
      ]) {
        const bad = await runCli(args, env);
        assert.notEqual(bad.code, 0, args.join(' '));
      }
      await accounts().removeOwner('acme', person.logins[0]!);
    });
  });
}
