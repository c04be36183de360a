// A login switch after an upstream sign-in: the switch carries the session's
// first step over to the sibling login, but an upstream provider's word only
// within the tenant whose provider it is. Another tenant never chose to trust
// that provider (and its owner can make it assert the person's subject at
// will), so a switch there asks for the password. Both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, submitLogin, type TestServer } from '../support/latchkey.ts';
import { startUpstream, visitUpstream, type TestUpstream } from '../support/upstream.ts';
import { importDocument, type ImportDocument } from '../../src/import/index.ts';

const CID = 'latchkey-evil';
const CSECRET = 'upstream-client-secret-evil';
const EVIL_APP = { id: 'evil-app', secret: 's3cret-evilapp-4f9a2c7e1b8d3f6a0c5e9b2d' };
const ACME_APP = { id: 'portal', secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d' };

/** Dan has a login at Acme (no upstream provider) and two at Evil, whose owner runs Evil's upstream provider. */
function doc(issuer?: string): ImportDocument {
  return {
    identities: [{ email: 'dan@acme.test', password: PASSWORD }],
    tenants: [
      {
        id: 'acme',
        name: 'Acme Care',
        userTypes: [{ id: 'employee', name: 'Employee', secondFactor: 'none' }],
        logins: [{ id: 'dan-acme', email: 'dan@acme.test', userType: 'employee', firstName: 'Dan', lastName: 'Dunn' }],
        clients: [{ client_id: ACME_APP.id, client_secret: ACME_APP.secret, redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
      },
      {
        id: 'evil',
        name: 'Evil Partner',
        userTypes: [
          { id: 'staff', name: 'Staff', secondFactor: 'none' },
          { id: 'lead', name: 'Lead', secondFactor: 'none' },
        ],
        logins: [
          { id: 'dan-evil', email: 'dan@acme.test', userType: 'staff', firstName: 'Dan', lastName: 'Dunn' },
          { id: 'dan-evil-lead', email: 'dan@acme.test', userType: 'lead', firstName: 'Dan', lastName: 'Dunn (Lead)' },
        ],
        clients: [{ client_id: EVIL_APP.id, client_secret: EVIL_APP.secret, redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
        ...(issuer ? { upstreams: [{ id: 'sso', name: 'Evil SSO', issuer, client_id: CID, client_secret: CSECRET }] } : {}),
      },
    ],
  };
}

/** Follows a switch to where it stops, posting oidc-provider's "end the old session" form on the way (its script does in a browser). */
async function follow(browser: Browser, page: Page): Promise<Page> {
  for (let i = 0; i < 10; i++) {
    page = await browser.follow(page);
    const form = /<form method="post" action="([^"]+)">([^]*?)<\/form>/.exec(page.html);
    if (!form || !/end-session|session\/end/.test(form[1]!)) return page;
    const fields = Object.fromEntries([...form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    page = await browser.post(new URL(form[1]!, page.url).href, fields);
  }
  return page;
}

for (const setup of SETUPS) {
  describe(`a switch after an upstream sign-in (${setup})`, () => {
    let server: TestServer;
    let idp: TestUpstream;
    before(async () => {
      server = await startServer(setup, { doc: doc() });
      const redirect = `${server.issuer}/upstream/sso/callback`;
      idp = await startUpstream({ clients: [{ client_id: CID, client_secret: CSECRET, redirect_uris: [redirect] }] });
      const { stores, hasher, config } = server.latchkey;
      await importDocument(doc(idp.issuer), { accounts: stores.accounts, hasher, config });
    });
    after(async () => {
      await idp?.stop();
      await server?.stop();
    });

    /** Signs in at Evil's app through Evil's provider, choosing `login` (Dan has two there); the page reached. */
    async function viaEvilSso(browser: Browser, login = 'dan-evil') {
      const evilApp = await relyingParty(server.issuer, EVIL_APP.id, EVIL_APP.secret);
      const start = await browser.get((await evilApp.authorize()).url);
      const sent = await browser.post(actionOf(start, 'upstream-form'), { upstream: 'sso', csrf: csrfOf(start) });
      assert.equal(sent.status, 303);
      let page = await browser.get(await visitUpstream(idp, sent.url));
      if (testIds(page).includes('upstream-confirm-form')) page = await browser.post(actionOf(page, 'upstream-confirm-form'), { password: PASSWORD, csrf: csrfOf(page) });
      if (testIds(page).includes('select-form')) page = await browser.post(actionOf(page, 'select-form'), { login, csrf: csrfOf(page) });
      assert.ok(callbackReached(page), `signed in at Evil's app: ${page.status} ${page.url} ${testIds(page)}`);
    }

    it("Evil's provider's sign-in does not carry over into Acme: the switch asks for the password", async () => {
      idp.user = { sub: 'dan-at-evil', email: 'dan@acme.test', email_verified: true };
      // Once, Dan links Evil's provider with his password.
      await viaEvilSso(new Browser(server.issuer));
      // Later, Evil's owner makes the provider assert Dan's subject in a browser of their own: no password.
      const attacker = new Browser(server.issuer);
      await viaEvilSso(attacker);
      let page = await follow(attacker, await attacker.get('/account'));
      assert.equal(new URL(page.url).pathname, '/account', `${page.status} ${page.url}`);
      page = await follow(attacker, await attacker.post(actionOf(page, 'switch-form'), { csrf: csrfOf(page), login: 'dan-acme' }));
      assert.ok(testIds(page).includes('login-form'), `the password is asked: ${page.status} ${page.url} ${testIds(page)}`);
      assert.equal((await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'dan-acme', type: 'signin.success' })).length, 0, 'no sign-in at Acme');

      // Nor does Acme's app get Dan's Acme login from that browser's session.
      const acme = await relyingParty(server.issuer, ACME_APP.id, ACME_APP.secret);
      const sso = await attacker.get((await acme.authorize()).url);
      assert.ok(!callbackReached(sso), `Acme's app asks for a sign-in: ${sso.status} ${sso.url}`);

      // With the password, the switch goes through, as after any password sign-in.
      page = await submitLogin(attacker, page, 'dan@acme.test', PASSWORD);
      if (testIds(page).includes('select-form')) page = await attacker.post(actionOf(page, 'select-form'), { login: 'dan-acme', csrf: csrfOf(page) });
      page = await follow(attacker, page);
      assert.equal(new URL(page.url).pathname, '/account', `${page.status} ${page.url} ${testIds(page)}`);
      const [event] = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'dan-acme', type: 'signin.success', limit: 1 });
      assert.deepEqual(event?.detail?.amr, ['pwd']);
    });

    it("within Evil, the provider's sign-in carries over to Dan's other Evil login", async () => {
      const dan = new Browser(server.issuer);
      await viaEvilSso(dan);
      let page = await follow(dan, await dan.get('/account'));
      page = await follow(dan, await dan.post(actionOf(page, 'switch-form'), { csrf: csrfOf(page), login: 'dan-evil-lead' }));
      assert.equal(new URL(page.url).pathname, '/account', `switched without the password: ${page.status} ${page.url} ${testIds(page)}`);
      const [event] = await server.latchkey.stores.accounts.listAudit({ tenant: 'evil', login: 'dan-evil-lead', type: 'signin.success', limit: 1 });
      assert.deepEqual(event?.detail?.amr, ['fed']);
      assert.equal(event?.detail?.switchedFrom, 'dan-evil');
    });
  });
}
