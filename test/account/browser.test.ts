// The account pages in a real browser (Debian's Chromium through
// playwright-core): the owner's path — sign in with the authenticator app,
// change a policy, reset a user who lost their phone — and a user's path —
// change the PIN. No JavaScript of ours runs; the pages must work as plain
// forms under the CSP. The screenshots of these pages (both languages,
// desktop and phone) come from test/web/pages.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, withoutChromium } from '../support/chromium.ts';
import { SETUPS, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, choosePin, codeFor, currentStep, linkApp } from '../support/factors.ts';
import { accountFixture, accountSignIn, linkOnPage, onAccountPage } from './support.ts';

const PIN = '907146';
const NEW_PIN = '583920';

for (const setup of SETUPS) {
  describe(`account pages in Chromium (${setup})`, { skip: withoutChromium }, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let context: BrowserContext;
    let profileDir: string;
    const cspViolations: string[] = [];

    before(async () => {
      server = await startServer(setup, { doc: accountFixture('totp') });
      rp = await relyingParty(server.issuer);
      profileDir = mkdtempSync(join(tmpdir(), 'lk-chromium-'));
      context = await chromium.launchPersistentContext(profileDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1100, height: 900 },
      });
      context.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
      });
    });
    after(async () => {
      await context?.close();
      rmSync(profileDir, { recursive: true, force: true });
      await server?.stop();
    });

    async function signInWithPassword(page: Page, email: string) {
      await page.goto(`${server.issuer}/account`);
      await page.getByLabel('Email address').fill(email);
      await page.getByLabel('Password').fill('correct horse battery staple');
      await page.getByTestId('login-submit').click();
    }

    it('the owner signs in with the authenticator app, changes a policy and resets a user who lost their phone', async () => {
      // The owner linked the app at an earlier sign-in; a user of a TOTP type lost their phone.
      const earlier = await accountSignIn(server, { email: 'owner@acme.test' });
      const linked = await linkOnPage(earlier.browser, earlier.page);
      assert.ok(onAccountPage(linked.page), "the owner's app is linked");
      const lost = await addPerson(server, 'manager');
      const [lostLogin] = lost.logins as [string];
      await linkApp(server, rp, lost);

      const page = await context.newPage();
      await signInWithPassword(page, 'owner@acme.test');
      await page.getByTestId('enter-code-form').waitFor();
      await page.getByLabel('6-digit code').fill(await codeFor(linked.secret, Math.max(linked.step + 1, currentStep())));
      await page.getByRole('button', { name: /continue|sign in|verify/i }).click();
      await page.getByTestId('profile').waitFor();
      assert.equal(await page.getByTestId('profile-factor').textContent(), 'Authenticator app');

      await page.getByRole('link', { name: 'Security settings' }).click();
      await page.getByTestId('policies').waitFor();
      await page.getByLabel('Second factor for Employee').selectOption({ label: 'PIN code' });
      await page.getByTestId('policies-save').click();
      await page.getByTestId('policy-effect-employee').waitFor();
      assert.match((await page.getByTestId('policy-effect-employee').textContent()) ?? '', /1 person of this type chooses a PIN/);
      await page.getByTestId('confirm-policy').click();
      await page.getByTestId('notice').waitFor();
      assert.equal(await page.getByLabel('Second factor for Employee').inputValue(), 'pin');
      const acme = await server.latchkey.stores.accounts.getTenant('acme');
      assert.equal(acme!.userTypes.find((t) => t.id === 'employee')!.secondFactor, 'pin');

      await page.getByRole('link', { name: 'Users' }).click();
      const row = page.getByTestId(`user-${lostLogin}`);
      assert.equal(await row.getByTestId(`factor-state-${lostLogin}`).textContent(), 'App linked, 10 recovery codes left');
      const phone = row.getByRole('button', { name: 'Reset authenticator app' });
      assert.equal(await phone.locator('svg').count(), 1, 'the telephone icon');
      await phone.click();
      await page.getByTestId('confirm-reset-form').waitFor();
      await page.getByTestId('confirm-reset').click();
      await page.getByTestId('notice').waitFor();
      assert.equal(await page.getByTestId(`user-${lostLogin}`).getByTestId(`factor-state-${lostLogin}`).textContent(), 'None');
      assert.equal((await server.latchkey.stores.accounts.getLogin(lostLogin))!.factors.totp, undefined);

      await page.getByRole('link', { name: 'Audit log' }).click();
      await page.getByLabel('Event').selectOption('factor.totp.reset');
      await page.getByTestId('audit-filter-submit').click();
      await page.getByTestId('audit-events').waitFor();
      assert.equal(await page.getByTestId('audit-event').count(), 1);

      await page.getByTestId('signout').click();
      await page.getByTestId('sign-in-again').waitFor();
      await page.close();
      assert.deepEqual(cspViolations, [], 'nothing blocked by the Content Security Policy');
    });

    it('a user changes their PIN', async () => {
      const person = await addPerson(server, 'nurse');
      const [login] = person.logins as [string];
      await choosePin(server, rp, person, PIN);
      const page = await context.newPage();
      await signInWithPassword(page, person.email);
      await page.getByTestId('enter-pin-form').waitFor();
      await page.getByLabel('PIN').fill(PIN);
      await page.getByTestId('enter-pin-form').getByRole('button').first().click();
      await page.getByTestId('profile').waitFor();
      assert.equal(await page.getByTestId('profile-factor').textContent(), 'PIN code');

      await page.getByTestId('change-pin-link').click();
      await page.getByLabel('Current PIN').fill('111222');
      await page.getByLabel('New PIN', { exact: true }).fill(NEW_PIN);
      await page.getByLabel('Enter the new PIN again').fill(NEW_PIN);
      await page.getByTestId('change-pin-submit').click();
      await page.getByTestId('error').waitFor();
      assert.match((await page.getByTestId('error').textContent()) ?? '', /not your current PIN/);

      await page.getByLabel('Current PIN').fill(PIN);
      await page.getByLabel('New PIN', { exact: true }).fill(NEW_PIN);
      await page.getByLabel('Enter the new PIN again').fill(NEW_PIN);
      await page.getByTestId('change-pin-submit').click();
      await page.getByTestId('notice').waitFor();
      assert.match((await page.getByTestId('notice').textContent()) ?? '', /PIN has been changed/);
      const hash = String((await server.latchkey.stores.accounts.getLogin(login))!.factors.pin!.hash);
      assert.equal(await server.latchkey.hasher.verify(hash, NEW_PIN, { pepper: true }), true);
      await page.close();
      assert.deepEqual(cspViolations, []);
    });
  });
}
