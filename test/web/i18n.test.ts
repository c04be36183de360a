// Pages speak English and Dutch: one catalogue per language with
// the same keys, every key the code and the views use exists in both, and the
// language is chosen from ui_locales, then the language switch, then
// Accept-Language, then English.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/layout.ts';
import { LANGUAGES, hasText, readCatalogue, translator, type Catalogue } from '../../src/i18n.ts';
import { AUDIT_TYPES, USER_ACTIONS } from '../../src/account/owner.ts';
import { NOTICES } from '../../src/account/labels.ts';
import type { PinProblem } from '../../src/factors/pin/rules.ts';
import type { PasswordProblem } from '../../src/account/passwords.ts';
import { FACTORS, METHODS } from '../../src/factors/registry.ts';
import { factorTextKeys, methodTextKeys } from '../../src/factors/texts.ts';
import { LatchkeyError } from '../../src/errors.ts';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { PASSWORD, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';

function flatten(catalogue: Catalogue, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(catalogue)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'string') out.set(path, value);
    else for (const [k, v] of flatten(value, path)) out.set(k, v);
  }
  return out;
}

function files(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path, ext);
    return name.endsWith(ext) ? [path] : [];
  });
}

const variables = (text: string) => [...text.matchAll(/\{\{\s*([a-zA-Z]+)\s*\}\}/g)].map((m) => m[1]).sort();

/** Plural forms (`retryAfter_one`, `retryAfter_other`) are looked up by their base key. */
const baseKeys = (keys: Iterable<string>) => new Set([...keys].map((k) => k.replace(/_(one|other)$/, '')));

describe('catalogues', () => {
  const catalogues = Object.fromEntries(LANGUAGES.map((lang) => [lang, flatten(readCatalogue(lang))]));
  const en = catalogues.en!;
  const nl = catalogues.nl!;

  it('have the same keys in English and Dutch, none empty, with the same {{values}}', () => {
    const missingInNl = [...en.keys()].filter((k) => !nl.has(k));
    const missingInEn = [...nl.keys()].filter((k) => !en.has(k));
    assert.deepEqual(missingInNl, [], 'keys missing in locales/nl.json');
    assert.deepEqual(missingInEn, [], 'keys missing in locales/en.json');
    for (const [lang, texts] of Object.entries(catalogues)) {
      for (const [key, text] of texts) assert.ok(text.trim().length > 0, `${lang}: ${key} is empty`);
    }
    for (const [key, text] of en) assert.deepEqual(variables(nl.get(key)!), variables(text), `the same values in ${key}`);
  });

  it('hold every key the views and the code use', () => {
    const used = new Map<string, string>();
    const note = (key: string, where: string) => used.set(key, where);
    for (const file of files(join(ROOT, 'views'), '.pug')) {
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(/\bt\(\s*'([A-Za-z0-9_.-]+)'/g)) if (!m[1]!.endsWith('.')) note(m[1]!, file);
    }
    // In the code: t('…') calls, and the error keys given to LatchkeyError and its constructors.
    for (const file of files(join(ROOT, 'src'), '.ts')) {
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(/\bt\(\s*'([A-Za-z0-9_.-]+)'/g)) note(m[1]!, file);
      for (const m of source.matchAll(/['`]((?:errors|error|notices|factorState|provider|titles)\.[A-Za-z0-9_.-]*[A-Za-z0-9_])['`]/g)) note(m[1]!, file);
    }
    // Keys made from a value: every value there is.
    const problems: PinProblem[] = ['not_digits', 'too_short', 'too_long', 'one_digit', 'sequence', 'mismatch'];
    const passwordProblems: PasswordProblem[] = ['too_short', 'too_long', 'common', 'email', 'mismatch'];
    for (const p of [...problems, 'unchanged']) note(`errors.newPin.${p}`, 'src/errors.ts invalidNewPin');
    for (const p of [...passwordProblems, 'unchanged']) note(`errors.password.${p}`, 'src/account/profile.ts');
    for (const n of NOTICES) note(`notices.${n}`, 'src/account/labels.ts');
    for (const f of FACTORS) for (const key of factorTextKeys(f)) note(key, `src/factors/${f.id}`);
    for (const m of METHODS) for (const key of methodTextKeys(m)) note(key, `src/factors/${m.id}`);
    for (const type of AUDIT_TYPES) note(`account.audit.events.${type}`, 'views/account/audit.pug');
    for (const outcome of ['success', 'failure']) note(`account.audit.outcomes.${outcome}`, 'views/account/audit.pug');
    for (const kind of USER_ACTIONS) for (const part of ['title', 'text', 'confirm']) note(`account.reset.${kind}.${part}`, 'views/account/confirm-reset.pug');
    for (const lock of ['locked', 'frozen']) note(`account.users.${lock}`, 'views/account/users.pug');
    for (const scope of ['openid', 'profile', 'email', 'offline_access']) note(`consent.scope.${scope}`, 'views/consent.pug');

    assert.ok(used.size > 150, `found ${used.size} keys: the scan works`);
    const known = baseKeys(en.keys());
    const missing = [...used].filter(([key]) => !known.has(key)).map(([key, where]) => `${key} (${where})`);
    assert.deepEqual(missing, [], 'keys used but not in the catalogues');
    for (const lang of LANGUAGES) for (const key of used.keys()) assert.ok(hasText(lang, key) || hasText(lang, `${key}_other`), `${lang}: ${key}`);
  });

  it("interpolate values and plurals, and errors speak the page's language while their message stays English", () => {
    const nlT = translator('nl');
    assert.equal(nlT('common.retryAfter', { count: 1 }), 'Probeer het over 1 seconde opnieuw.');
    assert.equal(nlT('common.retryAfter', { count: 30 }), 'Probeer het over 30 seconden opnieuw.');
    const err = new LatchkeyError('invalid_new_pin', 400, 'errors.newPin.too_short', { minLength: 6 });
    assert.equal(err.message, 'Your PIN needs at least 6 digits.');
    assert.equal(nlT(err.key, err.detail), 'Je pincode moet minstens 6 cijfers hebben.');
    assert.equal(nlT('errors.upstream.unavailable', { provider: '<b>Corp</b>' }).startsWith('<b>Corp</b>'), true, 'values are not escaped twice: the views escape');
  });
});

/** A request with headers, following redirects on this server with the same headers. */
async function open(browser: Browser, url: string, headers: Record<string, string> = {}): Promise<Page> {
  let page = await browser.request(url, { headers });
  for (let i = 0; i < 10 && page.status >= 300 && page.status < 400; i++) {
    const location = new URL(page.headers.get('location')!, page.url).href;
    if (!location.startsWith(browser.base)) break;
    page = await browser.request(location, { headers });
  }
  return page;
}

const langOf = (page: Page) => /<html lang="([^"]+)"/.exec(page.html)?.[1];

describe('choosing the language', () => {
  let server: TestServer;
  let rp: RelyingParty;
  before(async () => {
    server = await startServer('sqlite');
    rp = await relyingParty(server.issuer);
  });
  after(() => server?.stop());

  async function loginPage(params: Record<string, string> = {}, headers: Record<string, string> = {}, browser = new Browser(server.issuer)) {
    const { url } = await rp.authorize(params);
    return { browser, page: await open(browser, url, headers) };
  }

  it('speaks English without any hint, and Dutch for ui_locales=nl, with <html lang> and Content-Language', async () => {
    const { page: english } = await loginPage();
    assert.equal(langOf(english), 'en');
    assert.match(english.html, /<label for="email">Email address<\/label>/);
    const { page: dutch } = await loginPage({ ui_locales: 'nl' });
    assert.equal(langOf(dutch), 'nl');
    assert.equal(dutch.headers.get('content-language'), 'nl');
    assert.match(dutch.html, /<label for="email">E-mailadres<\/label>/);
    assert.match(dutch.html, /<label for="password">Wachtwoord<\/label>/);
    assert.match(dutch.html, /<title>Inloggen · Acme Care<\/title>/);
  });

  it('takes the first language it speaks from ui_locales, before Accept-Language', async () => {
    assert.equal(langOf((await loginPage({ ui_locales: 'de-DE nl-BE en' })).page), 'nl');
    assert.equal(langOf((await loginPage({ ui_locales: 'fr en' }, { 'accept-language': 'nl' })).page), 'en');
    assert.equal(langOf((await loginPage({ ui_locales: 'fr de' }, { 'accept-language': 'nl' })).page), 'nl', 'none spoken: Accept-Language');
  });

  it('follows Accept-Language without ui_locales', async () => {
    assert.equal(langOf((await loginPage({}, { 'accept-language': 'nl-NL,nl;q=0.9,en;q=0.8' })).page), 'nl');
    assert.equal(langOf((await loginPage({}, { 'accept-language': 'de, nl;q=0.5' })).page), 'nl');
    assert.equal(langOf((await loginPage({}, { 'accept-language': 'de, fr' })).page), 'en');
    assert.equal(langOf((await loginPage({}, { 'accept-language': 'en-US, nl;q=0.9' })).page), 'en');
  });

  it('switches with ?lang= (a cookie, then back to the same page), even over ui_locales for the sign-in under way', async () => {
    const { browser, page } = await loginPage({ ui_locales: 'en' });
    assert.equal(langOf(page), 'en');
    const link = /<a href="([^"]+)" lang="nl" hreflang="nl" data-testid="language-nl">Nederlands<\/a>/.exec(page.html);
    assert.ok(link, 'a link to the Dutch page');
    const href = link[1]!.replace(/&amp;/g, '&');
    assert.equal(href, `${new URL(page.url).pathname}?lang=nl`);
    const switched = await browser.request(href);
    assert.equal(switched.status, 303);
    assert.equal(switched.headers.get('location'), new URL(page.url).pathname, 'back to the page, without ?lang');
    assert.match(switched.headers.get('set-cookie') ?? '', /latchkey_lang=nl\.[0-9]+;.*httponly/i);
    const dutch = await browser.get(switched.headers.get('location')!);
    assert.equal(langOf(dutch), 'nl');
    assert.match(dutch.html, /data-testid="language-en"/);

    // A wrong password on the Dutch page: the error in Dutch, announced and described on the fields.
    const wrong = await browser.post(actionOf(dutch, 'login-form'), { email: 'jane@acme.test', password: 'nope', csrf: csrfOf(dutch) });
    assert.equal(wrong.status, 400);
    assert.match(wrong.html, /<p class="error" role="alert" id="form-error" data-testid="error">Het e-mailadres of wachtwoord is niet juist\.<\/p>/);
    assert.match(wrong.html, /<input[^>]*id="password"[^>]*autofocus[^>]*aria-describedby="form-error"/);
    assert.match(wrong.html, /href="\/interaction\/[^"?]+\?lang=en"/, "the switch on a form's answer leads to the page, not the POST");

    // The next sign-in asks for English: the earlier choice gives way to ui_locales; without ui_locales it holds.
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(langOf((await loginPage({ ui_locales: 'en' }, {}, browser)).page), 'en');
    assert.equal(langOf((await loginPage({}, { 'accept-language': 'en' }, browser)).page), 'nl');
  });

  it('speaks the language on the account pages, the start page and error pages too', async () => {
    const nl = { 'accept-language': 'nl' };
    const browser = new Browser(server.issuer);
    const signedOut = await open(browser, '/account/signed-out', nl);
    assert.equal(langOf(signedOut), 'nl');
    assert.match(signedOut.html, /Je bent uitgelogd/);
    const login = await open(browser, '/account', nl);
    assert.match(login.html, /data-testid="tenant-name">Latchkey-account</);
    const expired = await browser.request('/interaction/nope/login', {
      method: 'POST',
      body: new URLSearchParams({ csrf: 'x' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...nl },
    });
    assert.equal(expired.status, 400);
    assert.match(expired.html, /Deze inlogpoging is verlopen/);
    const json = await browser.request('/interaction/nope/login', {
      method: 'POST',
      body: new URLSearchParams({ csrf: 'x' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...nl },
    });
    assert.equal(
      (JSON.parse(json.html) as { error_description: string }).error_description,
      'This sign-in has expired. Go back to the application and start again.',
      'JSON bodies stay English',
    );
    // Cancelling the account pages' sign-in (Dutch chosen with the switch: redirects carry no Accept-Language here).
    assert.equal((await browser.request('/account?lang=nl')).status, 303);
    const cancelled = await browser.post(actionOf(login, 'login-form').replace(/\/login$/, '/abort'), { csrf: csrfOf(login) }, nl);
    assert.equal(cancelled.status, 400);
    assert.match(cancelled.html, /<h1>Inloggen geannuleerd<\/h1>/);
    const providerError = await open(browser, '/auth?client_id=nobody&response_type=code&scope=openid&redirect_uri=http://x/cb&ui_locales=nl');
    assert.equal(langOf(providerError), 'nl');
    assert.match(providerError.html, /Inloggen kan niet doorgaan/);
  });

  it('never sends the switch to another site', async () => {
    const browser = new Browser(server.issuer);
    for (const path of ['//evil.example/x?lang=nl', '/\\evil.example?lang=nl']) {
      const res = await browser.request(`${server.issuer}${path}`);
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get('location'), '/', path);
    }
    const ignored = await browser.request('/account/signed-out?lang=de');
    assert.equal(ignored.status, 200, 'a language we do not speak is ignored');
    assert.equal((await browser.request('/account/signed-out?lang=nl&lang=en')).status, 200, 'so is a repeated one');
  });

  it('keeps the sign-in working in Dutch end to end', async () => {
    const browser = new Browser(server.issuer);
    const { url, ...pending } = await rp.authorize({ ui_locales: 'nl' });
    let page = await open(browser, url);
    page = await browser.post(actionOf(page, 'login-form'), { email: 'bob@acme.test', password: PASSWORD, csrf: csrfOf(page) });
    assert.ok(page.url.startsWith('http://127.0.0.1:8080/cb'), `the callback, got ${page.status} ${page.url}`);
    const tokens = await rp.callback(page.url, pending);
    assert.equal(tokens.claims()?.sub, 'bob-emp');

    // The provider's own pages: signing out, in the language end_session asks for.
    const logout = await open(browser, '/session/end?ui_locales=nl');
    assert.equal(logout.status, 200);
    assert.equal(langOf(logout), 'nl');
    assert.match(logout.html, /<h1>Uitloggen\?<\/h1>[^]*Ja, log mij uit/);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(logout.html)?.[1];
    assert.ok(xsrf, 'the logout form');
    const confirmed = await browser.request('/session/end/confirm', {
      method: 'POST',
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const loggedOut = await open(browser, new URL(confirmed.headers.get('location')!, server.issuer).href, { 'accept-language': 'nl' });
    assert.equal(loggedOut.status, 200);
    assert.match(loggedOut.html, /<h1>Je bent uitgelogd<\/h1>/);
  });
});

/** What a person reads on a page: its text, and the texts of titles, labels, placeholders and alternatives. */
function visibleText(html: string): string {
  const body = html.replace(/<script[^]*?<\/script>/g, ' ').replace(/<style[^]*?<\/style>/g, ' ');
  // A language switch names the other language in that language ("English"): not page text.
  const withoutSwitch = body.replace(/<nav class="languages"[^]*?<\/nav>/g, ' ');
  const attributes = [...withoutSwitch.matchAll(/\s(?:title|placeholder|aria-label|alt)="([^"]*)"/g)].map((m) => m[1]);
  const decode = (s: string) =>
    s
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  return decode(`${withoutSwitch.replace(/<[^>]+>/g, ' ')} ${attributes.join(' ')}`).replace(/\s+/g, ' ');
}

describe('no English text on a Dutch page', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const nl = { 'accept-language': 'nl' };
  const en = flatten(readCatalogue('en'));
  const dutch = [...flatten(readCatalogue('nl')).values()];
  // The English catalogue's texts, cut at their {{values}}, that are not Dutch too (a name like "Latchkey" is both).
  const englishPieces = [
    ...new Set(
      [...en.values()]
        .flatMap((text) => text.split(/\{\{[^}]+\}\}/))
        .map((piece) => piece.trim())
        .filter((piece) => piece.length >= 8 && /[a-z]{3,} [a-z]/i.test(piece) && !dutch.some((d) => d.includes(piece))),
    ),
  ];
  // Words of English sentences. Names the tenant gave (its user types, "Employee") are its data, not page text.
  const ENGLISH_WORDS = /\b(the|your|you|and|with|please|sign in|signed in|cancel|back to|try again|owner of)\b/i;

  before(async () => {
    // The demo tenant too: its start page lists the demo people.
    server = await startServer('sqlite', { env: { DEMO: 'true' } });
    rp = await relyingParty(server.issuer);
  });
  after(() => server?.stop());

  function assertDutch(page: Page, what: string) {
    assert.equal(langOf(page), 'nl', `${what}: a Dutch page (${page.status} ${page.url})`);
    const text = visibleText(page.html);
    const found = englishPieces.filter((piece) => text.includes(piece));
    assert.deepEqual(found, [], `${what}: English catalogue text on the Dutch page`);
    const word = ENGLISH_WORDS.exec(text);
    assert.equal(word, null, `${what}: an English word "${word?.[0]}" in: …${text.slice(Math.max(0, (word?.index ?? 0) - 80), (word?.index ?? 0) + 80)}…`);
  }

  it('finds English on a page that has some (the check works)', () => {
    const sample = '<!DOCTYPE html><html lang="nl"><body><p>Kies een login</p><button>Sign in to the demo app</button></body></html>';
    assert.throws(() => assertDutch({ status: 200, url: '/', html: sample, headers: new Headers() }, 'sample'), /English/);
    assert.ok(englishPieces.length > 200, `${englishPieces.length} pieces of English to look for`);
  });

  it('speaks only Dutch on the start page, the sign-in, the account and owner pages, the demo and the error pages', async () => {
    const browser = new Browser(server.issuer);
    const start = await open(browser, '/', nl);
    assertDutch(start, 'the start page');
    assert.match(start.html, /Olivia Owner, eigenaar van Demo Care — tweede factor: een pincode, gekozen bij de eerste keer inloggen/);
    assert.doesNotMatch(visibleText(start.html), /— (owner|employee|manager)\b/, 'the demo people by their factor, not by user type ids');
    // This client does not send Accept-Language on the redirects it follows: the switch's cookie speaks for it.
    await browser.request('/?lang=nl');
    assertDutch(await open(browser, '/nothing-here', nl), 'a 404 page');

    // The demo: its sign-in, cancelled, back on the start page with a plain sentence.
    const demo = await open(browser, '/demo/start', nl);
    assertDutch(demo, "the demo's login page");
    const cancelled = await browser.request(actionOf(demo, 'login-form').replace(/\/login$/, '/abort'), {
      method: 'POST',
      body: new URLSearchParams({ csrf: csrfOf(demo) }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...nl },
    });
    const back = await open(browser, new URL(cancelled.headers.get('location')!, server.issuer).href, nl);
    assert.equal(new URL(back.url).pathname, '/', `cancelled: the start page (${back.status} ${back.url})`);
    assert.match(back.html, /data-testid="notice">Je hebt het inloggen geannuleerd/);
    assertDutch(back, 'the start page after a cancelled demo sign-in');

    // The demo's result, then signed in: the header names the login and links to Mijn account.
    let page = await open(browser, '/demo/start', nl);
    page = await browser.post(actionOf(page, 'login-form'), { email: 'sam@demo.test', password: 'latchkey-demo', csrf: csrfOf(page) }, nl);
    assert.ok(testIds(page).includes('claim-sub'), `the demo's result: ${page.status} ${page.url}`);
    // The claims are the ID token's own (JSON): not page text.
    assertDutch({ ...page, html: page.html.replace(/<pre[^]*?<\/pre>/, '') }, "the demo's result");
    const home = await open(browser, '/', nl);
    assert.match(home.html, /data-testid="my-account">Mijn account</);
    assertDutch(home, 'the start page, signed in');

    // A wrong password, the login choice, a third-party app's consent.
    const { url } = await rp.authorize({ ui_locales: 'nl' });
    const signIn = new Browser(server.issuer);
    page = await open(signIn, url);
    assertDutch(page, 'the login page');
    page = await signIn.post(actionOf(page, 'login-form'), { email: 'jane@acme.test', password: 'nope', csrf: csrfOf(page) }, nl);
    assertDutch(page, 'a wrong password');
    page = await signIn.post(actionOf(page, 'login-form'), { email: 'jane@acme.test', password: PASSWORD, csrf: csrfOf(page) }, nl);
    assert.ok(testIds(page).includes('select-form'));
    assert.match(page.html, /Met welke login wil je inloggen\?/);
    assertDutch(page, 'the login choice');

    // The owner's pages.
    const owner = new Browser(server.issuer);
    page = await open(owner, '/account?lang=nl');
    page = await owner.post(actionOf(page, 'login-form'), { email: 'owner@acme.test', password: PASSWORD, csrf: csrfOf(page) });
    assert.equal(new URL(page.url).pathname, '/account', `${page.status} ${page.url}`);
    for (const path of [
      '/account',
      '/account/security',
      '/account/users',
      '/account/users/new',
      '/account/audit',
      '/account/users/jane-emp/reset-pin',
      '/account/audit?from=gisteren',
    ]) {
      assertDutch(await owner.get(path), path);
    }
  });
});
