// Passkeys through the whole sign-in, in Debian's Chromium with the DevTools
// virtual authenticator, on both store set-ups: enrolment at the first
// sign-in, a later sign-in, sign-in with the passkey alone choosing one of a
// person's two logins (from the button and from the email field's autofill),
// and what is refused — a cloned key, a challenge answered twice, another
// login's key, another tenant's key, a disabled login. Recovery codes stand in
// for a lost passkey: made at its set-up, offered on its page (also without
// JavaScript), renewed on the profile only after the passkey itself.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { APIResponse, Browser, BrowserContext, Page } from 'playwright-core';
import { listenOnFreePort } from '../support/net.ts';
import { dumpStores } from '../support/dump.ts';
import { Browser as HttpBrowser, actionOf, csrfOf, testIds, textOf } from '../support/browser.ts';
import { addPerson, auditOf } from '../support/factors.ts';
import { noticeOf, signedIn, submit } from '../account/support.ts';
import { PASSWORD, SETUPS, submitLogin, fixture, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { withoutChromium } from '../support/chromium.ts';
import { addVirtualAuthenticator, launchWebAuthnChromium, base64url, cloneAuthenticator, type VirtualAuthenticator, type VirtualCredential } from '../support/webauthn.ts';

const PASSKEY_ACR = 'urn:latchkey:acr:passkey';

/**
 * In the page: an assertion of whichever discoverable credential the
 * authenticator holds, to `challenge`, as WebAuthn JSON (what the page's
 * script would post). Source text, so the test needs no DOM types.
 */
const ASSERT_ANY = `async (challenge) => {
  const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const text = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  const cred = await navigator.credentials.get({ publicKey: { challenge: bytes(challenge), rpId: location.hostname, userVerification: 'preferred' } });
  const r = cred.response;
  return JSON.stringify({ id: cred.id, rawId: cred.id, type: 'public-key', clientExtensionResults: {},
    response: { clientDataJSON: text(r.clientDataJSON), authenticatorData: text(r.authenticatorData), signature: text(r.signature), userHandle: r.userHandle ? text(r.userHandle) : undefined } });
}`;

/** In the page before its scripts: a browser without conditional mediation (the login page's autofill request is never made). */
const NO_AUTOFILL = `Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: async () => false })`;

/** Acme's employees and managers, and Globex's staff, all with passkeys; the apps come back to `redirectUri`. */
/**
 * One answer posted twice at once: exactly one signs in (303), the other is refused. Which refusal
 * depends on when the twin arrives: while the first is at the answer's check, the answer is
 * "already used" (400, audited as replayed); once the first has finished the sign-in, the journey's
 * form is spent (403, the form-expired page). Either way no second sign-in.
 */
async function assertOneSignsIn(answers: APIResponse[]): Promise<'replayed' | 'spent'> {
  const statuses = answers.map((a) => a.status()).sort();
  assert.ok(statuses[0] === 303 && (statuses[1] === 400 || statuses[1] === 403), `one sign-in, one refusal: ${statuses.join(', ')}`);
  const refused = answers.find((a) => a.status() !== 303)!;
  if (refused.status() === 400) {
    assert.match(await refused.text(), /already used/);
    return 'replayed';
  }
  assert.match(await refused.text(), /This form has expired or did not come from this site/);
  return 'spent';
}

function passkeyFixture(redirectUri: string) {
  const doc = fixture();
  for (const tenant of doc.tenants ?? []) {
    for (const type of tenant.userTypes ?? []) if (type.id !== 'owner') type.secondFactor = 'passkey';
    for (const client of tenant.clients ?? []) client.redirect_uris = [redirectUri];
  }
  return doc;
}

for (const setup of SETUPS) {
  describe(`passkeys in Chromium (${setup})`, { skip: withoutChromium }, () => {
    let server: TestServer;
    let acme: RelyingParty;
    let globex: RelyingParty;
    let browser: Browser;
    const cspViolations: string[] = [];

    let callbackServer: Server;
    let redirectUri: string;

    before(async () => {
      // The apps' callback: a page of its own, so the browser's journey ends somewhere real.
      callbackServer = createServer((_req, res) => res.end('callback'));
      redirectUri = `http://127.0.0.1:${await listenOnFreePort(callbackServer)}/cb`;
      server = await startServer(setup, { doc: passkeyFixture(redirectUri), host: 'localhost' });
      acme = await relyingParty(server.issuer);
      globex = await relyingParty(server.issuer, 'globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d');
      browser = await launchWebAuthnChromium();
    });
    after(async () => {
      await browser?.close();
      await server?.stop();
      callbackServer?.close();
    });

    /**
     * A fresh browser profile with one page and its authenticator; the RP's callback is answered in the browser.
     * Chromium's virtual authenticator answers a conditional (autofill) request at once, without anyone picking
     * the passkey: unless `autofill`, the page is a browser without conditional mediation, so the login page
     * waits for the password or the button.
     */
    async function person({ autofill = false } = {}): Promise<{ context: BrowserContext; page: Page; authenticator: VirtualAuthenticator }> {
      const context = await browser.newContext();
      const page = await context.newPage();
      if (!autofill) await page.addInitScript(NO_AUTOFILL);
      page.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
      });
      return { context, page, authenticator: await addVirtualAuthenticator(page) };
    }

    /** A sign-in that asks for the login again (the browser keeps its session between them). */
    async function start(page: Page, rp: RelyingParty = acme) {
      const pending = await rp.authorize({ prompt: 'login', redirect_uri: redirectUri });
      await page.goto(pending.url);
      return pending;
    }

    async function password(page: Page, email: string, login?: string) {
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill('correct horse battery staple');
      await page.getByTestId('login-submit').click();
      if (login) await page.locator(`button[value="${login}"]`).click();
    }

    /** Waits for the RP's callback and redeems its code: the ID token's claims. */
    async function tokens(page: Page, pending: { verifier: string; state: string }, rp: RelyingParty = acme) {
      await page.waitForURL(`${redirectUri}?**`);
      const result = await rp.callback(page.url(), pending);
      return result.claims()!;
    }

    async function passkeysOf(loginId: string) {
      return server.latchkey.stores.accounts.listPasskeys(loginId);
    }

    async function errorText(page: Page) {
      return (await page.getByTestId('error').textContent())?.trim();
    }

    /** The authenticator holding only the credentials of `userHandle` (base64url): the person picks that passkey. */
    async function keepOnly(page: Page, all: VirtualCredential[], current: VirtualAuthenticator, userHandle: string) {
      await current.remove();
      const picked = await addVirtualAuthenticator(page, {}, current.cdp);
      for (const c of all) if (c.userHandle && base64url(c.userHandle) === userHandle) await picked.addCredential(c);
      return picked;
    }

    /** After a passkey is set up at a sign-in the recovery codes are shown once: confirms they were saved and goes on. */
    async function savedCodes(page: Page) {
      await page.getByTestId('recovery-saved-form').waitFor();
      await page.getByTestId('recovery-saved').check();
      await page.getByTestId('recovery-saved-continue').click();
    }

    async function enrol(page: Page, email: string, login?: string, name?: string, rp: RelyingParty = acme) {
      const pending = await start(page, rp);
      await password(page, email, login);
      await page.getByTestId('passkey-enroll-form').waitFor();
      if (name) await page.getByLabel(/Name for this passkey/).fill(name);
      await page.getByTestId('passkey-start').click();
      await savedCodes(page);
      return tokens(page, pending, rp);
    }

    /** A sign-in of `email` with a recovery code instead of the passkey, in a browser of its own: the status of the code's answer. */
    async function signInWithCode(email: string, code: string): Promise<number> {
      const http = new HttpBrowser(server.issuer);
      const pending = await acme.authorize({ redirect_uri: redirectUri });
      const verify = await submitLogin(http, await http.get(pending.url), email, PASSWORD);
      const codePage = await http.post(actionOf(verify, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(verify) });
      return (await http.post(actionOf(codePage, 'recovery-code-form'), { recovery_code: code, csrf: csrfOf(codePage) })).status;
    }

    async function passwordless(page: Page, rp: RelyingParty = acme) {
      const pending = await start(page, rp);
      await page.getByTestId('passkey-signin-link').click();
      await page.getByTestId('passkey-start').click();
      return pending;
    }

    it('enrols a passkey at the first sign-in, then asks for it at the next; the session carries the passkey level', async () => {
      const { context, page, authenticator } = await person();
      const first = await enrol(page, 'bob@acme.test', undefined, 'Work laptop');
      assert.equal(first.sub, 'bob-emp');
      assert.equal(first.acr, PASSKEY_ACR);
      assert.deepEqual(first.amr, ['pwd', 'hwk', 'user', 'mfa']);
      const [stored] = await passkeysOf('bob-emp');
      assert.equal(stored?.name, 'Work laptop');
      assert.equal(stored?.deviceType, 'singleDevice');
      const [credential] = await authenticator.credentials();
      assert.equal(base64url(credential!.credentialId), stored!.id);
      // A store dump holds the passkey's public key and nothing of its private key.
      const dump = await dumpStores(server);
      assert.ok(dump.includes(Buffer.from(stored!.publicKey)), 'the dump holds the passkey');
      const secret = createPrivateKey({ key: Buffer.from(credential!.privateKey, 'base64'), format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d!;
      assert.ok(!dump.includes(Buffer.from(secret, 'base64url')), 'no private key material in the stores');

      const pending = await start(page);
      await password(page, 'bob@acme.test');
      await page.getByTestId('passkey-verify-form').waitFor();
      await page.getByTestId('passkey-start').click();
      const later = await tokens(page, pending);
      assert.equal(later.acr, PASSKEY_ACR);
      assert.deepEqual(later.amr, ['pwd', 'hwk', 'user', 'mfa']);
      const used = (await passkeysOf('bob-emp'))[0]!;
      assert.ok(used.counter > stored!.counter, 'the sign count moved on');
      assert.notEqual(used.lastUsedAt, null);
      const events = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'bob-emp' });
      assert.ok(events.some((e) => e.type === 'factor.passkey.added'));
      assert.ok(events.some((e) => e.type === 'factor.passkey.verified'));
      assert.deepEqual(cspViolations, []);
      await context.close();
    });

    it("the owner's Users page shows the passkeys and resets them: the login sets one up again at its next sign-in", async () => {
      const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/users');
      assert.equal(textOf(owner.page, 'factor-state-bob-emp'), 'Passkeys set up, 10 recovery codes left');
      const button = new RegExp(`<form[^>]*action="([^"]+)"[^>]*>(?:(?!</form>)[^])*data-testid="reset-passkey-bob-emp"`).exec(owner.page.html);
      assert.ok(button, 'a "Reset passkeys" button for the login');
      const confirm = await owner.browser.post(button[1]!.replace(/&amp;/g, '&'), { csrf: csrfOf(owner.page) });
      assert.ok(testIds(confirm).includes('confirm-reset-form'), `asks for confirmation first: ${confirm.status}`);
      assert.equal((await passkeysOf('bob-emp')).length, 1, 'nothing changed before confirming');
      const done = await submit(owner.browser, confirm, 'confirm-reset-form');
      assert.match(noticeOf(done), /passkeys have been reset/);
      assert.deepEqual(await passkeysOf('bob-emp'), []);
      assert.equal((await server.latchkey.stores.accounts.getLogin('bob-emp'))!.factors.passkey, undefined);
      assert.equal((await server.latchkey.stores.accounts.getLogin('bob-emp'))!.factors.recovery, undefined, 'the reset voids the recovery codes too');
      assert.equal((await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'bob-emp', type: 'factor.recovery.voided' }))[0]?.detail?.by, 'acme-owner');
      assert.equal((await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'bob-emp', type: 'factor.passkey.reset' })).length, 1);

      const bob = new HttpBrowser(server.issuer);
      const pending = await acme.authorize({ redirect_uri: redirectUri });
      const page = await submitLogin(bob, await bob.get(pending.url), 'bob@acme.test', PASSWORD);
      assert.ok(testIds(page).includes('passkey-enroll-form'), `the next sign-in sets up a passkey again: ${page.status}`);
    });

    it("signs in with the passkey alone, the login chosen by the passkey picked; a disabled login's passkey is refused", async () => {
      const { context, page, authenticator } = await person();
      await enrol(page, 'jane@acme.test', 'jane-emp');
      await enrol(page, 'jane@acme.test', 'jane-mgr');
      const all = await authenticator.credentials();
      assert.equal(all.length, 2, 'one discoverable credential per login');
      const [emp] = await passkeysOf('jane-emp');
      const [mgr] = await passkeysOf('jane-mgr');
      assert.notEqual(emp!.userHandle, mgr!.userHandle);

      let current = authenticator;
      for (const [login, key] of [
        ['jane-mgr', mgr!],
        ['jane-emp', emp!],
      ] as const) {
        current = await keepOnly(page, all, current, key.userHandle);
        const pending = await passwordless(page);
        const claims = await tokens(page, pending);
        assert.equal(claims.sub, login);
        assert.equal(claims.acr, PASSKEY_ACR);
        assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa'], 'no password was asked');
      }

      await server.latchkey.stores.accounts.setLoginDisabled('jane-emp', true);
      try {
        await passwordless(page);
        await page.getByTestId('passkey-signin-form').waitFor();
        assert.match((await errorText(page))!, /cannot be used to sign in here/);
      } finally {
        await server.latchkey.stores.accounts.setLoginDisabled('jane-emp', false);
      }
      const refusals = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'jane-emp', type: 'signin.passkey' });
      assert.equal(refusals[0]?.outcome, 'failure');
      assert.equal(refusals[0]?.detail?.reason, 'disabled');
      await context.close();
    });

    it('on the profile, lists, adds, renames and removes passkeys; never the last one a user type asks for while no recovery code is left', async () => {
      // Bob's passkeys were reset by the owner: he sets one up while signing in to his account.
      const { context, page, authenticator } = await person();
      await page.goto(`${server.issuer}/account`);
      await password(page, 'bob@acme.test');
      await page.getByTestId('passkey-enroll-form').waitFor();
      await page.getByTestId('passkey-start').click();
      await savedCodes(page);
      await page.getByTestId('change-passkey-link').click();
      // Just signed in with it, and still: one of the login's passkeys first (the page's own ceremony).
      await page.getByTestId('passkey-prove-form').waitFor();
      assert.equal(await page.getByTestId('passkey-add-form').count(), 0, 'no change before the proof');
      assert.equal(await page.getByTestId('passkey-rename-form').count(), 0);
      await page.getByTestId('passkey-start').click();
      await page.getByTestId('passkey-add-form').waitFor();
      assert.equal(await page.getByTestId('passkey-remove').count(), 1, 'with recovery codes left, even the last passkey may go');
      // As if every code had been used: nothing but this passkey lets Bob in.
      await server.latchkey.stores.accounts.setFactorState('bob-emp', 'recovery', null);
      await page.reload();
      await page.getByTestId('passkey-list').waitFor();
      assert.equal(await page.getByTestId('passkey-list').locator('li').count(), 1);
      assert.equal(await page.getByTestId('passkey-remove').count(), 0, 'the last passkey a user type asks for has no remove button');
      assert.equal(await page.getByTestId('passkey-last-note').count(), 1);

      // A second device: another authenticator (the first one would refuse to register the same login twice).
      await authenticator.remove();
      const second = await addVirtualAuthenticator(page, { backedUp: true }, authenticator.cdp);
      await page.getByLabel(/Name for this passkey/).fill('Phone');
      await page.getByTestId('passkey-start').click();
      await page.getByTestId('passkey-remove').first().waitFor();
      let keys = await passkeysOf('bob-emp');
      assert.deepEqual(
        keys.map((k) => [k.name, k.deviceType]),
        [
          ['Passkey', 'singleDevice'],
          ['Phone', 'multiDevice'],
        ],
      );
      assert.equal((await second.credentials()).length, 1);

      const first = page.getByTestId('passkey-rename-form').first();
      await first.getByTestId('passkey-name').fill('Work laptop');
      await first.getByRole('button').click();
      await page.getByTestId('passkey-list').waitFor();
      assert.equal((await passkeysOf('bob-emp'))[0]?.name, 'Work laptop');

      await page.getByTestId('passkey-remove').first().click();
      await page.getByTestId('passkey-list').waitFor();
      keys = await passkeysOf('bob-emp');
      assert.deepEqual(
        keys.map((k) => k.name),
        ['Phone'],
      );
      // The last one, posted by hand: refused, still there.
      const form = page.getByTestId('passkey-add-form');
      const action = new URL((await form.getAttribute('action'))!, server.issuer).href;
      const csrf = (await form.locator('input[name="csrf"]').getAttribute('value'))!;
      const refused = await context.request.post(action, { form: { csrf, action: 'remove', id: keys[0]!.id }, maxRedirects: 0 });
      assert.equal(refused.status(), 400);
      assert.match(await refused.text(), /your last passkey/);
      assert.equal((await passkeysOf('bob-emp')).length, 1);
      const events = (await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'bob-emp' })).map((e) => e.type);
      for (const type of ['factor.passkey.added', 'factor.passkey.renamed', 'factor.passkey.removed']) assert.ok(events.includes(type), type);
      const proofs = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'bob-emp', type: 'factor.passkey.verified' });
      assert.ok(
        proofs.some((e) => e.detail?.stage === 'prove'),
        "the page's proof is audited as a use of the passkey",
      );
      await context.close();
    });

    it('refuses a cloned passkey whose sign count went back', async () => {
      const { context, page, authenticator } = await person();
      await server.latchkey.stores.accounts.setUserTypeFactor('acme', 'owner', 'passkey');
      try {
        await enrol(page, 'owner@acme.test');
        const counted = await passwordless(page);
        assert.equal((await tokens(page, counted)).sub, 'acme-owner');
        await cloneAuthenticator(page, authenticator, 0);
        await passwordless(page);
        await page.getByTestId('passkey-signin-form').waitFor();
        assert.match((await errorText(page))!, /counter went backwards/);
        const [refused] = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'acme-owner', type: 'signin.passkey' });
        assert.equal(refused?.outcome, 'failure');
        assert.equal(refused?.detail?.reason, 'counter');
      } finally {
        await server.latchkey.stores.accounts.setUserTypeFactor('acme', 'owner', 'none');
      }
      await context.close();
    });

    it("one answer sent twice at once (two tabs): one signs in, the other is refused; another tenant's or another login's passkey is refused", async () => {
      const { context, page, authenticator } = await person();
      await enrol(page, 'gina@globex.test', undefined, undefined, globex);
      const pending = await start(page, globex);
      await page.getByTestId('passkey-signin-link').click();
      // Hold the browser's post, then send its body twice at once with the same cookies.
      const held = new Promise<{ url: string; body: string }>((resolve) => {
        void page.route('**/interaction/*/passkey', async (route) => {
          if (route.request().method() !== 'POST') return route.continue();
          resolve({ url: route.request().url(), body: route.request().postData() ?? '' });
          await route.fulfill({ status: 204 });
        });
      });
      await page.getByTestId('passkey-start').click();
      const { url, body } = await held;
      await page.unroute('**/interaction/*/passkey');
      const send = () => context.request.post(url, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, data: body, maxRedirects: 0 });
      const answers = await Promise.all([send(), send()]);
      await assertOneSignsIn(answers);
      // Sent again once the sign-in has finished: the form is spent.
      const late = await send();
      assert.equal(late.status(), 403);
      assert.match(await late.text(), /This form has expired or did not come from this site/);
      await page.goto(new URL(answers.find((a) => a.status() === 303)!.headers().location!, server.issuer).href);
      assert.equal((await tokens(page, pending, globex)).sub, 'gina-staff');

      // Gina (Globex) and Jane (Acme) on one computer: the browser offers Gina's passkey on Acme's login page.
      await passwordless(page);
      await page.getByTestId('passkey-signin-form').waitFor();
      assert.match((await errorText(page))!, /cannot be used to sign in here/);
      const [crossTenant] = await server.latchkey.stores.accounts.listAudit({ tenant: 'globex', login: 'gina-staff', type: 'signin.passkey' });
      assert.equal(crossTenant?.detail?.reason, 'other_tenant');

      // Jane's employee login (set up earlier) asks for its own passkey: Gina's answer to that very challenge is refused.
      await start(page);
      await password(page, 'jane@acme.test', 'jane-emp');
      const form = page.getByTestId('passkey-verify-form');
      await form.waitFor();
      const action = new URL((await form.getAttribute('action'))!, server.issuer).href;
      const csrf = (await form.locator('input[name="csrf"]').getAttribute('value'))!;
      const { challenge } = JSON.parse((await form.getAttribute('data-options'))!) as { challenge: string };
      const forged = (await page.evaluate(`(${ASSERT_ANY})(${JSON.stringify(challenge)})`)) as string;
      const [gina] = await authenticator.credentials();
      assert.equal((JSON.parse(forged) as { id: string }).id, base64url(gina!.credentialId));
      const answer = await context.request.post(action, { form: { csrf, response: forged }, maxRedirects: 0 });
      assert.equal(answer.status(), 400);
      assert.match(await answer.text(), /could not be verified/);
      const [other] = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login: 'jane-emp', type: 'factor.passkey.failed' });
      assert.equal(other?.detail?.reason, 'other_login');
      await context.close();
    });

    it("the login page offers the passkeys in the email field's autofill (conditional mediation): the one picked signs in, no password typed; its challenge counts once", async () => {
      const someone = await addPerson(server, 'employee');
      const [login] = someone.logins as [string];
      const { context, page } = await person({ autofill: true });
      // No passkey yet: the autofill request waits, and the password goes on to the set-up.
      await enrol(page, someone.email);

      // The page as any browser gets it: the request's options, the field marked for passkeys, and no inline script.
      const http = new HttpBrowser(server.issuer);
      const plain = await http.get((await acme.authorize({ redirect_uri: redirectUri })).url);
      assert.match(plain.html, /<input[^>]*id="email"[^>]*autocomplete="username webauthn"/);
      assert.match(plain.html, /<form[^>]*data-passkey="signin"[^>]*data-autofill[^>]*data-options="[^"]*challenge/);
      assert.match(plain.html, /<script src="\/static\/passkey.js" defer><\/script>/);
      assert.doesNotMatch(plain.html, /<script>/);
      assert.ok(testIds(plain).includes('passkey-signin-link'), 'the button stays for browsers without autofill');

      // Chromium's virtual authenticator answers the autofill request as soon as the page makes it, as a person
      // picking the passkey in the email field would. Hold the page's post, then send its body twice at once.
      const held = new Promise<{ url: string; body: string }>((resolve) => {
        void page.route('**/interaction/*/passkey', async (route) => {
          if (route.request().method() !== 'POST') return route.continue();
          resolve({ url: route.request().url(), body: route.request().postData() ?? '' });
          await route.fulfill({ status: 204 });
        });
      });
      const pending = await start(page);
      const { url, body } = await held;
      await page.unroute('**/interaction/*/passkey');
      assert.equal(await page.getByLabel('Password').inputValue(), '', 'no password was typed');
      const send = () => context.request.post(url, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, data: body, maxRedirects: 0 });
      const answers = await Promise.all([send(), send()]);
      const refusal = await assertOneSignsIn(answers);
      await page.goto(new URL(answers.find((a) => a.status() === 303)!.headers().location!, server.issuer).href);
      const claims = await tokens(page, pending);
      assert.equal(claims.sub, login);
      assert.equal(claims.acr, PASSKEY_ACR);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      const events = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login, type: 'signin.passkey' });
      if (refusal === 'replayed') {
        assert.deepEqual(
          events.map((e) => e.outcome).sort(),
          ['failure', 'success'],
          `the second answer is refused and audited: ${JSON.stringify(events.map(({ time, outcome, detail, userAgent }) => ({ time, outcome, detail, userAgent })))}`,
        );
        assert.equal(events.find((e) => e.outcome === 'failure')?.detail?.reason, 'replayed');
      } else
        assert.deepEqual(
          events.map((e) => e.outcome),
          ['success'],
          'one sign-in; the spent form was refused before any answer was checked',
        );

      // Without the page's script nothing happens by itself: the autofill's own form only sends what a script put in it.
      const empty = await http.post(`/interaction/${new URL(plain.url).pathname.split('/')[2]}/passkey`, { csrf: csrfOf(plain), response: '' });
      assert.equal(empty.status, 400);
      assert.deepEqual(cspViolations, []);
      await context.close();
    });

    it('a passkey login gets recovery codes at its set-up; without JavaScript its page says so and offers one, which signs in at the passkey level', async () => {
      const someone = await addPerson(server, 'employee');
      const [login] = someone.logins as [string];
      const { context, page } = await person();
      const pending = await start(page);
      await password(page, someone.email);
      await page.getByTestId('passkey-enroll-form').waitFor();
      await page.getByTestId('passkey-start').click();
      await page.getByTestId('recovery-saved-form').waitFor();
      const shown = (await page.getByTestId('recovery-code').allTextContents()).map((c) => c.trim());
      assert.equal(shown.length, 10);
      assert.equal(new Set(shown).size, 10);
      await savedCodes(page);
      assert.equal((await tokens(page, pending)).acr, PASSKEY_ACR);
      const [generated] = await auditOf(server, login, 'factor.recovery.generated');
      assert.equal(generated?.detail?.count, 10);

      // A browser without JavaScript: the passkey page says passkeys need it, and offers a recovery code (a plain form).
      const http = new HttpBrowser(server.issuer);
      const rpPending = await acme.authorize({ redirect_uri: redirectUri });
      const verify = await submitLogin(http, await http.get(rpPending.url), someone.email, PASSWORD);
      assert.ok(testIds(verify).includes('passkey-verify-form'), `${verify.status}`);
      assert.match(verify.html, /<noscript><p class="notice" data-testid="passkey-needs-script">Passkeys need JavaScript[^<]*use one of your recovery codes instead/);
      assert.ok(testIds(verify).includes('use-recovery-form'), '"Use a recovery code" on the passkey page');
      const codePage = await http.post(actionOf(verify, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(verify) });
      assert.ok(testIds(codePage).includes('recovery-code-form'), `${codePage.status}`);
      assert.ok(testIds(codePage).includes('use-factor-form'), 'and the way back to the passkey');
      const used = await http.post(actionOf(codePage, 'recovery-code-form'), { recovery_code: shown[0]!, csrf: csrfOf(codePage) });
      assert.equal(used.html.match(/data-testid="recovery-remaining" data-remaining="(\d+)"/)?.[1], '9', `${used.status}`);
      assert.match(textOf(used, 'recovery-hint') ?? '', /Add a new one on your profile/);
      const done = await http.post(actionOf(used, 'recovery-used-form'), { csrf: csrfOf(used) });
      const claims = (await acme.callback(done.url, rpPending)).claims()!;
      assert.equal(claims.acr, PASSKEY_ACR, "the passkey factor's level");
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa'], "the code's methods");
      const [spent] = await auditOf(server, login, 'factor.recovery.used');
      assert.deepEqual(spent?.detail, { remaining: 9, factor: 'passkey' });
      const [success] = await auditOf(server, login, 'signin.success');
      assert.equal(success?.detail?.method, 'recovery');
      assert.equal(await signInWithCode(someone.email, shown[0]!), 400, 'each code once');
      await context.close();
    });

    it('new recovery codes on the profile ask for the passkey first; the old codes work until the new ones are shown; the last passkey may go while codes remain', async () => {
      const someone = await addPerson(server, 'employee');
      const [login] = someone.logins as [string];
      const { context, page } = await person();
      await page.goto(`${server.issuer}/account`);
      await password(page, someone.email);
      await page.getByTestId('passkey-enroll-form').waitFor();
      await page.getByTestId('passkey-start').click();
      await page.getByTestId('recovery-saved-form').waitFor();
      const codes = (await page.getByTestId('recovery-code').allTextContents()).map((c) => c.trim());
      await savedCodes(page);
      await page.getByTestId('recovery-count').waitFor();
      assert.equal(await page.getByTestId('recovery-count').getAttribute('data-count'), '10');

      // Just signed in with a new passkey, and still: the passkey is asked before new codes are made.
      await page.getByTestId('regenerate-recovery').click();
      await page.getByTestId('passkey-verify-form').waitFor();
      assert.match((await page.getByTestId('confirm-factor').textContent()) ?? '', /first confirm that it is you/);
      assert.equal(await page.getByTestId('use-recovery-form').count(), 0, 'a code never buys new codes');
      // Meanwhile the old set still works (another browser, a code instead of the passkey).
      assert.equal(await signInWithCode(someone.email, codes[0]!), 200);
      await page.getByTestId('passkey-start').click();
      await page.getByTestId('recovery-codes').waitFor();
      const renewed = (await page.getByTestId('recovery-code').allTextContents()).map((c) => c.trim());
      assert.equal(renewed.length, 10);
      assert.ok(renewed.every((c) => !codes.includes(c)));
      const [regenerated] = await auditOf(server, login, 'factor.recovery.regenerated');
      assert.deepEqual(regenerated?.detail, { count: 10, factor: 'passkey' });
      assert.equal((await auditOf(server, login, 'factor.passkey.verified')).length, 1, "the profile's check is the passkey's own, audited");
      assert.equal(await signInWithCode(someone.email, codes[1]!), 400, 'an old code fails once the new set is shown');

      // With codes left, the last passkey may go: the login stays set up for passkeys, and its sign-in offers the codes.
      await page.goto(`${server.issuer}/account/profile/factor/passkey`);
      await page.getByTestId('passkey-start').click();
      await page.getByTestId('passkey-remove').click();
      await page.getByTestId('passkey-remove').waitFor({ state: 'detached' });
      assert.deepEqual(await passkeysOf(login), []);
      assert.notEqual((await server.latchkey.stores.accounts.getLogin(login))!.factors.passkey, undefined);
      const http = new HttpBrowser(server.issuer);
      const noneLeft = await submitLogin(http, await http.get((await acme.authorize({ redirect_uri: redirectUri })).url), someone.email, PASSWORD);
      assert.ok(testIds(noneLeft).includes('passkey-none-left') && testIds(noneLeft).includes('use-recovery-form'), 'the passkey page says none is left and offers the codes');
      assert.ok(!testIds(noneLeft).includes('passkey-verify-form'), 'no ceremony that cannot pass');
      assert.equal(await signInWithCode(someone.email, renewed[0]!), 200, 'a code still lets the person in');
      await context.close();
    });

    it('a session that signed in with a recovery code gets the passkey page, not new codes', async () => {
      const someone = await addPerson(server, 'employee');
      const { context, page } = await person();
      await page.goto(`${server.issuer}/account`);
      await password(page, someone.email);
      await page.getByTestId('passkey-enroll-form').waitFor();
      await page.getByTestId('passkey-start').click();
      await page.getByTestId('recovery-saved-form').waitFor();
      const codes = (await page.getByTestId('recovery-code').allTextContents()).map((c) => c.trim());
      await savedCodes(page);
      await context.close();

      const http = new HttpBrowser(server.issuer);
      const verify = await submitLogin(http, await http.get('/account'), someone.email, PASSWORD);
      const codePage = await http.post(actionOf(verify, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(verify) });
      const used = await http.post(actionOf(codePage, 'recovery-code-form'), { recovery_code: codes[0]!, csrf: csrfOf(codePage) });
      const profile = await http.post(actionOf(used, 'recovery-used-form'), { csrf: csrfOf(used) });
      assert.equal(new URL(profile.url).pathname, '/account');
      const asked = await http.post(actionOf(profile, 'regenerate-recovery-form'), { csrf: csrfOf(profile) });
      assert.ok(testIds(asked).includes('passkey-verify-form'), `the passkey first: ${asked.status}`);
      assert.ok(!testIds(asked).includes('recovery-codes'));
      // A made-up answer is the passkey's failure, in its attempt limits; no code is shown.
      const forged = await http.post(actionOf(asked, 'passkey-verify-form'), {
        csrf: csrfOf(asked),
        response: '{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AA","authenticatorData":"AA","signature":"AA"}}',
      });
      assert.equal(forged.status, 400);
      assert.ok(testIds(forged).includes('passkey-verify-form') && !testIds(forged).includes('recovery-codes'));
      assert.equal(
        ((await server.latchkey.stores.accounts.getLogin(someone.logins[0]!))!.factors.recovery as { codes: { usedAt: string | null }[] }).codes.filter((c) => !c.usedAt).length,
        9,
        'the old set stands',
      );
    });

    it('discovery lists the passkey level above the others', () => {
      assert.deepEqual(acme.config.serverMetadata().acr_values_supported?.slice(-2), ['urn:latchkey:acr:totp', PASSKEY_ACR]);
    });
  });
}
