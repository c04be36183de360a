// Every page of the journey and the account pages in a real browser (Debian's
// Chromium through playwright-core), in English and Dutch, on a desktop and a
// phone (375 px): each page speaks its language (<html lang>),
// passes axe-core with no serious or critical violation, never scrolls
// sideways on the phone, has tap targets of 44 px or more there, and is
// screenshotted (docs/screenshots/{lang}-{device}-{page}.png with UPDATE_SCREENSHOTS=1). The QR code decodes to
// exactly the page's otpauth:// link. No script of ours runs: plain forms
// under the Content Security Policy.
//
// The pages do not depend on the store: this runs on the embedded one only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from '../support/layout.ts';
import type { Browser as Chromium } from 'playwright-core';
import jsQRModule from 'jsqr';
import { PNG } from 'pngjs';
import { PASSWORD, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { TENANT, codeFor, currentStep, factorFixture } from '../support/factors.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { importDocument, type ImportDocument } from '../../src/import/index.ts';
import { launchChromium, withoutChromium } from '../support/chromium.ts';
import { tempDir } from '../support/tmp.ts';
import { listenOnFreePort } from '../support/net.ts';
import { createServer, type Server } from 'node:http';

// A test run leaves the tree alone: the screenshots go to a temp dir unless asked for
// (each run would otherwise rewrite the ones with times and QR codes in them).
const shotsDir = process.env.UPDATE_SCREENSHOTS === '1' ? null : tempDir('lk-screenshots-');
const SHOTS = shotsDir?.path ?? join(ROOT, 'docs', 'screenshots');
after(() => shotsDir?.remove());
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PIN = '907146';
/** jsqr is CommonJS: its function is the default import, typed as the module's `default`. */
const jsQR = jsQRModule.default;

type Lang = 'en' | 'nl';
type Device = 'desktop' | 'phone';
const SIZES: Record<Device, { width: number; height: number }> = { desktop: { width: 1280, height: 800 }, phone: { width: 375, height: 812 } };

const UPSTREAM_CLIENT = { client_id: 'latchkey-acme', client_secret: 'upstream-secret-acme' };

/**
 * Acme Care with a third-party application (for the consent page), a few colleagues and, once it runs, an upstream
 * provider. Its applications come back to `redirectUri`, a page of the test's own.
 */
function fixture(redirectUri: string, upstreamIssuer?: string): ImportDocument {
  const doc = factorFixture();
  const acme = doc.tenants![0]!;
  acme.name = 'Acme Care';
  if (upstreamIssuer) acme.upstreams = [{ id: 'corp', name: 'Corp ID', issuer: upstreamIssuer, ...UPSTREAM_CLIENT }];
  acme.clients!.push({ client_id: 'planner', client_secret: 's3cret-planner-4f9a2c7e1b8d3f6a0c5e9b2d', client_name: 'Rota Planner', redirect_uris: [redirectUri] });
  for (const client of acme.clients!) client.redirect_uris = [redirectUri];
  doc.identities!.push({ email: 'mark@acme.test', password: PASSWORD }, { email: 'lotte@acme.test', password: PASSWORD });
  acme.logins!.push(
    { id: 'mark-manager', email: 'mark@acme.test', userType: 'manager', firstName: 'Mark', lastName: 'de Vries' },
    { id: 'lotte-nurse', email: 'lotte@acme.test', userType: 'nurse', firstName: 'Lotte', lastName: 'Bakker' },
  );
  return doc;
}

/** The people of each run: one identity with a nurse (PIN) and a manager (app) login. */
const PEOPLE: Record<`${Lang}-${Device}`, { first: string; last: string }> = {
  'en-desktop': { first: 'Emma', last: 'Wilson' },
  'en-phone': { first: 'Noah', last: 'Brown' },
  'nl-desktop': { first: 'Sanne', last: 'Jansen' },
  'nl-phone': { first: 'Daan', last: 'Visser' },
};

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

describe('the pages in Chromium: English and Dutch, desktop and phone', { skip: withoutChromium }, () => {
  let server: TestServer;
  let rp: RelyingParty;
  let planner: RelyingParty;
  let chromiumBrowser: Chromium;
  let upstream: TestUpstream;
  let application: Server;
  let redirectUri: string;

  before(async () => {
    // The applications' callback: a real page, so the journey in the browser ends somewhere real.
    application = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><title>Back at the application</title><p>Back at the application</p>');
    });
    redirectUri = `http://127.0.0.1:${await listenOnFreePort(application)}/cb`;
    server = await startServer('sqlite', { doc: fixture(redirectUri) });
    upstream = await startUpstream({ clients: [{ ...UPSTREAM_CLIENT, redirect_uris: [`${server.issuer}/upstream/corp/callback`] }] });
    const { stores, hasher, config } = server.latchkey;
    await importDocument(fixture(redirectUri, upstream.issuer), { accounts: stores.accounts, hasher, config });
    rp = await relyingParty(server.issuer);
    planner = await relyingParty(server.issuer, 'planner', 's3cret-planner-4f9a2c7e1b8d3f6a0c5e9b2d');
    chromiumBrowser = await launchChromium();
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await chromiumBrowser?.close();
    await upstream?.stop();
    await server?.stop();
    application?.closeAllConnections();
    application?.close();
  });

  async function addPerson(name: { first: string; last: string }) {
    const { accounts } = server.latchkey.stores;
    const email = `${name.first.toLowerCase()}.${name.last.toLowerCase()}@acme.test`;
    await accounts.upsertIdentity({ email, passwordHash: await server.latchkey.hasher.hash(PASSWORD) });
    const nurse = `${name.first.toLowerCase()}-nurse`;
    const manager = `${name.first.toLowerCase()}-manager`;
    await accounts.upsertLogin({ id: nurse, tenant: TENANT, email, userType: 'nurse', firstName: name.first, lastName: name.last });
    await accounts.upsertLogin({ id: manager, tenant: TENANT, email, userType: 'manager', firstName: name.first, lastName: name.last });
    return { email, nurse, manager };
  }

  for (const lang of ['en', 'nl'] as const) {
    for (const device of ['desktop', 'phone'] as const) {
      it(`walks every page in ${lang === 'en' ? 'English' : 'Dutch'} on a ${device}`, async () => {
        // English: an English browser. Dutch on the desktop: an English browser,
        // the application asks for Dutch (ui_locales), and the person picks
        // Dutch with the switch on the account pages. Dutch on the phone: a
        // Dutch phone (Accept-Language) and nothing else.
        const dutchPhone = lang === 'nl' && device === 'phone';
        const uiLocales: Record<string, string> = lang === 'nl' && device === 'desktop' ? { ui_locales: 'nl' } : {};
        const context = await chromiumBrowser.newContext({
          viewport: SIZES[device],
          deviceScaleFactor: 1,
          isMobile: device === 'phone',
          hasTouch: device === 'phone',
          locale: dutchPhone ? 'nl-NL' : 'en-GB',
        });
        const cspViolations: string[] = [];
        context.on('console', (msg) => {
          if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
        });
        const page = await context.newPage();
        const checked: string[] = [];

        /** The checks every page passes, and its screenshot. */
        async function check(name: string) {
          await page.waitForLoadState('load');
          assert.equal(await page.evaluate(() => document.documentElement.lang), lang, `${name}: <html lang>`);
          assert.equal(await page.getByTestId('tenant-name').count(), 1, `${name}: the tenant's name`);
          await page.evaluate(AXE);
          const violations = (await page.evaluate(() =>
            (window as unknown as { axe: { run(ctx: Document, options: object): Promise<{ violations: unknown[] }> } }).axe
              .run(document, { resultTypes: ['violations'] })
              .then((r) => r.violations),
          )) as Violation[];
          const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
          assert.deepEqual(
            serious.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
            [],
            `${name}: accessibility (${lang}, ${device})`,
          );
          if (device === 'phone') {
            const width = await page.evaluate(() => document.documentElement.scrollWidth);
            assert.ok(width <= SIZES.phone.width, `${name}: no sideways scrolling at 375 px (scrollWidth ${width})`);
            const small = await page.evaluate(() =>
              [...document.querySelectorAll<HTMLElement>('button, .button, input:not([type=hidden]), select, summary, nav a, .enrol-app a')]
                .filter((el) => el.offsetParent !== null)
                .map((el) => ({
                  el: `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${(el.textContent ?? '').trim().slice(0, 30)}"`,
                  height: el.getBoundingClientRect().height,
                }))
                .filter((t) => t.height < 44),
            );
            assert.deepEqual(small, [], `${name}: tap targets of at least 44 px`);
          }
          await page.screenshot({ path: join(SHOTS, `${lang}-${device}-${name}.png`) });
          checked.push(name);
        }

        const text = (testid: string) => page.getByTestId(testid).first().textContent();
        const T = (en: string, nl: string) => (lang === 'en' ? en : nl);
        const person = await addPerson(PEOPLE[`${lang}-${device}`]);

        async function startSignIn(client: RelyingParty) {
          await context.clearCookies();
          const { url } = await client.authorize({ ...uiLocales, redirect_uri: redirectUri });
          await page.goto(url);
          await page.getByTestId('login-form').waitFor();
        }
        async function password(email: string, secret = PASSWORD) {
          await page.getByLabel(T('Email address', 'E-mailadres')).fill(email);
          await page.getByLabel(T('Password', 'Wachtwoord'), { exact: true }).fill(secret);
          await page.getByTestId('login-submit').click();
        }
        const atApplication = () => page.waitForURL(`${redirectUri}**`);

        // The first sign-in, to a third-party application: a wrong password, the login choice, a new PIN, consent.
        await startSignIn(planner);
        await check('login');
        await password(person.email, 'not my password');
        await page.getByTestId('error').waitFor();
        assert.equal(await text('error'), T('The email address or password is not correct.', 'Het e-mailadres of wachtwoord is niet juist.'));
        assert.equal(await page.getByTestId('error').getAttribute('role'), 'alert');
        await page.waitForFunction(() => document.activeElement?.id === 'password', undefined, { timeout: 5000 }); // autofocus runs once the page is ready
        assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-describedby')), 'form-error', 'focus on a field the error describes');
        await check('error');
        await page.getByLabel(T('Password', 'Wachtwoord'), { exact: true }).fill(PASSWORD);
        await page.getByTestId('login-submit').click();
        await page.getByTestId('select-form').waitFor();
        await check('select-login');
        await page.getByTestId(`login-${person.nurse}`).click();
        await page.getByTestId('choose-pin-form').waitFor();
        await check('choose-pin');
        for (const field of ['pin', 'pin_confirm']) {
          assert.equal(await page.locator(`#${field}`).getAttribute('inputmode'), 'numeric');
          assert.equal(await page.locator(`#${field}`).getAttribute('autocomplete'), 'new-password');
        }
        await page.getByLabel(T('New PIN', 'Nieuwe pincode')).fill('123456');
        await page.getByLabel(T('Enter the same PIN again', 'Herhaal de pincode')).fill('123456');
        await page.getByTestId('choose-pin-submit').click();
        await page.getByTestId('error').waitFor();
        assert.match((await text('error')) ?? '', lang === 'en' ? /plain sequence/ : /eenvoudige reeks/);
        await page.waitForFunction(() => document.activeElement?.id === 'pin', undefined, { timeout: 5000 });
        await page.getByLabel(T('New PIN', 'Nieuwe pincode')).fill(PIN);
        await page.getByLabel(T('Enter the same PIN again', 'Herhaal de pincode')).fill(PIN);
        await page.getByTestId('choose-pin-submit').click();
        await page.getByTestId('consent-form').waitFor();
        assert.match((await page.locator('main').textContent()) ?? '', /Rota Planner/);
        await check('consent');
        await page.getByTestId('consent-allow').click();
        await atApplication();

        // The PIN at the next sign-in.
        await startSignIn(rp);
        await password(person.email);
        await page.getByTestId(`login-${person.nurse}`).click();
        await page.getByTestId('enter-pin-form').waitFor();
        assert.equal(await page.locator('#pin').getAttribute('autocomplete'), 'current-password');
        await check('enter-pin');
        await page.getByLabel(T('PIN', 'Pincode')).fill(PIN);
        await page.getByTestId('enter-pin-submit').click();
        await atApplication();

        // Linking the authenticator app: the QR code decodes to exactly the link on the page.
        await startSignIn(rp);
        await password(person.email);
        await page.getByTestId(`login-${person.manager}`).click();
        await page.getByTestId('link-authenticator-form').waitFor();
        await check('link-authenticator');
        const href = await page.getByTestId('totp-link').getAttribute('href');
        assert.match(href ?? '', /^otpauth:\/\/totp\//);
        const qr = page.getByTestId('totp-qr');
        const box = (await qr.boundingBox())!;
        assert.ok(box.width >= (device === 'phone' ? 200 : 256), `the QR code is large enough to scan (${box.width} px)`);
        const png = PNG.sync.read(await qr.screenshot());
        const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
        assert.equal(decoded?.data, href, 'the QR code encodes exactly the otpauth:// link');
        const link = page.getByTestId('totp-link');
        const linkBox = (await link.boundingBox())!;
        if (device === 'phone') {
          assert.ok(linkBox.height >= 48 && linkBox.width >= 300, 'on a phone the app link is a large button');
          assert.ok(linkBox.y < box.y, 'and comes before the QR code');
        } else {
          assert.ok(box.y < linkBox.y, 'on a wide screen the QR code comes first');
        }
        const secret = ((await page.getByTestId('totp-secret').textContent()) ?? '').replace(/\s+/g, '');
        assert.equal(new URL(href!.replace('otpauth://', 'https://')).searchParams.get('secret'), secret);
        assert.equal(await page.locator('#code').getAttribute('autocomplete'), 'one-time-code');
        assert.equal(await page.locator('#code').getAttribute('inputmode'), 'numeric');
        const step = currentStep();
        await page.getByLabel(T('6-digit code', '6-cijferige code')).fill(await codeFor(secret, step));
        await page.getByTestId('link-authenticator-submit').click();
        // The recovery codes, shown once: saved, then on.
        await page.getByTestId('recovery-codes').waitFor();
        await page.getByTestId('recovery-saved').check();
        await page.getByTestId('recovery-saved-continue').click();
        await atApplication();

        // The code at the next sign-in.
        await startSignIn(rp);
        await password(person.email);
        await page.getByTestId(`login-${person.manager}`).click();
        await page.getByTestId('enter-code-form').waitFor();
        await check('enter-code');
        await page.getByLabel(T('6-digit code', '6-cijferige code')).fill(await codeFor(secret, Math.max(step + 1, currentStep())));
        await page.getByTestId('enter-code-submit').click();
        await atApplication();

        // The first sign-in with an upstream account: "confirm it's you" with the password, then the login choice.
        upstream.user = { sub: `corp-${person.nurse}`, email: person.email, email_verified: true };
        await startSignIn(rp);
        await page.getByRole('button', { name: T('Sign in with Corp ID', 'Inloggen met Corp ID') }).click();
        await page.getByTestId('upstream-confirm-form').waitFor();
        await check('upstream-confirm');
        await page.getByLabel(T('Password', 'Wachtwoord'), { exact: true }).fill(PASSWORD);
        await page.getByTestId('upstream-confirm-submit').click();
        await page.getByTestId('select-form').waitFor();

        // The owner's account pages; the owner's profile lists an upstream link.
        const owner = (await server.latchkey.stores.accounts.findIdentityByEmail('owner@acme.test'))!;
        await server.latchkey.stores.accounts.linkUpstream({ issuer: upstream.issuer, subject: 'corp-owner', identityId: owner.id });
        await context.clearCookies();
        await page.goto(`${server.issuer}/account`);
        await page.getByTestId('login-form').waitFor();
        if (lang === 'nl' && !dutchPhone) {
          assert.equal(await page.evaluate(() => document.documentElement.lang), 'en', 'an English browser without ui_locales');
          await page.getByTestId('language-nl').click();
          await page.getByTestId('language-en').waitFor();
        }
        await password('owner@acme.test');
        await page.getByTestId('profile').waitFor();
        assert.equal(await text('profile-factor'), T('None', 'Geen'));
        assert.equal(await text('upstream-link-provider'), 'Corp ID');
        await check('profile');
        await page.getByTestId('unlink-upstream').click();
        await page.getByTestId('no-upstream-links').waitFor();
        await page.getByTestId('nav-security').click();
        await page.getByTestId('policies').waitFor();
        await check('security');
        await page.getByTestId('nav-users').click();
        await page.getByTestId('users').waitFor();
        assert.equal(await text(`factor-state-${person.manager}`), T('App linked, 10 recovery codes left', 'App gekoppeld, nog 10 herstelcodes'));
        const phone = page.getByTestId(`reset-totp-${person.manager}`);
        assert.equal(await phone.getAttribute('title'), T('Reset authenticator app', 'Authenticator-app resetten'));
        assert.equal(
          await page
            .getByRole('button', { name: T('Reset authenticator app', 'Authenticator-app resetten') })
            .first()
            .locator('svg')
            .count(),
          1,
          'the telephone icon button has a name',
        );
        await check('users');
        await page.getByTestId('add-person').click();
        await page.getByTestId('add-person-form').waitFor();
        await page.getByLabel(T('First name', 'Voornaam')).fill('Lotte');
        await page.getByLabel(T('Last name', 'Achternaam')).fill('Bakker');
        await page.getByLabel(T('Email', 'E-mailadres'), { exact: true }).fill('lotte@acme.test');
        await page.getByTestId('add-person-submit').click();
        await page.getByTestId('same-name-warning').waitFor();
        await check('add-person');
        await page.getByTestId('cancel-add').click();
        await page.getByTestId('users').waitFor();
        await page.getByTestId('nav-audit').click();
        await page.getByTestId('audit-events').waitFor();
        await check('audit');
        await page.getByTestId('signout').click();
        await page.getByTestId('sign-in-again').waitFor();

        // A person changes their PIN.
        await page.getByTestId('sign-in-again').click();
        await page.getByTestId('login-form').waitFor();
        await password(person.email);
        await page.getByTestId(`login-${person.nurse}`).click();
        await page.getByTestId('enter-pin-form').waitFor();
        await page.getByLabel(T('PIN', 'Pincode')).fill(PIN);
        await page.getByTestId('enter-pin-submit').click();
        await page.getByTestId('profile').waitFor();
        await page.getByTestId('change-pin-link').click();
        await page.getByTestId('change-pin-form').waitFor();
        await check('change-pin');
        await page.getByLabel(T('Current PIN', 'Huidige pincode')).fill(PIN);
        await page.getByLabel(T('New PIN', 'Nieuwe pincode'), { exact: true }).fill('583920');
        await page.getByLabel(T('Enter the new PIN again', 'Herhaal de nieuwe pincode')).fill('583920');
        await page.getByTestId('change-pin-submit').click();
        await page.getByTestId('notice').waitFor();
        assert.equal(await text('notice'), T('Your PIN has been changed.', 'Je pincode is gewijzigd.'));

        // A forgotten password: the form, its answer, and the page of the mailed link.
        await startSignIn(rp);
        await page.getByTestId('forgot-link').click();
        await page.getByTestId('forgot-form').waitFor();
        await check('forgot-password');
        await page.getByLabel(T('Email address', 'E-mailadres')).fill('nobody@acme.test');
        await page.getByTestId('forgot-submit').click();
        await page.getByTestId('forgot-sent').waitFor();
        await check('forgot-sent');
        const token = randomBytes(32).toString('base64url');
        const identity = (await server.latchkey.stores.accounts.findIdentityByEmail(person.email))!;
        await server.latchkey.stores.links.create(createHash('sha256').update(token).digest('base64url'), {
          purpose: 'reset',
          identityId: identity.id,
          createdAt: new Date(),
          expiresAt: new Date(Date.now() + 600_000),
        });
        await page.goto(`${server.issuer}/reset/${token}${dutchPhone || lang === 'en' ? '' : '?lang=nl'}`);
        await page.getByTestId('reset-form').waitFor();
        await check('reset-password');

        assert.deepEqual(checked, [
          'login',
          'error',
          'select-login',
          'choose-pin',
          'consent',
          'enter-pin',
          'link-authenticator',
          'enter-code',
          'upstream-confirm',
          'profile',
          'security',
          'users',
          'add-person',
          'audit',
          'change-pin',
          'forgot-password',
          'forgot-sent',
          'reset-password',
        ]);
        assert.deepEqual(cspViolations, [], 'nothing blocked by the Content Security Policy');
        await context.close();
      });
    }
  }
});
