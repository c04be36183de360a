// Second factors by user type: the policy decides
// per login, sibling logins keep their own state, a policy change sends a
// session back through the factor (the owner's own type included), a store
// dump yields no usable secret, and bad input on the factor forms changes
// nothing. On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, testIds, type Page } from '../support/browser.ts';
import { dumpStores } from '../support/dump.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, signIn, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import {
  SHORT_LOCKS,
  TENANT,
  addPerson,
  auditOf,
  choosePin,
  codeFor,
  currentStep,
  errorOf,
  factorFixture,
  hasForm,
  linkApp,
  reachFactor,
  secretOf,
  submitFactor,
  type Person,
  savedCodes,
} from '../support/factors.ts';

const PIN = '907146';

function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of text) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  return Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
}

for (const setup of SETUPS) {
  describe(`second factors by user type (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), env: SHORT_LOCKS });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const loginOf = async (id: string) => (await accounts().getLogin(id))!;

    it("lets each login's user type decide its factor, and keeps sibling logins' factor state apart", async () => {
      const person = await addPerson(server, 'employee', 'nurse', 'manager');
      const [employee, nurse, manager] = person.logins as [string, string, string];

      const none = await signIn(new Browser(server.issuer), rp, { email: person.email, login: employee });
      assert.ok(callbackReached(none.page), 'none: straight back to the application');
      const noneClaims = (await rp.callback(none.page.url, none.pending)).claims()!;
      assert.deepEqual(noneClaims.amr, ['pwd']);
      assert.equal(noneClaims.acr, 'urn:latchkey:acr:1fa');

      await choosePin(server, rp, person, PIN, nurse);
      assert.ok(hasForm((await reachFactor(server, rp, person, manager)).page, 'link-authenticator-form'), "a sibling's PIN does not link an app");
      assert.equal((await loginOf(manager)).factors.pin, undefined);
      assert.deepEqual((await loginOf(employee)).factors, {});

      await linkApp(server, rp, person, manager);
      assert.ok(hasForm((await reachFactor(server, rp, person, nurse)).page, 'enter-pin-form'));
      assert.deepEqual(Object.keys((await loginOf(nurse)).factors), ['pin']);
      assert.deepEqual(Object.keys((await loginOf(manager)).factors), ['totp', 'recovery']);
      assert.ok(callbackReached((await signIn(new Browser(server.issuer), rp, { email: person.email, login: employee })).page));
    });

    it("sends a session at acr 1fa back through the factor when its user type's policy changes", async () => {
      const person = await addPerson(server, 'staff');
      const browser = new Browser(server.issuer);
      const first = await signIn(browser, rp, { email: person.email });
      assert.ok(callbackReached(first.page));
      assert.equal((await rp.callback(first.page.url, first.pending)).claims()!.acr, 'urn:latchkey:acr:1fa');
      const sso = await rp.authorize();
      assert.ok(callbackReached(await browser.get(sso.url)), 'single sign-on while the policy holds');

      assert.equal(await accounts().setUserTypeFactor(TENANT, 'staff', 'totp'), true);
      const pending = await rp.authorize();
      let page = await browser.get(pending.url);
      assert.ok(!callbackReached(page), 'the 1fa session no longer satisfies the policy');
      page = await submitLogin(browser, page, person.email, PASSWORD);
      assert.ok(hasForm(page, 'link-authenticator-form'), `expected the link page, got ${page.status}`);
      page = await savedCodes(browser, await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), currentStep()) }));
      assert.ok(callbackReached(page));
      const claims = (await rp.callback(page.url, pending)).claims()!;
      assert.equal(claims.acr, 'urn:latchkey:acr:totp');
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    });

    it('makes the owner set up the factor of their own type at the next sign-in once it is turned on', async () => {
      const browser = new Browser(server.issuer);
      const first = await signIn(browser, rp, { email: 'owner@acme.test' });
      assert.ok(callbackReached(first.page));
      assert.equal((await rp.callback(first.page.url, first.pending)).claims()!.acr, 'urn:latchkey:acr:1fa');

      assert.equal(await accounts().setUserTypeFactor(TENANT, 'owner', 'pin'), true);
      const pending = await rp.authorize();
      let page = await browser.get(pending.url);
      assert.ok(testIds(page).includes('login-form'), 'the owner signs in again');
      page = await submitLogin(browser, page, 'owner@acme.test', PASSWORD);
      assert.ok(hasForm(page, 'choose-pin-form'), `expected the choose-PIN page, got ${page.status}`);
      page = await submitFactor(browser, page, 'choose-pin-form', { pin: PIN, pin_confirm: PIN });
      assert.ok(callbackReached(page));
      const claims = (await rp.callback(page.url, pending)).claims()!;
      assert.equal(claims.sub, 'acme-owner');
      assert.equal(claims.acr, 'urn:latchkey:acr:pin');
      assert.deepEqual(claims.amr, ['pwd', 'pin']);
      assert.equal((await auditOf(server, 'acme-owner', 'factor.pin.set')).length, 1);

      const sso = await rp.authorize();
      const again = await browser.get(sso.url);
      assert.ok(callbackReached(again), 'the session now satisfies the policy');
      assert.equal((await rp.callback(again.url, sso)).claims()!.acr, 'urn:latchkey:acr:pin');
    });

    it('keeps no usable TOTP secret or PIN in the stores after enrolment', async () => {
      const longPin = '907146283951';
      const person = await addPerson(server, 'nurse', 'manager');
      const [nurse, manager] = person.logins as [string, string];
      await choosePin(server, rp, person, longPin, nurse);
      const { secret } = await linkApp(server, rp, person, manager);
      const raw = base32Decode(secret);
      assert.equal(raw.length, 20);

      const dump = await dumpStores(server);
      assert.ok(dump.includes(manager) && dump.includes('$argon2id$'), 'the dump holds the enrolled logins');
      assert.ok(dump.includes(String((await loginOf(manager)).factors.totp!.secret)), 'the dump holds the sealed secret');
      const forms: [string, Buffer][] = [
        ['base32', Buffer.from(secret)],
        ['base32 lower case', Buffer.from(secret.toLowerCase())],
        ['base32 text as hex', Buffer.from(Buffer.from(secret).toString('hex'))],
        ['base32 text as base64', Buffer.from(Buffer.from(secret).toString('base64'))],
        ['hex', Buffer.from(raw.toString('hex'))],
        ['HEX', Buffer.from(raw.toString('hex').toUpperCase())],
        ['base64', Buffer.from(raw.toString('base64'))],
        ['base64url', Buffer.from(raw.toString('base64url'))],
        ['raw bytes', raw],
        ['raw bytes as latin1 text', Buffer.from(raw.toString('latin1'), 'utf8')],
        ['PIN', Buffer.from(longPin)],
      ];
      for (const [name, needle] of forms) assert.equal(dump.indexOf(needle), -1, `the ${name} is in the dump`);
    });

    it('a store dump holds no client secret, code, token or session id', async () => {
      const person = await addPerson(server, 'employee');
      const browser = new Browser(server.issuer);
      const first = await signIn(browser, rp, { email: person.email });
      assert.ok(callbackReached(first.page));
      const tokens = await rp.callback(first.page.url, first.pending);
      // A second code, left unredeemed.
      const second = await signIn(new Browser(server.issuer), rp, { email: person.email });
      const code = new URL(second.page.url).searchParams.get('code')!;
      const session = browser.cookieValue('_session');
      assert.ok(tokens.access_token && tokens.refresh_token && code && session);

      const dump = await dumpStores(server);
      const values: [string, string][] = [
        ['access token', tokens.access_token],
        ['refresh token', tokens.refresh_token!],
        ['first code', new URL(first.page.url).searchParams.get('code')!],
        ['unredeemed code', code],
        ['session id', session],
        ...factorFixture().tenants!.flatMap((t) => (t.clients ?? []).map((c) => [`client secret of ${c.client_id}`, c.client_secret!] as [string, string])),
      ];
      for (const [name, value] of values) assert.equal(dump.indexOf(Buffer.from(value)), -1, `the ${name} is in the dump`);
    });

    describe('bad input on the factor forms', () => {
      const enc = encodeURIComponent;
      interface Form {
        name: string;
        testid: string;
        field: 'pin' | 'code';
        /** The right answer, to show the page still works after the bad input. */
        right(): Promise<Record<string, string>>;
      }

      async function formFor(kind: 'choose-pin' | 'enter-pin' | 'link-authenticator' | 'enter-code'): Promise<{ person: Person; page: Page; browser: Browser; form: Form }> {
        const type = kind.includes('pin') ? 'nurse' : 'manager';
        const person = await addPerson(server, type);
        let secret = '';
        let step = 0;
        if (kind === 'enter-pin') await choosePin(server, rp, person, PIN);
        if (kind === 'enter-code') ({ secret, step } = await linkApp(server, rp, person));
        const { page, browser } = await reachFactor(server, rp, person);
        if (kind === 'link-authenticator') secret = secretOf(page);
        const form: Form = {
          name: kind,
          testid: `${kind}-form`,
          field: kind.includes('pin') ? 'pin' : 'code',
          right: async (): Promise<Record<string, string>> => {
            if (kind === 'choose-pin') return { pin: PIN, pin_confirm: PIN };
            if (kind === 'enter-pin') return { pin: PIN };
            return { code: await codeFor(secret, kind === 'enter-code' ? step + 1 : currentStep()) };
          },
        };
        assert.ok(hasForm(page, form.testid), `expected ${form.testid}, got ${page.status}`);
        return { person, page, browser, form };
      }

      const cases = (f: string, csrf: string): [string, string, string, number[]][] => {
        const c = `csrf=${enc(csrf)}`;
        const confirm = f === 'pin' ? `&pin_confirm=${PIN}` : '';
        const form = 'application/x-www-form-urlencoded';
        return [
          ['a repeated field (array)', `${c}&${f}=${PIN}&${f}=${PIN}${confirm}`, form, [400]],
          ['an array field', `${c}&${f}[]=${PIN}${confirm}`, form, [400]],
          ['an object ($ne)', `${c}&${f}[$ne]=${confirm}`, form, [400]],
          ['a nested object', `${c}&${f}[a][b]=1${confirm}`, form, [400]],
          ['a prototype key', `${c}&__proto__[${f}]=${PIN}&constructor[prototype][${f}]=1${confirm}`, form, [400]],
          ['a long value', `${c}&${f}=${'9'.repeat(100)}${confirm}`, form, [400]],
          ['a huge body', `${c}&${f}=${'9'.repeat(200_000)}`, form, [400, 413]],
          ['letters', `${c}&${f}=abcdef${confirm}`, form, [400]],
          ['full-width digits', `${c}&${f}=${enc('９０７１４６')}${confirm}`, form, [400]],
          ['a negative number', `${c}&${f}=-90714${confirm}`, form, [400]],
          ['an exponent', `${c}&${f}=9e5${confirm}`, form, [400]],
          ['a NUL byte', `${c}&${f}=90714%00${confirm}`, form, [400]],
          ['an empty value', `${c}&${f}=${confirm}`, form, [400]],
          ['no field', c, form, [400]],
          ['a JSON body', JSON.stringify({ csrf, [f]: { $ne: null } }), 'application/json', [415]],
          ['a JSON body with the right type of value', JSON.stringify({ csrf, [f]: PIN }), 'application/json', [415]],
          ['no CSRF token', `${f}=${PIN}${confirm}`, form, [403]],
          ['a CSRF token array', `csrf=${enc(csrf)}&csrf=x&${f}=${PIN}${confirm}`, form, [403]],
        ];
      };

      for (const kind of ['choose-pin', 'enter-pin', 'link-authenticator', 'enter-code'] as const) {
        it(`refuses bad input on the ${kind} form with a 4xx, changes nothing, and still takes the right answer`, async () => {
          const { person, page, browser, form } = await formFor(kind);
          const [login] = person.logins as [string];
          const before = (await loginOf(login)).factors;
          const auditBefore = (await auditOf(server, login)).length;
          const action = /action="([^"]+\/factor)"/.exec(page.html)![1]!;
          const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
          for (const [name, body, type, statuses] of cases(form.field, csrf)) {
            const res = await browser.postRaw(action, body, type);
            assert.ok(statuses.includes(res.status), `${name}: ${res.status} ${errorOf(res)}`);
            assert.ok(!callbackReached(res), name);
            assert.deepEqual((await loginOf(login)).factors, before, `${name} changed the factor state`);
          }
          assert.equal((await auditOf(server, login)).length, auditBefore, 'no factor event for bad input');
          assert.equal(await server.latchkey.stores.counters.peek(`${form.field === 'pin' ? 'pin' : 'totp'}:${login}`, Date.now()), null, 'bad input is not counted as an attempt');
          const done = await savedCodes(browser, await submitFactor(browser, page, form.testid, await form.right()));
          assert.ok(callbackReached(done), `the right answer after bad input: ${done.status} ${errorOf(done)}`);
        });
      }
    });
  });
}
