// Sign-in with an upstream OpenID provider (SPEC §3, §4 amr `fed`): real
// upstreams (oidc-provider instances on loopback ports), a real relying party,
// on the embedded store and on MongoDB + Redis. The upstream account is linked
// by verified email the first time, then by issuer and subject; the journey
// then goes on as after a password; every failure is a clear page with the way
// back, and an audit event.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, freePort, relyingParty, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { codeFor, currentStep, hasForm, secretOf, submitFactor } from '../support/factors.ts';
import { startUpstream, visitUpstream, type TestUpstream, type UpstreamUser } from '../support/upstream.ts';
import { importDocument, type ImportDocument } from '../../src/cli/import.ts';

const CLIENT_ID = 'latchkey-acme';
const CLIENT_SECRET = 'upstream-client-secret-acme';

type UpstreamIssuers = Record<'corp' | 'social' | 'down', string> & { late?: string; hang?: string };

/** Acme: Bob (one login), Jane (employee and manager, the manager type with an authenticator app), Carol; Globex: Gina. */
function upstreamFixture(issuers?: UpstreamIssuers): ImportDocument {
  const upstream = (id: string, name: string, issuer: string) => ({ id, name, issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
  return {
    identities: ['bob@acme.test', 'jane@acme.test', 'carol@acme.test', 'gina@globex.test'].map((email) => ({ email, password: PASSWORD })),
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
        ],
        clients: [{ client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
        ...(issuers && {
          upstreams: [
            upstream('corp', 'Corp ID', issuers.corp),
            { ...upstream('social', 'Social', issuers.social), scopes: ['email', 'profile'] },
            upstream('down', 'Down Provider', issuers.down),
            ...(issuers.late ? [upstream('late', 'Late Provider', issuers.late)] : []),
            ...(issuers.hang ? [upstream('hang', 'Hanging Provider', issuers.hang)] : []),
          ],
        }),
      },
      {
        id: 'globex',
        name: 'Globex',
        userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
        logins: [{ id: 'gina-staff', email: 'gina@globex.test', userType: 'staff', firstName: 'Gina', lastName: 'Green' }],
        clients: [{ client_id: 'globex-app', client_secret: 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
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

    before(async () => {
      server = await startServer(setup, { doc: upstreamFixture() });
      corp = await startUpstream({ clients: [registration(server, 'corp')] });
      social = await startUpstream({ clients: [registration(server, 'social')], emailInIdToken: true });
      issuers = { corp: corp.issuer, social: social.issuer, down: `http://127.0.0.1:${await freePort()}` };
      await importInto(server, upstreamFixture(issuers));
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await corp?.stop();
      await social?.stop();
      await server?.stop();
    });

    const accounts = () => server.latchkey.stores.accounts;
    const audit = (type: string) => accounts().listAudit({ tenant: 'acme', type, limit: 500 });

    /** The login page, then its upstream button: the response is the redirect to the upstream (or an error page). */
    async function chooseUpstream(browser: Browser, id: string, params?: Record<string, string>) {
      const pending = await rp.authorize(params);
      const login = await browser.get(pending.url);
      const sent = await browser.post(actionOf(login, 'upstream-form'), { upstream: id, csrf: csrfOf(login) });
      return { pending, login, sent };
    }

    /** The whole trip: the button, the upstream signing `user` in, and Latchkey's answer to the callback. */
    async function viaUpstream(upstream: TestUpstream, user: UpstreamUser, id = 'corp', browser = new Browser(server.issuer)) {
      upstream.user = user;
      const { pending, sent } = await chooseUpstream(browser, id);
      assert.equal(sent.status, 303, `expected a redirect to the upstream, got ${sent.status}: ${messageOf(sent)}`);
      assert.ok(sent.url.startsWith(`${upstream.issuer}/`), sent.url);
      const callback = await visitUpstream(upstream, sent.url);
      const page = await browser.get(callback);
      return { browser, pending, page, callback, authorization: new URL(sent.url) };
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

    it('shows one button per upstream of the client\'s tenant, in a POST form with a CSRF token', async () => {
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
      assert.doesNotMatch(other.html, /name="upstream"/, 'Globex has no upstreams');
    });

    it('refuses the button without the CSRF token, and an upstream that is not the tenant\'s', async () => {
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

    it('signs in a person with one login: PKCE, state and nonce upstream; amr fed and acr 1fa here', async () => {
      const { page, pending, authorization } = await viaUpstream(corp, { sub: 'corp-bob', email: 'Bob@Acme.test', email_verified: true });
      const params = authorization.searchParams;
      assert.equal(params.get('client_id'), CLIENT_ID);
      assert.equal(params.get('redirect_uri'), `${server.issuer}/upstream/corp/callback`);
      assert.equal(params.get('response_type'), 'code');
      assert.deepEqual(params.get('scope')!.split(' '), ['openid', 'email']);
      assert.equal(params.get('code_challenge_method'), 'S256');
      assert.match(params.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
      assert.match(params.get('state')!, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{20,}$/);
      assert.match(params.get('nonce')!, /^[A-Za-z0-9_-]{20,}$/);

      assert.ok(callbackReached(page), `expected the RP callback, got ${page.status} ${page.url}: ${messageOf(page)}`);
      const claims = (await rp.callback(page.url, pending)).claims()!;
      assert.equal(claims.sub, 'bob-emp');
      assert.deepEqual(claims.amr, ['fed']);
      assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
      assert.equal(claims.email, 'bob@acme.test');

      const bob = await accounts().findIdentityByEmail('bob@acme.test');
      assert.equal((await accounts().findIdentityByUpstream(corp.issuer, 'corp-bob'))?.id, bob!.id, 'linked by issuer and subject');
      assert.ok((await audit('upstream.linked')).some((e) => e.detail?.upstream === 'corp'));
      const success = (await accounts().listAudit({ tenant: 'acme', login: 'bob-emp', type: 'signin.success' }))[0];
      assert.deepEqual(success?.detail?.amr, ['fed']);
    });

    it('takes the email from the ID token when the upstream puts it there, and asks for more scopes when configured', async () => {
      const { page, pending, authorization } = await viaUpstream(social, { sub: 'social-bob', email: 'bob@acme.test', email_verified: true }, 'social');
      assert.deepEqual(authorization.searchParams.get('scope')!.split(' '), ['openid', 'email', 'profile']);
      assert.ok(callbackReached(page), `${page.status}: ${messageOf(page)}`);
      assert.equal((await rp.callback(page.url, pending)).claims()!.sub, 'bob-emp');
    });

    it('lets a person with two logins choose, then passes the chosen login\'s authenticator app: amr fed otp mfa', async () => {
      const jane = { sub: 'corp-jane', email: 'jane@acme.test', email_verified: true };
      const first = await viaUpstream(corp, jane);
      assert.ok(hasForm(first.page, 'select-form'), `expected the login choice, got ${first.page.status}: ${messageOf(first.page)}`);
      let page = await first.browser.post(actionOf(first.page, 'select-form'), { login: 'jane-mgr', csrf: csrfOf(first.page) });
      assert.ok(hasForm(page, 'link-authenticator-form'), 'the manager type needs an authenticator app');
      const secret = secretOf(page);
      const step = currentStep();
      page = await submitFactor(first.browser, page, 'link-authenticator-form', { code: await codeFor(secret, step) });
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
      const first = await viaUpstream(corp, { sub: 'corp-carol', email: 'carol@acme.test', email_verified: true });
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

    it('refuses a person whose identity has no login in the client\'s tenant', async () => {
      const { browser, page } = await viaUpstream(corp, { sub: 'corp-gina', email: 'gina@globex.test', email_verified: true });
      assert.equal(page.status, 403);
      assert.equal(errorCodeOf(page), 'no_login_for_client');
      await assertBackToLogin(browser, page);
    });

    it('shows the upstream\'s access_denied clearly, audits it, and the sign-in can start again', async () => {
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

      const genuine = await browser.get(callback.href);
      assert.ok(callbackReached(genuine), `the genuine answer completes: ${genuine.status} ${messageOf(genuine)}`);
      assert.equal((await rp.callback(genuine.url, pending)).claims()!.sub, 'bob-emp');

      const failures = (await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'signin.upstream', limit: 500 })).filter((e) => e.detail?.reason === 'upstream_state');
      assert.ok(failures.length >= 2, 'state failures are audited');
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
  });
}
