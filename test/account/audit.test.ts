// The owner's audit log reads like a log: every event names the person (a
// failed sign-in of a known email too), its details are sentences in the
// page's language, times are in the page's format and the viewer's zone, it
// filters by person, type and dates in the store, and exports CSV that a
// spreadsheet cannot run. Owners only, one tenant each. Both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { SETUPS, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { accountFixture, signedIn } from './support.ts';
import { csvCell, detailTexts, startOfDay } from '../../src/account/audit-text.ts';
import { translator } from '../../src/i18n.ts';

const OWNER = { email: 'owner@acme.test' };

/** The audit rows of a page: type, login, time, and the person and details columns as text. */
function rows(page: Page) {
  const text = (html: string) => [...html.matchAll(/<span class="detail">([^<]*)<\/span>/g)].map((m) => m[1]!.replace(/&quot;/g, '"').replace(/&amp;/g, '&')).join(' | ');
  return [...page.html.matchAll(/<tr data-testid="audit-event" data-type="([^"]*)" data-login="([^"]*)" data-time="([^"]*)">([^]*?)<\/tr>/g)].map((m) => {
    const cells = Object.fromEntries([...m[4]!.matchAll(/<td[^>]*data-testid="([^"]+)"[^>]*>([^]*?)<\/td>/g)].map((c) => [c[1]!, text(c[2]!)]));
    return {
      type: m[1]!,
      login: m[2]!,
      time: m[3]!,
      person: cells['audit-person'] ?? '',
      details: cells['audit-details'] ?? '',
      timeText: /<time[^>]*>([^<]*)<\/time>/.exec(m[4]!)?.[1] ?? '',
    };
  });
}

/** A wrong password on the provider's login page, as `userAgent`. */
async function failSignIn(server: TestServer, rp: RelyingParty, email: string, userAgent = 'test-agent') {
  const browser = new Browser(server.issuer);
  const { url } = await rp.authorize();
  let page = await browser.get(url);
  page = await browser.post(actionOf(page, 'login-form'), { email, password: 'not the password', csrf: csrfOf(page) }, { 'user-agent': userAgent });
  assert.equal(page.status, 400);
}

for (const setup of SETUPS) {
  describe(`the audit log (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    before(async () => {
      // Events of fixed days years ago: kept past the retention sweep, which runs every minute and would delete them mid-test.
      server = await startServer(setup, { doc: accountFixture(), env: { AUDIT_RETENTION_DAYS: '36500' } });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());
    const accounts = () => server.latchkey.stores.accounts;

    it('names the person of every event, a failed sign-in of a known email too, in sentences, never raw codes', async () => {
      await failSignIn(server, rp, 'Jane@Acme.test');
      await failSignIn(server, rp, 'nobody@acme.test');
      const failed = await accounts().listAudit({ tenant: 'acme', type: 'signin.password' });
      assert.equal(failed[0]!.detail?.email, undefined, 'an unknown email is not written');
      assert.equal(failed[1]!.detail?.email, 'jane@acme.test', "a known person's email is");
      await accounts().appendAudit({
        tenant: 'acme',
        login: 'acme-owner',
        type: 'policy.changed',
        time: new Date(),
        ip: null,
        userAgent: null,
        outcome: 'success',
        detail: { userType: 'employee', from: 'none', to: 'pin' },
      });
      await accounts().appendAudit({
        tenant: 'acme',
        login: 'jane-acme',
        type: 'signin.success',
        time: new Date(),
        ip: null,
        userAgent: null,
        outcome: 'success',
        detail: { amr: ['pwd', 'otp', 'mfa'], acr: 'urn:latchkey:acr:totp' },
      });
      const { browser, page } = await signedIn(server, OWNER, '/account/audit');
      const shown = rows(page);
      const signin = shown.find((r) => r.type === 'signin.success' && r.login === 'jane-acme')!;
      assert.equal(signin.person, 'Jane Doe — Employee | jane@acme.test');
      assert.equal(signin.details, 'With password, authenticator code | Level: authenticator app');
      const policy = shown.find((r) => r.type === 'policy.changed')!;
      assert.equal(policy.person, 'Olga Owner — Owner | owner@acme.test');
      assert.equal(policy.details, 'Employee: from None to PIN code');
      const [unknown, known] = shown.filter((r) => r.type === 'signin.password');
      assert.equal(known!.person, 'Jane Doe | jane@acme.test', 'the failed sign-in names its person');
      assert.equal(known!.details, 'Wrong email or password');
      assert.equal(unknown!.person, '');
      assert.doesNotMatch(page.html, /invalid_credentials|userType:|from: none|pwd otp mfa/);

      const dutch = rows(await browser.request('/account/audit', { headers: { 'accept-language': 'nl' } }));
      assert.equal(dutch.find((r) => r.type === 'policy.changed')!.details, 'Employee: van Geen naar Pincode');
      assert.equal(dutch.find((r) => r.type === 'signin.success' && r.login === 'jane-acme')!.details, 'Met wachtwoord, authenticator-code | Niveau: authenticator-app');
      assert.equal(dutch.find((r) => r.type === 'signin.password' && r.person)!.details, 'Onjuist e-mailadres of wachtwoord');
    });

    it("shows times in the page's language and the viewer's zone, with a <time datetime> the page's script localises", async () => {
      const at = new Date('2020-03-07T15:04:05Z');
      await accounts().appendAudit({ tenant: 'acme', login: 'jane-acme', type: 'factor.pin.failed', time: at, ip: null, userAgent: null, outcome: 'failure' });
      const { browser } = await signedIn(server, OWNER, '/account/audit');
      const page = await browser.get('/account/audit?type=factor.pin.failed');
      assert.match(page.html, /<time datetime="2020-03-07T15:04:05.000Z" data-local[^>]*>7 Mar 2020, 15:04:05 UTC<\/time>/);
      assert.match(page.html, /<script src="\/static\/local-time.js"><\/script>/);
      assert.match(page.html, /<input type="hidden" name="tz" value="" data-fill="time-zone">/, 'the script tells the form the zone');
      const nl = await browser.request('/account/audit?type=factor.pin.failed&tz=Europe/Amsterdam', { headers: { 'accept-language': 'nl' } });
      assert.equal(rows(nl)[0]!.timeText, '7 mrt 2020, 16:04:05 CET');
      assert.match(nl.html, /Tijden in Europe\/Amsterdam\./);
      const script = await browser.request('/static/local-time.js');
      assert.equal(script.status, 200);
      assert.match(script.headers.get('content-type') ?? '', /javascript/);
      assert.equal((await browser.request('/account/audit?tz=Mars/Olympus')).status, 200, 'an unknown zone is UTC');
    });

    it("filters by person, type and a date range in the viewer's zone, and pages within them", async () => {
      const { browser } = await signedIn(server, OWNER, '/account/audit');
      const day = (iso: string, login: string | null, type = 'factor.pin.failed', detail?: Record<string, unknown>) =>
        accounts().appendAudit({ tenant: 'acme', login, type, time: new Date(iso), ip: null, userAgent: null, outcome: 'failure', ...(detail ? { detail } : {}) });
      await day('2021-06-01T22:30:00Z', 'jane-acme'); // 2 June 2021 in Amsterdam (00:30 CEST), 1 June in UTC
      await day('2021-06-02T12:00:00Z', 'acme-owner');
      await day('2021-06-03T12:00:00Z', null, 'signin.password', { reason: 'invalid_credentials', email: 'jane@acme.test' });
      await day('2021-06-04T12:00:00Z', 'jane-acme');
      await accounts().appendAudit({
        tenant: 'globex',
        login: 'jane-globex',
        type: 'factor.pin.failed',
        time: new Date('2021-06-02T12:00:00Z'),
        ip: null,
        userAgent: null,
        outcome: 'failure',
      });
      const times = async (query: string) => rows(await browser.get(`/account/audit?${query}`)).map((r) => r.time.slice(0, 13));

      assert.deepEqual(await times('from=2021-06-02&to=2021-06-03'), ['2021-06-03T12', '2021-06-02T12'], 'UTC days without a zone');
      assert.deepEqual(await times('from=2021-06-02&to=2021-06-03&tz=Europe/Amsterdam'), ['2021-06-03T12', '2021-06-02T12', '2021-06-01T22']);
      assert.deepEqual(
        await times('from=2021-06-01&to=2021-06-04&person=JANE@acme.test'),
        ['2021-06-04T12', '2021-06-03T12', '2021-06-01T22'],
        "Jane's logins and her failed sign-in",
      );
      assert.deepEqual(await times('from=2021-06-01&to=2021-06-04&person=jane@acme.test&type=signin.password'), ['2021-06-03T12']);
      assert.deepEqual(await times('from=2021-06-01&to=2021-06-04&login=acme-owner'), ['2021-06-02T12']);
      assert.deepEqual(await times('person=nobody@acme.test'), []);
      const paged = await browser.get('/account/audit?person=jane@acme.test&from=2021-06-01&tz=Europe/Amsterdam');
      assert.ok(testIds(paged).includes('audit-csv'));
      assert.match(paged.html, /href="\/account\/audit.csv\?person=jane%40acme.test&amp;from=2021-06-01&amp;tz=Europe%2FAmsterdam"/, 'the export keeps the filter');

      for (const bad of ['from=2021-02-30', 'to=yesterday', 'from=2021-6-1', 'person=a&person=b', `person=${'a'.repeat(321)}`, 'type=%24where', 'login=jane-globex']) {
        const res = await browser.request(`/account/audit?${bad}`);
        assert.equal(res.status, 400, bad);
        assert.ok(testIds(res).includes('error-message'), `${bad}: a page that says why`);
      }
    });

    it('exports the filtered log as CSV, safe against formula injection', async () => {
      await failSignIn(server, rp, 'jane@acme.test', '=HYPERLINK("http://evil.example","click")');
      await failSignIn(server, rp, 'jane@acme.test', '@SUM(A1)');
      const { browser } = await signedIn(server, OWNER, '/account/audit');
      const res = await browser.request('/account/audit.csv?person=jane@acme.test&type=signin.password');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/csv/);
      assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="audit-acme.csv"$/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const lines = res.html
        .replace(/^\uFEFF/, '')
        .trim()
        .split('\r\n');
      assert.equal(lines[0], '"Time (UTC)","Event","Event type","Outcome","Name","Email","Login id","IP address","Browser","Details"');
      assert.ok(lines.length >= 3);
      assert.ok(
        lines.slice(1).every((l) => l.includes('"Wrong email or password","signin.password","Failed","Jane Doe","jane@acme.test"')),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((l) => l.includes('"\'=HYPERLINK(""http://evil.example"",""click"")"')),
        'a formula is text',
      );
      assert.ok(lines.some((l) => l.includes('"\'@SUM(A1)"')));
      assert.ok(!lines.some((l) => /(^|,)"[=+\-@]/.test(l)), 'no cell starts a formula');
      assert.equal(csvCell('-1+2'), '"\'-1+2"');
      assert.equal(csvCell('+31 6'), '"\'+31 6"');
      assert.equal(csvCell('\tx'), '"\'\tx"');
      assert.equal(csvCell('Jane "JD" Doe'), '"Jane ""JD"" Doe"');

      const dutch = await browser.request('/account/audit.csv?type=signin.password', { headers: { 'accept-language': 'nl' } });
      assert.match(dutch.html, /"Onjuist e-mailadres of wachtwoord","signin.password","Mislukt"/);
    });

    it('is for the owner of the tenant only: 403 for anyone else, and another tenant never sees these events', async () => {
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
      for (const path of ['/account/audit', '/account/audit.csv', '/account/audit?person=jane@acme.test']) {
        assert.equal((await jane.browser.request(path)).status, 403, path);
      }
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/audit');
      assert.ok(rows(gina.page).every((r) => r.login !== 'jane-acme' && r.login !== 'acme-owner'));
      const csv = await gina.browser.request('/account/audit.csv?person=jane@acme.test');
      assert.equal(csv.status, 200);
      assert.doesNotMatch(csv.html, /jane-acme|acme-owner|Wrong email/, "Acme's events stay in Acme");
      assert.equal((await gina.browser.request('/account/audit?login=jane-acme')).status, 400, "an Acme login's events are refused");
      assert.equal((await new Browser(server.issuer).request('/account/audit.csv')).status, 302, 'signed out: to the sign-in');
    });
  });
}

describe('audit date ranges', () => {
  it('start a calendar day in the given zone, across clock changes', () => {
    assert.equal(startOfDay('2021-06-02', null)!.toISOString(), '2021-06-02T00:00:00.000Z');
    assert.equal(startOfDay('2021-06-02', 'Europe/Amsterdam')!.toISOString(), '2021-06-01T22:00:00.000Z');
    assert.equal(startOfDay('2021-12-02', 'Europe/Amsterdam')!.toISOString(), '2021-12-01T23:00:00.000Z');
    assert.equal(startOfDay('2021-03-28', 'Europe/Amsterdam')!.toISOString(), '2021-03-27T23:00:00.000Z', 'the day clocks go forward');
    assert.equal(startOfDay('2021-03-14', 'America/New_York')!.toISOString(), '2021-03-14T05:00:00.000Z');
    assert.equal(startOfDay('2021-06-02', 'Pacific/Kiritimati')!.toISOString(), '2021-06-01T10:00:00.000Z');
    for (const bad of ['2021-02-29', '2021-13-01', '21-06-02', '2021-06-02T00:00', '']) assert.equal(startOfDay(bad, null), null, bad);
  });
});

describe('audit details in words', () => {
  const tenant = { userTypes: [{ id: 'employee', name: 'Employee', secondFactor: 'none' as const }] };
  const event = (type: string, detail: Record<string, unknown>) => ({
    tenant: 'acme',
    login: 'l1',
    type,
    time: new Date(),
    ip: null,
    userAgent: null,
    outcome: 'success' as const,
    detail,
  });
  const texts = (lang: 'en' | 'nl', type: string, detail: Record<string, unknown>) =>
    detailTexts(event(type, detail), { t: translator(lang), lang, tenant, nameOf: (id) => (id === 'acme-owner' ? 'Olga Owner' : undefined) });

  it("say an unlock's reset and what it lifted, for rows from before and after resets named their factor", () => {
    assert.deepEqual(texts('en', 'login.unlocked', { by: 'acme-owner', via: 'reset/totp', totp: 'frozen' }), [
      'by Olga Owner',
      'By resetting the Authenticator app',
      'authenticator code was frozen: lifted',
    ]);
    assert.deepEqual(texts('en', 'login.unlocked', { via: 'reset-pin', password: 'locked' }), ['By resetting the PIN', 'password was locked: lifted']);
    assert.deepEqual(texts('nl', 'login.unlocked', { via: 'cli' }), ['Via de opdrachtregel van de beheerder']);
    assert.deepEqual(texts('en', 'factor.pin.locked', { retryAfterSeconds: 120 }), ['Locked for 2 minutes']);
    assert.deepEqual(texts('nl', 'factor.pin.locked', { retryAfterSeconds: 45 }), ['Geblokkeerd voor 45 seconden']);
    assert.deepEqual(texts('en', 'login.removed', { by: 'gone-owner' }), ['by a removed login (gone-owner)']);
    assert.deepEqual(texts('en', 'login.edited', { changed: ['lastName', 'userType'], from: 'employee', to: 'manager' }), [
      'Moved from Employee to manager',
      'Changed: last name, user type',
    ]);
  });
});
