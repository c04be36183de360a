// Sign-in with an upstream OpenID provider (amr `fed`): real
// upstreams (oidc-provider instances on loopback ports), a real relying party,
// on the embedded store and on MongoDB + Redis. The first time, an upstream
// account is matched by its verified email to an identity with a login in the
// tenant, and linked once the person confirms it with that identity's
// password; then by issuer and subject, in every tenant where the identity has
// a login. The journey then goes on as after a password; every failure is a
// clear page with the way back, and an audit event.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { deadEndpoint } from '../support/net.ts';
import { addPerson, codeFor, currentStep, hasForm, secretOf, submitFactor, savedCodes } from '../support/factors.ts';
import { startUpstream, visitUpstream, type TestUpstream, type UpstreamUser } from '../support/upstream.ts';
import { importDocument, type ImportDocument } from '../../src/import/index.ts';

const CLIENT_ID = 'latchkey-acme';
const CLIENT_SECRET = 'upstream-client-secret-acme';

type UpstreamIssuers = Record<'corp' | 'social' | 'down', string> & { late?: string; hang?: string; rotating?: string };

/**
 * Acme: Bob (one login), Jane (employee and manager, the manager type with an
 * authenticator app), Carol, Fay, Erin (no password); Globex: Gina; Dan in both.
 * Both tenants have the `corp` upstream.
 */
function upstreamFixture(issuers?: UpstreamIssuers): ImportDocument {
  const upstream = (id: string, name: string, issuer: string) => ({ id, name, issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
  return {
    identities: [
      ...['bob@acme.test', 'jane@acme.test', 'carol@acme.test', 'gina@globex.test', 'dan@acme.test', 'fay@acme.test'].map((email) => ({ email, password: PASSWORD })),
      { email: 'erin@acme.test' },
    ],
    tenants: [
      {
        id: 'acme',
        name: 'Acme Care',
        userTypes: [
          { id: 'employee', name: 'Employee', secondFactor: 'none' },
          { id: 'manager', name: 'Manager', secondFactor: 'totp' },
        ],
        logins: [
          { id: 'bob-emp', email: 'bob@acme.test', userType: 'employee', firstName: 'Bob', lastName: 'Baker' },
          { id: 'jane-emp', email: 'jane@acme.test', userType: 'employee', firstName: 'Jane', lastName: 'Doe' },
          { id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager', firstName: 'Jane', lastName: 'Doe' },
          { id: 'carol-emp', email: 'carol@acme.test', userType: 'employee', firstName: 'Carol', lastName: 'Clark' },
          { id: 'dan-emp', email: 'dan@acme.test', userType: 'employee', firstName: 'Dan', lastName: 'Dunn' },
          { id: 'erin-emp', email: 'erin@acme.test', userType: 'employee', firstName: 'Erin', lastName: 'Ellis' },
          { id: 'fay-emp', email: 'fay@acme.test', userType: 'employee', firstName: 'Fay', lastName: 'Fox' },
        ],
        clients: [{ client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
        ...(issuers && {
          upstreams: [
            upstream('corp', 'Corp ID', issuers.corp),
            { ...upstream('social', 'Social', issuers.social), scopes: ['email', 'profile'] },
            upstream('down', 'Down Provider', issuers.down),
            ...(issuers.late ? [upstream('late', 'Late Provider', issuers.late)] : []),
            ...(issuers.hang ? [upstream('hang', 'Hanging Provider', issuers.hang)] : []),
            ...(issuers.rotating ? [upstream('rotating', 'Rotating Provider', issuers.rotating)] : []),
          ],
        }),
      },
      {
        id: 'globex',
        name: 'Globex',
        userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
        logins: [
          { id: 'gina-staff', email: 'gina@globex.test', userType: 'staff', firstName: 'Gina', lastName: 'Green' },
          { id: 'dan-staff', email: 'dan@acme.test', userType: 'staff', firstName: 'Dan', lastName: 'Dunn' },
        ],
        clients: [{ client_id: 'globex-app', client_secret: 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
        ...(issuers && { upstreams: [upstream('corp', 'Corp ID', issuers.corp)] }),
      },
    ],
  };
}

const registration = (server: TestServer, id: string) => ({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${server.issuer}/upstream/${id}/callback`] });

function importInto(server: TestServer, doc: ImportDocument) {
  const { stores, hasher, config } = server.latchkey;
  return importDocument(doc, { accounts: stores.accounts, hasher, config });
}

const errorCodeOf = (page: Page) => textOf(page, 'error-code')?.replace('Error code: ', '');
const messageOf = (page: Page) => textOf(page, 'error-message') ?? '';

for (const setup of SETUPS) {
  describe(`sign-in with an upstream OpenID provider (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let corp: TestUpstream;
    let social: TestUpstream;
    let issuers: UpstreamIssuers;
    let down: Awaited<ReturnType<typeof deadEndpoint>>;

    before(async () => {
      server = await startServer(setup, { doc: upstreamFixture() });
      down = await deadEndpoint();
      corp = await startUpstream({ clients: [registration(server, 'corp')] });
      social = await startUpstream({ clients: [registration(server, 'social')], emailInIdToken: true });
      issuers = { corp: corp.issuer, social: social.issuer, down: down.url };
      await importInto(server, upstreamFixture(issuers));
      // Globex's `corp` came second: its redirect URI has a handle of its own, which its owner registers upstream.
      corp.register(CLIENT_ID, `${server.issuer}/upstream/${(await accounts().getUpstream('globex', 'corp'))!.handle}/callback`);
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await down?.close();
      await corp?.stop();
      await social?.stop();
      await server?.stop();
    });

    const accounts = () => server.latchkey.stores.accounts;
    const audit = (type: string) => accounts().listAudit({ tenant: 'acme', type, limit: 500 });

    /** The login page, then its upstream button: the response is the redirect to the upstream (or an error page). */
    async function chooseUpstream(browser: Browser, id: string, params?: Record<string, string>, app = rp) {
      const pending = await app.authorize(params);
      const login = await browser.get(pending.url);
      const sent = await browser.post(actionOf(login, 'upstream-form'), { upstream: id, csrf: csrfOf(login) });
      return { pending, login, sent };
    }

    /** The whole trip: the button, the upstream signing `user` in, and Latchkey's answer to the callback. */
    async function viaUpstream(upstream: TestUpstream, user: UpstreamUser, id = 'corp', browser = new Browser(server.issuer), app = rp) {
      upstream.user = user;
      const { pending, sent } = await chooseUpstream(browser, id, undefined, app);
      assert.equal(sent.status, 303, `expected a redirect to the upstream, got ${sent.status}: ${messageOf(sent)}`);
      assert.ok(sent.url.startsWith(`${upstream.issuer}/`), sent.url);
      const callback = await visitUpstream(upstream, sent.url);
      const page = await browser.get(callback);
      return { browser, pending, page, callback, authorization: new URL(sent.url) };
    }

    /** The "confirm it's you" page of an account's first sign-in, answered with `password`. */
    async function confirmLink(browser: Browser, page: Page, password = PASSWORD) {
      assert.ok(hasForm(page, 'upstream-confirm-form'), `expected the confirmation, got ${page.status}: ${messageOf(page)} ${textOf(page, 'error') ?? ''}`);
      return browser.post(actionOf(page, 'upstream-confirm-form'), { password, csrf: csrfOf(page) });
    }

    /** `viaUpstream`, confirming the link with the password when it is the account's first sign-in. */
    async function signInVia(upstream: TestUpstream, user: UpstreamUser, id = 'corp', browser = new Browser(server.issuer), app = rp) {
      const trip = await viaUpstream(upstream, user, id, browser, app);
      const page = hasForm(trip.page, 'upstream-confirm-form') ? await confirmLink(trip.browser, trip.page) : trip.page;
      return { ...trip, page };
    }

    /** A failure page offers the way back to this sign-in's login page, which still works. */
    async function assertBackToLogin(browser: Browser, page: Page) {
      const back = /<a[^>]*href="([^"]+)"[^>]*data-testid="back-to-login"/.exec(page.html)?.[1];
      assert.ok(back, 'the page links back to the login page');
      const login = await browser.get(back);
      assert.equal(login.status, 200);
      assert.ok(testIds(login).includes('login-form'), 'the login page again');
      return login;
    }

    it("shows one button per upstream of the client's tenant, in a POST form with a CSRF token", async () => {
      const browser = new Browser(server.issuer);
      const login = await browser.get((await rp.authorize()).url);
      const form = /<form[^>]*data-testid="upstream-form"[^>]*>([\s\S]*?)<\/form>/.exec(login.html);
      assert.ok(form, 'an upstream form');
      assert.match(form[0], /method="post"/);
      assert.match(form[1]!, /<input type="hidden" name="csrf" value="[^"]+"\/?>/);
      const buttons = [...form[1]!.matchAll(/<button[^>]*name="upstream" value="([^"]+)"[^>]*>([^<]*)<\/button>/g)].map((m) => [m[1], m[2]]);
      assert.deepEqual(buttons, [
        ['corp', 'Sign in with Corp ID'],
        ['down', 'Sign in with Down Provider'],
        ['social', 'Sign in with Social'],
      ]);

      const globex = await relyingParty(server.issuer, 'globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d');
      const other = await new Browser(server.issuer).get((await globex.authorize()).url);
      assert.ok(testIds(other).includes('login-form'));
      const theirs = [...other.html.matchAll(/<button[^>]*name="upstream" value="([^"]+)"/g)].map((m) => m[1]);
      assert.deepEqual(theirs, ['corp'], 'Globex has only its own upstream');
    });

    it("refuses the button without the CSRF token, and an upstream that is not the tenant's", async () => {
      const browser = new Browser(server.issuer);
      const login = await browser.get((await rp.authorize()).url);
      const action = actionOf(login, 'upstream-form');
      assert.equal((await browser.post(action, { upstream: 'corp' })).status, 403);
      assert.equal((await browser.post(action, { upstream: 'corp', csrf: 'forged' })).status, 403);
      assert.equal((await browser.post(action, { upstream: 'nope', csrf: csrfOf(login) })).status, 400);
      assert.equal((await browser.post(action, { upstream: ['corp', 'social'], csrf: csrfOf(login) })).status, 400);
      const fine = await browser.post(action, { upstream: 'corp', csrf: csrfOf(login) });
      assert.equal(fine.status, 303, 'the sign-in is still open');
    });

    it('signs in a person with one login: PKCE, state and nonce upstream; the first time confirmed with the password; amr fed and acr 1fa', async () => {
      const { browser, page: confirm, pending, authorization } = await viaUpstream(corp, { sub: 'corp-bob', email: 'Bob@Acme.test', email_verified: true });
      const params = authorization.searchParams;
      assert.equal(params.get('client_id'), CLIENT_ID);
      assert.equal(params.get('redirect_uri'), `${server.issuer}/upstream/corp/callback`);
      assert.equal(params.get('response_type'), 'code');
      assert.deepEqual(params.get('scope')!.split(' '), ['openid', 'email']);
      assert.equal(params.get('code_challenge_method'), 'S256');
      assert.match(params.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
      assert.match(params.get('state')!, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{20,}$/);
      assert.match(params.get('nonce')!, /^[A-Za-z0-9_-]{20,}$/);

      assert.ok(hasForm(confirm, 'upstream-confirm-form'), `the first sign-in asks to confirm: ${confirm.status} ${messageOf(confirm)}`);
      assert.match(textOf(confirm, 'upstream-confirm-intro') ?? '', /Corp ID.*bob@acme\.test/);
      assert.equal(await accounts().findIdentityByUpstream(corp.issuer, 'corp-bob'), null, 'nothing linked before the confirmation');
      const page = await confirmLink(browser, confirm);
      assert.ok(callbackReached(page), `expected the RP callback, got ${page.status} ${page.url}: ${messageOf(page)}`);
      const claims = (await rp.callback(page.url, pending)).claims()!;
      assert.equal(claims.sub, 'bob-emp');
      assert.deepEqual(claims.amr, ['fed']);
      assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
      assert.equal(claims.email, 'bob@acme.test');

      const bob = await accounts().findIdentityByEmail('bob@acme.test');
      assert.equal((await accounts().findIdentityByUpstream(corp.issuer, 'corp-bob'))?.id, bob!.id, 'linked by issuer and subject');
      const linked = (await audit('upstream.linked')).find((e) => e.detail?.subject === 'corp-bob');
      assert.deepEqual(linked?.detail, { identity: bob!.id, issuer: corp.issuer, subject: 'corp-bob', upstream: 'corp' });
      const success = (await accounts().listAudit({ tenant: 'acme', login: 'bob-emp', type: 'signin.success' }))[0];
      assert.deepEqual(success?.detail?.amr, ['fed']);

      const again = await viaUpstream(corp, { sub: 'corp-bob', email: 'bob@acme.test', email_verified: true });
      assert.ok(callbackReached(again.page), 'linked: no confirmation the second time');
    });

    it('takes the email from the ID token when the upstream puts it there, and asks for more scopes when configured', async () => {
      const { page, pending, authorization } = await signInVia(social, { sub: 'social-bob', email: 'bob@acme.test', email_verified: true }, 'social');
      assert.deepEqual(authorization.searchParams.get('scope')!.split(' '), ['openid', 'email', 'profile']);
      assert.ok(callbackReached(page), `${page.status}: ${messageOf(page)}`);
      assert.equal((await rp.callback(page.url, pending)).claims()!.sub, 'bob-emp');
    });

    it("lets a person with two logins choose, then passes the chosen login's authenticator app: amr fed otp mfa", async () => {
      const jane = { sub: 'corp-jane', email: 'jane@acme.test', email_verified: true };
      const first = await signInVia(corp, jane);
      assert.ok(hasForm(first.page, 'select-form'), `expected the login choice, got ${first.page.status}: ${messageOf(first.page)}`);
      let page = await first.browser.post(actionOf(first.page, 'select-form'), { login: 'jane-mgr', csrf: csrfOf(first.page) });
      assert.ok(hasForm(page, 'link-authenticator-form'), 'the manager type needs an authenticator app');
      const secret = secretOf(page);
      const step = currentStep();
      page = await savedCodes(first.browser, await submitFactor(first.browser, page, 'link-authenticator-form', { code: await codeFor(secret, step) }));
      assert.ok(callbackReached(page));
      let claims = (await rp.callback(page.url, first.pending)).claims()!;
      assert.equal(claims.sub, 'jane-mgr');
      assert.deepEqual(claims.amr, ['fed', 'otp', 'mfa']);
      assert.equal(claims.acr, 'urn:latchkey:acr:totp');

      const again = await viaUpstream(corp, jane);
      page = await again.browser.post(actionOf(again.page, 'select-form'), { login: 'jane-mgr', csrf: csrfOf(again.page) });
      assert.ok(hasForm(page, 'enter-code-form'), 'the app is linked: now the code');
      page = await submitFactor(again.browser, page, 'enter-code-form', { code: await codeFor(secret, step + 1) });
      assert.ok(callbackReached(page));
      claims = (await rp.callback(page.url, again.pending)).claims()!;
      assert.deepEqual(claims.amr, ['fed', 'otp', 'mfa']);

      const employee = await viaUpstream(corp, jane);
      page = await employee.browser.post(actionOf(employee.page, 'select-form'), { login: 'jane-emp', csrf: csrfOf(employee.page) });
      assert.ok(callbackReached(page), 'the employee login needs no second factor');
      claims = (await rp.callback(page.url, employee.pending)).claims()!;
      assert.equal(claims.sub, 'jane-emp');
      assert.deepEqual(claims.amr, ['fed']);
    });

    it('keeps the link when the email changes upstream: the same subject reaches the same identity', async () => {
      const first = await signInVia(corp, { sub: 'corp-carol', email: 'carol@acme.test', email_verified: true });
      assert.ok(callbackReached(first.page));
      assert.equal((await rp.callback(first.page.url, first.pending)).claims()!.sub, 'carol-emp');

      const moved = await viaUpstream(corp, { sub: 'corp-carol', email: 'carol@elsewhere.test', email_verified: true });
      assert.ok(callbackReached(moved.page), `${moved.page.status}: ${messageOf(moved.page)}`);
      assert.equal((await rp.callback(moved.page.url, moved.pending)).claims()!.sub, 'carol-emp');

      const confusing = await viaUpstream(corp, { sub: 'corp-carol', email: 'bob@acme.test', email_verified: false });
      assert.ok(callbackReached(confusing.page), 'the link wins over whatever email the upstream now sends');
      assert.equal((await rp.callback(confusing.page.url, confusing.pending)).claims()!.sub, 'carol-emp');
    });

    it('refuses an unverified email with a clear page: no account matches, nothing linked, the way back works', async () => {
      const { browser, page } = await viaUpstream(corp, { sub: 'corp-unverified', email: 'bob@acme.test', email_verified: false });
      assert.equal(page.status, 403);
      assert.equal(errorCodeOf(page), 'upstream_no_account');
      assert.match(messageOf(page), /No account matches/);
      assert.match(messageOf(page), /verified/);
      assert.equal(await accounts().findIdentityByUpstream(corp.issuer, 'corp-unverified'), null);
      const event = (await audit('signin.upstream')).find((e) => e.detail?.reason === 'upstream_no_account' && e.detail?.problem === 'email_not_verified');
      assert.equal(event?.outcome, 'failure');
      assert.equal(event?.detail?.upstream, 'corp');

      const login = await assertBackToLogin(browser, page);
      const done = await submitLogin(browser, login, 'bob@acme.test', PASSWORD);
      assert.ok(callbackReached(done), 'the same sign-in goes on with the password');
    });

    it('refuses an email without a verified flag the same way', async () => {
      const { page } = await viaUpstream(corp, { sub: 'corp-noflag', email: 'bob@acme.test' });
      assert.equal(page.status, 403);
      assert.equal(errorCodeOf(page), 'upstream_no_account');
    });

    it('refuses an unknown email: no account matches, nothing is created', async () => {
      const { browser, page } = await viaUpstream(corp, { sub: 'corp-stranger', email: 'stranger@acme.test', email_verified: true });
      assert.equal(page.status, 403);
      assert.equal(errorCodeOf(page), 'upstream_no_account');
      assert.match(messageOf(page), /No account matches the email address of your Corp ID account/);
      assert.equal(await accounts().findIdentityByEmail('stranger@acme.test'), null);
      assert.equal(await accounts().findIdentityByUpstream(corp.issuer, 'corp-stranger'), null);
      await assertBackToLogin(browser, page);
    });

    it("refuses a person whose identity has no login in the client's tenant as it refuses an unknown email, and links nothing", async () => {
      const { browser, page } = await viaUpstream(corp, { sub: 'corp-gina', email: 'gina@globex.test', email_verified: true });
      // The answer an unknown email gets: an upstream (its claims are its owner's) cannot tell which emails have an account elsewhere.
      const unknown = await viaUpstream(corp, { sub: 'corp-nobody', email: 'nobody@globex.test', email_verified: true });
      assert.deepEqual([page.status, errorCodeOf(page), messageOf(page)], [unknown.page.status, errorCodeOf(unknown.page), messageOf(unknown.page)]);
      assert.equal(page.status, 403);
      assert.equal(errorCodeOf(page), 'upstream_no_account');
      assert.equal(await accounts().findIdentityByUpstream(corp.issuer, 'corp-gina'), null, 'no link for a tenant where the identity has no login');
      assert.ok(!(await audit('upstream.linked')).some((e) => e.detail?.subject === 'corp-gina'));
      await assertBackToLogin(browser, page);
    });

    it('confirms the first link with the password: a wrong one is refused like on the login page, and links nothing', async () => {
      const dan = { sub: 'corp-dan', email: 'dan@acme.test', email_verified: true };
      const { browser, page: confirm, pending } = await viaUpstream(corp, dan);
      const action = actionOf(confirm, 'upstream-confirm-form');
      assert.equal((await browser.post(action, { password: PASSWORD })).status, 403, 'no CSRF token');
      assert.equal((await browser.post(action, { password: PASSWORD, csrf: 'forged' })).status, 403);
      const stranger = new Browser(server.issuer);
      assert.ok(!callbackReached(await stranger.post(action, { password: PASSWORD, csrf: csrfOf(confirm) })), 'another browser has no such sign-in');
      const empty = await browser.post(action, { password: '', csrf: csrfOf(confirm) });
      assert.equal(empty.status, 400);
      assert.ok(hasForm(empty, 'upstream-confirm-form'));
      const wrong = await confirmLink(browser, confirm, 'not the password');
      assert.equal(wrong.status, 400);
      assert.equal(textOf(wrong, 'error'), 'The password is not correct.');
      assert.equal(await accounts().findIdentityByUpstream(corp.issuer, 'corp-dan'), null);
      assert.ok((await audit('signin.upstream')).some((e) => e.detail?.reason === 'link_not_confirmed' && e.outcome === 'failure'));

      const page = await confirmLink(browser, wrong);
      assert.ok(hasForm(page, 'select-form') || callbackReached(page), `${page.status}: ${messageOf(page)}`);
      assert.ok(callbackReached(page), 'Dan has one login in Acme');
      assert.equal((await rp.callback(page.url, pending)).claims()!.sub, 'dan-emp');
      const danId = (await accounts().findIdentityByEmail('dan@acme.test'))!.id;
      assert.equal((await accounts().findIdentityByUpstream(corp.issuer, 'corp-dan'))?.id, danId);
      for (const tenant of ['acme', 'globex']) {
        const events = (await accounts().listAudit({ tenant, type: 'upstream.linked' })).filter((e) => e.detail?.subject === 'corp-dan');
        assert.equal(events.length, 1, `the link is audited in ${tenant}, where Dan has a login`);
        assert.equal(events[0]!.detail?.identity, danId);
        assert.equal(events[0]!.detail?.issuer, corp.issuer);
      }

      const globex = await relyingParty(server.issuer, 'globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d');
      const there = await viaUpstream(corp, dan, 'corp', new Browser(server.issuer), globex);
      assert.ok(callbackReached(there.page), `the link is used in another tenant where Dan has a login: ${there.page.status} ${messageOf(there.page)}`);
      assert.equal((await globex.callback(there.page.url, there.pending)).claims()!.sub, 'dan-staff');

      const bobThere = await viaUpstream(corp, { sub: 'corp-bob', email: 'bob@acme.test', email_verified: true }, 'corp', new Browser(server.issuer), globex);
      assert.equal(bobThere.page.status, 403, "Bob's link is not used where Bob has no login");
      assert.equal(errorCodeOf(bobThere.page), 'no_login_for_client');
    });

    it('refuses to link an identity without a password, with a clear page', async () => {
      const { browser, page } = await viaUpstream(corp, { sub: 'corp-erin', email: 'erin@acme.test', email_verified: true });
      assert.equal(page.status, 403);
      assert.equal(errorCodeOf(page), 'upstream_link_unconfirmable');
      assert.match(messageOf(page), /no password/);
      assert.equal(await accounts().findIdentityByUpstream(corp.issuer, 'corp-erin'), null);
      await assertBackToLogin(browser, page);
    });

    it("shows the upstream's access_denied clearly, audits it, and the sign-in can start again", async () => {
      corp.mode = 'deny';
      try {
        const { browser, page } = await viaUpstream(corp, { sub: 'corp-bob' });
        assert.equal(page.status, 400);
        assert.equal(errorCodeOf(page), 'upstream_error');
        assert.match(messageOf(page), /cancelled or refused/);
        const event = (await audit('signin.upstream')).find((e) => e.detail?.error === 'access_denied');
        assert.equal(event?.outcome, 'failure');
        assert.equal(event?.detail?.upstream, 'corp');

        corp.mode = 'sign-in';
        const login = await assertBackToLogin(browser, page);
        const sent = await browser.post(actionOf(login, 'upstream-form'), { upstream: 'corp', csrf: csrfOf(login) });
        const done = await browser.get(await visitUpstream(corp, sent.url));
        assert.ok(callbackReached(done), 'the same interaction, restarted at the upstream, completes');
      } finally {
        corp.mode = 'sign-in';
      }
    });

    it('refuses a tampered, missing, foreign or used state; the genuine answer still completes once', async () => {
      corp.user = { sub: 'corp-bob', email: 'bob@acme.test', email_verified: true };
      const browser = new Browser(server.issuer);
      const { pending, sent } = await chooseUpstream(browser, 'corp');
      const callback = new URL(await visitUpstream(corp, sent.url));
      const state = callback.searchParams.get('state')!;
      const [uid, random] = state.split('.') as [string, string];
      const withState = (value: string | null) => {
        const url = new URL(callback);
        if (value === null) url.searchParams.delete('state');
        else url.searchParams.set('state', value);
        return url.href;
      };
      const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);

      const tampered = await browser.get(withState(`${uid}.${flip(random)}`));
      assert.equal(tampered.status, 400);
      assert.equal(errorCodeOf(tampered), 'upstream_state');
      await assertBackToLogin(browser, tampered);

      const otherInteraction = await browser.get(withState(`${flip(uid)}.${random}`));
      assert.equal(otherInteraction.status, 400);
      assert.equal(errorCodeOf(otherInteraction), 'upstream_state');

      for (const bad of [null, '', 'no-dot', `${uid}.short`, `../${uid}.${random}`]) {
        const page = await browser.get(withState(bad));
        assert.equal(page.status, 400, `state ${bad}`);
        assert.ok(!callbackReached(page));
      }

      const stranger = new Browser(server.issuer);
      const foreign = await stranger.get(callback.href);
      assert.equal(foreign.status, 400, 'another browser has no such sign-in');
      assert.ok(!callbackReached(foreign));

      const swapped = await browser.get(callback.href.replace('/upstream/corp/', '/upstream/social/'));
      assert.equal(swapped.status, 400, 'the answer of one upstream is not taken for another');
      assert.equal(errorCodeOf(swapped), 'upstream_state');
      const mismatch = (await audit('signin.upstream')).find((e) => e.detail?.reason === 'upstream_mismatch');
      assert.equal(mismatch?.detail?.upstream, 'corp', "audited as an answer at another upstream's redirect URI, naming the sign-in's upstream");

      const genuine = await browser.get(callback.href);
      assert.ok(callbackReached(genuine), `the genuine answer completes: ${genuine.status} ${messageOf(genuine)}`);
      assert.equal((await rp.callback(genuine.url, pending)).claims()!.sub, 'bob-emp');

      const failures = (await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'signin.upstream', limit: 500 })).filter(
        (e) => e.detail?.reason === 'upstream_state',
      );
      assert.ok(failures.length >= 1, 'state failures are audited');
    });

    it('refuses an answer whose state matches but whose code was issued to another sign-in (PKCE)', async () => {
      corp.user = { sub: 'corp-bob', email: 'bob@acme.test', email_verified: true };
      const victim = new Browser(server.issuer);
      const { sent } = await chooseUpstream(victim, 'corp');
      const victimState = new URL(sent.url).searchParams.get('state')!;
      const attacker = new Browser(server.issuer);
      const attackerCallback = new URL(await visitUpstream(corp, (await chooseUpstream(attacker, 'corp')).sent.url));
      attackerCallback.searchParams.set('state', victimState);
      const page = await victim.get(attackerCallback.href);
      assert.equal(page.status, 400);
      assert.equal(errorCodeOf(page), 'upstream_error');
      assert.ok(!callbackReached(page));
    });

    it('requires the RFC 9207 iss of an upstream that advertises it: missing or another issuer is refused (502)', async () => {
      corp.user = { sub: 'corp-bob', email: 'bob@acme.test', email_verified: true };
      for (const iss of [null, social.issuer]) {
        const browser = new Browser(server.issuer);
        const { sent } = await chooseUpstream(browser, 'corp');
        const callback = new URL(await visitUpstream(corp, sent.url));
        assert.equal(callback.searchParams.get('iss'), corp.issuer, 'the upstream sends it');
        if (iss === null) callback.searchParams.delete('iss');
        else callback.searchParams.set('iss', iss);
        const page = await browser.get(callback.href);
        assert.equal(page.status, 502, `iss ${iss}`);
        assert.equal(errorCodeOf(page), 'upstream_invalid_response');
        assert.ok(!callbackReached(page));
      }
    });

    it('refuses an ID token for another audience, or with a broken signature, with a clear page (502), audited', async () => {
      try {
        for (const how of ['audience', 'email'] as const) {
          social.tamperIdTokens = how;
          const { browser, page } = await viaUpstream(social, { sub: 'social-bob', email: 'bob@acme.test', email_verified: true }, 'social');
          assert.equal(page.status, 502, how);
          assert.equal(errorCodeOf(page), 'upstream_invalid_response');
          await assertBackToLogin(browser, page);
        }
        assert.ok((await audit('signin.upstream')).some((e) => e.detail?.reason === 'upstream_invalid_response' && e.detail?.upstream === 'social'));
      } finally {
        social.tamperIdTokens = false;
      }
    });

    it('answers an unreachable upstream with a clear page (502), audited, and the password still works', async () => {
      const browser = new Browser(server.issuer);
      const started = Date.now();
      const { sent } = await chooseUpstream(browser, 'down');
      assert.ok(Date.now() - started < 10_000, 'no long wait');
      assert.equal(sent.status, 502);
      assert.equal(errorCodeOf(sent), 'upstream_unavailable');
      assert.match(messageOf(sent), /Down Provider cannot be reached/);
      assert.ok((await audit('signin.upstream')).some((e) => e.detail?.reason === 'upstream_unavailable' && e.detail?.upstream === 'down'));
      const login = await assertBackToLogin(browser, sent);
      assert.ok(callbackReached(await submitLogin(browser, login, 'bob@acme.test', PASSWORD)));
    });

    it('gives up on an upstream that accepts the connection but never answers, after its timeout, with a clear page (502)', async () => {
      const sockets = new Set<Socket>();
      const hang = createServer((socket) => sockets.add(socket)).listen(0, '127.0.0.1');
      await once(hang, 'listening');
      try {
        await importInto(server, upstreamFixture({ ...issuers, hang: `http://127.0.0.1:${(hang.address() as AddressInfo).port}` }));
        const browser = new Browser(server.issuer);
        const started = Date.now();
        const { sent } = await chooseUpstream(browser, 'hang');
        const waited = Date.now() - started;
        assert.ok(sockets.size >= 1, 'Latchkey reached the upstream');
        assert.equal(sent.status, 502);
        assert.equal(errorCodeOf(sent), 'upstream_unavailable');
        assert.match(messageOf(sent), /Hanging Provider cannot be reached/);
        // Not a refused connection (that fails at once): the upstream's 5-second timeout ended the wait.
        assert.ok(waited >= 4500 && waited < 15_000, `waited ${waited} ms`);
        assert.ok((await audit('signin.upstream')).some((e) => e.detail?.reason === 'upstream_unavailable' && e.detail?.upstream === 'hang'));
        await assertBackToLogin(browser, sent);
      } finally {
        for (const socket of sockets) socket.destroy();
        hang.close();
      }
    });

    it('answers an upstream that goes down between the redirect and the callback with a clear page (502)', async () => {
      const late = await startUpstream({ clients: [registration(server, 'late')] });
      try {
        await importInto(server, upstreamFixture({ ...issuers, late: late.issuer }));
        late.user = { sub: 'late-bob', email: 'bob@acme.test', email_verified: true };
        const browser = new Browser(server.issuer);
        const { sent } = await chooseUpstream(browser, 'late');
        const callback = await visitUpstream(late, sent.url);
        await late.stop();
        const page = await browser.get(callback);
        assert.equal(page.status, 502);
        assert.equal(errorCodeOf(page), 'upstream_unavailable');
        await assertBackToLogin(browser, page);
      } finally {
        await late.stop();
      }
    });

    it('signs in at once after the upstream restarts on new signing keys: the new key set is fetched once', async () => {
      const rotating = await startUpstream({ clients: [registration(server, 'rotating')] });
      try {
        await importInto(server, upstreamFixture({ ...issuers, rotating: rotating.issuer }));
        const bob = { sub: 'rotating-bob', email: 'bob@acme.test', email_verified: true };
        const signIn = () => signInVia(rotating, bob, 'rotating');
        const first = await signIn();
        assert.ok(callbackReached(first.page), `${first.page.status}: ${messageOf(first.page)}`);
        const fetched = rotating.jwksRequests;
        assert.ok(fetched >= 1);

        await rotating.rotateKeys();
        const second = await signIn();
        assert.ok(callbackReached(second.page), `right after the rotation: ${second.page.status} ${messageOf(second.page)}`);
        assert.equal((await rp.callback(second.page.url, second.pending)).claims()!.sub, 'bob-emp');
        assert.equal(rotating.jwksRequests, fetched + 1, 'the new key set, fetched once');

        const third = await signIn();
        assert.ok(callbackReached(third.page));
        assert.equal(rotating.jwksRequests, fetched + 1, 'then reused');

        rotating.tamperIdTokens = 'kid';
        const unknown = await signIn();
        assert.equal(unknown.page.status, 502, 'a kid the upstream never published is refused');
        assert.equal(errorCodeOf(unknown.page), 'upstream_invalid_response');
        assert.equal(rotating.jwksRequests, fetched + 2, 'after one more fetch, not a loop');
      } finally {
        await rotating.stop();
      }
    });

    it('two tabs confirming one first sign-in at once make one link, audited once, and one sign-in', async () => {
      const person = await addPerson(server, 'employee');
      const { browser, page: confirm } = await viaUpstream(corp, { sub: `corp-${person.logins[0]}`, email: person.email, email_verified: true });
      const answers = await Promise.all(Array.from({ length: 4 }, () => browser.post(actionOf(confirm, 'upstream-confirm-form'), { password: PASSWORD, csrf: csrfOf(confirm) })));
      assert.ok(
        answers.every((a) => a.status < 500),
        answers.map((a) => a.status).join(' '),
      );
      assert.ok(
        answers.some((a) => callbackReached(a)),
        'the sign-in completes',
      );
      const identity = (await accounts().findIdentityByEmail(person.email))!;
      assert.equal((await accounts().findIdentityByUpstream(corp.issuer, `corp-${person.logins[0]}`))?.id, identity.id);
      const linked = (await audit('upstream.linked')).filter((e) => e.detail?.identity === identity.id);
      assert.equal(linked.length, 1, 'one upstream.linked event');
    });

    // Last: the parallel guesses also slow this test client's address down.
    it('limits the confirmation like the password: parallel wrong guesses get no more tries, then 429 even for the right one', async () => {
      const fay = { sub: 'corp-fay', email: 'fay@acme.test', email_verified: true };
      const { browser, page: confirm } = await viaUpstream(corp, fay);
      const action = actionOf(confirm, 'upstream-confirm-form');
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => browser.post(action, { password: `wrong-${i}`, csrf: csrfOf(confirm) })));
      const statuses = answers.map((a) => a.status);
      assert.ok(
        statuses.every((st) => st === 400 || st === 429),
        statuses.join(' '),
      );
      assert.ok(statuses.filter((st) => st === 400).length <= 5, `at most the threshold of wrong guesses is checked: ${statuses.join(' ')}`);
      const locked = await browser.post(action, { password: PASSWORD, csrf: csrfOf(confirm) });
      assert.equal(locked.status, 429);
      assert.ok(locked.headers.get('retry-after'));
      assert.equal(await accounts().findIdentityByUpstream(corp.issuer, 'corp-fay'), null);
    });
  });
}
