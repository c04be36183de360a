// Recovery codes: ten shown once when the authenticator app is linked, each
// working once instead of a code from the app (in the app's attempt limits),
// regenerated on the profile, counted on the Users page, voided by the
// owner's reset; never stored in the clear. On both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import type { Browser } from '../support/browser.ts';
import { actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import {
  SHORT_LOCKS,
  addPerson,
  auditOf,
  codeFor,
  codesOf,
  errorOf,
  factorFixture,
  hasForm,
  reachFactor,
  secretOf,
  submitFactor,
  wrongCode,
  type Person,
} from '../support/factors.ts';
import { accountSignIn, signedIn } from '../account/support.ts';
import { stepAt } from '../../src/factors/totp/code.ts';

const OWNER = { email: 'owner@acme.test' };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? files(join(dir, name)) : [join(dir, name)]));
}

for (const setup of SETUPS) {
  describe(`recovery codes (${setup})`, () => {
    let server: TestServer;
    const clock = testClock();
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: factorFixture(), env: SHORT_LOCKS, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;
    const shownCodes: string[] = [];

    /** Links the app of a new manager; returns the codes shown and the app's secret. */
    async function linked(): Promise<{ person: Person; codes: string[]; secret: string }> {
      const person = await addPerson(server, 'manager');
      const { browser, page } = await reachFactor(server, rp, person);
      const secret = secretOf(page);
      const shown = await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secret, stepAt(clock.now())) });
      assert.ok(hasForm(shown, 'recovery-saved-form'), `the codes before the app: ${shown.status} ${errorOf(shown)}`);
      const codes = codesOf(shown);
      const done = await browser.post(actionOf(shown, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(shown) });
      assert.ok(callbackReached(done), `${done.status} ${errorOf(done)}`);
      return { person, codes, secret };
    }

    /** A sign-in up to the recovery code page. */
    async function atCodePage(person: Person): Promise<{ browser: Browser; page: Page; pending: { verifier: string; state: string } }> {
      const { browser, page, pending } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'enter-code-form') && hasForm(page, 'use-recovery-form'), '"Use a recovery code" on the code page');
      const codePage = await browser.post(actionOf(page, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(page) });
      assert.ok(hasForm(codePage, 'recovery-code-form'), `${codePage.status} ${errorOf(codePage)}`);
      return { browser, page: codePage, pending };
    }

    /** Links the app of `login` at its first sign-in, the codes confirmed as saved. */
    async function linkOf(person: Person, login: string) {
      const { browser, page } = await reachFactor(server, rp, person, login);
      const shown = await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), stepAt(clock.now())) });
      assert.ok(callbackReached(await browser.post(actionOf(shown, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(shown) })));
    }

    it("a factor passed for one login stands for it only: choosing a sibling on the codes page asks the sibling's own factor and mints none of its codes", async () => {
      const person = await addPerson(server, 'manager', 'manager');
      const [mine, sibling] = person.logins as [string, string];
      await linkOf(person, sibling);
      const siblingCodes = (await accounts().getLogin(sibling))!.factors.recovery;
      assert.ok(siblingCodes, 'the sibling has codes of its own');

      // Someone with the password links their own app to the login that had none, and reaches its codes page.
      const { browser, page } = await reachFactor(server, rp, person, mine);
      const shown = await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), stepAt(clock.now())) });
      assert.ok(hasForm(shown, 'recovery-saved-form'));
      const continueAt = actionOf(shown, 'recovery-saved-form');
      const moved = await browser.post(continueAt.replace(/\/continue$/, '/select'), { login: sibling, csrf: csrfOf(shown) });
      assert.ok(hasForm(moved, 'enter-code-form'), `the sibling's own app is asked: ${moved.status} ${errorOf(moved)}`);
      assert.deepEqual(codesOf(moved), [], 'no codes shown');
      const again = await browser.post(continueAt, { saved: 'yes', csrf: csrfOf(shown) });
      assert.ok(!callbackReached(again), `the first login's codes page does not finish the sibling's sign-in: ${again.status} ${again.url}`);
      assert.equal(again.status, 400);
      assert.deepEqual((await accounts().getLogin(sibling))!.factors.recovery, siblingCodes, "the sibling's codes are as they were");
      assert.equal((await auditOf(server, sibling, 'signin.success')).length, 1, 'the sibling signed in only when it linked its app');
    });

    it('a recovery code of one login does not finish a sibling\'s sign-in: its "codes left" page moved to the sibling asks the sibling\'s factor', async () => {
      const person = await addPerson(server, 'manager', 'manager');
      const [mine, sibling] = person.logins as [string, string];
      await linkOf(person, sibling);
      clock.advance(30_000);
      const { browser, page } = await reachFactor(server, rp, person, mine);
      const shown = await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), stepAt(clock.now())) });
      const codes = codesOf(shown);
      assert.ok(callbackReached(await browser.post(actionOf(shown, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(shown) })));
      // The next sign-in of `mine` with one of its codes reaches the page that says how many are left.
      const next = await reachFactor(server, rp, person, mine);
      const codePage = await next.browser.post(actionOf(next.page, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(next.page) });
      const left = await submitFactor(next.browser, codePage, 'recovery-code-form', { recovery_code: codes[0]! });
      assert.equal(textOf(left, 'recovery-remaining')?.includes('9'), true, `${left.status} ${errorOf(left)}`);
      const continueAt = actionOf(left, 'recovery-used-form');
      const moved = await next.browser.post(continueAt.replace(/\/continue$/, '/select'), { login: sibling, csrf: csrfOf(left) });
      assert.ok(!callbackReached(moved), `the sibling is not signed in: ${moved.status} ${moved.url}`);
      assert.ok(hasForm(moved, 'enter-code-form'), `the sibling's own app is asked: ${moved.status} ${errorOf(moved)}`);
      assert.ok(!hasForm(moved, 'recovery-code-form'), "the first login's chosen method does not carry over");
      const again = await next.browser.post(continueAt, { csrf: csrfOf(left) });
      assert.ok(!callbackReached(again), `the first login's page does not finish the sibling's sign-in: ${again.status} ${again.url}`);
      assert.equal((await auditOf(server, sibling, 'signin.success')).length, 1, 'the sibling signed in only when it linked its app');
    });

    it('shows ten codes of 60 bits once, with download and copy, and asks that they were saved', async () => {
      const person = await addPerson(server, 'manager');
      const { browser, page } = await reachFactor(server, rp, person);
      const shown = await submitFactor(browser, page, 'link-authenticator-form', { code: await codeFor(secretOf(page), stepAt(clock.now())) });
      const codes = codesOf(shown);
      assert.equal(codes.length, 10, `${shown.status} ${errorOf(shown)}`);
      assert.equal(new Set(codes).size, 10);
      for (const c of codes) assert.match(c, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/, '12 of 32 letters: 60 bits');
      assert.ok(testIds(shown).includes('recovery-download') && testIds(shown).includes('recovery-copy'));
      assert.match(shown.html, /<script src="\/static\/recovery-codes.js"><\/script>/, 'the copy button by a script of this origin, no inline script');
      assert.doesNotMatch(shown.html, /<script>/);
      const notSaved = await browser.post(actionOf(shown, 'recovery-saved-form'), { csrf: csrfOf(shown) });
      assert.equal(notSaved.status, 400, 'not confirmed: not on');
      const again = codesOf(notSaved);
      assert.equal(again.length, 10);
      assert.ok(
        again.every((c) => !codes.includes(c)),
        'shown again they are new ones: the first set is never shown twice',
      );
      const done = await browser.post(actionOf(notSaved, 'recovery-saved-form'), { saved: 'yes', csrf: csrfOf(notSaved) });
      assert.ok(callbackReached(done));
      const [generated] = await auditOf(server, person.logins[0]!, 'factor.recovery.generated');
      assert.equal(generated?.detail?.count, 10);
    });

    it('each code signs in once, with the app’s level, and says how many remain', async () => {
      const { person, codes } = await linked();
      const [login] = person.logins as [string];
      const { browser, page, pending } = await atCodePage(person);
      const used = await submitFactor(browser, page, 'recovery-code-form', { recovery_code: codes[0]!.toLowerCase().replaceAll('-', ' ') });
      assert.equal(textOf(used, 'recovery-remaining')?.includes('9'), true, `${used.status} ${errorOf(used)}`);
      const done = await browser.post(actionOf(used, 'recovery-used-form'), { csrf: csrfOf(used) });
      assert.ok(callbackReached(done));
      const claims = (await rp.callback(done.url, pending)).claims()!;
      assert.equal(claims.acr, 'urn:latchkey:acr:totp');
      assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
      const [event] = await auditOf(server, login, 'factor.recovery.used');
      assert.equal(event?.detail?.remaining, 9);

      const second = await atCodePage(person);
      const refused = await submitFactor(second.browser, second.page, 'recovery-code-form', { recovery_code: codes[0]! });
      assert.equal(refused.status, 400, 'a used code is refused');
      assert.ok(hasForm(refused, 'recovery-code-form'));
    });

    it('8 parallel submissions of one code: exactly one passes', async () => {
      const { person, codes } = await linked();
      const pages = await Promise.all(Array.from({ length: 8 }, () => atCodePage(person)));
      const results = await Promise.all(pages.map(({ browser, page }) => submitFactor(browser, page, 'recovery-code-form', { recovery_code: codes[3]! })));
      assert.equal(results.filter((r) => hasForm(r, 'recovery-used-form')).length, 1, results.map((r) => r.status).join(' '));
      assert.equal((await auditOf(server, person.logins[0]!, 'factor.recovery.used')).length, 1);
    });

    it('counts wrong codes in the app’s attempt limits', async () => {
      const { person, secret } = await linked();
      const { browser, page } = await atCodePage(person);
      let last: Page = page;
      for (let i = 0; i < 5; i++) last = await submitFactor(browser, last, 'recovery-code-form', { recovery_code: 'AAAA-AAAA-AAAA' });
      assert.equal(last.status, 429, 'locked after five wrong codes');
      const app = await reachFactor(server, rp, person);
      const locked = await submitFactor(app.browser, app.page, 'enter-code-form', { code: await codeFor(secret, stepAt(clock.now())) });
      assert.equal(locked.status, 429, "the app's right code is refused too: one counter");
      clock.advance(60_000);
    });

    it('the profile shows how many remain and makes a new set that voids the old one; the Users page counts; the owner’s reset voids them', async () => {
      const { person, codes, secret } = await linked();
      const [login] = person.logins as [string];
      // Into the account pages with a recovery code: the way back for someone without the phone.
      const { browser, page } = await accountSignIn(server, { email: person.email });
      const codePage = await browser.post(actionOf(page, 'use-recovery-form'), { method: 'recovery', csrf: csrfOf(page) });
      const used = await submitFactor(browser, codePage, 'recovery-code-form', { recovery_code: codes[1]! });
      const profile = await browser.post(actionOf(used, 'recovery-used-form'), { csrf: csrfOf(used) });
      assert.equal(new URL(profile.url).pathname, '/account', `${profile.status} ${errorOf(profile)}`);
      assert.match(profile.html, /data-testid="recovery-count" data-count="9"/);
      // Signed in a moment ago, but with a code: new codes need the app itself, asked right here.
      const asked = await browser.post(actionOf(profile, 'regenerate-recovery-form'), { csrf: csrfOf(profile) });
      assert.ok(hasForm(asked, 'enter-code-form') && codesOf(asked).length === 0, `the app's code first: ${asked.status} ${errorOf(asked)}`);
      assert.ok(testIds(asked).includes('confirm-factor'));
      assert.ok(!hasForm(asked, 'use-recovery-form'), 'a code never buys new codes');
      const wrong = await submitFactor(browser, asked, 'enter-code-form', { code: await wrongCode(secret) });
      assert.equal(wrong.status, 400);
      assert.equal(codesOf(wrong).length, 0);
      assert.equal((await auditOf(server, login, 'factor.totp.failed')).length, 1, "the app's own attempt, counted and audited");
      // Until the new set is shown the old one works (another browser, a code instead of the app).
      const meanwhile = await atCodePage(person);
      assert.ok(
        hasForm(await submitFactor(meanwhile.browser, meanwhile.page, 'recovery-code-form', { recovery_code: codes[2]! }), 'recovery-used-form'),
        'the old set still works',
      );
      clock.advance(30_000); // a step after the one that linked the app (each code is accepted once)
      const fresh = await submitFactor(browser, wrong, 'enter-code-form', { code: await codeFor(secret, stepAt(clock.now())) });
      const renewed = codesOf(fresh);
      assert.equal(renewed.length, 10, `${fresh.status} ${errorOf(fresh)}`);
      shownCodes.push(...codes, ...renewed);
      assert.deepEqual((await auditOf(server, login, 'factor.recovery.regenerated'))[0]?.detail, { count: 10, factor: 'totp' });
      // The same code again (a replay) makes no second set.
      const replayed = await browser.post(actionOf(wrong, 'enter-code-form'), { code: await codeFor(secret, stepAt(clock.now())), csrf: csrfOf(wrong) });
      assert.equal(replayed.status, 400);
      assert.equal(codesOf(replayed).length, 0);

      const old = await atCodePage(person);
      assert.equal((await submitFactor(old.browser, old.page, 'recovery-code-form', { recovery_code: codes[3]! })).status, 400, 'the old set no longer works');
      const current = await atCodePage(person);
      assert.ok(hasForm(await submitFactor(current.browser, current.page, 'recovery-code-form', { recovery_code: renewed[0]! }), 'recovery-used-form'), 'the new set does');
      const owner = await signedIn(server, OWNER, '/account/users');
      assert.match(textOf(owner.page, `factor-state-${login}`) ?? '', /App linked, 9 recovery codes left/);

      const confirm = await owner.browser.post(`/account/users/${login}/reset/totp`, { csrf: csrfOf(owner.page) });
      await owner.browser.post(actionOf(confirm, 'confirm-reset-form'), { csrf: csrfOf(confirm), confirm: 'yes' });
      assert.equal((await accounts().getLogin(login))!.factors.recovery, undefined, "the app's reset voids its codes");
      assert.equal((await auditOf(server, login, 'factor.recovery.voided'))[0]?.detail?.by, 'acme-owner');
    });

    it('keeps no code in the clear in the store', async () => {
      const { codes } = await linked();
      shownCodes.push(...codes);
      let dump = '';
      if (setup === 'sqlite') for (const file of files(server.env.DATA_DIR!)) dump += readFileSync(file).toString('latin1');
      else {
        const client = await new MongoClient(server.env.MONGODB_URI!).connect();
        try {
          const db = client.db(server.env.MONGODB_DB!);
          for (const c of await db.listCollections().toArray()) dump += JSON.stringify(await db.collection(c.name).find().toArray());
        } finally {
          await client.close();
        }
      }
      assert.ok(dump.length > 1000, 'the dump holds the store');
      assert.ok(dump.includes('"recovery"') || dump.includes('recovery'), 'the codes’ hashes are there');
      for (const code of shownCodes) for (const form of [code, code.replaceAll('-', '')]) assert.ok(!dump.includes(form), `no ${form} in the store`);
    });
  });
}
