// The upstream accounts linked to a person, on the profile: listed with an
// "unlink" button (CSRF-protected, audited in every tenant of the person), and
// dropped by a password change or an owner's reset (UPSTREAM_UNLINK_ON, both by
// default). Once unlinked, the next sign-in with that upstream asks for the
// password again. Real upstream, both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, hasForm } from '../support/factors.ts';
import { startUpstream, visitUpstream, type TestUpstream } from '../support/upstream.ts';
import { importDocument } from '../../src/import/index.ts';
import { accountFixture, noticeOf, signedIn, submit } from '../account/support.ts';

const CLIENT_ID = 'latchkey-acme';
const CLIENT_SECRET = 'upstream-client-secret-acme';

/** The account fixture, with the `corp` upstream in Acme. */
function withUpstream(issuer?: string) {
  const doc = accountFixture();
  if (issuer) doc.tenants![0]!.upstreams = [{ id: 'corp', name: 'Corp ID', issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET }];
  return doc;
}

const linksOf = (page: Page) => [...page.html.matchAll(/data-testid="upstream-link-provider">([^<]*)</g)].map((m) => m[1]);

for (const setup of SETUPS) {
  describe(`upstream links on the profile (${setup})`, () => {
    let server: TestServer;
    let corp: TestUpstream;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: withUpstream() });
      corp = await startUpstream({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${server.issuer}/upstream/corp/callback`] }] });
      const { stores, hasher, config } = server.latchkey;
      await importDocument(withUpstream(corp.issuer), { accounts: stores.accounts, hasher, config });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await corp?.stop();
      await server?.stop();
    });

    const accounts = () => server.latchkey.stores.accounts;
    const identityOf = async (email: string) => (await accounts().findIdentityByEmail(email))!;

    /** A sign-in to the portal with `corp`: the page Latchkey answers the callback with. */
    async function viaCorp(sub: string, email: string) {
      corp.user = { sub, email, email_verified: true };
      const browser = new Browser(server.issuer);
      const login = await browser.get((await rp.authorize()).url);
      const sent = await browser.post(actionOf(login, 'upstream-form'), { upstream: 'corp', csrf: csrfOf(login) });
      return { browser, page: await browser.get(await visitUpstream(corp, sent.url)) };
    }

    async function linkViaCorp(sub: string, email: string) {
      const { browser, page } = await viaCorp(sub, email);
      assert.ok(hasForm(page, 'upstream-confirm-form'), `the first sign-in asks to confirm: ${page.status}`);
      const done = await browser.post(actionOf(page, 'upstream-confirm-form'), { password: PASSWORD, csrf: csrfOf(page) });
      assert.ok(callbackReached(done), `${done.status} ${done.url}`);
    }

    it("lists the person's links; unlink needs the session's CSRF token, removes only their own, is audited in each of their tenants", async () => {
      await linkViaCorp('corp-jane', 'jane@acme.test');
      const jane = await identityOf('jane@acme.test');
      const gina = await identityOf('gina@globex.test');
      await accounts().linkUpstream({ issuer: corp.issuer, subject: 'corp-gina', identityId: gina.id });

      const { browser, page: profile } = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
      assert.deepEqual(linksOf(profile), ['Corp ID']);
      assert.ok(testIds(profile).includes('unlink-upstream'));

      const action = actionOf(profile, 'unlink-upstream-form');
      assert.equal((await browser.post(action, { issuer: corp.issuer, subject: 'corp-jane' })).status, 403, 'no CSRF token');
      assert.equal((await new Browser(server.issuer).post(action, { issuer: corp.issuer, subject: 'corp-jane', csrf: csrfOf(profile) })).status, 403, 'no session');
      const foreign = await browser.post(action, { issuer: corp.issuer, subject: 'corp-gina', csrf: csrfOf(profile) });
      assert.equal(foreign.status, 404, "another person's link is unknown here");
      assert.equal((await accounts().findIdentityByUpstream(corp.issuer, 'corp-gina'))?.id, gina.id);
      assert.equal((await browser.post(action, { issuer: [corp.issuer, 'x'], subject: 'corp-jane', csrf: csrfOf(profile) })).status, 400);
      assert.equal((await accounts().listUpstreamLinks(jane.id)).length, 1, 'refused posts change nothing');

      const done = await submit(browser, profile, 'unlink-upstream-form');
      assert.equal(new URL(done.url).pathname, '/account');
      assert.match(noticeOf(done), /unlinked/);
      assert.deepEqual(linksOf(done), []);
      assert.ok(testIds(done).includes('no-upstream-links'));
      assert.deepEqual(await accounts().listUpstreamLinks(jane.id), []);
      assert.equal((await submit(browser, profile, 'unlink-upstream-form')).status, 404, 'gone already');
      for (const tenant of ['acme', 'globex']) {
        const events = await accounts().listAudit({ tenant, type: 'upstream.unlinked' });
        assert.equal(events.length, 1, `audited in ${tenant}, where Jane has a login`);
        assert.deepEqual(events[0]!.detail, { identity: jane.id, issuer: corp.issuer, subject: 'corp-jane', by: 'jane-acme', reason: 'person' });
      }

      const again = await viaCorp('corp-jane', 'jane@acme.test');
      assert.ok(hasForm(again.page, 'upstream-confirm-form'), 'unlinked: the next upstream sign-in asks for the password again');
    });

    it("drops the person's links when they change their password", async () => {
      const person = await addPerson(server, 'employee');
      const identity = await identityOf(person.email);
      await linkViaCorp(`corp-${person.logins[0]}`, person.email);
      const { browser } = await signedIn(server, { email: person.email });
      const form = await browser.get('/account/profile/password');
      const changed = await submit(browser, form, 'change-password-form', {
        current_password: PASSWORD,
        password: 'a new long passphrase 42',
        password_confirm: 'a new long passphrase 42',
      });
      assert.match(noticeOf(changed), /password/i, `${changed.status} ${textOf(changed, 'error') ?? ''}`);
      assert.deepEqual(await accounts().listUpstreamLinks(identity.id), []);
      const event = (await accounts().listAudit({ tenant: 'acme', type: 'upstream.unlinked' })).find((e) => e.detail?.identity === identity.id);
      assert.equal(event?.detail?.reason, 'password');
      assert.equal(event?.detail?.subject, `corp-${person.logins[0]}`);
    });

    it("drops the person's links when an owner resets their factor", async () => {
      const person = await addPerson(server, 'nurse');
      const identity = await identityOf(person.email);
      await accounts().linkUpstream({ issuer: corp.issuer, subject: `corp-${person.logins[0]}`, identityId: identity.id });
      const { browser, page } = await signedIn(server, { email: 'owner@acme.test' });
      const reset = await browser.post(`/account/users/${person.logins[0]}/reset-pin`, { csrf: csrfOf(page), confirm: 'yes' });
      assert.equal(new URL(reset.url).pathname, '/account/users', `${reset.status}`);
      assert.deepEqual(await accounts().listUpstreamLinks(identity.id), []);
      const event = (await accounts().listAudit({ tenant: 'acme', type: 'upstream.unlinked' })).find((e) => e.detail?.identity === identity.id);
      assert.deepEqual(event?.detail, { identity: identity.id, issuer: corp.issuer, subject: `corp-${person.logins[0]}`, by: 'acme-owner', reason: 'reset' });
    });
  });
}

describe('upstream links kept when UPSTREAM_UNLINK_ON=none', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer('sqlite', { doc: withUpstream('https://idp.example'), env: { UPSTREAM_UNLINK_ON: 'none' } });
  });
  after(() => server?.stop());

  it('a password change leaves the links alone', async () => {
    const accounts = server.latchkey.stores.accounts;
    const person = await addPerson(server, 'employee');
    const identity = (await accounts.findIdentityByEmail(person.email))!;
    await accounts.linkUpstream({ issuer: 'https://idp.example', subject: 'kept', identityId: identity.id });
    const { browser } = await signedIn(server, { email: person.email });
    const form = await browser.get('/account/profile/password');
    const changed = await submit(browser, form, 'change-password-form', {
      current_password: PASSWORD,
      password: 'a new long passphrase 42',
      password_confirm: 'a new long passphrase 42',
    });
    assert.match(noticeOf(changed), /password/i);
    assert.equal((await accounts.listUpstreamLinks(identity.id)).length, 1);
  });
});
