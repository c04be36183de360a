// Bad input of any shape on the sign-in forms: a clear 4xx page (or
// JSON error), never a 500, nobody signed in, nothing changed in the store.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import { Browser, actionOf, csrfOf, testIds, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, submitLogin, type RelyingParty, type TestServer, startServer } from '../support/latchkey.ts';

/** Emails the attacks below use, besides the fixture's: none may become an identity. */
const PROBE_EMAILS = ['a@acme.test', 'b@acme.test', 'x', 'bob\0@acme.test', 'new@acme.test'];
const FIXTURE_EMAILS = ['jane@acme.test', 'bob@acme.test', 'owner@acme.test', 'gina@globex.test'];

const enc = encodeURIComponent;
const PW = enc(PASSWORD);
const BOB = enc('bob@acme.test');

interface Case {
  name: string;
  /** The raw body; `{csrf}` is replaced by the page's token. Null: no body. */
  body: string | Uint8Array | null | ((csrf: string) => string | Uint8Array);
  /** Content type; null sends none. Default: the form type. */
  type?: string | null;
  headers?: Record<string, string>;
  /** Acceptable statuses (all 4xx). */
  status: number[];
  /** Sent with `Accept: application/json`: the answer must be a JSON error. */
  json?: boolean;
}

const FORM = 'application/x-www-form-urlencoded';

function multipart(fields: Record<string, string>): { body: string; type: string } {
  const boundary = '----latchkey-test-boundary';
  const body =
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('') + `--${boundary}--\r\n`;
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

function bytes(...parts: (string | number[])[]): Uint8Array {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
}

/** Login form cases. Several carry the right password: a form that let them through would sign Bob in. */
const LOGIN_CASES: Case[] = [
  { name: 'an empty form', body: '', status: [403] },
  { name: 'only the csrf token', body: 'csrf={csrf}', status: [400] },
  { name: 'no email', body: `password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'no password', body: `email=${BOB}&csrf={csrf}`, status: [400] },
  { name: 'an empty email and password', body: 'email=&password=&csrf={csrf}', status: [400] },
  { name: 'a blank email', body: `email=%20%20&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'a repeated email (array)', body: `email=${enc('a@acme.test')}&email=${BOB}&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'a repeated password (array, the right one twice)', body: `email=${BOB}&password=${PW}&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'an email[] array', body: `email[]=${BOB}&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'an indexed email[0]', body: `email[0]=${BOB}&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'email[$ne]=x (operator injection)', body: `email[$ne]=x&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'password[$gt]= (operator injection)', body: `email=${BOB}&password[$gt]=&csrf={csrf}`, status: [400] },
  { name: 'password[$ne]=null with email[$regex]', body: `email[$regex]=.*&password[$ne]=null&csrf={csrf}`, status: [400] },
  { name: 'encoded brackets (email%5B%24ne%5D=x)', body: `email%5B%24ne%5D=x&password=${PW}&csrf={csrf}`, status: [400] },
  { name: '__proto__[x]=1', body: `__proto__[x]=1&email=${BOB}&password=wrong-password&csrf={csrf}`, status: [400] },
  { name: '__proto__[email]= with no email', body: `__proto__[email]=${BOB}&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'constructor[prototype][polluted]=1', body: `constructor[prototype][polluted]=1&email=${BOB}&password=wrong-password&csrf={csrf}`, status: [400] },
  { name: '__proto__ as a plain field', body: `__proto__=x&email=${BOB}&password=wrong-password&csrf={csrf}`, status: [400] },
  { name: 'hasOwnProperty as a field', body: `hasOwnProperty=x&email=${BOB}&password=wrong-password&csrf={csrf}`, status: [400] },
  { name: 'a 1 MB password', body: (csrf) => `email=${BOB}&password=${'a'.repeat(1024 * 1024)}&csrf=${csrf}`, status: [413] },
  { name: 'a 1 MB password, JSON asked', body: (csrf) => `email=${BOB}&password=${'a'.repeat(1024 * 1024)}&csrf=${csrf}`, status: [413], json: true },
  { name: 'a 100 KB email', body: (csrf) => `email=${'b'.repeat(100 * 1024)}%40acme.test&password=${PW}&csrf=${csrf}`, status: [413] },
  { name: 'a 60 KB email (under the body limit)', body: (csrf) => `email=${'b'.repeat(60 * 1024)}%40acme.test&password=${PW}&csrf=${csrf}`, status: [400] },
  { name: 'a 2 KB password', body: (csrf) => `email=${BOB}&password=${'p'.repeat(2048)}&csrf=${csrf}`, status: [400] },
  { name: 'a NUL byte in the email', body: `email=bob%00%40acme.test&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'a NUL byte after the password', body: `email=${BOB}&password=${PW}%00&csrf={csrf}`, status: [400] },
  { name: 'a raw NUL byte in the body', body: (csrf) => bytes(`email=bob`, [0], `%40acme.test&password=${PW}&csrf=${csrf}`), status: [400] },
  { name: 'invalid percent-encoding', body: `email=%E0%A4%A&password=%&csrf={csrf}`, status: [400] },
  { name: 'invalid percent-encoding %ZZ in the email', body: `email=bob%ZZ%40acme.test&password=${PW}&csrf={csrf}`, status: [400] },
  { name: 'invalid UTF-8, percent-encoded', body: `email=%FF%FE%40acme.test&password=%C3%28&csrf={csrf}`, status: [400] },
  { name: 'invalid UTF-8, raw bytes', body: (csrf) => bytes('email=', [0xff, 0xfe, 0xc3, 0x28], `%40acme.test&password=${PW}&csrf=${csrf}`), status: [400] },
  { name: 'lone UTF-16 surrogates, percent-encoded', body: `email=%ED%A0%80%40acme.test&password=%ED%BF%BF&csrf={csrf}`, status: [400] },
  // Past the parser's parameter limit the later fields (the token among them) are dropped: 403.
  { name: 'control characters after a very long line of ampersands', body: (csrf) => `${'&'.repeat(20_000)}email=%01%02%1b&password=%7f&csrf=${csrf}`, status: [400, 403] },
  { name: 'control characters', body: `email=%01%02%1b${BOB}&password=%7f&csrf={csrf}`, status: [400] },
  {
    name: 'many fields (10 000 parameters, over the size limit)',
    body: (csrf) => `${Array.from({ length: 10_000 }, (_, i) => `f${i}=1`).join('&')}&email=${BOB}&password=${PW}&csrf=${csrf}`,
    status: [413],
  },
  {
    name: 'many fields (2 000 parameters, under the size limit)',
    body: (csrf) => `${Array.from({ length: 2_000 }, (_, i) => `f${i}=1`).join('&')}&email=${BOB}&password=${PW}&csrf=${csrf}`,
    status: [400, 403],
  },
  { name: 'deeply nested brackets', body: (csrf) => `email${'[a]'.repeat(200)}=x&password=${PW}&csrf=${csrf}`, status: [400] },
  {
    name: 'a JSON body with operators',
    body: (csrf) => JSON.stringify({ email: { $ne: null }, password: { $ne: null }, csrf }),
    type: 'application/json',
    status: [415],
  },
  {
    name: 'a JSON body with operators, JSON asked',
    body: (csrf) => JSON.stringify({ email: { $ne: null }, password: { $ne: null }, csrf }),
    type: 'application/json',
    status: [415],
    json: true,
  },
  { name: 'a JSON body with the right password', body: (csrf) => JSON.stringify({ email: 'bob@acme.test', password: PASSWORD, csrf }), type: 'application/json', status: [415] },
  { name: 'text/plain', body: `email=${BOB}&password=${PW}&csrf={csrf}`, type: 'text/plain', status: [415] },
  { name: 'multipart/form-data', body: (csrf) => multipart({ email: 'bob@acme.test', password: PASSWORD, csrf }).body, type: multipart({}).type, status: [415] },
  { name: 'no content type', body: (csrf) => bytes(`email=${BOB}&password=${PW}&csrf=${csrf}`), type: null, status: [415] },
  { name: 'an invalid content type', body: `email=${BOB}&password=${PW}&csrf={csrf}`, type: 'not a type/;;', status: [415] },
  { name: 'the form type with an unknown charset', body: `email=${BOB}&password=wrong-password&csrf={csrf}`, type: `${FORM}; charset=x-bogus-charset`, status: [400, 415] },
  {
    name: 'the form type in UTF-16',
    body: (csrf) => Buffer.from(`email=${BOB}&password=wrong-password&csrf=${csrf}`, 'utf16le'),
    type: `${FORM}; charset=utf-16le`,
    status: [400, 403, 415],
  },
  {
    name: 'a gzip body that is not gzip',
    body: `email=${BOB}&password=${PW}&csrf={csrf}`,
    headers: { 'content-encoding': 'gzip' },
    status: [415],
  },
  {
    name: 'a gzip bomb (a 10 MB form in 10 KB)',
    body: (csrf) => gzipSync(Buffer.from(`email=${BOB}&password=${'a'.repeat(10 * 1024 * 1024)}&csrf=${csrf}`)),
    headers: { 'content-encoding': 'gzip' },
    status: [415],
  },
  { name: 'an unknown content encoding', body: `email=${BOB}&password=${PW}&csrf={csrf}`, headers: { 'content-encoding': 'x-bogus' }, status: [415] },
  {
    name: 'a valid gzip form (forms are never compressed)',
    body: (csrf) => gzipSync(Buffer.from(`email=${BOB}&password=${PW}&csrf=${csrf}`)),
    headers: { 'content-encoding': 'gzip' },
    status: [415],
  },
  { name: 'no csrf token (right password)', body: `email=${BOB}&password=${PW}`, status: [403] },
  { name: 'no csrf token, JSON asked', body: `email=${BOB}&password=${PW}`, status: [403], json: true },
  { name: 'an empty csrf token', body: `email=${BOB}&password=${PW}&csrf=`, status: [403] },
  { name: 'a wrong csrf token of the same length', body: (csrf) => `email=${BOB}&password=${PW}&csrf=${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'B' : 'A'}`, status: [403] },
  { name: 'a wrong csrf token of another length', body: `email=${BOB}&password=${PW}&csrf={csrf}x`, status: [403] },
  { name: 'a csrf token with a multibyte character of the same length', body: (csrf) => `email=${BOB}&password=${PW}&csrf=${enc('é' + csrf.slice(1))}`, status: [403] },
  { name: 'a repeated csrf token (array)', body: `email=${BOB}&password=${PW}&csrf={csrf}&csrf={csrf}`, status: [403] },
  { name: 'a csrf token as an object', body: `email=${BOB}&password=${PW}&csrf[$ne]=x`, status: [403] },
  { name: 'a csrf token with invalid percent-encoding', body: `email=${BOB}&password=${PW}&csrf=%ZZ{csrf}`, status: [403] },
];

/** Select form cases, after Jane (two logins) passed her password. */
const SELECT_CASES: Case[] = [
  { name: 'a login of another identity', body: 'login=bob-emp&csrf={csrf}', status: [400] },
  { name: 'a login of another tenant', body: 'login=gina-staff&csrf={csrf}', status: [400] },
  { name: 'a login that does not exist', body: 'login=nobody&csrf={csrf}', status: [400] },
  { name: 'a login of another identity, JSON asked', body: 'login=bob-emp&csrf={csrf}', status: [400], json: true },
  { name: 'no login', body: 'csrf={csrf}', status: [400] },
  { name: 'an empty login', body: 'login=&csrf={csrf}', status: [400] },
  { name: 'a login array (both of hers)', body: 'login=jane-emp&login=jane-mgr&csrf={csrf}', status: [400] },
  { name: 'login[] with one of hers', body: 'login[]=jane-emp&csrf={csrf}', status: [400] },
  { name: 'login[$ne]=x (an object)', body: 'login[$ne]=x&csrf={csrf}', status: [400] },
  { name: 'login[$in][]=jane-emp', body: 'login[$in][]=jane-emp&csrf={csrf}', status: [400] },
  { name: '__proto__[login]=jane-emp', body: '__proto__[login]=jane-emp&csrf={csrf}', status: [400] },
  { name: 'a 300-character login', body: `login=${'j'.repeat(300)}&csrf={csrf}`, status: [400] },
  { name: 'a NUL byte in the login', body: 'login=jane-emp%00&csrf={csrf}', status: [400] },
  { name: 'invalid UTF-8 in the login', body: 'login=jane-emp%FF&csrf={csrf}', status: [400] },
  { name: 'a JSON body with her login', body: (csrf) => JSON.stringify({ login: 'jane-emp', csrf }), type: 'application/json', status: [415] },
  { name: 'a JSON body, JSON asked', body: (csrf) => JSON.stringify({ login: { $ne: null }, csrf }), type: 'application/json', status: [415], json: true },
  { name: 'multipart with her login', body: (csrf) => multipart({ login: 'jane-emp', csrf }).body, type: multipart({}).type, status: [415] },
  { name: 'no csrf token (her login)', body: 'login=jane-emp', status: [403] },
  { name: 'a wrong csrf token (her login)', body: 'login=jane-emp&csrf={csrf}0', status: [403] },
  { name: 'a 1 MB login', body: (csrf) => `login=${'j'.repeat(1024 * 1024)}&csrf=${csrf}`, status: [413] },
  { name: 'a gzip body that is not gzip', body: 'login=jane-emp&csrf={csrf}', headers: { 'content-encoding': 'gzip' }, status: [415] },
];

function bodyOf(c: Case, csrf: string): string | Uint8Array | null {
  const b = typeof c.body === 'function' ? c.body(csrf) : c.body;
  return typeof b === 'string' ? b.replaceAll('{csrf}', csrf) : b;
}

async function send(browser: Browser, action: string, c: Case, csrf: string): Promise<Page> {
  const headers: Record<string, string> = { ...c.headers };
  const type = c.type === undefined ? FORM : c.type;
  if (type !== null) headers['content-type'] = type;
  if (c.json) headers.accept = 'application/json';
  const body = bodyOf(c, csrf);
  const res = await browser.follow(await browser.request(action, { method: 'POST', body: body as BodyInit | null, headers }));
  return res;
}

/** A 4xx, as an HTML page (or JSON when asked), with no stack trace and no code for the RP. */
function assertClientError(page: Page, status: number[], json = false) {
  assert.ok(page.status >= 400 && page.status < 500, `a 4xx, got ${page.status}: ${page.html.slice(0, 300)}`);
  assert.ok(status.includes(page.status), `one of ${status.join('/')}, got ${page.status}: ${page.html.slice(0, 300)}`);
  assert.ok(!callbackReached(page), 'no redirect to the relying party');
  const type = page.headers.get('content-type') ?? '';
  if (json) {
    assert.match(type, /^application\/json/, `JSON asked, got ${type}`);
    const body = JSON.parse(page.html) as { error?: unknown; error_description?: unknown };
    assert.equal(typeof body.error, 'string');
    assert.equal(typeof body.error_description, 'string');
  } else {
    assert.match(type, /^text\/html/, `an HTML page, got ${type}`);
    assert.match(page.html, /^<!DOCTYPE html>/i);
    assert.match(page.html, /role="alert"/, 'the page says what went wrong');
  }
  assert.doesNotMatch(page.html, /\bat [\w.<>]+ \(|node_modules|\.ts:\d+/, 'no stack trace');
  assert.doesNotMatch(page.html, new RegExp(PASSWORD), 'the password is not echoed');
}

for (const setup of SETUPS) {
  describe(`bad input on the sign-in forms (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let mongo: MongoClient | null = null;

    before(async () => {
      // Many of the cases are (deliberately) wrong passwords from one IP: keep the
      // attempt limits out of the way; they have tests of their own.
      server = await startServer(setup, { env: { LOCK_THRESHOLD: '100' } });
      rp = await relyingParty(server.issuer);
      if (server.env.MONGODB_URI) {
        mongo = new MongoClient(server.env.MONGODB_URI);
        await mongo.connect();
      }
    });
    after(async () => {
      await mongo?.close();
      await server.stop();
    });

    /** Rows per account table, read beside the app (not through its store). */
    async function rowCounts(): Promise<Record<string, number>> {
      const tables = ['tenants', 'identities', 'logins', 'clients'];
      if (mongo) {
        const db = mongo.db(server.env.MONGODB_DB);
        return Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await db.collection(t).countDocuments()] as const)));
      }
      const db = new Database(join(server.env.DATA_DIR!, 'latchkey.db'), { readonly: true });
      try {
        return Object.fromEntries(tables.map((t) => [t, (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n]));
      } finally {
        db.close();
      }
    }

    async function storeState() {
      const a = server.latchkey.stores.accounts;
      const tenants = await a.listTenants();
      return {
        counts: await rowCounts(),
        tenants,
        logins: await Promise.all(tenants.map((t) => a.listLogins(t.id))),
        clients: await Promise.all(tenants.map((t) => a.listClients(t.id))),
        identities: await Promise.all([...FIXTURE_EMAILS, ...PROBE_EMAILS].map((e) => a.findIdentityByEmail(e))),
        successes: (await a.listAudit({ tenant: 'acme', type: 'signin.success', limit: 500 })).length,
      };
    }

    /** Nobody is signed in in this browser: a new authorization asks for a sign-in. */
    async function assertNotSignedIn(browser: Browser) {
      const page = await browser.get((await rp.authorize()).url);
      assert.ok(!callbackReached(page), 'no code reaches the relying party');
      assert.ok(testIds(page).includes('login-form'), `the login page, got ${page.status}: ${page.html.slice(0, 300)}`);
    }

    async function startLogin(browser: Browser) {
      const pending = await rp.authorize();
      const page = await browser.get(pending.url);
      assert.ok(testIds(page).includes('login-form'));
      return { pending, page, action: actionOf(page, 'login-form'), csrf: csrfOf(page), uid: /\/interaction\/([^/]+)\/login/.exec(actionOf(page, 'login-form'))![1]! };
    }

    async function startSelect(browser: Browser) {
      const login = await startLogin(browser);
      const page = await submitLogin(browser, login.page, 'jane@acme.test', PASSWORD);
      assert.ok(testIds(page).includes('select-form'), `the select page, got ${page.status}`);
      return { ...login, page, action: actionOf(page, 'select-form'), csrf: csrfOf(page) };
    }

    describe('the login form', () => {
      for (const c of LOGIN_CASES) {
        it(`refuses ${c.name}`, async () => {
          const stateBefore = await storeState();
          const browser = new Browser(server.issuer);
          const { action, csrf, uid } = await startLogin(browser);
          const res = await send(browser, action, c, csrf);
          assertClientError(res, c.status, c.json);
          assert.equal(
            Object.hasOwn(Object.prototype, 'x') || Object.hasOwn(Object.prototype, 'polluted') || Object.hasOwn(Object.prototype, 'email'),
            false,
            'no prototype pollution',
          );
          // The interaction is still at its first step, and still usable.
          const again = await browser.get(`/interaction/${uid}`);
          assert.equal(again.status, 200);
          assert.ok(testIds(again).includes('login-form'), 'still the login page');
          await assertNotSignedIn(browser);
          assert.deepEqual(await storeState(), stateBefore);
        });
      }

      it('still signs in with the right form after bad ones on the same page', async () => {
        const browser = new Browser(server.issuer);
        const { pending, action, csrf, page } = await startLogin(browser);
        for (const c of LOGIN_CASES.slice(0, 12)) assertClientError(await send(browser, action, c, csrf), c.status, c.json);
        const done = await submitLogin(browser, page, 'bob@acme.test', PASSWORD);
        assert.ok(callbackReached(done), `the callback, got ${done.status}`);
        assert.equal((await rp.callback(done.url, pending)).claims()!.sub, 'bob-emp');
      });
    });

    describe('the select form', () => {
      for (const c of SELECT_CASES) {
        it(`refuses ${c.name}`, async () => {
          const browser = new Browser(server.issuer);
          const { action, csrf, uid } = await startSelect(browser);
          const stateBefore = await storeState();
          const res = await send(browser, action, c, csrf);
          assertClientError(res, c.status, c.json);
          const again = await browser.get(`/interaction/${uid}`);
          assert.equal(again.status, 200);
          assert.ok(testIds(again).includes('select-form'), 'still the choice of logins');
          await assertNotSignedIn(browser);
          assert.deepEqual(await storeState(), stateBefore);
        });
      }

      it('refuses a selection before the password step', async () => {
        const browser = new Browser(server.issuer);
        const { csrf, uid } = await startLogin(browser);
        const stateBefore = await storeState();
        for (const login of ['jane-emp', 'bob-emp']) {
          const res = await send(browser, `/interaction/${uid}/select`, { name: '', body: `login=${login}&csrf={csrf}`, status: [400] }, csrf);
          assertClientError(res, [400]);
        }
        await assertNotSignedIn(browser);
        assert.deepEqual(await storeState(), stateBefore);
      });

      it('still accepts her own login after bad choices on the same page', async () => {
        const browser = new Browser(server.issuer);
        const { pending, action, csrf } = await startSelect(browser);
        for (const c of SELECT_CASES.slice(0, 12)) assertClientError(await send(browser, action, c, csrf), c.status, c.json);
        const done = await browser.post(action, { login: 'jane-mgr', csrf });
        assert.ok(callbackReached(done), `the callback, got ${done.status}`);
        assert.equal((await rp.callback(done.url, pending)).claims()!.sub, 'jane-mgr');
      });
    });

    describe('unknown, foreign and finished interactions', () => {
      const loginBody = (csrf: string): Case => ({ name: '', body: `email=${BOB}&password=${PW}&csrf=${csrf}`, status: [400, 403, 404] });

      it('answers a GET of an unknown interaction with a 4xx page (or JSON)', async () => {
        const browser = new Browser(server.issuer);
        for (const path of [
          '/interaction/unknown',
          '/interaction/unknown/',
          `/interaction/${'u'.repeat(2000)}`,
          '/interaction/%00',
          '/interaction/..%2F..%2Fetc',
          '/interaction/%E0%A4%A',
        ]) {
          const page = await browser.get(path);
          assertClientError(page, [400, 404]);
        }
        const json = await browser.request('/interaction/unknown', { headers: { accept: 'application/json' } });
        assertClientError(json, [400, 404], true);
        await assertNotSignedIn(browser);
      });

      it('answers a POST to an unknown interaction with a 4xx page', async () => {
        const stateBefore = await storeState();
        const browser = new Browser(server.issuer);
        for (const step of ['login', 'select', 'factor', 'confirm', 'abort']) {
          assertClientError(await send(browser, `/interaction/unknown/${step}`, loginBody('x'), 'x'), [400, 403, 404]);
        }
        assertClientError(await send(browser, '/interaction/unknown/login', { ...loginBody('x'), json: true }, 'x'), [400, 403, 404], true);
        // With a live interaction's cookie, another uid in the URL is still refused.
        const { csrf } = await startLogin(browser);
        assertClientError(await send(browser, '/interaction/not-the-right-uid/login', loginBody(csrf), csrf), [400, 403, 404]);
        await assertNotSignedIn(browser);
        assert.deepEqual(await storeState(), stateBefore);
      });

      it("refuses another browser's interaction, even with its csrf token and the right password", async () => {
        const stateBefore = await storeState();
        const victim = new Browser(server.issuer);
        const { action, csrf, uid } = await startLogin(victim);
        const attacker = new Browser(server.issuer);
        assertClientError(await send(attacker, action, loginBody(csrf), csrf), [400, 403]);
        await assertNotSignedIn(attacker);
        const still = await victim.get(`/interaction/${uid}`);
        assert.ok(testIds(still).includes('login-form'), "the victim's sign-in did not advance");
        await assertNotSignedIn(victim);
        assert.deepEqual(await storeState(), stateBefore);
      });

      it('refuses a finished interaction: no second code reaches the RP', async () => {
        const browser = new Browser(server.issuer);
        const { pending, action, csrf, uid, page } = await startLogin(browser);
        const done = await submitLogin(browser, page, 'bob@acme.test', PASSWORD);
        assert.ok(callbackReached(done));
        await rp.callback(done.url, pending);
        const stateBefore = await storeState();
        const replay = await send(browser, action, loginBody(csrf), csrf);
        assertClientError(replay, [400, 403, 404]);
        assertClientError(await browser.get(`/interaction/${uid}`), [400, 404]);
        assert.deepEqual(await storeState(), stateBefore);
      });

      it('answers other methods on the form routes with a 4xx', async () => {
        const browser = new Browser(server.issuer);
        const { uid, csrf } = await startLogin(browser);
        for (const method of ['PUT', 'DELETE', 'PATCH']) {
          const res = await browser.request(`/interaction/${uid}/login`, { method, body: `email=${BOB}&password=${PW}&csrf=${csrf}`, headers: { 'content-type': FORM } });
          assert.ok(res.status >= 400 && res.status < 500, `${method}: ${res.status}`);
          assert.ok(!callbackReached(res));
        }
        await assertNotSignedIn(browser);
      });
    });
  });
}
