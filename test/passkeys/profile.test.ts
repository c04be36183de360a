// The account pages' passkeys page (/account/profile/factor/passkey) on both
// store set-ups, driven over HTTP with the bench's software authenticator:
// a recent sign-in is not enough to change a login's passkeys — it may have
// needed only the password — so the page first asks for one of the login's
// passkeys, and only for a while after that proof do add, rename and remove
// go through. A login with no passkey left adds its first without one. And
// an add racing an owner's reset of the passkeys does not survive the reset.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, testIds, type Page } from '../support/browser.ts';
import { SETUPS, startServer, testClock, type TestServer } from '../support/latchkey.ts';
import { TENANT, addPerson, auditOf, errorOf, factorFixture } from '../support/factors.ts';
import { accountSignIn, hiddenFields, submit } from '../account/support.ts';
import { SoftAuthenticator, type CreationOptions, type RequestOptions } from '../../bench/lib/authenticator.ts';
import { CHANGE_WINDOW_MS } from '../../src/factors/passkey/index.ts';
import type { FactorRequest } from '../../src/factors/types.ts';

const MANAGE = '/account/profile/factor/passkey';

/** The ceremony options a passkey form hands the browser (its `data-options`). */
function optionsOf<T>(page: Page, testid: string): T {
  const m = new RegExp(`<form[^>]*data-options="([^"]*)"[^>]*data-testid="${testid}"`).exec(page.html);
  assert.ok(m, `no ${testid} on ${page.url} (${page.status}): ${testIds(page).join(', ')}`);
  return JSON.parse(m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as T;
}

/** Which of the page's forms change passkeys. */
const changeForms = (page: Page) => testIds(page).filter((id) => ['passkey-add-form', 'passkey-rename-form', 'passkey-remove-form'].includes(id));

for (const setup of SETUPS) {
  describe(`the passkeys page asks for one of the passkeys first (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), now: clock.now });
    });
    after(() => server?.stop());

    const passkeyFactor = () => server.latchkey.factors.get('passkey');
    const passkeysOf = (login: string) => server.latchkey.stores.accounts.listPasskeys(login);

    /** A request of the factor as the account pages make it: the login read afresh, the given draft. */
    async function request(login: string, body: Record<string, string>, draft: Record<string, unknown>): Promise<FactorRequest> {
      const { accounts } = server.latchkey.stores;
      return { tenant: (await accounts.getTenant(TENANT))!, login: (await accounts.getLogin(login))!, body, draft, ip: null, userAgent: null };
    }

    /**
     * An employee (a user type that asks for no second factor) who set up a
     * passkey anyway, with `authenticator`: its sign-in to the account pages
     * needs only the password.
     */
    async function employeeWithPasskey(authenticator = new SoftAuthenticator(server.issuer)) {
      const person = await addPerson(server, 'employee');
      const login = person.logins[0]!;
      const draft: Record<string, unknown> = {};
      const page = await passkeyFactor().page('enroll', await request(login, {}, draft));
      const response = authenticator.create(JSON.parse(String(page.locals.passkeyOptions)) as CreationOptions);
      const outcome = await passkeyFactor().submit('enroll', await request(login, { response: JSON.stringify(response), name: 'Work laptop' }, draft));
      assert.ok(outcome.passed, `the passkey set-up: ${JSON.stringify(outcome)}`);
      const [passkey] = await passkeysOf(login);
      return { ...person, login, authenticator, passkey: passkey! };
    }

    /** Signs in to the passkeys page with the password alone. */
    async function passwordSession(email: string, headers: Record<string, string> = {}) {
      const { browser, page } = await accountSignIn(server, { email }, MANAGE, new Browser(server.issuer, headers));
      assert.equal(new URL(page.url).pathname, MANAGE, `the passkeys page: ${page.status} ${page.url} ${errorOf(page)}`);
      return { browser, page };
    }

    /** Answers the page's proof with `credentialId` of `authenticator`; the page after it. */
    async function prove(browser: Browser, page: Page, authenticator: SoftAuthenticator, credentialId: string) {
      const answer = authenticator.get(optionsOf<RequestOptions>(page, 'passkey-prove-form'), credentialId);
      return submit(browser, page, 'passkey-prove-form', { response: JSON.stringify(answer) });
    }

    it('a password-only session is asked for one of the passkeys, and can neither add, rename nor remove one', async () => {
      const bob = await employeeWithPasskey();
      const { browser, page } = await passwordSession(bob.email);
      assert.ok(testIds(page).includes('passkey-prove-form'), 'the page asks for one of the passkeys');
      assert.deepEqual(changeForms(page), [], 'and offers no change before it');
      const proof = optionsOf<RequestOptions>(page, 'passkey-prove-form');
      assert.deepEqual(
        proof.allowCredentials?.map((c) => c.id),
        [bob.passkey.id],
        "the login's own passkeys",
      );
      assert.equal(proof.userVerification, 'preferred', "as the factor's sign-in asks");

      // Mallory knows Bob's password and brings her own authenticator: each change, posted by hand, is refused.
      const mallory = new SoftAuthenticator(server.issuer);
      const registration = mallory.create({
        challenge: proof.challenge,
        rp: { id: new URL(server.issuer).hostname, name: 'Acme Care' },
        user: { id: bob.passkey.userHandle, name: bob.email, displayName: 'Pat Doe' },
      });
      const { csrf } = hiddenFields(page, 'passkey-prove-form');
      const attempts: Record<string, string>[] = [
        { action: 'add', response: JSON.stringify(registration), name: 'Mallory' },
        { action: 'rename', id: bob.passkey.id, name: 'Mallory' },
        { action: 'remove', id: bob.passkey.id },
      ];
      for (const fields of attempts) {
        const refused = await browser.post(MANAGE, { csrf: csrf!, ...fields });
        assert.equal(refused.status, 403, `${fields.action}: ${refused.status} ${errorOf(refused)}`);
        assert.match(errorOf(refused), /First confirm that it is you with one of your passkeys/);
        assert.ok(testIds(refused).includes('passkey-prove-form'), 'the page offers the proof');
      }
      const after = await passkeysOf(bob.login);
      assert.deepEqual(
        after.map((p) => [p.id, p.name]),
        [[bob.passkey.id, 'Work laptop']],
        "Bob's passkeys are as they were",
      );
      const refusals = await auditOf(server, bob.login, 'factor.passkey.failed');
      assert.deepEqual(refusals.map((e) => [e.detail?.stage, e.detail?.reason]).sort(), [
        ['add', 'unproven'],
        ['remove', 'unproven'],
        ['rename', 'unproven'],
      ]);
      assert.equal((await auditOf(server, bob.login, 'factor.passkey.added')).length, 1, 'only his own set-up');

      // In Dutch too.
      const dutch = await passwordSession(bob.email, { 'accept-language': 'nl' });
      assert.match(dutch.page.html, /Bevestig eerst met een van je huidige passkeys/);
      const nl = await submit(dutch.browser, dutch.page, 'passkey-prove-form', { action: 'rename', id: bob.passkey.id, name: 'Mallory' });
      assert.equal(nl.status, 403);
      assert.match(errorOf(nl), /Bevestig eerst met een van je passkeys dat jij het bent/);
    });

    it("after one of the login's passkeys is proven on the page, passkeys are added, renamed and removed; the proof is a use of the passkey", async () => {
      const bob = await employeeWithPasskey();
      const { browser, page } = await passwordSession(bob.email);
      const proven = await prove(browser, page, bob.authenticator, bob.passkey.id);
      assert.equal(new URL(proven.url).pathname, MANAGE);
      assert.deepEqual(changeForms(proven), ['passkey-rename-form', 'passkey-remove-form', 'passkey-add-form'], `${proven.status} ${errorOf(proven)}`);
      assert.ok(!testIds(proven).includes('passkey-prove-form'));
      const [used] = await passkeysOf(bob.login);
      assert.ok(used!.counter > bob.passkey.counter, 'the sign count moved on, as at a sign-in');
      assert.notEqual(used!.lastUsedAt, null);
      const [verified] = await auditOf(server, bob.login, 'factor.passkey.verified');
      assert.equal(verified?.detail?.stage, 'prove');

      // A second device.
      const phone = new SoftAuthenticator(server.issuer);
      const registration = phone.create(optionsOf<CreationOptions>(proven, 'passkey-add-form'));
      const added = await submit(browser, proven, 'passkey-add-form', { response: JSON.stringify(registration), name: 'Phone' });
      assert.equal(added.status, 200, errorOf(added));
      assert.deepEqual(
        (await passkeysOf(bob.login)).map((p) => p.name),
        ['Work laptop', 'Phone'],
      );
      const renamed = await submit(browser, added, 'passkey-rename-form', { name: 'Old laptop' });
      assert.equal(renamed.status, 200, errorOf(renamed));
      assert.equal((await passkeysOf(bob.login))[0]?.name, 'Old laptop');
      const removed = await submit(browser, renamed, 'passkey-remove-form');
      assert.equal(removed.status, 200, errorOf(removed));
      assert.deepEqual(
        (await passkeysOf(bob.login)).map((p) => p.name),
        ['Phone'],
      );
      for (const type of ['factor.passkey.renamed', 'factor.passkey.removed']) assert.equal((await auditOf(server, bob.login, type)).length, 1, type);
    });

    it("a wrong answer to the proof counts in the passkey's attempt limits like a sign-in's, and is audited", async () => {
      const bob = await employeeWithPasskey();
      const { browser } = await passwordSession(bob.email);
      let page = await browser.get(MANAGE);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        // Bob's key signing another challenge than the page's: a signature that does not check out.
        const options = optionsOf<RequestOptions>(page, 'passkey-prove-form');
        const answer = bob.authenticator.get({ ...options, challenge: Buffer.from(`not the page's ${i}`).toString('base64url') }, bob.passkey.id);
        page = await submit(browser, page, 'passkey-prove-form', { response: JSON.stringify(answer) });
        statuses.push(page.status);
        assert.ok(testIds(page).includes('passkey-prove-form'), 'still asked');
      }
      assert.deepEqual(statuses, [400, 400, 400, 400, 429], 'locked after five, as at a sign-in');
      // Locked: even the right answer waits.
      const right = await prove(browser, page, bob.authenticator, bob.passkey.id);
      assert.equal(right.status, 429);
      assert.deepEqual(changeForms(right), []);
      const failures = await auditOf(server, bob.login, 'factor.passkey.failed');
      assert.equal(failures.length, 5);
      assert.ok(failures.every((e) => e.detail?.stage === 'prove' && e.detail?.reason === 'unverified'));
      assert.ok((await auditOf(server, bob.login, 'factor.passkey.locked')).length >= 1);
    });

    it('a login with no passkey left adds its first without a proof; from then on the page asks for it', async () => {
      const pat = await employeeWithPasskey();
      // The last one went while recovery codes remained: the login is still set up for passkeys, with none.
      await server.latchkey.stores.accounts.deletePasskey(pat.login, pat.passkey.id);
      const { browser, page } = await passwordSession(pat.email);
      assert.ok(!testIds(page).includes('passkey-prove-form'), 'nothing to prove with');
      const registration = pat.authenticator.create(optionsOf<CreationOptions>(page, 'passkey-add-form'));
      const added = await submit(browser, page, 'passkey-add-form', { response: JSON.stringify(registration), name: 'New phone' });
      assert.equal(added.status, 200, errorOf(added));
      assert.deepEqual(
        (await passkeysOf(pat.login)).map((p) => p.name),
        ['New phone'],
      );
      assert.ok(testIds(added).includes('passkey-prove-form'), 'the next change needs the passkey');
      assert.deepEqual(changeForms(added), []);
    });

    it("an add whose options were made before the owner's reset is refused after it: the reset stands", async () => {
      const pat = await employeeWithPasskey();
      await server.latchkey.stores.accounts.deletePasskey(pat.login, pat.passkey.id);
      const change = passkeyFactor().change!;
      const draft: Record<string, unknown> = {};
      const page = await change.page(await request(pat.login, {}, draft));
      const registration = pat.authenticator.create(JSON.parse(String(page.locals.passkeyOptions)) as CreationOptions);
      await passkeyFactor().reset(pat.login);
      const outcome = await change.submit(await request(pat.login, { action: 'add', response: JSON.stringify(registration), name: 'Late' }, draft));
      assert.ok(!outcome.done && outcome.error, 'refused');
      assert.match(outcome.error.key, /setUpChanged/);
      assert.deepEqual(await passkeysOf(pat.login), [], 'no passkey');
      assert.equal((await server.latchkey.stores.accounts.getLogin(pat.login))!.factors.passkey, undefined, 'not set up');
    });

    it("an add in flight when the owner's reset lands (read before, stored after) does not survive it", async () => {
      const pat = await employeeWithPasskey();
      await server.latchkey.stores.accounts.deletePasskey(pat.login, pat.passkey.id);
      const change = passkeyFactor().change!;
      const draft: Record<string, unknown> = {};
      const page = await change.page(await request(pat.login, {}, draft));
      const registration = pat.authenticator.create(JSON.parse(String(page.locals.passkeyOptions)) as CreationOptions);
      const inFlight = await request(pat.login, { action: 'add', response: JSON.stringify(registration), name: 'Late' }, draft);
      await passkeyFactor().reset(pat.login);
      const outcome = await change.submit(inFlight);
      assert.ok(!outcome.done && outcome.error, 'refused');
      assert.match(outcome.error.key, /setUpChanged/);
      assert.deepEqual(await passkeysOf(pat.login), [], 'the passkey stored meanwhile is gone again');
      assert.equal((await server.latchkey.stores.accounts.getLogin(pat.login))!.factors.passkey, undefined, 'not set up');
      const [refused] = await auditOf(server, pat.login, 'factor.passkey.failed');
      assert.equal(refused?.detail?.reason, 'set_up_changed');
    });

    // Last: it moves the app's clock on.
    it(`the proof lasts ${CHANGE_WINDOW_MS / 60_000} minutes: then the page asks again, and a change is refused`, async () => {
      const bob = await employeeWithPasskey();
      const { browser, page } = await passwordSession(bob.email);
      const proven = await prove(browser, page, bob.authenticator, bob.passkey.id);
      assert.ok(testIds(proven).includes('passkey-rename-form'), `${proven.status} ${errorOf(proven)}`);
      clock.advance(CHANGE_WINDOW_MS - 1000);
      const still = await browser.get(MANAGE);
      const renamed = await submit(browser, still, 'passkey-rename-form', { name: 'Laptop' });
      assert.equal(renamed.status, 200, `just within the window: ${errorOf(renamed)}`);
      clock.advance(1000);
      const again = await browser.get(MANAGE);
      assert.equal(again.status, 200);
      assert.ok(testIds(again).includes('passkey-prove-form'), 'asked again');
      assert.deepEqual(changeForms(again), []);
      const late = await submit(browser, renamed, 'passkey-rename-form', { name: 'Too late' });
      assert.equal(late.status, 403);
      assert.match(errorOf(late), /First confirm/);
      assert.equal((await passkeysOf(bob.login))[0]?.name, 'Laptop');
      // The refusal's page offers the proof (its challenge is now the one in the draft).
      const reproven = await prove(browser, late, bob.authenticator, bob.passkey.id);
      assert.ok(testIds(reproven).includes('passkey-rename-form'), 'a new proof opens it again');
    });
  });
}
