// In two real browsers (Chromium): a person signs in to their account and to
// the portal in browser A; the owner, in browser B, finds that session on the
// person's page and signs it out. Browser A's next account page and its next
// sign-in to the portal ask for the password again, and the portal's refresh
// token from browser A is refused. Plain forms under the CSP. Both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import type { Browser as Chromium, BrowserContext, Page } from 'playwright-core';
import { createServer, type Server } from 'node:http';
import { PASSWORD, SETUPS, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { listenOnFreePort } from '../support/net.ts';
import { launchChromium, withoutChromium } from '../support/chromium.ts';
import { addPerson } from '../support/factors.ts';
import { accountFixture } from './support.ts';

const SECRET = 's3cret-rota-4f9a2c7e1b8d3f6a0c5e9b2d7a1c';

/** The portal's redirect URI, served: it records each callback URL and answers a small page. */
async function portalCallback() {
  const urls: string[] = [];
  const http: Server = createServer((req, res) => {
    // A browser asks for the favicon too.
    if (req.url!.startsWith('/cb')) urls.push(new URL(req.url!, base).href);
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>Portal</title><p data-testid="portal">Signed in</p>');
  });
  const base = `http://127.0.0.1:${await listenOnFreePort(http)}`;
  return { uri: `${base}/cb`, urls, close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}

for (const setup of SETUPS) {
  describe(`the owner signs a person's browser out, in Chromium (${setup})`, { skip: withoutChromium }, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let chromium: Chromium;
    let portal: Awaited<ReturnType<typeof portalCallback>>;
    const contexts: BrowserContext[] = [];
    const cspViolations: string[] = [];

    before(async () => {
      portal = await portalCallback();
      const doc = accountFixture();
      doc.tenants![0]!.clients!.push({ client_id: 'rota', client_name: 'Rota', client_secret: SECRET, redirect_uris: [portal.uri], first_party: true });
      server = await startServer(setup, { doc });
      rp = await relyingParty(server.issuer, 'rota', SECRET);
      chromium = await launchChromium();
    });
    after(async () => {
      for (const c of contexts) await c.close();
      await chromium?.close();
      await server?.stop();
      await portal?.close();
    });

    async function newBrowser() {
      const context = await chromium.newContext();
      contexts.push(context);
      context.on('console', (msg) => {
        if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
      });
      return { page: await context.newPage() };
    }

    async function signInToAccount(page: Page, email: string) {
      await page.goto(`${server.issuer}/account`);
      await page.locator('#email').fill(email);
      await page.locator('#password').fill(PASSWORD);
      await page.getByTestId('login-submit').click();
      await page.getByTestId('profile').waitFor();
    }

    it("signs the person's browser out: its account pages and its next sign-in ask again, its refresh token is refused", async () => {
      const person = await addPerson(server, 'employee');
      const [login] = person.logins as [string];

      const a = await newBrowser();
      await signInToAccount(a.page, person.email);
      // The same browser signs in to the portal without a password (single sign-on) and the portal gets a refresh token.
      const pending = await rp.authorize({ redirect_uri: portal.uri });
      await a.page.goto(pending.url);
      await a.page.getByTestId('portal').waitFor();
      const tokens = await rp.callback(portal.urls.at(-1)!, pending);
      assert.equal(tokens.claims()!.sub, login);
      assert.ok(tokens.refresh_token);

      const b = await newBrowser();
      await signInToAccount(b.page, 'owner@acme.test');
      await b.page.getByTestId('nav-users').click();
      await b.page.getByTestId(`person-link-${login}`).click();
      const session = b.page.getByTestId('sessions').getByTestId('session');
      assert.equal(await session.count(), 1, "the person's one browser");
      assert.match((await session.getByTestId('session-apps').textContent())!, /Rota/);
      assert.match((await session.getByTestId('session-apps').textContent())!, /Latchkey account/);
      assert.match((await session.getByTestId('session-browser').textContent())!, /Chrome on Linux/);
      await session.getByTestId('end-session').click();
      await b.page.getByTestId('notice').waitFor();
      assert.match((await b.page.getByTestId('notice').textContent())!, /That session was signed out/);
      await b.page.getByTestId('person-no-sessions').waitFor();

      await a.page.goto(`${server.issuer}/account`);
      await a.page.getByTestId('login-form').waitFor();
      assert.equal(new URL(a.page.url()).pathname.startsWith('/interaction/'), true, `the account pages ask to sign in: ${a.page.url()}`);
      const again = await rp.authorize({ redirect_uri: portal.uri });
      await a.page.goto(again.url);
      await a.page.getByTestId('login-form').waitFor();
      assert.equal(portal.urls.length, 1, 'no single sign-on to the portal any more');
      await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'the refresh token is refused');

      const [event] = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', login, type: 'session.ended', limit: 1 });
      assert.deepEqual(event?.detail, { by: 'acme-owner', sessions: 1 });
      assert.deepEqual(cspViolations, [], 'nothing blocked by the Content Security Policy');
    });
  });
}
