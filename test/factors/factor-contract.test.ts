// The factor contract: a factor from a test folder (test/support/fake-factor/),
// given to the app at composition and to nothing else, appears everywhere a
// factor does — the Security settings drop-down, the import's validation,
// discovery, the Users page (state and reset), the audit filter and the
// profile — and signs people in, its alternative method too.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { actionOf, csrfOf, testIds, textOf } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { TENANT, addPerson, auditOf, errorOf, factorFixture, hasForm, reachFactor, submitFactor, type Person } from '../support/factors.ts';
import { accountSignIn, savePolicy, signedIn } from '../account/support.ts';
import { FAKE_ACR, FAKE_FACTORS } from '../support/fake-factor/index.ts';
import { ImportError, validateImport, type ImportDocument } from '../../src/import/index.ts';

const OWNER = { email: 'owner@acme.test' };
const WORD = 'marmalade';

function fixture(): ImportDocument {
  const doc = factorFixture();
  doc.tenants![0]!.userTypes.push({ id: 'agent', name: 'Agent', secondFactor: 'word' });
  return doc;
}

for (const setup of SETUPS) {
  describe(`a factor added at composition (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: fixture(), factors: FAKE_FACTORS });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const accounts = () => server.latchkey.stores.accounts;

    /** A person whose agent login has set the word up at a first sign-in. */
    async function enrolled(): Promise<Person> {
      const person = await addPerson(server, 'agent');
      const { browser, page } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'word-enroll-form'), `the factor's own enrol page: ${page.status} ${errorOf(page)}`);
      const done = await submitFactor(browser, page, 'word-enroll-form', { word: WORD });
      assert.ok(callbackReached(done), `${done.status} ${errorOf(done)}`);
      return person;
    }

    it('is a user type value for the import, and only where the app knows it', async () => {
      const { config } = server.latchkey;
      assert.ok(await validateImport(fixture(), accounts(), config, server.latchkey.factors));
      await assert.rejects(
        validateImport(fixture(), accounts(), config),
        (err: unknown) => err instanceof ImportError && err.problems.some((p) => /userTypes\[5\]\.secondFactor/.test(p)),
      );
      const withClient = fixture();
      withClient.tenants![0]!.clients![0]!.default_acr_values = [FAKE_ACR];
      assert.ok(await validateImport(withClient, accounts(), config, server.latchkey.factors), 'its acr is a client minimum the file may name');
    });

    it('takes its place in discovery, strongest last', async () => {
      const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as { acr_values_supported: string[] };
      assert.deepEqual(discovery.acr_values_supported, ['urn:latchkey:acr:1fa', 'urn:latchkey:acr:pin', 'urn:latchkey:acr:totp', 'urn:latchkey:acr:passkey', FAKE_ACR]);
    });

    it('is offered in the Security settings, and an owner can choose it', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/security');
      assert.match(page.html, /<option value="word"/);
      const done = await savePolicy(browser, page, { staff: 'word' });
      assert.equal(new URL(done.url).pathname, '/account/security', `${done.status} ${errorOf(done)}`);
      assert.equal((await accounts().getTenant(TENANT))!.userTypes.find((t) => t.id === 'staff')!.secondFactor, 'word');
      const refused = await savePolicy(browser, done, { staff: 'sms' }, { confirm: false });
      assert.equal(refused.status, 400, 'an id no factor has is refused');
      assert.equal((await accounts().getTenant(TENANT))!.userTypes.find((t) => t.id === 'staff')!.secondFactor, 'word');
      await savePolicy(browser, done, { staff: 'none' });
    });

    it('signs in with its own pages; its state and its reset show on the Users page, its events in the audit filter', async () => {
      const person = await enrolled();
      const [login] = person.logins as [string];
      assert.deepEqual((await accounts().getLogin(login))!.factors.word, { word: WORD, backup: `${WORD}-backup` });
      const { browser, page } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'word-verify-form'));
      const done = await submitFactor(browser, page, 'word-verify-form', { word: WORD });
      assert.ok(callbackReached(done), `${done.status} ${errorOf(done)}`);

      const owner = await signedIn(server, OWNER, '/account/users');
      assert.equal(textOf(owner.page, `factor-state-${login}`), 'factor.word.state', 'its state (its text would come from the catalogues)');
      assert.ok(testIds(owner.page).includes(`reset-word-${login}`) && !testIds(owner.page).includes(`reset-pin-${login}`), 'its reset, and only the resets that apply');
      const audit = await owner.browser.get('/account/audit');
      assert.match(audit.html, /<option value="factor.word.set"/);
      assert.match(audit.html, /<option value="factor.backup_word.used"/, "and its method's");

      assert.ok(owner.page.html.includes(`action="/account/users/${login}/reset/word"`), 'the generic reset route');
      const confirm = await owner.browser.post(`/account/users/${login}/reset/word`, { csrf: csrfOf(owner.page) });
      assert.ok(testIds(confirm).includes('confirm-reset-form'));
      await owner.browser.post(actionOf(confirm, 'confirm-reset-form'), { csrf: csrfOf(confirm), confirm: 'yes' });
      assert.equal((await accounts().getLogin(login))!.factors.word, undefined, 'reset');
      assert.equal((await auditOf(server, login, 'factor.word.reset'))[0]?.detail?.by, 'acme-owner');
    });

    it('links its change page from the profile of a person who has it', async () => {
      const person = await enrolled();
      const { browser, page } = await accountSignIn(server, { email: person.email });
      const profile = await submitFactor(browser, page, 'word-verify-form', { word: WORD });
      assert.equal(new URL(profile.url).pathname, '/account', `${profile.status} ${errorOf(profile)}`);
      assert.ok(testIds(profile).includes('change-word-link'));
      const change = await browser.get('/account/profile/factor/word');
      assert.ok(testIds(change).includes('word-change'), 'its own view');
    });

    it('passes with its alternative method: the factor’s level, the method’s amr, once; parallel uses of one backup word → exactly one passes', async () => {
      const person = await enrolled();
      const [login] = person.logins as [string];
      /** Eight sign-ins at the backup word's page, each in its own browser. */
      const atBackup = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const { browser, page, pending } = await reachFactor(server, rp, person);
          assert.ok(hasForm(page, 'use-backup_word-form'), 'the verify page offers the method');
          const backup = await browser.post(actionOf(page, 'use-backup_word-form'), { method: 'backup_word', csrf: csrfOf(page) });
          assert.ok(hasForm(backup, 'backup-word-form'), `${backup.status} ${errorOf(backup)}`);
          return { browser, page: backup, pending };
        }),
      );
      const results = await Promise.all(atBackup.map(({ browser, page }) => submitFactor(browser, page, 'backup-word-form', { backup: `${WORD}-backup` })));
      const passed = results.flatMap((r, i) => (callbackReached(r) ? [i] : []));
      assert.equal(passed.length, 1, `exactly one passes: ${results.map((r) => r.status).join(' ')}`);
      const winner = atBackup[passed[0]!]!;
      const tokens = await rp.callback(results[passed[0]!]!.url, winner.pending);
      assert.equal(tokens.claims()!.acr, FAKE_ACR);
      assert.deepEqual(tokens.claims()!.amr, ['pwd', 'kba', 'backup']);
      assert.equal((await auditOf(server, login, 'factor.backup_word.used')).length, 1);
      const [success] = await auditOf(server, login, 'signin.success');
      assert.equal(success?.detail?.method, 'backup_word');

      // The provider takes the session the method made as one that meets the factor: single sign-on, no prompt.
      assert.ok(callbackReached(await winner.browser.get((await rp.authorize()).url)), 'the session satisfies the policy');

      // Spent: no longer offered, and asking for it is refused.
      const { browser, page } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'word-verify-form') && !hasForm(page, 'use-backup_word-form'));
      const refused = await browser.post(`${new URL(actionOf(page, 'word-verify-form'), server.issuer).pathname.replace(/\/factor$/, '/method')}`, {
        method: 'backup_word',
        csrf: csrfOf(page),
      });
      assert.equal(refused.status, 400);
    });
  });
}
