// A set of recovery codes stands in for no factor stronger than the one it
// was made under (docs/factors.md#recovery-codes): codes made after the
// authenticator app never pass for a passkey, so whoever has the password
// and one app code cannot reach `urn:latchkey:acr:passkey` with them; codes
// made after a passkey pass for the passkey and for the app. On both store
// set-ups, passkeys by the bench's software authenticator over HTTP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, signIn, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { TENANT, addPerson, codeFor, codesOf, errorOf, factorFixture, hasForm, reachFactor, secretOf, submitFactor, type Person } from '../support/factors.ts';
import { accountSignIn } from '../account/support.ts';
import { SoftAuthenticator, type CreationOptions, type RequestOptions } from '../../bench/lib/authenticator.ts';
import { stepAt } from '../../src/factors/totp/code.ts';
import type { RecoveryState } from '../../src/factors/recovery/index.ts';
import type { FactorRequest } from '../../src/factors/types.ts';
import type { ImportDocument } from '../../src/import/index.ts';

const TOTP = 'urn:latchkey:acr:totp';
const PASSKEY = 'urn:latchkey:acr:passkey';

/** The factor fixture with a user type that asks for a passkey. */
function fixture(): ImportDocument {
  const doc = factorFixture();
  doc.tenants![0]!.userTypes!.push({ id: 'doctor', name: 'Doctor', secondFactor: 'passkey' });
  return doc;
}

/** The ceremony options a passkey form hands the browser (its `data-options`). */
function optionsOf<T>(page: Page, testid: string): T {
  const m = new RegExp(`<form[^>]*data-options="([^"]*)"[^>]*data-testid="${testid}"`).exec(page.html);
  assert.ok(m, `no ${testid} on ${page.url} (${page.status}): ${testIds(page).join(', ')}`);
  return JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as T;
}

for (const setup of SETUPS) {
  describe(`a recovery code stands in up to the level its set was made under (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: fixture(), now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server?.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const recoveryOf = async (login: string) => (await accounts().getLogin(login))!.factors.recovery as RecoveryState | undefined;
    const unusedOf = async (login: string) => (await recoveryOf(login))!.codes.filter((c) => c.usedAt === null).length;

    async function request(login: string, body: Record<string, string>, draft: Record<string, unknown> = {}): Promise<FactorRequest> {
      return { tenant: (await accounts().getTenant(TENANT))!, login: (await accounts().getLogin(login))!, body, draft, ip: null, userAgent: null };
    }

    /** A manager who linked the app at the first sign-in (the codes shown then) and later added a passkey on the profile. */
    async function managerWithPasskey() {
      const person = await addPerson(server, 'manager');
      const login = person.logins[0]!;
      const { browser, page } = await reachFactor(server, rp, person);
      const secret = secretOf(page);
      const shown = await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secret, stepAt(clock.now())) });
      const codes = codesOf(shown);
      assert.equal(codes.length, 10, `${shown.status} ${errorOf(shown)}`);
      assert.ok(callbackReached(await browser.post(actionOf(shown, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(shown) })));
      // The passkey, as the profile's passkeys page adds it (it makes no codes).
      const authenticator = new SoftAuthenticator(server.issuer);
      const passkey = server.latchkey.factors.get('passkey');
      const draft: Record<string, unknown> = {};
      const enrol = await passkey.page('enroll', await request(login, {}, draft));
      const response = authenticator.create(JSON.parse(String(enrol.locals.passkeyOptions)) as CreationOptions);
      assert.ok((await passkey.submit('enroll', await request(login, { response: JSON.stringify(response), name: 'Laptop' }, draft))).passed);
      const [credential] = await accounts().listPasskeys(login);
      clock.advance(30_000);
      return { person, login, secret, codes, authenticator, credentialId: credential!.id };
    }

    /** A sign-in at an app asking for `acr`, up to the factor's page. */
    async function signInAsking(person: Person, acr?: string) {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email: person.email }, acr ? { acr_values: acr } : {});
      return { browser, page, pending };
    }

    /** Uses `code` from the factor's page; the claims of the finished sign-in. */
    async function useCode(browser: Browser, page: Page, pending: { verifier: string; state: string }, code: string) {
      assert.ok(hasForm(page, 'use-recovery-form'), `"Use a recovery code" offered: ${testIds(page).join(', ')}`);
      const codePage = await browser.post(actionOf(page, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(page) });
      const used = await submitFactor(browser, codePage, 'recovery-code-form', { recovery_code: code });
      assert.ok(hasForm(used, 'recovery-used-form'), `${used.status} ${errorOf(used)}`);
      const done = await browser.post(actionOf(used, 'recovery-used-form'), { csrf: csrfOf(used) });
      assert.ok(callbackReached(done), `${done.status} ${done.url} ${errorOf(done)}`);
      return (await rp.callback(done.url, pending)).claims()!;
    }

    it('codes made after the app are not offered on the passkey page, and a code posted there is refused', async () => {
      const m = await managerWithPasskey();
      assert.equal((await recoveryOf(m.login))!.level, TOTP, "the set records the app's level");

      const { browser, page } = await signInAsking(m.person, PASSKEY);
      assert.ok(hasForm(page, 'passkey-verify-form'), `the passkey page: ${testIds(page).join(', ')}`);
      assert.ok(!hasForm(page, 'use-recovery-form'), 'no "Use a recovery code" for the passkey');
      const chosen = await browser.post(actionOf(page, 'passkey-verify-form').replace(/\/factor$/, '/method'), { method: 'recovery', csrf: csrfOf(page) });
      assert.equal(chosen.status, 400, `choosing the codes by hand is refused: ${chosen.status} ${errorOf(chosen)}`);
      const posted = await submitFactor(browser, page, 'passkey-verify-form', { recovery_code: m.codes[0]! });
      assert.ok(!callbackReached(posted), `a code posted to the passkey page does not sign in: ${posted.status} ${posted.url}`);

      // The method itself, as the registry hands it out, refuses to stand in for the passkey.
      const recovery = server.latchkey.factors.method('recovery')!;
      const outcome = await recovery.submit(await request(m.login, { recovery_code: m.codes[0]! }), server.latchkey.factors.get('passkey'));
      assert.equal(outcome.passed, false);
      assert.equal(await unusedOf(m.login), 10, 'no code was spent');
      assert.equal(
        server.latchkey.factors.wayInWithout((await accounts().getTenant(TENANT))!, (await accounts().getLogin(m.login))!, 'passkey'),
        'factor',
        'the app is the way in',
      );
    });

    it('password and one app code cannot make a set for the passkey: the profile asks for the passkey first', async () => {
      const m = await managerWithPasskey();
      const { browser, page } = await accountSignIn(server, { email: m.person.email });
      assert.ok(hasForm(page, 'enter-code-form'), `the app's page: ${testIds(page).join(', ')}`);
      const profile = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(m.secret, stepAt(clock.now())) });
      assert.equal(new URL(profile.url).pathname, '/account', `${profile.status} ${errorOf(profile)}`);
      clock.advance(30_000);
      const asked = await browser.post(actionOf(profile, 'regenerate-recovery-form'), { csrf: csrfOf(profile) });
      assert.ok(hasForm(asked, 'passkey-verify-form'), `the strongest factor the login has is asked: ${testIds(asked).join(', ')}`);
      assert.ok(!hasForm(asked, 'enter-code-form'), 'not the app');
      const byApp = await browser.post(actionOf(asked, 'passkey-verify-form'), { code: await codeFor(m.secret, stepAt(clock.now())), csrf: csrfOf(asked) });
      assert.deepEqual(codesOf(byApp), [], 'an app code makes no set');

      // With the passkey, the new set is made under its level and serves both pages.
      const answer = m.authenticator.get(optionsOf<RequestOptions>(byApp, 'passkey-verify-form'), m.credentialId);
      const fresh = await browser.post(actionOf(byApp, 'passkey-verify-form'), { response: JSON.stringify(answer), csrf: csrfOf(byApp) });
      const codes = codesOf(fresh);
      assert.equal(codes.length, 10, `${fresh.status} ${errorOf(fresh)}`);
      assert.equal((await recoveryOf(m.login))!.level, PASSKEY);
      const strong = await signInAsking(m.person, PASSKEY);
      const claims = await useCode(strong.browser, strong.page, strong.pending, codes[0]!);
      assert.equal(claims.acr, PASSKEY);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      const plain = await signInAsking(m.person);
      assert.ok(hasForm(plain.page, 'enter-code-form'), "without acr_values the app's page");
      assert.equal((await useCode(plain.browser, plain.page, plain.pending, codes[1]!)).acr, TOTP, 'a passkey-level set also stands in for the app');
    });

    it("codes made after the app still sign in on the app's page, at the app's level", async () => {
      const m = await managerWithPasskey();
      const { browser, page, pending } = await signInAsking(m.person);
      assert.ok(hasForm(page, 'enter-code-form'), `the app's page: ${testIds(page).join(', ')}`);
      const claims = await useCode(browser, page, pending, m.codes[0]!);
      assert.equal(claims.acr, TOTP);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(await unusedOf(m.login), 9);
    });

    it('codes made after the first passkey at a sign-in sign in at the passkey level', async () => {
      const person = await addPerson(server, 'doctor');
      const login = person.logins[0]!;
      const authenticator = new SoftAuthenticator(server.issuer);
      const { browser, page } = await reachFactor(server, rp, person);
      const response = authenticator.create(optionsOf<CreationOptions>(page, 'passkey-enroll-form'));
      const shown = await browser.post(actionOf(page, 'passkey-enroll-form'), { response: JSON.stringify(response), name: 'Phone', csrf: csrfOf(page) });
      const codes = codesOf(shown);
      assert.equal(codes.length, 10, `${shown.status} ${errorOf(shown)}`);
      assert.ok(callbackReached(await browser.post(actionOf(shown, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(shown) })));
      assert.equal((await recoveryOf(login))!.level, PASSKEY);

      const next = await signInAsking(person);
      assert.ok(hasForm(next.page, 'passkey-verify-form'));
      const claims = await useCode(next.browser, next.page, next.pending, codes[0]!);
      assert.equal(claims.acr, PASSKEY);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(
        server.latchkey.factors.wayInWithout((await accounts().getTenant(TENANT))!, (await accounts().getLogin(login))!, 'passkey'),
        'method',
        'the codes stand in for the last passkey',
      );
    });

    it("a set stored before levels were kept stands in for the user type's own factor only", async () => {
      // A manager's: the app's page takes it, the passkey's does not.
      const m = await managerWithPasskey();
      const { level: _, ...legacy } = (await recoveryOf(m.login))!;
      await accounts().setFactorState(m.login, 'recovery', legacy);
      const strong = await signInAsking(m.person, PASSKEY);
      assert.ok(hasForm(strong.page, 'passkey-verify-form') && !hasForm(strong.page, 'use-recovery-form'), `not on the passkey page: ${testIds(strong.page).join(', ')}`);
      const plain = await signInAsking(m.person);
      assert.equal((await useCode(plain.browser, plain.page, plain.pending, m.codes[0]!)).acr, TOTP);

      // A doctor's: the passkey is the user type's own factor, so its page takes it.
      const person = await addPerson(server, 'doctor');
      const authenticator = new SoftAuthenticator(server.issuer);
      const { browser, page } = await reachFactor(server, rp, person);
      const response = authenticator.create(optionsOf<CreationOptions>(page, 'passkey-enroll-form'));
      const shown = await browser.post(actionOf(page, 'passkey-enroll-form'), { response: JSON.stringify(response), name: 'Phone', csrf: csrfOf(page) });
      const codes = codesOf(shown);
      assert.ok(callbackReached(await browser.post(actionOf(shown, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(shown) })));
      const { level: __, ...doctorLegacy } = (await recoveryOf(person.logins[0]!))!;
      await accounts().setFactorState(person.logins[0]!, 'recovery', doctorLegacy);
      const next = await signInAsking(person);
      assert.equal((await useCode(next.browser, next.page, next.pending, codes[0]!)).acr, PASSKEY);
    });
  });
}
