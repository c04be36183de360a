// Relying parties get the level they ask for: `acr_values`, an essential
// `acr` in `claims`, or the app's minimum (`default_acr_values`). A session
// below it is asked for the missing factor only; a login with nothing that
// reaches it sets one up on the spot where the tenant allows it, otherwise the
// app gets unmet_authentication_requirements; `max_age` asks the password and
// the factor again; `acr` and `amr` never claim more than was done. A step-up
// is no fresh sign-in: the session keeps the password's time (`auth_time`, the
// account pages' re-authentication), however long after the password it comes.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { createSecretBox } from '../../src/crypto/secretbox.ts';
import { newSecret } from '../../src/factors/totp/index.ts';
import { endLoginSessions } from '../../src/provider/revocation.ts';
import type { ImportDocument } from '../../src/import/index.ts';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import {
  PASSWORD,
  REDIRECT_URI,
  SETUPS,
  callbackReached,
  relyingParty,
  signIn,
  startServer,
  submitLogin,
  testClock,
  type RelyingParty,
  type TestServer,
} from '../support/latchkey.ts';
import {
  TENANT,
  addPerson,
  auditOf,
  choosePin,
  codeFor,
  currentStep,
  errorOf,
  factorFixture,
  hasForm,
  secretOf,
  submitFactor,
  type Person,
  savedCodes,
} from '../support/factors.ts';

const LEVEL = {
  oneFactor: 'urn:latchkey:acr:1fa',
  pin: 'urn:latchkey:acr:pin',
  totp: 'urn:latchkey:acr:totp',
} as const;
const ORDER: string[] = [LEVEL.oneFactor, LEVEL.pin, LEVEL.totp];
const TYPE_LEVEL: Record<string, string> = { employee: LEVEL.oneFactor, nurse: LEVEL.pin, manager: LEVEL.totp };
const PIN = '907146';
const STRICT_SECRET = 's3cret-strict-9d2e7a4c1f8b3e6d0a5c9f2b';

/** The factor fixture plus an app whose minimum is the authenticator app. */
function stepUpFixture(): ImportDocument {
  const doc = factorFixture();
  doc.tenants![0]!.clients!.push({ client_id: 'strict', client_secret: STRICT_SECRET, redirect_uris: [REDIRECT_URI], first_party: true, default_acr_values: [LEVEL.totp] });
  return doc;
}

/** Links an authenticator app for `loginId` in the store, as an earlier sign-in would have. */
async function linkApp(server: TestServer, loginId: string): Promise<string> {
  const secret = newSecret();
  const box = createSecretBox(server.latchkey.config.keys.encryptionKeys);
  await server.latchkey.stores.accounts.setFactorState(loginId, 'totp', { secret: box.seal(secret, loginId), account: loginId, linkedAt: new Date().toISOString(), step: 0 });
  return secret;
}

const claimsAsking = (acr: Record<string, unknown>) => JSON.stringify({ id_token: { acr: { essential: true, ...acr } } });

/** The error the RP's callback URL carries, or null when it carries a code. */
function callbackError(page: Page): string | null {
  assert.ok(callbackReached(page), `expected the RP's callback, got ${page.status} ${page.url}`);
  return new URL(page.url).searchParams.get('error');
}

for (const setup of SETUPS) {
  describe(`step-up by acr (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let strict: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: stepUpFixture() });
      rp = await relyingParty(server.issuer);
      strict = await relyingParty(server.issuer, 'strict', STRICT_SECRET);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const allowEnrollment = async (allowed: boolean) => assert.equal(await accounts().setStepUpEnrollment(TENANT, allowed), true);

    const enrolApp = (loginId: string) => linkApp(server, loginId);

    /** A full sign-in with the password (the user type needs nothing more) in a new browser. */
    async function oneFactorSession(person: Person, client = rp) {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, client, { email: person.email });
      assert.ok(callbackReached(page), `expected a 1fa sign-in, got ${page.status} ${page.url}`);
      const claims = (await client.callback(page.url, pending)).claims()!;
      assert.equal(claims.acr, LEVEL.oneFactor);
      return { browser, claims };
    }

    it('asks a 1fa session for the app code only when the request asks for totp, then issues acr totp', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await enrolApp(person.logins[0]!);
      const { browser, claims: first } = await oneFactorSession(person);
      assert.deepEqual(first.amr, ['pwd']);

      const pending = await rp.authorize({ acr_values: LEVEL.totp });
      const page = await browser.get(pending.url);
      assert.ok(hasForm(page, 'enter-code-form'), `expected the code page, got ${page.status} ${testIds(page).join(',')}`);
      assert.ok(!hasForm(page, 'login-form'), 'no password page');
      const done = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
      assert.equal(callbackError(done), null);
      const claims = (await rp.callback(done.url, pending)).claims()!;
      assert.equal(claims.sub, person.logins[0]);
      assert.equal(claims.acr, LEVEL.totp);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      // auth_time stays the password's: a step-up is no fresh sign-in (see "the sign-in time" below).
      assert.equal(claims.auth_time, first.auth_time);
      const success = (await auditOf(server, person.logins[0]!, 'signin.success'))[0]!;
      assert.deepEqual(success.detail, { amr: ['pwd', 'otp', 'mfa'], acr: LEVEL.totp, lang: 'en', stepUp: true });

      // The session is at totp now: the same request is single sign-on, and so is one for less.
      for (const acr_values of [LEVEL.totp, LEVEL.pin]) {
        const sso = await rp.authorize({ acr_values });
        const again = await browser.get(sso.url);
        assert.equal(callbackError(again), null, `single sign-on for ${acr_values}`);
        assert.equal((await rp.callback(again.url, sso)).claims()!.acr, LEVEL.totp);
      }
    });

    it('tells a resource server the level of an access token by introspection, also after a refresh', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await enrolApp(person.logins[0]!);
      const { browser } = await oneFactorSession(person);
      const pending = await rp.authorize({ acr_values: LEVEL.totp });
      const page = await submitFactor(browser, await browser.get(pending.url), 'enter-code-form', { code: await codeFor(secret, currentStep()) });
      const tokens = await rp.callback(page.url, pending);
      const authTime = tokens.claims()!.auth_time;
      const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
      for (const token of [tokens.access_token, refreshed.access_token]) {
        const info = await oidc.tokenIntrospection(rp.config, token);
        assert.equal(info.active, true);
        assert.equal(info.acr, LEVEL.totp);
        assert.deepEqual(info.amr, ['pwd', 'otp', 'mfa']);
        assert.equal(info.auth_time, authTime);
      }
    });

    it('lets one of two tabs stepping up at once with the same code through; the other stays at 1fa', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await enrolApp(person.logins[0]!);
      const { browser } = await oneFactorSession(person);
      const tabs = await Promise.all(
        [0, 1].map(async () => {
          const pending = await rp.authorize({ acr_values: LEVEL.totp });
          return { pending, page: await browser.get(pending.url) };
        }),
      );
      for (const tab of tabs) assert.ok(hasForm(tab.page, 'enter-code-form'), `expected the code page, got ${testIds(tab.page).join(',')}`);
      const code = await codeFor(secret, currentStep());
      const answers = await Promise.all(tabs.map((tab) => submitFactor(browser, tab.page, 'enter-code-form', { code })));
      const passed = answers.filter((a) => callbackReached(a));
      assert.equal(passed.length, 1, `exactly one tab passes: ${answers.map((a) => a.status).join(',')}`);
      const refused = answers.find((a) => !callbackReached(a))!;
      assert.equal(refused.status, 400);
      assert.match(errorOf(refused), /already been used/);
      const winner = tabs[answers.indexOf(passed[0]!)]!;
      assert.equal((await rp.callback(passed[0]!.url, winner.pending)).claims()!.acr, LEVEL.totp);
    });

    it('asks a PIN session for the app code only and keeps the PIN in amr', async () => {
      const person = await addPerson(server, 'nurse');
      const { browser } = await choosePin(server, rp, person, PIN);
      const secret = await enrolApp(person.logins[0]!);
      const pending = await rp.authorize({ acr_values: LEVEL.totp });
      const page = await browser.get(pending.url);
      assert.ok(hasForm(page, 'enter-code-form'), `expected the code page, got ${page.status} ${testIds(page).join(',')}`);
      const done = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
      const claims = (await rp.callback(done.url, pending)).claims()!;
      assert.equal(claims.acr, LEVEL.totp);
      assert.deepEqual(claims.amr, ['pwd', 'pin', 'otp', 'mfa']);
    });

    it('lets a PIN login asked for totp link an app on the spot when the tenant allows it', async () => {
      await allowEnrollment(true);
      try {
        const person = await addPerson(server, 'nurse');
        const { browser } = await choosePin(server, rp, person, PIN);
        const pending = await rp.authorize({ acr_values: LEVEL.totp });
        let page = await browser.get(pending.url);
        assert.ok(hasForm(page, 'link-authenticator-form'), `expected the link page, got ${page.status} ${testIds(page).join(',')}`);
        assert.match(textOf(page, 'setup-reason') ?? '', /stronger sign-in/);
        page = await savedCodes(browser, await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), currentStep()) }));
        const claims = (await rp.callback(page.url, pending)).claims()!;
        assert.equal(claims.acr, LEVEL.totp);
        assert.deepEqual(claims.amr, ['pwd', 'pin', 'otp', 'mfa']);
        assert.equal((await auditOf(server, person.logins[0]!, 'factor.totp.linked')).length, 1);

        // Its user type still asks for the PIN only: a new sign-in without a request gets the PIN page.
        const fresh = await signIn(new Browser(server.issuer), rp, { email: person.email });
        assert.ok(hasForm(fresh.page, 'enter-pin-form'), `expected the PIN page, got ${testIds(fresh.page).join(',')}`);
      } finally {
        await allowEnrollment(false);
      }
    });

    it('on a fresh sign-in, asks the login its own factor before it sets up a stronger one on the spot', async () => {
      await allowEnrollment(true);
      try {
        // A nurse with a PIN, in a new browser (whoever knows the password), asked for totp: the PIN first.
        const nurse = await addPerson(server, 'nurse');
        await choosePin(server, rp, nurse, PIN);
        const browser = new Browser(server.issuer);
        const { page: first, pending } = await signIn(browser, rp, { email: nurse.email }, { acr_values: LEVEL.totp });
        assert.ok(hasForm(first, 'enter-pin-form'), `expected the PIN page, got ${first.status} ${testIds(first).join(',')}`);
        const wrong = await submitFactor(browser, first, 'enter-pin-form', { pin: '000000' });
        assert.ok(hasForm(wrong, 'enter-pin-form'), 'a wrong PIN sets nothing up');
        let page = await submitFactor(browser, wrong, 'enter-pin-form', { pin: PIN });
        assert.ok(hasForm(page, 'link-authenticator-form'), `then the link page, got ${page.status} ${testIds(page).join(',')}`);
        page = await savedCodes(browser, await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), currentStep()) }));
        const claims = (await rp.callback(page.url, pending)).claims()!;
        assert.equal(claims.acr, LEVEL.totp);
        assert.deepEqual(claims.amr, ['pwd', 'pin', 'otp', 'mfa']);

        // A manager with an app, asked for a passkey: the app's code before the passkey's set-up.
        const manager = await addPerson(server, 'manager');
        const secret = await enrolApp(manager.logins[0]!);
        const other = new Browser(server.issuer);
        const asked = await signIn(other, rp, { email: manager.email }, { acr_values: 'urn:latchkey:acr:passkey' });
        assert.ok(hasForm(asked.page, 'enter-code-form'), `expected the code page, got ${asked.page.status} ${testIds(asked.page).join(',')}`);
        const next = await submitFactor(other, asked.page, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
        assert.ok(hasForm(next, 'passkey-enroll-form'), `then the passkey's set-up, got ${next.status} ${testIds(next).join(',')}`);

        // The nurse's login kept its PIN and now has the app (and its recovery codes) beside it.
        assert.deepEqual(Object.keys((await accounts().getLogin(nurse.logins[0]!))!.factors).sort(), ['pin', 'recovery', 'totp']);
      } finally {
        await allowEnrollment(false);
      }
    });

    it('answers unmet_authentication_requirements when a PIN login asked for totp may not set up an app', async () => {
      const person = await addPerson(server, 'nurse');
      const { browser } = await choosePin(server, rp, person, PIN);
      const pending = await rp.authorize({ acr_values: LEVEL.totp });
      const page = await browser.get(pending.url);
      assert.equal(callbackError(page), 'unmet_authentication_requirements');
      assert.equal(new URL(page.url).searchParams.get('state'), pending.state);

      // A new browser: after the password, the same answer (nothing of this login reaches totp).
      const fresh = await signIn(new Browser(server.issuer), rp, { email: person.email }, { acr_values: LEVEL.totp });
      assert.equal(callbackError(fresh.page), 'unmet_authentication_requirements');
      assert.equal((await auditOf(server, person.logins[0]!, 'signin.level_unmet')).length, 2);
      assert.deepEqual(Object.keys((await accounts().getLogin(person.logins[0]!))!.factors), ['pin'], 'nothing was set up');
    });

    it('takes an essential acr in the claims parameter as a request for that level, a stronger session satisfying it', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await enrolApp(person.logins[0]!);
      const { browser } = await oneFactorSession(person);
      const pending = await rp.authorize({ claims: claimsAsking({ values: [LEVEL.totp] }) });
      const page = await browser.get(pending.url);
      assert.ok(hasForm(page, 'enter-code-form'), `expected the code page, got ${page.status} ${testIds(page).join(',')}`);
      const done = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
      assert.equal((await rp.callback(done.url, pending)).claims()!.acr, LEVEL.totp);

      // Essential pin, with a session at totp: single sign-on, and the token says totp.
      const sso = await rp.authorize({ claims: claimsAsking({ value: LEVEL.pin }) });
      const again = await browser.get(sso.url);
      assert.equal(callbackError(again), null);
      assert.equal((await rp.callback(again.url, sso)).claims()!.acr, LEVEL.totp);

      // A first-party app asking for other claims by the same parameter gets them without a consent page.
      const withEmail = await rp.authorize({ scope: 'openid', claims: JSON.stringify({ id_token: { email: null, acr: { essential: true, value: LEVEL.totp } } }) });
      const granted = await browser.get(withEmail.url);
      assert.equal(callbackError(granted), null, `no consent page: ${testIds(granted).join(',')}`);
      const idToken = (await rp.callback(granted.url, withEmail)).claims()!;
      assert.equal(idToken.email, person.email);
      assert.equal(idToken.acr, LEVEL.totp);

      // An essential level Latchkey does not issue cannot be met.
      const unknown = await rp.authorize({ claims: claimsAsking({ values: ['urn:example:acr:retina'] }) });
      assert.equal(callbackError(await browser.get(unknown.url)), 'unmet_authentication_requirements');
    });

    it('gives every sign-in to an app with a minimum that level, whatever the user type or the request says', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await enrolApp(person.logins[0]!);
      const { page, pending, browser } = await (async () => {
        const b = new Browser(server.issuer);
        return { ...(await signIn(b, strict, { email: person.email }, { acr_values: LEVEL.oneFactor })), browser: b };
      })();
      assert.ok(hasForm(page, 'enter-code-form'), `the app's minimum asks for the code, got ${testIds(page).join(',')}`);
      const done = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
      const claims = (await strict.callback(done.url, pending)).claims()!;
      assert.equal(claims.acr, LEVEL.totp);
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);

      // A 1fa session of another app: only the code, for this one.
      const other = await addPerson(server, 'employee');
      const otherSecret = await enrolApp(other.logins[0]!);
      const { browser: b2 } = await oneFactorSession(other);
      const next = await strict.authorize();
      const step = await b2.get(next.url);
      assert.ok(hasForm(step, 'enter-code-form') && !hasForm(step, 'login-form'), `expected the code page only, got ${testIds(step).join(',')}`);
      const ok = await submitFactor(b2, step, 'enter-code-form', { code: await codeFor(otherSecret, currentStep()) });
      assert.equal((await strict.callback(ok.url, next)).claims()!.acr, LEVEL.totp);

      // Without an app to reach it (and no set-up allowed), the app is told so.
      const plain = await addPerson(server, 'employee');
      const refused = await signIn(new Browser(server.issuer), strict, { email: plain.email });
      assert.equal(callbackError(refused.page), 'unmet_authentication_requirements');
    });

    it('asks the password and the factor again for max_age=0 or prompt=login when the level needs the factor', async () => {
      for (const extra of [{ max_age: '0' }, { prompt: 'login' }] as Record<string, string>[]) {
        const person = await addPerson(server, 'employee');
        const secret = await enrolApp(person.logins[0]!);
        const { browser } = await oneFactorSession(person);
        const first = await rp.authorize({ acr_values: LEVEL.totp });
        let page = await browser.get(first.url);
        page = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
        const stepped = (await rp.callback(page.url, first)).claims()!;
        assert.equal(stepped.acr, LEVEL.totp);

        const pending = await rp.authorize({ acr_values: LEVEL.totp, ...extra });
        page = await browser.get(pending.url);
        assert.ok(hasForm(page, 'login-form'), `${JSON.stringify(extra)}: the password first`);
        page = await submitLogin(browser, page, person.email, PASSWORD);
        assert.ok(hasForm(page, 'enter-code-form'), `${JSON.stringify(extra)}: then the code, got ${testIds(page).join(',')}`);
        page = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, currentStep() + 1) });
        assert.equal(callbackError(page), null, errorOf(page));
        const claims = (await rp.callback(page.url, pending)).claims()!;
        assert.equal(claims.acr, LEVEL.totp);
        assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
        assert.ok(claims.auth_time! >= stepped.auth_time!);
      }

      // Without a level asked for, max_age=0 asks the password only, and the token says 1fa.
      const person = await addPerson(server, 'employee');
      await enrolApp(person.logins[0]!);
      const { browser } = await oneFactorSession(person);
      const plain = await rp.authorize({ max_age: '0' });
      let page = await browser.get(plain.url);
      page = await submitLogin(browser, page, person.email, PASSWORD);
      assert.equal(callbackError(page), null);
      const claims = (await rp.callback(page.url, plain)).claims()!;
      assert.equal(claims.acr, LEVEL.oneFactor);
      assert.deepEqual(claims.amr, ['pwd']);
    });

    it('starts from the password when the session a step-up builds on ends before its factor passes', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await enrolApp(person.logins[0]!);
      const { browser } = await oneFactorSession(person);
      const pending = await rp.authorize({ acr_values: LEVEL.totp });
      const page = await browser.get(pending.url);
      assert.ok(hasForm(page, 'enter-code-form'));
      await endLoginSessions(accounts(), server.latchkey.provider, [person.logins[0]!]);
      const next = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret, currentStep()) });
      assert.ok(hasForm(next, 'login-form'), `expected the login page, got ${next.status} ${testIds(next).join(',')}`);
      assert.equal((await auditOf(server, person.logins[0]!, 'signin.success')).length, 1, 'only the first sign-in succeeded');
    });

    it("never issues an acr below the level asked for or the user type's (random requests, types and set-ups)", async () => {
      let seed = setup === 'sqlite' ? 7 : 11;
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return Math.floor(seed / 2 ** 16) % n;
      };
      const pick = <T>(list: readonly T[]): T => list[random(list.length)]!;
      const requests: (Record<string, string> | null)[] = [
        null,
        ...ORDER.map((acr) => ({ acr_values: acr })),
        { acr_values: `${LEVEL.totp} ${LEVEL.pin}` },
        { acr_values: 'urn:example:acr:unknown' },
        ...ORDER.map((acr) => ({ claims: claimsAsking({ value: acr }) })),
        { claims: claimsAsking({ values: ['urn:example:acr:unknown'] }) },
      ];
      for (let round = 0; round < 16; round++) {
        const type = pick(['employee', 'nurse', 'manager']);
        const withApp = random(2) === 1;
        const spot = random(2) === 1;
        const request = pick(requests);
        await allowEnrollment(spot);
        const person = await addPerson(server, type);
        const secret = withApp ? await enrolApp(person.logins[0]!) : null;
        const browser = new Browser(server.issuer);
        const signed = await signIn(browser, rp, { email: person.email }, request ?? undefined);
        const { pending } = signed;
        let { page } = signed;
        let linked = false;
        for (let steps = 0; steps < 3 && !callbackReached(page); steps++) {
          if (hasForm(page, 'choose-pin-form')) page = await submitFactor(browser, page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
          else if (hasForm(page, 'enter-code-form')) page = await submitFactor(browser, page, 'enter-code-form', { code: await codeFor(secret!, currentStep()) });
          else if (hasForm(page, 'link-authenticator-form')) {
            linked = true;
            page = await savedCodes(browser, await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), currentStep()) }));
          } else assert.fail(`round ${round}: unexpected page ${page.status} ${testIds(page).join(',')}`);
        }
        const story = `round ${round}: ${type}, app ${withApp}, spot ${spot}, ${JSON.stringify(request)}`;
        const asked = !request
          ? -1
          : request.acr_values
            ? Math.min(
                ...request.acr_values
                  .split(' ')
                  .map((v) => ORDER.indexOf(v))
                  .filter((r) => r >= 0)
                  .concat(99),
              )
            : ORDER.indexOf(JSON.parse(request.claims!).id_token.acr.value);
        const needed = Math.max(ORDER.indexOf(TYPE_LEVEL[type]!), asked === 99 ? -1 : asked, request?.claims?.includes('unknown') ? ORDER.length : -1);
        const error = callbackError(page);
        if (error) {
          assert.equal(error, 'unmet_authentication_requirements', story);
          // Refused only when nothing could reach the level: no app, no set-up allowed, and more than the type's.
          assert.ok(needed === ORDER.length || (!withApp && !spot && needed > ORDER.indexOf(TYPE_LEVEL[type]!)), story);
          continue;
        }
        const claims = (await rp.callback(page.url, pending)).claims()!;
        const rank = ORDER.indexOf(String(claims.acr));
        assert.ok(rank >= needed, `${story}: acr ${claims.acr}`);
        const amr = claims.amr as string[];
        // acr tells what was done, no more.
        if (claims.acr === LEVEL.totp) assert.ok(amr.includes('otp') && amr.includes('mfa'), story);
        if (claims.acr === LEVEL.pin) assert.ok(amr.includes('pin') && !amr.includes('otp'), story);
        if (claims.acr === LEVEL.oneFactor) assert.deepEqual(amr, ['pwd'], story);
        if (linked) assert.ok(spot || type === 'manager', `${story}: an app was set up without being allowed`);
      }
      await allowEnrollment(false);
    });
  });
}

/** Submits a factor form and stops at the journey's 303 back to the provider (`/auth/:uid`), not following it. */
async function holdFactor(browser: Browser, page: Page, form: string, fields: Record<string, string>): Promise<Page> {
  const held = await browser.request(actionOf(page, form), {
    method: 'POST',
    body: new URLSearchParams({ ...fields, csrf: csrfOf(page) }),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(held.status, 303, `the step-up finished: ${held.status} ${held.html.slice(0, 300)}`);
  assert.match(new URL(held.headers.get('location')!, held.url).pathname, /^\/auth\/[^/]+$/);
  return held;
}

for (const setup of SETUPS) {
  describe(`step-up and the sign-in time (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    // The app's clock: moved on past the account pages' re-authentication window and the held-result limit.
    const clock = testClock();
    const appCode = (secret: string) => codeFor(secret, Math.floor(clock.now() / 30_000));

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const reauthSeconds = () => server.latchkey.config.account.reauthSeconds;
    const heldLimitSeconds = () => server.latchkey.config.ttl.signInResult;

    /** The password at the app, at 1fa, in a new browser: its ID token's claims. */
    async function passwordAtApp(email: string) {
      const browser = new Browser(server.issuer);
      const { page, pending } = await signIn(browser, rp, { email });
      assert.ok(callbackReached(page), `expected a 1fa sign-in, got ${page.status} ${page.url}`);
      const claims = (await rp.callback(page.url, pending)).claims()!;
      assert.equal(claims.acr, LEVEL.oneFactor);
      return { browser, claims };
    }

    /** The app asks for totp: the code page only, and the code. Returns the ID token's claims. */
    async function stepUpToApp(browser: Browser, secret: string) {
      const pending = await rp.authorize({ acr_values: LEVEL.totp });
      const page = await browser.get(pending.url);
      assert.ok(hasForm(page, 'enter-code-form') && !hasForm(page, 'login-form'), `expected the code page only, got ${page.status} ${testIds(page).join(',')}`);
      const done = await submitFactor(browser, page, 'enter-code-form', { code: await appCode(secret) });
      assert.ok(callbackReached(done), `the step-up signs in: ${done.status} ${done.url} ${testIds(done).join(',')}`);
      assert.equal(callbackError(done), null);
      const claims = (await rp.callback(done.url, pending)).claims()!;
      assert.equal(claims.acr, LEVEL.totp);
      return claims;
    }

    /** A request the account pages make only after a recent sign-in: a redirect to sign in again, or not. */
    const asksReauth = (res: Page) => res.status === 303 && /^\/account\/signin\?reauth=1/.test(res.headers.get('location') ?? '');

    it("does not count a step-up as a fresh sign-in for the account pages' re-authentication", async () => {
      const secret = await linkApp(server, 'acme-owner');
      const { browser } = await passwordAtApp('owner@acme.test');
      clock.advance((reauthSeconds() + 60) * 1000);
      await stepUpToApp(browser, secret);

      // My Account in the same browser: single sign-on from the stepped-up session, no password.
      const account = await browser.get('/account/scim');
      assert.equal(new URL(account.url).pathname, '/account/scim', `single sign-on to the account pages: ${account.status} ${account.url}`);
      assert.equal(account.status, 200);

      // The password was given longer ago than the window: a new SCIM token or a new password needs it again.
      const token = await browser.request('/account/scim/tokens', {
        method: 'POST',
        body: new URLSearchParams({ label: 'After a step-up', csrf: csrfOf(account) }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.ok(asksReauth(token), `a new SCIM token asks for the password again: ${token.status} ${token.headers.get('location')}`);
      assert.ok(!(await server.latchkey.stores.scim.listTokens(TENANT)).some((t) => t.label === 'After a step-up'), 'no token made');
      const password = await browser.request('/account/profile/password');
      assert.ok(asksReauth(password), `the password page asks for the password again: ${password.status} ${password.headers.get('location')}`);
      const reauth = await browser.get(password.headers.get('location')!);
      assert.ok(hasForm(reauth, 'login-form'), `the password page: ${reauth.status} ${testIds(reauth).join(',')}`);
    });

    it("keeps the password's auth_time through a step-up made long after it", async () => {
      const person = await addPerson(server, 'employee');
      const secret = await linkApp(server, person.logins[0]!);
      const { browser, claims: first } = await passwordAtApp(person.email);
      clock.advance((reauthSeconds() + 60) * 1000);
      const stepped = await stepUpToApp(browser, secret);
      assert.equal(stepped.sub, person.logins[0]);
      assert.deepEqual(stepped.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(stepped.auth_time, first.auth_time, "auth_time is the password's, not the code's");
      const [event] = await server.latchkey.stores.accounts.listAudit({ tenant: TENANT, login: person.logins[0]!, type: 'signin.success', limit: 1 });
      assert.equal(event!.detail?.stepUp, true);
    });

    it('lets a step-up made more than ttl.signInResult after the password through: its journey just finished', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await linkApp(server, person.logins[0]!);
      const { browser, claims: first } = await passwordAtApp(person.email);
      clock.advance((heldLimitSeconds() + 60) * 1000);
      const stepped = await stepUpToApp(browser, secret);
      assert.equal(stepped.auth_time, first.auth_time);
      // The session is at totp now: single sign-on for the same request.
      const sso = await rp.authorize({ acr_values: LEVEL.totp });
      const again = await browser.get(sso.url);
      assert.equal(callbackError(again), null);
      assert.equal((await rp.callback(again.url, sso)).claims()!.acr, LEVEL.totp);
    });

    it('refuses a finished step-up held more than ttl.signInResult before it is resumed', async () => {
      const person = await addPerson(server, 'employee');
      const secret = await linkApp(server, person.logins[0]!);
      const { browser } = await passwordAtApp(person.email);
      const pending = await rp.authorize({ acr_values: LEVEL.totp });
      const page = await browser.get(pending.url);
      assert.ok(hasForm(page, 'enter-code-form'));
      const held = await holdFactor(browser, page, 'enter-code-form', { code: await appCode(secret) });
      clock.advance((heldLimitSeconds() + 1) * 1000);
      const resumed = await browser.follow(held);
      assert.ok(!callbackReached(resumed), `no code for a result held too long: ${resumed.url}`);
      assert.ok(hasForm(resumed, 'login-form'), `a fresh sign-in: ${resumed.status} ${testIds(resumed).join(',')}`);
      // Taken out of the session: the next request asks for the password too.
      assert.ok(hasForm(await browser.get((await rp.authorize()).url), 'login-form'), 'no single sign-on left behind');
    });
  });
}
