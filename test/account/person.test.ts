// The owner's page of one person: the factors the login really has set up,
// with only the resets that apply to them, the last sign-in, the person's
// other logins and upstream links, the recent events in words. And the seed's
// known flaw prevented: two logins of one person with the same name are
// flagged on the Users page with a word that tells them apart, and their
// authenticator labels never collide. Owners only, one tenant each; both
// store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testIds, textOf } from '../support/browser.ts';
import { SETUPS, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, choosePin, hasForm, otpauthOf, reachFactor } from '../support/factors.ts';
import { accountFixture, signedIn } from './support.ts';
import { routeDeps } from '../../src/services.ts';

const OWNER = { email: 'owner@acme.test' };

for (const setup of SETUPS) {
  describe(`the owner's page of a person (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    before(async () => {
      server = await startServer(setup, { doc: accountFixture() });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it('shows the factors really set up with only their resets, the last sign-in, the other logins and the recent events', async () => {
      const person = await addPerson(server, 'nurse', 'manager');
      const [nurse, manager] = person.logins as [string, string];
      await choosePin(server, rp, person, '907146', nurse);
      const { browser, page: users } = await signedIn(server, OWNER, '/account/users');
      assert.ok(testIds(users).includes(`person-link-${nurse}`), 'the Users page links to the person');

      const page = await browser.get(`/account/users/${nurse}`);
      assert.equal(page.status, 200);
      assert.match(page.html, /<h1>Pat Doe<\/h1>/);
      assert.equal(textOf(page, 'person-email'), person.email);
      assert.equal(textOf(page, 'person-user-type'), 'Nurse');
      assert.equal(textOf(page, 'person-policy'), 'PIN code');
      assert.ok(testIds(page).includes('person-factor-pin'), 'the PIN, set up');
      assert.ok(!testIds(page).includes('person-factor-totp'), 'no app: none linked');
      assert.ok(testIds(page).includes('person-reset-pin'));
      assert.ok(!testIds(page).includes('person-reset-totp'), 'no reset for a factor not set up');
      assert.match(page.html, new RegExp(`<form class="inline" method="post" action="/account/users/${nurse}/reset/pin">`));
      assert.match(page.html, /data-testid="person-last-sign-in"><time datetime="\d{4}-\d\d-\d\dT[^"]+" data-local>/);
      assert.match(page.html, new RegExp(`<a href="/account/users/${manager}">Pat Doe — Manager</a>`), 'the other login');
      const events = [...page.html.matchAll(/data-testid="person-event" data-type="([^"]+)"/g)].map((m) => m[1]);
      assert.ok(events.includes('factor.pin.set') && events.includes('signin.success'), events.join(', '));
      assert.match(page.html, /PIN chosen/);
      assert.match(page.html, /With password, PIN/);
      assert.match(page.html, new RegExp(`href="/account/audit\\?login=${nurse}" data-testid="person-all-events"`));

      const other = await browser.get(`/account/users/${manager}`);
      assert.ok(testIds(other).includes('person-no-factors'), 'nothing set up yet');
      assert.ok(!testIds(other).some((id) => id.startsWith('person-reset')), 'so no reset at all');
      assert.equal(textOf(other, 'person-last-sign-in'), 'Not yet');

      const dutch = await browser.request(`/account/users/${nurse}`, { headers: { 'accept-language': 'nl' } });
      assert.match(dutch.html, /Pincode gekozen/);
      assert.match(dutch.html, /Met wachtwoord, pincode/);
    });

    it("shows only this tenant's facts: not whether the email has a password, nor another tenant's upstream links or the identity's locks there", async () => {
      const accounts = server.latchkey.stores.accounts;
      const jane = (await accounts.findIdentityByEmail('jane@acme.test'))!;
      // Jane signs in to Acme with its upstream provider too, and mistyped her PIN there until the identity's key locked.
      await accounts.upsertUpstream({ tenant: 'acme', id: 'acme-idp', name: 'Acme IdP', issuer: 'https://idp.acme.example', clientId: 'c', clientSecret: 'sealed', scopes: [] });
      await accounts.linkUpstream({ issuer: 'https://idp.acme.example', subject: 'jane', identityId: jane.id });
      const { limiter, factors } = routeDeps(server.latchkey);
      const identityKey = factors.get('pin').attemptKeys!.identity('jane@acme.test');
      for (let i = 0; i < 5; i++) await limiter.run({ targets: [identityKey] }, async () => false);
      assert.equal(await limiter.state(identityKey), 'locked');

      // Globex's owner, whose tenant has a login of the same email, sees none of it.
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/users/jane-globex');
      assert.ok(!testIds(gina.page).includes('person-password'), 'no word on the shared password');
      assert.ok(!gina.page.html.includes('Acme IdP') && !gina.page.html.includes('idp.acme.example'), "no link to another tenant's provider");
      assert.ok(testIds(gina.page).includes('person-no-upstreams'));
      assert.ok(!testIds(gina.page).includes('person-lock'), "no lock of the identity's attempts elsewhere");
      // Acme's owner sees the link to its own provider.
      const owner = await signedIn(server, OWNER, '/account/users/jane-acme');
      assert.ok(testIds(owner.page).includes('person-upstreams') && owner.page.html.includes('<li>Acme IdP</li>'), 'its own provider');
      await limiter.unlock(identityKey);
    });

    it('is for the owner of the tenant only: 403 for a user, and for an id that is not of the tenant', async () => {
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
      assert.equal((await jane.browser.request('/account/users/jane-acme')).status, 403);
      assert.equal((await jane.browser.request('/account/users/acme-owner')).status, 403);
      const owner = await signedIn(server, OWNER);
      for (const id of ['jane-globex', 'gina-owner', 'nobody', '%E0%A4%A']) {
        const res = await owner.browser.request(`/account/users/${id}`);
        assert.equal(res.status, 403, id);
        assert.ok(testIds(res).includes('error-message') && testIds(res).includes('error-back'), `${id}: a page that says why, with a way back`);
      }
      const gina = await signedIn(server, { email: 'gina@globex.test' });
      assert.equal((await gina.browser.request('/account/users/jane-acme')).status, 403, "Globex's owner never sees an Acme login");
    });

    it('flags two logins of one person with the same name on the Users page and suggests a word that tells them apart', async () => {
      const person = await addPerson(server, 'employee', 'manager');
      const [employee, manager] = person.logins as [string, string];
      const { browser } = await signedIn(server, OWNER);
      const users = await browser.get(`/account/users?q=${encodeURIComponent(person.email)}`);
      for (const id of [employee, manager]) assert.ok(testIds(users).includes(`same-name-${id}`), `${id} flagged`);
      assert.match(users.html, /e\.g\. &quot;Pat Doe \(Manager\)&quot;/);
      assert.ok(!testIds(users).includes('same-name-jane-acme'), 'a person with one login here is not flagged');
      // Told apart: neither is flagged any more.
      await server.latchkey.stores.accounts.upsertLogin({ id: manager, tenant: 'acme', email: person.email, userType: 'manager', firstName: 'Pat', lastName: 'Doe (Manager)' });
      const after = await browser.get(`/account/users?q=${encodeURIComponent(person.email)}`);
      assert.ok(!testIds(after).some((id) => id.startsWith('same-name-')));
    });

    it('keeps the authenticator labels of two namesake logins of one type apart', async () => {
      const person = await addPerson(server, 'manager', 'manager');
      const labels = [];
      for (const login of person.logins) {
        const { page } = await reachFactor(server, rp, person, login);
        assert.ok(hasForm(page, 'link-authenticator-form'), `${page.status} ${page.url}`);
        labels.push(decodeURIComponent(new URL(otpauthOf(page)).pathname));
      }
      assert.equal(new Set(labels).size, 2, labels.join(' | '));
      for (const [i, login] of person.logins.entries()) assert.ok(labels[i]!.includes(login), `${labels[i]} names ${login}`);
    });
  });
}
