// In a real browser (Chromium): My Account at the top, switching to another
// login from the header (oidc-provider's own auto-submitting logout form runs
// under our CSP; the other login's factor is asked, never the password), and
// the audit log's times rewritten in the browser's zone and locale by
// public/local-time.js — with nothing blocked by the Content Security Policy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser as Chromium, BrowserContext, Page } from 'playwright-core';
import { PASSWORD, SETUPS, startServer, type TestServer } from '../support/latchkey.ts';
import { launchChromium, withoutChromium } from '../support/chromium.ts';
import { codeFor, currentStep } from '../support/factors.ts';
import { accountFixture } from './support.ts';

function fixture() {
  const doc = accountFixture();
  doc.tenants![0]!.logins!.push({ id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager', firstName: 'Jane', lastName: 'Doe (Manager)' });
  return doc;
}

for (const setup of SETUPS) {
  describe(`My Account, switching logins and local times in Chromium (${setup})`, { skip: withoutChromium }, () => {
    let server: TestServer;
    let chromium: Chromium;
    let context: BrowserContext;
    const cspViolations: string[] = [];

    before(async () => {
      server = await startServer(setup, { doc: fixture() });
      chromium = await launchChromium();
    });
    after(async () => {
      await chromium?.close();
      await server?.stop();
    });

    async function newPage(options: { timezoneId?: string; locale?: string } = {}): Promise<Page> {
      context = await chromium.newContext(options);
      context.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
      });
      return context.newPage();
    }

    async function signIn(page: Page, email: string, login?: string) {
      await page.goto(`${server.issuer}/account`);
      await page.getByTestId('login-form').waitFor();
      await page.locator('#email').fill(email);
      await page.locator('#password').fill(PASSWORD);
      await page.getByTestId('login-submit').click();
      if (login) {
        await page.getByTestId('select-form').waitFor();
        await page.getByTestId(`login-${login}`).click();
      }
      await page.getByTestId('my-account').waitFor();
    }

    it('switches from the header to the manager login: its app is set up, the password is not asked', async () => {
      const page = await newPage();
      await signIn(page, 'jane@acme.test', 'jane-acme');
      assert.equal(await page.getByTestId('signed-in-as').textContent(), 'Jane Doe — Employee');
      assert.equal(await page.getByTestId('my-account').textContent(), 'My Account');
      await page.getByTestId('switch-login').selectOption('jane-mgr');
      await page.getByTestId('switch-submit').click();
      await page.getByTestId('link-authenticator-form').waitFor();
      assert.equal(await page.getByTestId('login-form').count(), 0, 'no password again');
      const secret = ((await page.getByTestId('totp-secret').textContent()) ?? '').replace(/\s+/g, '');
      await page.locator('#code').fill(await codeFor(secret, currentStep()));
      await page.getByTestId('link-authenticator-form').locator('button[type=submit]').click();
      // The app's recovery codes are shown once, and the person says they kept them.
      await page.getByTestId('recovery-saved').check();
      await page.getByTestId('recovery-saved-continue').click();
      await page.getByTestId('signed-in-as').filter({ hasText: 'Manager' }).waitFor();
      assert.equal(await page.getByTestId('signed-in-as').textContent(), 'Jane Doe (Manager) — Manager');
      // The start page names the login too, and links to My Account.
      await page.goto(`${server.issuer}/`);
      assert.equal(await page.getByTestId('signed-in-as').textContent(), 'Jane Doe (Manager) — Manager');
      await page.getByTestId('my-account').click();
      await page.waitForURL(`${server.issuer}/account`);
      await context.close();
      assert.deepEqual(cspViolations, [], 'nothing blocked by the Content Security Policy');
    });

    it("shows the audit log's times in the browser's zone and locale, and the filter learns the zone", async () => {
      await server.latchkey.stores.accounts.appendAudit({
        tenant: 'acme',
        login: 'jane-acme',
        type: 'factor.pin.failed',
        time: new Date('2020-03-07T15:04:05Z'),
        ip: null,
        userAgent: null,
        outcome: 'failure',
      });
      const page = await newPage({ timezoneId: 'Asia/Tokyo', locale: 'nl-NL' });
      await signIn(page, 'owner@acme.test');
      await page.goto(`${server.issuer}/account/audit?type=factor.pin.failed&lang=nl`);
      await page.getByTestId('audit-events').waitFor();
      const time = page.getByTestId('audit-time').first();
      assert.equal(await time.getAttribute('datetime'), '2020-03-07T15:04:05.000Z');
      assert.equal(await time.textContent(), '8 mrt 2020, 00:04:05', 'Tokyo time, Dutch format');
      assert.equal(await page.locator('input[name=tz]').inputValue(), 'Asia/Tokyo');
      assert.equal(await page.getByTestId('audit-time-zone').textContent(), 'Tijden in Asia/Tokyo.');
      // Filtering again: the server now renders in that zone itself.
      await page.getByTestId('audit-filter-submit').click();
      await page.waitForURL(/tz=Asia%2FTokyo/);
      await context.close();
      assert.deepEqual(cspViolations, [], 'nothing blocked by the Content Security Policy');
    });
  });
}
