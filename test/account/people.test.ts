// The owner runs the tenant's people from the Users page: adding a person
// (an existing identity gets the login at once, a new email an invitation),
// each change followed by a real sign-in that shows it. On the embedded store
// and on MongoDB + Redis, with a real SMTP server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import * as oidc from 'openid-client';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, addPerson, auditOf, hasForm, reachFactor, submitFactor } from '../support/factors.ts';
import { linkOf, startSmtp, type TestSmtp } from '../support/smtp.ts';
import { accountFixture, accountSignIn, errorOf, hiddenFields, noticeOf, onAccountPage, signedIn, submit } from './support.ts';
import { sendInvitation } from '../../src/recovery/routes.ts';
import { routeDeps } from '../../src/services.ts';

const OWNER = { email: 'owner@acme.test' };
const NEW_PASSWORD = 'a passphrase of my own 2026';

const rowsOf = (page: Page) => [...page.html.matchAll(/<tr data-testid="user-([^"]+)"/g)].map((m) => m[1]!);
const hrefOf = (page: Page, testid: string) => new RegExp(`<a[^>]*href="([^"]+)"[^>]*data-testid="${testid}"`).exec(page.html)?.[1]?.replace(/&amp;/g, '&');
const choiceLabels = (page: Page) => [...page.html.matchAll(/data-testid="login-([^"]+)"[^>]*>([\s\S]*?)<\/button>/g)].map((m) => [m[1]!, m[2]!.replace(/<[^>]+>/g, '')] as const);

for (const setup of SETUPS) {
  describe(`the owner's people (${setup})`, () => {
    let server: TestServer;
    let smtp: TestSmtp;
    let rp: RelyingParty;

    before(async () => {
      smtp = await startSmtp();
      server = await startServer(setup, { doc: accountFixture(), env: { ...SHORT_LOCKS, SMTP_URL: smtp.url } });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await smtp.stop();
    });

    const accounts = () => server.latchkey.stores.accounts;
    const newEmail = () => `new-${randomBytes(4).toString('hex')}@acme.test`;

    /** The owner on the add form, reached from the Users page's button. */
    async function addForm() {
      const { browser, page } = await signedIn(server, OWNER, '/account/users');
      const href = hrefOf(page, 'add-person');
      assert.equal(href, '/account/users/new');
      const form = await browser.get(href);
      assert.ok(testIds(form).includes('add-person-form'), `${form.status} ${errorOf(form)}`);
      return { browser, form };
    }

    it('adds a new email: an identity without a password and an invitation; the person chooses a password and signs in as the new login', async () => {
      const email = newEmail();
      const { browser, form } = await addForm();
      const done = await submit(browser, form, 'add-person-form', { first_name: ' Nia ', last_name: 'New', email: email.toUpperCase(), user_type: 'nurse' });
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /an email telling them how to sign in/);
      const [login] = await accounts().listLoginsForEmail('acme', email);
      assert.ok(login, 'the login exists');
      assert.deepEqual([login.firstName, login.lastName, login.email, login.userType, login.disabled], ['Nia', 'New', email, 'nurse', false]);
      assert.equal((await accounts().findIdentityByEmail(email))!.passwordHash, null, 'no password until they choose one');
      const found = await browser.get(`/account/users?q=${encodeURIComponent(email)}`);
      assert.deepEqual(rowsOf(found), [login.id], 'on the Users page');

      const [added] = await auditOf(server, login.id, 'login.added');
      assert.deepEqual(added?.detail, { by: 'acme-owner', userType: 'nurse', invited: true });
      assert.equal((await auditOf(server, login.id, 'login.invited')).length, 1);

      const mail = await smtp.next(email);
      assert.match(mail.subject ?? '', /Acme Care/);
      const person = new Browser(server.issuer);
      const choose = await person.get(linkOf(mail));
      assert.ok(hasForm(choose, 'reset-form'), `the invitation's form: ${choose.status}`);
      const chosen = await person.post(actionOf(choose, 'reset-form'), { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD, csrf: csrfOf(choose) });
      assert.equal(chosen.status, 200);
      const signIn = await accountSignIn(server, { email, password: NEW_PASSWORD });
      assert.ok(hasForm(signIn.page, 'choose-pin-form'), `the nurse's PIN is set up at the first sign-in: ${signIn.page.status}`);
      const profile = await submitFactor(signIn.browser, signIn.page, 'choose-pin-form', { pin: '480913', pin_confirm: '480913' });
      assert.ok(onAccountPage(profile), `${profile.status} ${errorOf(profile)}`);
      assert.equal(textOf(profile, 'profile-name'), 'Nia New');
    });

    it('adds a login of an email sent 5 invitations this hour without a sixth, and says so; the latest link still works', async () => {
      const email = newEmail();
      const { browser, form } = await addForm();
      const first = await submit(browser, form, 'add-person-form', { first_name: 'Ivy', last_name: 'Invited', email, user_type: 'nurse' });
      assert.match(noticeOf(first), /an email telling them how to sign in/);
      await smtp.next(email);
      // Four more invitations of the email (as the API or the CLI send them) fill its hour.
      for (let i = 0; i < 4; i++) {
        assert.ok(await sendInvitation(routeDeps(server.latchkey), { email, tenantId: 'acme', by: 'cli' }));
        await smtp.next(email);
      }
      const latest = (await auditOf(server, (await accounts().listLoginsForEmail('acme', email))[0]!.id, 'login.invited')).length;
      assert.equal(latest, 5);
      const again = await browser.get('/account/users/new');
      const second = await submit(browser, again, 'add-person-form', { first_name: 'Ivy', last_name: 'Manager', email, user_type: 'manager' });
      assert.ok(onAccountPage(second, '/account/users'), `${second.status} ${errorOf(second)}`);
      assert.match(noticeOf(second), /no email was sent to them: this email address was already sent 5 such emails in the past hour/);
      assert.equal((await accounts().listLoginsForEmail('acme', email)).length, 2, 'the login is added all the same');
      const nl = await browser.get('/account/users?notice=added-not-invited&lang=nl');
      assert.match(noticeOf(nl), /geen e-mail verstuurd/);
    });

    it('adds a login to an existing identity at once, told as a new email is (a notice of the login, no link); the same name asks for a distinguishing word first', async () => {
      const { browser, form } = await addForm();
      const warned = await submit(browser, form, 'add-person-form', { first_name: 'jane', last_name: 'DOE', email: 'Jane@Acme.test', user_type: 'staff' });
      assert.equal(warned.status, 200);
      assert.ok(testIds(warned).includes('same-name-warning'), `warned: ${errorOf(warned)}`);
      assert.match(textOf(warned, 'same-name-warning') ?? '', /Employee/, 'names the login it would look like');
      assert.match(textOf(warned, 'use-suggestion') ?? '', /jane DOE \(Staff\)/);
      assert.equal((await accounts().listLoginsForEmail('acme', 'jane@acme.test')).length, 1, 'nothing added yet');

      const done = await submit(browser, warned, 'add-person-suggested-form');
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      // The page says what it says of a new email: whether Jane has a password is not for the owner to learn here.
      assert.match(noticeOf(done), /an email telling them how to sign in/);
      const logins = await accounts().listLoginsForEmail('acme', 'jane@acme.test');
      const added = logins.find((l) => l.id !== 'jane-acme')!;
      assert.deepEqual([added.firstName, added.lastName, added.userType], ['jane', 'DOE (Staff)', 'staff']);
      const told = await smtp.next('jane@acme.test');
      assert.match(told.subject ?? '', /new login at Acme Care/, 'no invitation: Jane has a password, and is told of the login');
      assert.doesNotMatch(told.text ?? '', /\/invite\//, 'with no link to choose one');

      const again = await submit(browser, warned, 'add-person-suggested-form');
      assert.ok(onAccountPage(again, '/account/users'), 'the same form sent again answers alike');
      assert.equal((await accounts().listLoginsForEmail('acme', 'jane@acme.test')).length, 2, 'and adds nothing twice');

      const jane = await accountSignIn(server, { email: 'jane@acme.test' });
      assert.ok(testIds(jane.page).includes('select-form'), `Jane now chooses a login: ${jane.page.status}`);
      assert.ok(
        choiceLabels(jane.page).some(([id, label]) => id === added.id && label === 'jane DOE (Staff) — Staff (Acme Care)'),
        JSON.stringify(choiceLabels(jane.page)),
      );
      const profile = await jane.browser.post(actionOf(jane.page, 'select-form'), { login: added.id, csrf: csrfOf(jane.page) });
      assert.ok(onAccountPage(profile), `${profile.status} ${errorOf(profile)}`);
      assert.equal(textOf(profile, 'profile-user-type'), 'Staff');
    });

    it('adds with the same name when the owner says so', async () => {
      const email = newEmail();
      const { browser, form } = await addForm();
      await submit(browser, form, 'add-person-form', { first_name: 'Sam', last_name: 'Same', email, user_type: 'staff' });
      const second = await addForm();
      const warned = await submit(second.browser, second.form, 'add-person-form', { first_name: 'Sam', last_name: 'Same', email, user_type: 'employee' });
      assert.ok(testIds(warned).includes('same-name-warning'));
      assert.equal(hiddenFields(warned, 'add-person-form').same_name, 'yes');
      const done = await submit(second.browser, warned, 'add-person-form', { first_name: 'Sam', last_name: 'Same', email, user_type: 'employee' });
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      assert.deepEqual((await accounts().listLoginsForEmail('acme', email)).map((l) => l.userType).sort(), ['employee', 'staff']);
    });

    it('makes one login of one form sent many times in parallel', async () => {
      const email = newEmail();
      const { browser, form } = await addForm();
      const fields = { ...hiddenFields(form, 'add-person-form'), first_name: 'Pia', last_name: 'Parallel', email, user_type: 'staff' };
      const answers = await Promise.all(Array.from({ length: 8 }, () => browser.post(actionOf(form, 'add-person-form'), fields)));
      assert.ok(
        answers.every((a) => onAccountPage(a, '/account/users')),
        answers.map((a) => `${a.status} ${a.url} ${errorOf(a)}`).join('\n'),
      );
      const logins = await accounts().listLoginsForEmail('acme', email);
      assert.equal(logins.length, 1);
      assert.equal((await auditOf(server, logins[0]!.id, 'login.added')).length, 1, 'audited once');
      await smtp.next(email);
      assert.equal(smtp.to(email).length, 1, 'one invitation');
    });

    it('refuses bad input with a 400 on the form, and adds nothing', async () => {
      const { browser, form } = await addForm();
      const email = newEmail();
      const base = { first_name: 'Bad', last_name: 'Input', email, user_type: 'staff' };
      const cases: [string, Record<string, string | string[]>][] = [
        ['no first name', { ...base, first_name: '  ' }],
        ['no last name', { ...base, last_name: '' }],
        ['a name too long', { ...base, last_name: 'x'.repeat(101) }],
        ['a control character', { ...base, first_name: 'Bad\u0007' }],
        ['an invisible character', { ...base, first_name: 'Ba\u200bd' }],
        ['not an email', { ...base, email: 'not-an-email' }],
        ['two emails', { ...base, email: [email, 'other@acme.test'] }],
        ['an unknown user type', { ...base, user_type: 'boss' }],
        ['a forged nonce', { ...base, nonce: '../../etc' }],
      ];
      for (const [name, fields] of cases) {
        const res = await browser.post(actionOf(form, 'add-person-form'), { ...hiddenFields(form, 'add-person-form'), ...fields });
        assert.equal(res.status, 400, name);
      }
      const shown = await browser.post(actionOf(form, 'add-person-form'), { ...hiddenFields(form, 'add-person-form'), ...base, email: 'not-an-email' });
      assert.ok(testIds(shown).includes('add-person-form') && testIds(shown).includes('error'), 'the form again, with the error');
      assert.match(shown.html, /value="Bad"/, 'keeping what was entered');
      assert.equal(await accounts().findIdentityByEmail(email), null);
      assert.deepEqual(await accounts().listLoginsForEmail('acme', email), []);
    });

    it('disables a login: its sessions and tokens end at once, it cannot sign in and is shown as disabled; enabled, it signs in again', async () => {
      const person = await addPerson(server, 'staff');
      const [login] = person.logins as [string];
      const first = await reachFactor(server, rp, person);
      assert.ok(callbackReached(first.page));
      const tokens = await rp.callback(first.page.url, first.pending);
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, true);

      const signedOwner = await signedIn(server, OWNER, '/account/users');
      const owner = { browser: signedOwner.browser, page: await signedOwner.browser.get(`/account/users?q=${encodeURIComponent(person.email)}`) };
      assert.ok(testIds(owner.page).includes(`disable-${login}`));
      assert.ok(!testIds(owner.page).includes('disable-acme-owner'), 'no button to disable oneself');
      const confirm = await owner.browser.post(`/account/users/${login}/disable`, { csrf: csrfOf(owner.page) });
      assert.ok(testIds(confirm).includes('confirm-reset-form'), `a confirmation first: ${confirm.status}`);
      assert.equal((await accounts().getLogin(login))!.disabled, false, 'nothing changed before confirming');
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /disabled/);
      const listed = await owner.browser.get(`/account/users?q=${encodeURIComponent(person.email)}&state=disabled`);
      assert.ok(testIds(listed).includes(`disabled-${login}`) && testIds(listed).includes(`enable-${login}`), 'shown as disabled, with Enable');

      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token ended');
      await assert.rejects(oidc.fetchUserInfo(rp.config, tokens.access_token, login));
      let page = await first.browser.get((await rp.authorize()).url);
      assert.ok(testIds(page).includes('login-form'), 'the single sign-on session ended');
      page = await submitLogin(first.browser, page, person.email, PASSWORD);
      assert.ok(!callbackReached(page), `a disabled login cannot sign in: ${page.status} ${page.url}`);

      const self = await owner.browser.post('/account/users/acme-owner/disable', { csrf: csrfOf(owner.page), confirm: 'yes' });
      assert.equal(self.status, 400, 'an owner cannot disable their own login');
      assert.equal((await accounts().getLogin('acme-owner'))!.disabled, false);

      const enable = await owner.browser.post(`/account/users/${login}/enable`, { csrf: csrfOf(owner.page) });
      const enabled = await submit(owner.browser, enable, 'confirm-reset-form');
      assert.ok(onAccountPage(enabled, '/account/users'), `${enabled.status} ${errorOf(enabled)}`);
      const again = await reachFactor(server, rp, person, login, new Browser(server.issuer));
      assert.ok(callbackReached(again.page), 'enabled, it signs in again');

      assert.equal((await auditOf(server, login, 'login.disabled'))[0]?.detail?.by, 'acme-owner');
      assert.equal((await auditOf(server, login, 'login.enabled'))[0]?.detail?.by, 'acme-owner');

      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/users');
      assert.equal((await gina.browser.post(`/account/users/${login}/disable`, { csrf: csrfOf(gina.page), confirm: 'yes' })).status, 403, "another tenant's owner");
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
      assert.equal((await jane.browser.post(`/account/users/${login}/disable`, { csrf: csrfOf(jane.page), confirm: 'yes' })).status, 403, 'a non-owner');
      assert.equal((await owner.browser.post(`/account/users/${login}/disable`, { confirm: 'yes' })).status, 403, 'no CSRF token');
      assert.equal((await accounts().getLogin(login))!.disabled, false, 'none of them disabled it');
    });

    it("edits name and user type (the next sign-in follows the type's policy) and email (the login passes to that person, who sets up their own factor)", async () => {
      const person = await addPerson(server, 'staff');
      const [login] = person.logins as [string];
      const before = await reachFactor(server, rp, person);
      assert.ok(callbackReached(before.page), 'staff: no factor');

      const owner = await signedIn(server, OWNER, '/account/users');
      const list = await owner.browser.get(`/account/users?q=${encodeURIComponent(person.email)}`);
      const form = await owner.browser.get(hrefOf(list, `edit-${login}`)!);
      assert.ok(testIds(form).includes('add-person-form'), `${form.status} ${errorOf(form)}`);
      assert.match(form.html, new RegExp(`name="email" value="${person.email}"`), 'filled in');
      const saved = await submit(owner.browser, form, 'add-person-form', { first_name: 'Petra', last_name: 'Renamed', email: person.email, user_type: 'nurse' });
      assert.ok(onAccountPage(saved, '/account/users'), `${saved.status} ${errorOf(saved)}`);
      assert.match(noticeOf(saved), /saved/);
      const edited = (await accounts().getLogin(login))!;
      assert.deepEqual([edited.firstName, edited.lastName, edited.userType], ['Petra', 'Renamed', 'nurse']);
      const [event] = await auditOf(server, login, 'login.edited');
      assert.deepEqual(event?.detail, { by: 'acme-owner', changed: ['firstName', 'lastName', 'userType'], from: 'staff', to: 'nurse' });
      const asNurse = await reachFactor(server, rp, person);
      assert.ok(hasForm(asNurse.page, 'choose-pin-form'), `the nurse's policy at the next sign-in: ${asNurse.page.status}`);
      const pinned = await submitFactor(asNurse.browser, asNurse.page, 'choose-pin-form', { pin: '480913', pin_confirm: '480913' });
      assert.ok(callbackReached(pinned));
      const tokens = await rp.callback(pinned.url, asNurse.pending);

      const email = newEmail();
      const again = await owner.browser.get(`/account/users/${login}/edit`);
      const moved = await submit(owner.browser, again, 'add-person-form', { first_name: 'Petra', last_name: 'Renamed', email, user_type: 'nurse' });
      assert.ok(onAccountPage(moved, '/account/users'), `${moved.status} ${errorOf(moved)}`);
      const now = (await accounts().getLogin(login))!;
      assert.equal(now.email, email);
      assert.equal(now.factors.pin, undefined, "the old person's PIN is forgotten");
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, "the old person's tokens end");
      assert.deepEqual(await accounts().listLoginsForEmail('acme', person.email), [], 'the old email has the login no more');
      const old = await asNurse.browser.get((await rp.authorize()).url);
      assert.ok(testIds(old).includes('login-form'), 'the old session ended');
      assert.ok(!callbackReached(await submitLogin(asNurse.browser, old, person.email, PASSWORD)), 'the old person cannot sign in as it');

      const mail = await smtp.next(email);
      const browser = new Browser(server.issuer);
      const choose = await browser.get(linkOf(mail));
      await browser.post(actionOf(choose, 'reset-form'), { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD, csrf: csrfOf(choose) });
      const signIn = await accountSignIn(server, { email, password: NEW_PASSWORD });
      assert.ok(hasForm(signIn.page, 'choose-pin-form'), `the new person chooses their own PIN: ${signIn.page.status}`);

      for (const bad of [{ email: 'nope' }, { user_type: 'boss' }, { first_name: '' }]) {
        const res = await owner.browser.post(`/account/users/${login}/edit`, {
          ...hiddenFields(again, 'add-person-form'),
          first_name: 'X',
          last_name: 'Y',
          email,
          user_type: 'nurse',
          ...bad,
        });
        assert.equal(res.status, 400, JSON.stringify(bad));
      }
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/users');
      assert.equal((await gina.browser.get(`/account/users/${login}/edit`)).status, 403, "another tenant's owner");
      assert.equal((await gina.browser.post(`/account/users/${login}/edit`, { csrf: csrfOf(gina.page), first_name: 'G', last_name: 'G', email, user_type: 'nurse' })).status, 403);
      assert.equal((await owner.browser.post(`/account/users/${login}/edit`, { first_name: 'G', last_name: 'G', email, user_type: 'nurse' })).status, 403, 'no CSRF token');
      assert.equal((await accounts().getLogin(login))!.firstName, 'Petra', 'unchanged by the refused ones');
    });

    it('removes a login: its tokens end, it is gone; with the last login the identity and its links go too; the audit keeps the login id', async () => {
      const person = await addPerson(server, 'staff', 'employee');
      const [first, second] = person.logins as [string, string];
      const identity = (await accounts().findIdentityByEmail(person.email))!;
      await accounts().linkUpstream({ issuer: 'https://up.example', subject: `sub-${first}`, identityId: identity.id });
      const signIn = await reachFactor(server, rp, person, first);
      assert.ok(callbackReached(signIn.page));
      const tokens = await rp.callback(signIn.page.url, signIn.pending);

      const owner = await signedIn(server, OWNER, '/account/users');
      const list = await owner.browser.get(`/account/users?q=${encodeURIComponent(person.email)}`);
      assert.ok(!testIds(list).includes('remove-acme-owner'));
      const confirm = await owner.browser.post(`/account/users/${first}/remove`, { csrf: csrfOf(list) });
      assert.ok(testIds(confirm).includes('confirm-reset-form'), `a confirmation first: ${confirm.status}`);
      assert.ok(await accounts().getLogin(first), 'nothing removed before confirming');
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.ok(onAccountPage(done, '/account/users'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /removed/);
      assert.equal(await accounts().getLogin(first), null);
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'its tokens end');
      assert.ok(await accounts().findIdentityByEmail(person.email), 'the identity stays while it has a login');
      const rest = await reachFactor(server, rp, person, second, new Browser(server.issuer));
      assert.ok(callbackReached(rest.page), 'the other login signs in, without a choice now');
      assert.equal((await rp.callback(rest.page.url, rest.pending)).claims()!.sub, second);

      const last = await owner.browser.post(`/account/users/${second}/remove`, { csrf: csrfOf(list), confirm: 'yes' });
      assert.ok(onAccountPage(last, '/account/users'), `${last.status} ${errorOf(last)}`);
      assert.equal(await accounts().findIdentityByEmail(person.email), null, 'the last login takes the identity with it');
      assert.equal(await accounts().findIdentityByUpstream('https://up.example', `sub-${first}`), null, 'and its upstream links');
      const page = await new Browser(server.issuer).get((await rp.authorize()).url);
      assert.ok(!callbackReached(await submitLogin(new Browser(server.issuer), page, person.email, PASSWORD)), 'nobody signs in with that email');

      const [removed] = await auditOf(server, first, 'login.removed');
      assert.deepEqual(removed?.detail, { by: 'acme-owner' }, 'the login id only: no name or email');
      assert.ok((await auditOf(server, first, 'signin.success')).length >= 1, 'earlier events are kept');

      const self = await owner.browser.post('/account/users/acme-owner/remove', { csrf: csrfOf(list), confirm: 'yes' });
      assert.equal(self.status, 400, 'an owner cannot remove their own login');
      const other = await addPerson(server, 'staff');
      const [target] = other.logins as [string];
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/users');
      assert.equal((await gina.browser.post(`/account/users/${target}/remove`, { csrf: csrfOf(gina.page), confirm: 'yes' })).status, 403, "another tenant's owner");
      assert.equal((await owner.browser.post(`/account/users/${target}/remove`, { confirm: 'yes' })).status, 403, 'no CSRF token');
      assert.ok((await accounts().getLogin(target)) && (await accounts().getLogin('acme-owner')), 'none of them removed anything');
    });

    it("is the owner's alone: a non-owner gets 403, a forged or cross-site form 403, and nothing is added", async () => {
      const email = newEmail();
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-globex' });
      assert.equal((await jane.browser.get('/account/users/new')).status, 403);
      const fields = { first_name: 'Eve', last_name: 'Evil', email, user_type: 'staff', nonce: randomBytes(16).toString('base64url') };
      assert.equal((await jane.browser.post('/account/users/new', { ...fields, csrf: csrfOf(jane.page) })).status, 403);
      const { browser, form } = await addForm();
      const csrf = hiddenFields(form, 'add-person-form').csrf!;
      assert.equal((await browser.post('/account/users/new', fields)).status, 403, 'no token');
      assert.equal((await browser.post('/account/users/new', { ...fields, csrf }, { origin: 'http://evil.example' })).status, 403, 'another origin');
      assert.equal((await browser.post('/account/users/new', { ...fields, csrf }, { 'sec-fetch-site': 'cross-site' })).status, 403, 'cross-site');
      assert.equal((await new Browser(server.issuer).post('/account/users/new', { ...fields, csrf })).status, 403, 'no session');
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/users');
      const globex = await gina.browser.get('/account/users/new');
      const ginaFields = { ...hiddenFields(globex, 'add-person-form'), ...fields, user_type: 'nurse' };
      assert.equal((await gina.browser.post('/account/users/new', ginaFields)).status, 400, "another tenant's user type");
      assert.equal(await accounts().findIdentityByEmail(email), null, 'nothing added');
    });
  });
}
