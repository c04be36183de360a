// Bad input, systematically: a property-based fuzzer (fast-check)
// over every POST endpoint — the journey's, the upstream button and its
// "confirm it's you" form, the account
// pages' and the provider's own — on the embedded store and on MongoDB + Redis.
//
// Each endpoint is first brought into a realistic state (an interaction at the
// right step with its cookies and CSRF token; a signed-in account session of
// the owner, of a user, of a person with a PIN or an app; a signed-in provider
// session at the logout form; valid client credentials), so the generated
// bodies reach the handlers and not only the CSRF check: most runs carry the
// valid token or credentials. The bodies are random: content types (form,
// JSON, broken JSON, text, multipart, none, garbage, a claimed compression),
// field maps with strings, arrays, nested objects and MongoDB operators,
// `__proto__`/`constructor` keys, NUL bytes, lone surrogates, long and 1 MB
// values, invalid percent-encoding and invalid UTF-8 bytes spliced in.
//
// Every answer must be a 4xx — HTML with an error, or a JSON error — with no
// stack trace; a few endpoints have one legitimate other answer to a valid
// but harmless form, listed (and justified) where the endpoint is defined.
// After each endpoint's runs: the process is healthy, the account store is as
// before (tenants and policies, logins with their factor state, identities
// with their password hashes, clients, upstreams, session cut-offs), no
// success was audited for a fuzzed request (failures may be), and nobody got
// signed in: the same browser's next authorization asks for a sign-in.
//
// The runs are reproducible: FUZZ_SEED (default below) and FUZZ_RUNS (per
// endpoint) may be set; fast-check prints the seed and the counterexample of
// a failure. FUZZ_DEBUG=1 prints every request and the start of its answer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import type { ImportDocument } from '../../src/import/index.ts';
import { checkNewPin } from '../../src/factors/pin/rules.ts';
import { checkNewPassword } from '../../src/account/passwords.ts';
import { createHash, randomBytes } from 'node:crypto';
import { codeAt, normalizeCode, stepAt } from '../../src/factors/totp/code.ts';
import type { AuditEvent } from '../../src/storage/accounts/port.ts';
import { FACTORS, builtInFactors } from '../../src/factors/registry.ts';
import { USER_ACTIONS } from '../../src/account/owner.ts';

/** The user type values the registry knows, the journey's factor fields, the owner's actions (each factor's reset too). */
const SECOND_FACTORS = builtInFactors.ids();
const FACTOR_FIELDS = [...new Set(FACTORS.flatMap((f) => Object.keys(f.fields)))];
const OWNER_ACTIONS = [...FACTORS.filter((f) => f.ownerReset).flatMap((f) => [`reset/${f.id}`, ...(f.ownerReset?.alias ? [f.ownerReset.alias] : [])]), ...USER_ACTIONS];
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, REDIRECT_URI, SETUPS, callbackReached, relyingParty, signIn, startServer, submitLogin, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { secretOf } from '../support/factors.ts';
import { startUpstream, visitUpstream, type TestUpstream } from '../support/upstream.ts';
import { importDocument } from '../../src/import/index.ts';
import { accountSignIn, linkOnPage, submit } from '../account/support.ts';
import { API_SCOPES } from '../../src/api/scopes.ts';
import { LoginChange, NewLogin, NewSubscription } from '../../src/api/schemas.ts';
import * as oidc from 'openid-client';

/** The management API's clients (docs/api.md): Acme's, and another tenant's. */
const API_SECRETS = { provisioner: 's3cret-provisioner-fuzz-7c2e9a4b1d8f3e6a0c5b', 'globex-sync': 's3cret-globex-sync-fuzz-7c2e9a4b1d8f3e6a0c5b' };
const SEED = Number(process.env.FUZZ_SEED ?? 20_240_607);
const RUNS = Number(process.env.FUZZ_RUNS ?? 30);
/** Fuzzed requests carry this user agent, so their audit events can be told from the set-up's. */
const FUZZ_UA = 'latchkey-fuzz/1';
const NINA_PIN = '482913';
const FORM = 'application/x-www-form-urlencoded';
/** Path segments for the owner's resets: the tenant's logins, another tenant's, none, and malformed ones. */
const ACME_LOGINS = ['tim-guard', 'nina-nurse', 'bob-emp', 'acme-owner'];
const LOGIN_SEGMENTS = [
  ...ACME_LOGINS,
  ...ACME_LOGINS,
  ...ACME_LOGINS,
  'gina-staff',
  'nobody',
  '%E0%A4%A',
  '..%2F..%2Fsecurity',
  'x'.repeat(300),
  '%00',
  encodeURIComponent('<script>'),
  '%2e%2e',
  encodeURIComponent('bob-emp\u0000'),
];

// ---------------------------------------------------------------------------
// The fixture: Acme with one user type per factor and a person per state the
// fuzzer needs; Globex (another tenant); an upstream provider for the button.

const PEOPLE = ['owner', 'jane', 'bob', 'sam', 'nina', 'nell', 'tom', 'tim'].map((n) => `${n}@acme.test`);
const EMAILS = [...PEOPLE, 'gina@globex.test'];

function fuzzFixture(upstreamIssuer: string): ImportDocument {
  const login = (id: string, email: string, userType: string, firstName: string) => ({ id, email, userType, firstName, lastName: 'Doe' });
  return {
    identities: EMAILS.map((email) => ({ email, password: PASSWORD })),
    tenants: [
      {
        id: 'acme',
        name: 'Acme Care',
        owner: 'acme-owner',
        userTypes: [
          { id: 'owner', name: 'Owner', secondFactor: 'none' },
          { id: 'employee', name: 'Employee', secondFactor: 'none' },
          { id: 'manager', name: 'Manager', secondFactor: 'none' },
          { id: 'nurse', name: 'Nurse', secondFactor: 'pin' },
          { id: 'guard', name: 'Guard', secondFactor: 'totp' },
        ],
        logins: [
          login('acme-owner', 'owner@acme.test', 'owner', 'Olga'),
          login('jane-emp', 'jane@acme.test', 'employee', 'Jane'),
          login('jane-mgr', 'jane@acme.test', 'manager', 'Jane'),
          login('bob-emp', 'bob@acme.test', 'employee', 'Bob'),
          login('sam-emp', 'sam@acme.test', 'employee', 'Sam'),
          login('nina-nurse', 'nina@acme.test', 'nurse', 'Nina'),
          login('nell-nurse', 'nell@acme.test', 'nurse', 'Nell'),
          login('tom-guard', 'tom@acme.test', 'guard', 'Tom'),
          login('tim-guard', 'tim@acme.test', 'guard', 'Tim'),
        ],
        clients: [
          { client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: [REDIRECT_URI], first_party: true },
          { client_id: 'partner', client_secret: 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d', client_name: 'Partner App', redirect_uris: [REDIRECT_URI] },
          { client_id: 'provisioner', client_secret: API_SECRETS.provisioner, grant_types: ['client_credentials'], api_scopes: [...API_SCOPES] },
        ],
        upstreams: [{ id: 'corp', name: 'Corp ID', issuer: upstreamIssuer, client_id: 'latchkey', client_secret: 'corp-client-secret' }],
      },
      {
        id: 'globex',
        name: 'Globex',
        owner: 'gina-staff',
        userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
        logins: [login('gina-staff', 'gina@globex.test', 'staff', 'Gina')],
        clients: [
          { client_id: 'globex-app', client_secret: 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: [REDIRECT_URI], first_party: true },
          { client_id: 'globex-sync', client_secret: API_SECRETS['globex-sync'], grant_types: ['client_credentials'], api_scopes: [...API_SCOPES] },
        ],
      },
    ],
  };
}

// ---------------------------------------------------------------------------
// What a run sends.

type Leaf = string | number | boolean | null;
type Value = Leaf | Value[] | { [key: string]: Value };
type Field = [string, Value];

type Encoding = 'form' | 'form-charset' | 'json' | 'json-broken' | 'text' | 'multipart' | 'none' | 'garbage' | 'compressed';
type TokenVariant = 'valid' | 'missing' | 'wrong' | 'suffixed' | 'array' | 'object' | 'nul' | 'multibyte' | 'empty';
type AuthVariant = 'none' | 'basic-valid' | 'post-valid' | 'basic-wrong' | 'basic-garbage' | 'post-wrong' | 'both-valid' | 'bearer-garbage';
type OriginVariant = 'none' | 'same' | 'null-same' | 'cross' | 'null-cross';

interface Model {
  fields: Field[];
  token: TokenVariant;
  tokenAt: number;
  encoding: Encoding;
  /** Picks among the garbage content types, charsets, encodings, Basic headers, path segments. */
  pick: number;
  /** Bytes spliced into the encoded body (invalid percent-encoding, invalid UTF-8, NUL, …). */
  mangle: { bytes: number[]; at: number } | null;
  /** A field larger than the body limits. */
  big: 'none' | 'over' | 'huge';
  accept: string | null;
  origin: OriginVariant;
  persona: number;
  auth: AuthVariant;
}

function weighted<T>(...choices: [T, number][]): fc.Arbitrary<T> {
  return fc.oneof(...choices.map(([value, weight]) => ({ arbitrary: fc.constant(value), weight })));
}

const OPERATORS: Value[] = [{ $ne: null }, { $gt: '' }, { $regex: '.*' }, { $where: 'sleep(1000)' }, { $in: ['a', 'b'] }, { $exists: true }, { $expr: { $eq: [1, 1] } }];
const NASTY = [
  '',
  ' ',
  '\0',
  'a\0b',
  '\u202e',
  '\ud800',
  '\udfff',
  'x\udc00y',
  '\uffff',
  '%00',
  '%',
  '%ZZ',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  '${7*7}',
  "' OR '1'='1",
  'null',
  'undefined',
  '[object Object]',
  '{"$ne":null}',
  '$where',
  '\r\nSet-Cookie: x=y',
  'e\u0301',
  '😀',
  '\t\n',
  'a'.repeat(1025),
];
const DANGEROUS_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'valueOf',
  '__proto__[admin]',
  'constructor[prototype][polluted]',
  '__proto__.polluted',
  '$where',
  '',
  '[]',
  '[',
  'a]',
];
const MANGLES: number[][] = [
  [...Buffer.from('%')],
  [...Buffer.from('%ZZ')],
  [...Buffer.from('%E0%A4%A')],
  [...Buffer.from('%ED%A0%80')],
  [...Buffer.from('%FF%FE')],
  [0xff, 0xfe],
  [0xc3, 0x28],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0x00],
  [...Buffer.from('&&&=&')],
  [...Buffer.from('[[]]')],
  [...Buffer.from('%5B%24ne%5D')],
];
const CHARSETS = ['utf-8', 'UTF-8', 'iso-8859-1', 'utf-16le', 'x-bogus-charset', '', '"utf-8', 'utf-8; charset=latin1'];
const GARBAGE_TYPES = [
  'not a type/;;',
  '*/*',
  'application/',
  '/',
  ';',
  'application/x-www-form-urlencodedX',
  'APPLICATION/X-WWW-FORM-URLENCODED',
  'application/xml',
  `${FORM}, application/json`,
  'text/html',
  'application/octet-stream',
  `${FORM}; boundary=x; charset`,
  'multipart/form-data',
];
const ENCODINGS = ['gzip', 'deflate', 'br', 'x-bogus', 'gzip, identity', 'identity, gzip'];
const ACCEPTS = [null, 'text/html', 'application/json', '*/*', 'application/json;q=0.1, text/html', 'garbage;;q=x', 'image/png'];

function modelArb(t: Target): fc.Arbitrary<Model> {
  const text = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...t.values) },
    { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
    { weight: 2, arbitrary: fc.constantFrom(...NASTY) },
    { weight: 2, arbitrary: fc.stringMatching(/^[0-9]{1,10}$/) },
    { weight: 1, arbitrary: fc.integer({ min: 1025, max: 20_000 }).map((n) => 'v'.repeat(n)) },
  );
  const { value } = fc.letrec<{ value: Value }>((tie) => ({
    value: fc.oneof(
      { maxDepth: 3 },
      { weight: 10, arbitrary: text },
      { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null)) },
      { weight: 2, arbitrary: fc.constantFrom(...OPERATORS) },
      { weight: 2, arbitrary: fc.array(tie('value'), { maxLength: 3 }) },
      {
        weight: 1,
        arbitrary: fc.dictionary(fc.oneof(fc.constantFrom('$ne', '$gt', '0', '1', '__proto__', 'constructor', 'x'), fc.string({ maxLength: 6 })), tie('value'), { maxKeys: 3 }),
      },
    ),
  }));
  const variants = (f: string) => [`${f}[]`, `${f}[$ne]`, `${f}[0]`, `${f}.$gt`, `${f}[__proto__]`, f.toUpperCase(), ` ${f}`, `${f}\0`, `${f}%00`];
  const key = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...t.fields) },
    { weight: 2, arbitrary: fc.constantFrom(...t.fields.flatMap(variants)) },
    { weight: 2, arbitrary: fc.constantFrom(...DANGEROUS_KEYS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
  return fc.record({
    fields: fc.array(fc.tuple(key, value), { maxLength: 6 }),
    token: weighted<TokenVariant>(['valid', 20], ['missing', 1], ['wrong', 1], ['suffixed', 1], ['array', 1], ['object', 1], ['nul', 1], ['multibyte', 1], ['empty', 1]),
    tokenAt: fc.nat(),
    encoding: weighted<Encoding>(['form', 24], ['form-charset', 1], ['json', 2], ['json-broken', 1], ['text', 1], ['multipart', 1], ['none', 1], ['garbage', 1], ['compressed', 1]),
    pick: fc.nat(),
    mangle: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ bytes: fc.constantFrom(...MANGLES), at: fc.nat() }) }),
    big: weighted<Model['big']>(['none', 24], ['over', 1], ['huge', 1]),
    accept: fc.constantFrom(...ACCEPTS),
    // Browsers send Origin on our forms; the provider's client endpoints are called server to server (an Origin there is a CORS request).
    origin: t.accountPages
      ? weighted<OriginVariant>(['same', 6], ['none', 3], ['null-same', 2], ['cross', 1], ['null-cross', 1])
      : weighted<OriginVariant>(['none', 12], ['same', 1], ['null-same', 1], ['cross', 1], ['null-cross', 1]),
    // The account pages' first persona (the one the page is for) three times as often as the others.
    persona: t.accountPages
      ? fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.nat({ max: t.personas.length - 1 }) })
      : fc.nat({ max: t.personas.length - 1 }),
    auth: weighted<AuthVariant>(
      ['basic-valid', 5],
      ['post-valid', 3],
      ['none', 2],
      ['basic-wrong', 1],
      ['basic-garbage', 1],
      ['post-wrong', 1],
      ['both-valid', 1],
      ['bearer-garbage', 1],
    ),
  });
}

/** Percent-encodes the UTF-8 bytes of `s` (lone surrogates become U+FFFD; raw invalid bytes come from the mangles). */
function pct(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** The pairs of a form for one field: arrays as repeated, `[]` or indexed keys; objects as brackets or dots (qs reads both). */
function formPairs(key: string, v: Value, style: number): [string, string | null][] {
  if (v === null) return [[key, null]];
  if (Array.isArray(v)) return v.flatMap((item, i) => formPairs(style % 3 === 0 ? key : style % 3 === 1 ? `${key}[]` : `${key}[${i}]`, item, style));
  if (typeof v === 'object') return Object.keys(v).flatMap((k) => formPairs(style % 2 ? `${key}[${k}]` : `${key}.${k}`, v[k]!, style));
  return [[key, String(v)]];
}

function json(v: Value): string {
  if (Array.isArray(v)) return `[${v.map(json).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .map((k) => `${JSON.stringify(k)}:${json(v[k]!)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const GARBAGE_AUTH = [
  'Basic !!!not-base64!!!',
  `Basic ${Buffer.from('no-colon').toString('base64')}`,
  'Basic',
  `Basic ${Buffer.from(':').toString('base64')}`,
  `Basic ${Buffer.from('%ZZ:%E0%A4%A').toString('base64')}`,
  `Basic ${Buffer.from('portal\0:x').toString('base64')}`,
  'Digest x=y',
];

interface Sent {
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
  /** A urlencoded, uncompressed body: the only kind our forms and the provider read. */
  formSent: boolean;
  /** The endpoint's valid CSRF / logout token was in the body as a single field. */
  tokenSent: boolean;
  /** The browser vouched for the origin (account pages, docs/account.md). */
  originOk: boolean;
  /** Valid client credentials, one way only. */
  authValid: boolean;
}

function render(t: Target, actor: Actor, m: Model, issuer: string, fields: Field[]): Sent {
  const all: Field[] = [...fields];
  const token = actor.token;
  const tokenValue: Record<TokenVariant, Value | undefined> = {
    valid: token,
    missing: undefined,
    wrong: 'A'.repeat(token.length),
    suffixed: `${token}x`,
    array: [token, token],
    object: m.pick % 2 ? { $ne: null } : { 0: token },
    nul: `${token}\0`,
    multibyte: `é${token.slice(1)}`,
    empty: '',
  };
  const variant = t.tokenField && t.noValidToken && m.token === 'valid' ? 'suffixed' : m.token;
  if (t.tokenField && tokenValue[variant] !== undefined) all.splice(m.tokenAt % (all.length + 1), 0, [t.tokenField, tokenValue[variant]!]);

  const headers: Record<string, string> = { 'user-agent': FUZZ_UA };
  let authValid = false;
  if (t.clientAuth) {
    if (m.auth === 'basic-valid' || m.auth === 'both-valid') headers.authorization = basic('portal', 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d');
    if (m.auth === 'basic-wrong') headers.authorization = basic('portal', 'not-the-secret');
    if (m.auth === 'basic-garbage') headers.authorization = GARBAGE_AUTH[m.pick % GARBAGE_AUTH.length]!;
    if (m.auth === 'bearer-garbage') headers.authorization = `Bearer ${'x'.repeat(m.pick % 80)}`;
    if (m.auth === 'post-valid' || m.auth === 'both-valid') all.push(['client_id', 'portal'], ['client_secret', 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d']);
    if (m.auth === 'post-wrong') all.push(['client_id', 'portal'], ['client_secret', 'not-the-secret']);
    authValid = (m.auth === 'basic-valid' || m.auth === 'post-valid') && !fields.some(([k]) => k === 'client_id' || k === 'client_secret');
  }
  if (t.bearer && m.auth === 'bearer-garbage') headers.authorization = `Bearer ${'y'.repeat(1 + (m.pick % 60))}`;
  if (m.big === 'over') all.push(['pad', 'p'.repeat(70 * 1024)]);
  if (m.big === 'huge') all.push(['pad', 'p'.repeat(1024 * 1024)]);

  let type: string | null = FORM;
  let text: string;
  switch (m.encoding) {
    case 'json':
    case 'json-broken':
      type = 'application/json';
      text = `{${all.map(([k, v]) => `${JSON.stringify(k)}:${json(v)}`).join(',')}}`;
      if (m.encoding === 'json-broken') text = `${text.slice(0, Math.max(0, text.length - 1 - (m.pick % 5)))},,"`;
      break;
    case 'multipart': {
      const boundary = '----fuzz-boundary';
      type = `multipart/form-data; boundary=${boundary}`;
      text = all.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${typeof v === 'string' ? v : json(v)}\r\n`).join('') + `--${boundary}--\r\n`;
      break;
    }
    default:
      text = all
        .flatMap(([k, v]) => formPairs(k, v, m.pick))
        .map(([k, v]) => (v === null ? pct(k) : `${pct(k)}=${pct(v)}`))
        .join('&');
  }
  if (m.encoding === 'form-charset') type = `${FORM}; charset=${CHARSETS[m.pick % CHARSETS.length]}`;
  if (m.encoding === 'text') type = 'text/plain';
  if (m.encoding === 'none') type = null;
  if (m.encoding === 'garbage') type = GARBAGE_TYPES[m.pick % GARBAGE_TYPES.length]!;
  if (m.encoding === 'compressed') headers['content-encoding'] = ENCODINGS[m.pick % ENCODINGS.length]!;
  if (type !== null) headers['content-type'] = type;
  if (m.accept) headers.accept = m.accept;

  let body = Buffer.from(text, 'utf8');
  if (m.mangle) {
    const at = m.mangle.at % (body.length + 1);
    body = Buffer.concat([body.subarray(0, at), Buffer.from(m.mangle.bytes), body.subarray(at)]);
  }

  const origin = new URL(issuer).origin;
  if (m.origin === 'same') Object.assign(headers, { origin, 'sec-fetch-site': 'same-origin' });
  if (m.origin === 'null-same') Object.assign(headers, { origin: 'null', 'sec-fetch-site': 'same-origin' });
  if (m.origin === 'cross') Object.assign(headers, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
  if (m.origin === 'null-cross') headers.origin = 'null';

  // A superset of what the server reads as a form: a content type naming the form type (parameters and
  // case aside, as type-is reads it), nothing compressed.
  const formSent = /application\/x-www-form-urlencoded/i.test(type ?? '') && (m.encoding !== 'compressed' || t.reader === 'provider');
  // oidc-provider compares its logout token zero-padded (helpers/constant_equals.js): the token followed by
  // NUL bytes is the token. Harmless — the secret itself is still needed — but it is the valid token there.
  const tokenSent = !!t.tokenField && (variant === 'valid' || (variant === 'nul' && t.tokenField === 'xsrf')) && formSent;
  return {
    path: t.path(actor, m),
    headers,
    body: body.length || m.pick % 2 ? body : null,
    formSent,
    tokenSent,
    originOk: m.origin === 'same' || m.origin === 'none' || m.origin === 'null-same',
    authValid: authValid && formSent,
  };
}

// ---------------------------------------------------------------------------
// The endpoints.

/** A browser in a state to post to an endpoint: its token and where to post. */
interface Actor {
  browser: Browser;
  /** The CSRF (or logout) token of this browser's session or interaction; unknown when there is none. */
  token: string;
  action: string;
  /** The login it is (or is becoming), for the checks afterwards. */
  email?: string;
  /** The authenticator secret on its page (TOTP personas). */
  secret?: string;
}

interface Target {
  name: string;
  personas: string[];
  fields: string[];
  /** Values that mean something here (ids, emails, types); the fuzzer mixes them with random ones. */
  values: string[];
  tokenField?: 'csrf' | 'xsrf';
  /** A valid token alone is a valid form here (consent): never send it whole. */
  noValidToken?: boolean;
  /** Client authentication variants (the provider's client endpoints). */
  clientAuth?: boolean;
  /** An account page: the origin the browser vouches for matters (docs/account.md). */
  accountPages?: boolean;
  /** Who reads the body: our forms refuse compressed bodies; oidc-provider reads the bytes as they are. */
  reader?: 'ours' | 'provider';
  /** Authorization: Bearer variants (userinfo). */
  bearer?: boolean;
  runs?: number;
  prepare(persona: string): Promise<Actor>;
  path(actor: Actor, m: Model): string;
  /** Turns values that would be a *correct* answer (the real PIN, a current code…) into wrong ones. */
  sanitize?(fields: Field[], actor: Actor, persona: string): Promise<Field[]>;
  /**
   * The endpoint's one legitimate answer other than a 4xx, when the request
   * could be a valid, harmless form. Returns null when `res` is not it.
   */
  special?(res: Page, sent: Sent, persona: string, actor: Actor): { reprepare?: boolean } | null;
  /** Audit event types a fuzzed request may record with outcome success (a sign-out is one). */
  allowedSuccesses?: string[];
  /** Nobody got signed in (beyond who the persona already was). */
  afterwards(actors: Map<string, Actor>): Promise<void>;
}

/** Replaces top-level single string values of `key` for which `bad` holds. */
function replaceValues(fields: Field[], keys: string[], bad: (v: string) => boolean, fix: (v: string) => string): Field[] {
  return fields.map(([k, v]) => (keys.includes(k) && typeof v === 'string' && bad(v) ? [k, fix(v)] : [k, v]));
}

/** The codes of `secret` an answer could be accepted with now (the drift tolerance, and a margin). */
async function liveCodes(secret: string): Promise<Set<string>> {
  const step = stepAt(Date.now());
  const codes = await Promise.all([-2, -1, 0, 1, 2].map((d) => codeAt(secret, (step + d) * 30)));
  return new Set(codes);
}

function seedFor(name: string): number {
  let h = SEED | 0;
  for (const c of name) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return h;
}

const STACK = /\bat [\w.<>$]+ \(|node_modules|\.[jt]s:\d+:\d+/;

for (const setup of SETUPS) {
  describe(`fuzzing every POST endpoint (${setup})`, () => {
    let server: TestServer;
    let issuer = '';
    let upstream: TestUpstream;
    let mongo: MongoClient | null = null;
    let portal: RelyingParty;
    let partner: RelyingParty;
    const accountActors = new Map<string, Actor>();
    /** Another client's real tokens: valid, but not the portal's to use. */
    const foreign = { accessToken: '', refreshToken: '', code: '' };
    let prototypeNames: string[] = [];

    before(async () => {
      // Most fuzzed answers are wrong passwords, PINs and codes from one IP:
      // keep the attempt limits (tested on their own) from locking the set-up out.
      server = await startServer(setup, { doc: fuzzFixture('http://127.0.0.1:9'), env: { LOCK_THRESHOLD: '100' } });
      issuer = server.issuer;
      // The upstream knows Latchkey's redirect URI, so a sign-in through it reaches the confirmation.
      upstream = await startUpstream({ clients: [{ client_id: 'latchkey', client_secret: 'corp-client-secret', redirect_uris: [`${issuer}/upstream/corp/callback`] }] });
      const { stores, hasher, config } = server.latchkey;
      await importDocument(fuzzFixture(upstream.issuer), { accounts: stores.accounts, hasher, config });
      // Gina's link: the unlink form of anyone else must leave it alone.
      const ginaId = (await stores.accounts.findIdentityByEmail('gina@globex.test'))!.id;
      await stores.accounts.linkUpstream({ issuer: upstream.issuer, subject: 'fuzz-gina', identityId: ginaId });
      if (server.env.MONGODB_URI) {
        mongo = new MongoClient(server.env.MONGODB_URI);
        await mongo.connect();
      }
      portal = await relyingParty(issuer);
      partner = await relyingParty(issuer, 'partner', 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d');
      const globex = await relyingParty(issuer, 'globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d');
      const gina = await signIn(new Browser(issuer), globex, { email: 'gina@globex.test' });
      const tokens = await globex.callback(gina.page.url, gina.pending);
      foreign.accessToken = tokens.access_token;
      foreign.refreshToken = tokens.refresh_token ?? '';
      foreign.code = new URL((await signIn(new Browser(issuer), globex, { email: 'gina@globex.test' })).page.url).searchParams.get('code') ?? '';

      // The account pages' personas, signed in once: the owner, a user, a
      // person with a PIN (chosen at this first sign-in), one with an app
      // (linked at this first sign-in), and nobody.
      for (const [persona, email] of [
        ['owner', 'owner@acme.test'],
        ['user', 'bob@acme.test'],
      ] as const) {
        const { browser, page } = await accountSignIn(server, { email });
        accountActors.set(persona, { browser, token: csrfOf(page), action: '/account', email });
      }
      {
        const { browser, page } = await accountSignIn(server, { email: 'nina@acme.test' });
        const done = await submit(browser, page, 'choose-pin-form', { pin: NINA_PIN, pin_confirm: NINA_PIN });
        assert.equal(new URL(done.url).pathname, '/account', `nina's PIN: ${done.status}`);
        accountActors.set('nurse', { browser, token: csrfOf(done), action: '/account', email: 'nina@acme.test' });
      }
      {
        const { browser, page } = await accountSignIn(server, { email: 'tim@acme.test' });
        const linked = await linkOnPage(browser, page);
        assert.equal(new URL(linked.page.url).pathname, '/account', `tim's app: ${linked.page.status}`);
        accountActors.set('guard', { browser, token: csrfOf(linked.page), action: '/account', email: 'tim@acme.test', secret: linked.secret });
      }
      accountActors.set('anonymous', { browser: new Browser(issuer), token: 'n'.repeat(32), action: '/account' });
      prototypeNames = Object.getOwnPropertyNames(Object.prototype).sort();
    });

    after(async () => {
      await mongo?.close();
      await server?.stop();
      await upstream?.stop();
    });

    // -- the store, read beside the app -----------------------------------

    async function rawCounts(): Promise<Record<string, number>> {
      const tables = ['tenants', 'identities', 'logins', 'clients', 'upstreams', 'upstream_links', 'login_sessions'];
      if (mongo) {
        const db = mongo.db(server.env.MONGODB_DB);
        return Object.fromEntries(await Promise.all([...tables, 'factor_steps'].map(async (t) => [t, await db.collection(t).countDocuments()] as const)));
      }
      const db = new Database(join(server.env.DATA_DIR!, 'latchkey.db'), { readonly: true });
      try {
        return Object.fromEntries(tables.map((t) => [t, (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n]));
      } finally {
        db.close();
      }
    }

    /** Everything a fuzzed request must not change. Audit events and remembered grants may grow (failures; the set-up's own sign-ins). */
    async function snapshot() {
      const a = server.latchkey.stores.accounts;
      const tenants = await a.listTenants();
      const logins = (await Promise.all(tenants.map((t) => a.listLogins(t.id)))).flat();
      return {
        counts: await rawCounts(),
        tenants,
        logins,
        identities: await Promise.all([...EMAILS, 'nobody@acme.test', 'BOB@ACME.TEST', ' bob@acme.test'].map((e) => a.findIdentityByEmail(e))),
        clients: await Promise.all(tenants.map((t) => a.listClients(t.id))),
        upstreams: await Promise.all(tenants.map((t) => a.listUpstreams(t.id))),
        upstreamLinks: await Promise.all(EMAILS.map(async (e) => a.listUpstreamLinks((await a.findIdentityByEmail(e))?.id ?? 'none'))),
        sessionCutoffs: await Promise.all(logins.map((l) => a.loginSessionsNotBefore(l.id))),
      };
    }

    async function fuzzedSuccesses(since: Date): Promise<AuditEvent[]> {
      const a = server.latchkey.stores.accounts;
      const events = (await Promise.all(['acme', 'globex', '*'].map((tenant) => a.listAudit({ tenant, limit: 500 })))).flat();
      return events.filter((e) => e.userAgent === FUZZ_UA && e.outcome === 'success' && e.time >= since);
    }

    // -- checks -------------------------------------------------------------

    /** This browser has no provider session: an authorization asks for a sign-in. */
    async function assertNoSession(browser: Browser, rp = portal) {
      const page = await browser.get((await rp.authorize()).url);
      assert.ok(!callbackReached(page), `no code reaches the relying party: ${page.url}`);
      assert.ok(testIds(page).includes('login-form'), `the login page, got ${page.status} ${page.url}`);
    }

    /** A signed-in account persona is still who it was. */
    async function assertStillSelf(actor: Actor) {
      const page = await actor.browser.get('/account');
      assert.equal(page.status, 200, `the profile, got ${page.status} ${page.url}`);
      assert.equal(textOf(page, 'profile-email'), actor.email);
    }

    function assertAnswer(t: Target, res: Page, special: boolean) {
      const what = `${t.name}: ${res.status} ${res.headers.get('content-type')} ${res.html.slice(0, 300)}`;
      assert.ok(res.status < 500, `never a 5xx — ${what}`);
      if (!special) assert.ok(res.status >= 400 && res.status < 500, `a 4xx — ${what}`);
      assert.doesNotMatch(res.html, STACK, `no stack trace — ${what}`);
      assert.ok(!res.html.includes(PASSWORD), 'the password is never echoed');
      const location = res.headers.get('location');
      if (location) assert.ok(!(location.startsWith(REDIRECT_URI) && new URL(location).searchParams.has('code')), `no code for the RP — ${what}`);
      if (res.status >= 300 && res.status < 400) return;
      const type = res.headers.get('content-type') ?? '';
      if (res.status === 200 && !res.html) return; // revocation's empty answer
      if (/^application\/json/.test(type)) {
        const body = JSON.parse(res.html) as Record<string, unknown>;
        if (res.status >= 400) assert.equal(typeof body.error, 'string', `a JSON error — ${what}`);
        return;
      }
      assert.match(type, /^text\/html/, `HTML or JSON — ${what}`);
      assert.match(res.html, /^<!DOCTYPE html>/i, what);
      if (res.status >= 400)
        assert.ok(
          testIds(res).some((id) => id === 'error' || id === 'error-message'),
          `the page says what went wrong — ${what}`,
        );
    }

    async function fuzz(t: Target) {
      const actors = new Map<string, Actor>();
      const actorFor = async (persona: string) => {
        let actor = actors.get(persona);
        if (!actor) actors.set(persona, (actor = await t.prepare(persona)));
        return actor;
      };
      for (const persona of t.personas) await actorFor(persona);
      const before = await snapshot();
      const started = new Date();
      let specials = 0;
      let statuses = new Map<number, number>();

      await fc.assert(
        fc.asyncProperty(modelArb(t), async (m) => {
          const persona = t.personas[m.persona]!;
          const actor = await actorFor(persona);
          const fields = t.sanitize ? await t.sanitize(m.fields, actor, persona) : m.fields;
          const sent = render(t, actor, m, issuer, fields);
          const res = await actor.browser.request(sent.path, { method: 'POST', headers: sent.headers, body: sent.body as BodyInit | null });
          const special = res.status < 400 ? (t.special?.(res, sent, persona, actor) ?? null) : null;
          assertAnswer(t, res, !!special);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (process.env.FUZZ_DEBUG)
            console.error(
              t.name,
              persona,
              res.status,
              JSON.stringify(sent.headers),
              Buffer.from(sent.body ?? [])
                .toString('latin1')
                .slice(0, 200),
              '→',
              res.html.slice(0, 160),
            );
          // Where the answer leads, nothing fails and no code reaches the RP.
          const final = await actor.browser.follow(res);
          assert.ok(final.status < 500, `${t.name}: followed to ${final.status} ${final.url}`);
          assert.ok(!(final.url.startsWith(REDIRECT_URI) && new URL(final.url).searchParams.has('code')), `${t.name}: a code reached the RP`);
          assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeNames, 'no prototype pollution');
          if (special) specials++;
          if (special?.reprepare) actors.delete(persona);
          // A TOTP persona's page may show a new secret after a wrong code.
          if (actor.secret && res.html.includes('data-testid="totp-secret"')) actor.secret = secretOf(res);
        }),
        // One seed per endpoint (the base seed and the endpoint's name), so the endpoints get different bodies.
        { seed: seedFor(t.name), numRuns: t.runs ?? RUNS },
      );

      const health = await fetch(`${issuer}/healthz`);
      assert.equal(health.status, 200, 'the process is healthy');
      assert.deepEqual(await snapshot(), before, `${t.name}: nothing stored changed`);
      const successes = (await fuzzedSuccesses(started)).filter((e) => !(t.allowedSuccesses ?? []).includes(e.type));
      assert.deepEqual(
        successes.map((e) => e.type),
        [],
        `${t.name}: no success audited for a fuzzed request`,
      );
      for (const persona of t.personas) await actorFor(persona);
      await t.afterwards(actors);
      statuses = new Map([...statuses].sort((a, b) => a[0] - b[0]));
      return { specials, statuses };
    }

    // -- states -------------------------------------------------------------

    async function loginPage(rp = portal) {
      const browser = new Browser(issuer);
      const page = await browser.get((await rp.authorize()).url);
      assert.ok(testIds(page).includes('login-form'), `the login page, got ${page.status}`);
      const action = actionOf(page, 'login-form');
      return { browser, page, token: csrfOf(page), action, uid: /\/interaction\/([^/]+)\//.exec(action)![1]! };
    }

    /** Signed in with the password up to the page marked `form` (select, a factor, consent). */
    async function afterPassword(email: string, form: string, rp = portal): Promise<Actor & { page: Page }> {
      const { browser, page: login } = await loginPage(rp);
      const page = await submitLogin(browser, login, email, PASSWORD);
      assert.ok(testIds(page).includes(form), `${email}: expected ${form}, got ${page.status} ${page.url}`);
      return { browser, page, token: csrfOf(page), action: actionOf(page, form), email };
    }

    const journeyAfterwards = async (actors: Map<string, Actor>) => {
      for (const actor of actors.values()) await assertNoSession(actor.browser);
    };

    const accountAfterwards = async (actors: Map<string, Actor>) => {
      for (const [persona, actor] of actors) {
        if (persona === 'anonymous') {
          await assertNoSession(actor.browser);
          assert.ok(testIds(await actor.browser.get('/account')).includes('login-form'), 'no account session');
        } else await assertStillSelf(actor);
      }
    };

    const sharedAccountActor = async (persona: string) => accountActors.get(persona)!;

    /** Where the account's forms post: our origin, the persona signed in, its token. */
    const accountSpecialOk = (sent: Sent, persona: string) => sent.tokenSent && sent.originOk && persona !== 'anonymous';

    const TYPES = ['owner', 'employee', 'manager', 'nurse', 'guard'];
    const currentFactor = async (type: string) => (await server.latchkey.stores.accounts.getTenant('acme'))!.userTypes.find((u) => u.id === type)?.secondFactor;

    const providerAfterwards = async (actors: Map<string, Actor>) => {
      for (const actor of actors.values()) await assertNoSession(actor.browser);
    };
    const anonymous = async (): Promise<Actor> => ({ browser: new Browser(issuer), token: '', action: '' });

    const AUTH_PARAMS = [
      'client_id',
      'response_type',
      'redirect_uri',
      'scope',
      'code_challenge',
      'code_challenge_method',
      'state',
      'nonce',
      'prompt',
      'login_hint',
      'request',
      'request_uri',
      'max_age',
      'claims',
      'acr_values',
      'ui_locales',
    ];
    const AUTH_VALUES = [
      'portal',
      'partner',
      'latchkey-account',
      'code',
      'token',
      'id_token',
      REDIRECT_URI,
      'http://evil.example/cb',
      'openid',
      'openid email profile offline_access',
      'S256',
      'plain',
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      'login',
      'none',
      'consent',
      '0',
      '{"userinfo":{"email":null}}',
      'urn:ietf:params:oauth:request_uri:x',
    ];

    const targets: Target[] = [
      // The sign-in journey (src/interaction/router.ts). The right password is never sent.
      {
        name: 'POST /interaction/:uid/login',
        personas: ['browser'],
        fields: ['email', 'password', 'upstream'],
        values: ['bob@acme.test', 'BOB@acme.test', ' bob@acme.test ', 'jane@acme.test', 'gina@globex.test', 'nobody@acme.test', 'wrong password', PASSWORD.toUpperCase(), 'corp'],
        tokenField: 'csrf',
        prepare: () => loginPage(),
        path: (a) => a.action,
        afterwards: journeyAfterwards,
      },
      {
        // Jane has two logins; choosing one of hers is a valid answer, so her ids are only ever sent in shapes that cannot be one.
        name: 'POST /interaction/:uid/select',
        personas: ['jane'],
        fields: ['login'],
        values: ['jane-emp', 'jane-mgr', 'bob-emp', 'gina-staff', 'nobody', 'JANE-EMP', 'jane-emp ', 'acme-owner'],
        tokenField: 'csrf',
        prepare: () => afterPassword('jane@acme.test', 'select-form'),
        path: (a) => a.action,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['login'],
            (v) => v === 'jane-emp' || v === 'jane-mgr',
            (v) => `${v}\u0000`,
          ),
        afterwards: journeyAfterwards,
      },
      {
        // Four factor pages: choose a PIN (Nell), enter the PIN (Nina), link the app (Tom), enter a code (Tim).
        // Correct answers (the real PIN, a live code, an acceptable new PIN entered twice) are made wrong.
        name: 'POST /interaction/:uid/factor',
        personas: ['choose-pin', 'enter-pin', 'link-app', 'enter-code'],
        fields: FACTOR_FIELDS,
        values: ['123456', '111111', '654321', '12345', '1234567890123', ` ${NINA_PIN}`, `${NINA_PIN}0`, '000000', '123 456', '12-34-56', '0x1F', '1e6'],
        tokenField: 'csrf',
        runs: Math.round((RUNS * 4) / 3),
        prepare: async (persona) => {
          const [email, form] = {
            'choose-pin': ['nell@acme.test', 'choose-pin-form'],
            'enter-pin': ['nina@acme.test', 'enter-pin-form'],
            'link-app': ['tom@acme.test', 'link-authenticator-form'],
            'enter-code': ['tim@acme.test', 'enter-code-form'],
          }[persona]!;
          const actor = await afterPassword(email!, form!);
          if (persona === 'link-app') actor.secret = secretOf(actor.page);
          if (persona === 'enter-code') actor.secret = accountActors.get('guard')!.secret;
          return actor;
        },
        path: (a) => a.action,
        sanitize: async (fields, actor, persona) => {
          if (persona === 'enter-pin')
            return replaceValues(
              fields,
              ['pin'],
              (v) => v === NINA_PIN,
              (v) => `${v}0`,
            );
          if (persona === 'choose-pin') {
            const first = (k: string) => fields.find(([f, v]) => f === k && typeof v === 'string')?.[1] as string | undefined;
            const pin = first('pin');
            if (pin !== undefined && !checkNewPin(pin, pin, { minLength: 6, maxLength: 64 }))
              return replaceValues(
                fields,
                ['pin_confirm'],
                (v) => v === pin,
                (v) => `${v}9`,
              );
            return fields;
          }
          const live = await liveCodes(actor.secret!);
          return replaceValues(
            fields,
            ['code'],
            (v) => live.has(normalizeCode(v)),
            (v) => `x${v}`,
          );
        },
        afterwards: journeyAfterwards,
      },
      {
        // The consent form's only field is its token: a valid token *is* the consent, so it is never sent whole.
        name: 'POST /interaction/:uid/confirm',
        personas: ['bob'],
        fields: ['csrf', 'consent', 'scope'],
        values: ['yes', 'openid', 'openid email profile offline_access', 'allow'],
        tokenField: 'csrf',
        noValidToken: true,
        prepare: () => afterPassword('bob@acme.test', 'consent-form', partner),
        path: (a) => a.action,
        afterwards: async (actors) => {
          // Bob's provider session exists (his password passed); the partner still has no consent, so no code.
          for (const actor of actors.values()) {
            const page = await actor.browser.get((await partner.authorize()).url);
            assert.ok(!callbackReached(page), 'no code reaches the partner');
            assert.ok(testIds(page).includes('consent-form'), `still the consent page, got ${page.status}`);
          }
        },
      },
      {
        // Legitimate: with the valid token, "Cancel" ends the sign-in — a 303 back into the provider, which
        // answers the RP with access_denied (no code). The interaction is then over: a new one is prepared.
        name: 'POST /interaction/:uid/abort',
        personas: ['browser'],
        fields: ['csrf', 'reason'],
        values: ['cancel', 'access_denied'],
        tokenField: 'csrf',
        prepare: async () => {
          const { browser, token, uid } = await loginPage();
          return { browser, token, action: `/interaction/${uid}/abort` };
        },
        path: (a) => a.action,
        special: (res, sent, _p, actor) => {
          const uid = /\/interaction\/([^/]+)\//.exec(actor.action)![1];
          return sent.tokenSent && res.status === 303 && new URL(res.headers.get('location')!, issuer).pathname === `/auth/${uid}` ? { reprepare: true } : null;
        },
        afterwards: journeyAfterwards,
      },
      {
        // src/upstream/routes.ts. Legitimate: with the valid token and the tenant's upstream id, a 303 to
        // that upstream's authorization endpoint (the sign-in waits for its answer; nothing is stored).
        name: 'POST /interaction/:uid/upstream',
        personas: ['browser'],
        fields: ['upstream'],
        values: ['corp', 'CORP', 'corp ', ' corp', 'nope', '../corp', 'corp/../corp', 'globex', 'corp.', '-corp'],
        tokenField: 'csrf',
        prepare: async () => {
          const { browser, token, page } = await loginPage();
          return { browser, token, action: actionOf(page, 'upstream-form') };
        },
        path: (a) => a.action,
        special: (res, sent) => (sent.tokenSent && res.status === 303 && res.headers.get('location')!.startsWith(`${upstream.issuer}/auth?`) ? {} : null),
        afterwards: journeyAfterwards,
      },
      {
        // The first sign-in of Jane's upstream account asks for her password; the right one is never sent.
        name: 'POST /interaction/:uid/upstream/confirm',
        personas: ['jane'],
        fields: ['password'],
        values: ['wrong password', PASSWORD.toUpperCase(), ` ${PASSWORD}`, `${PASSWORD}\u0000`, 'jane@acme.test'],
        tokenField: 'csrf',
        prepare: async () => {
          upstream.user = { sub: 'fuzz-jane', email: 'jane@acme.test', email_verified: true };
          const { browser, page } = await loginPage();
          const sent = await browser.post(actionOf(page, 'upstream-form'), { upstream: 'corp', csrf: csrfOf(page) });
          const confirm = await browser.get(await visitUpstream(upstream, sent.url));
          assert.ok(testIds(confirm).includes('upstream-confirm-form'), `the confirmation, got ${confirm.status} ${confirm.url}`);
          return { browser, token: csrfOf(confirm), action: actionOf(confirm, 'upstream-confirm-form'), email: 'jane@acme.test' };
        },
        path: (a) => a.action,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['password'],
            (v) => v === PASSWORD,
            (v) => `${v}!`,
          ),
        afterwards: journeyAfterwards,
      },
      {
        // src/recovery/routes.ts. Legitimate: with the valid token, the same "if it is known, a link is on its
        // way" page (200) whatever the email. Known emails are made unknown: a link for them is the
        // journey test's business, and would be stored.
        name: 'POST /interaction/:uid/forgot',
        personas: ['browser'],
        fields: ['email'],
        values: ['nobody@acme.test', 'NOBODY@acme.test', ' nobody@acme.test ', 'a@b', '@', 'nobody', 'é@ü.test', 'x'.repeat(330)],
        tokenField: 'csrf',
        prepare: async () => {
          const { browser, token, uid } = await loginPage();
          return { browser, token, action: `/interaction/${uid}/forgot` };
        },
        path: (a) => a.action,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['email'],
            (v) => EMAILS.includes(v.trim().toLowerCase()),
            () => 'nobody@acme.test',
          ),
        special: (res, sent) => (sent.tokenSent && res.status === 200 && testIds(res).includes('forgot-sent') ? {} : null),
        afterwards: journeyAfterwards,
      },
      {
        // src/factors/passkey/signin.ts: sign in with a passkey alone. No fuzzed body is a WebAuthn assertion
        // signed by a key the store knows, so every answer is a refusal on the page (400), never a sign-in.
        name: 'POST /interaction/:uid/passkey',
        personas: ['browser'],
        fields: ['response', 'name'],
        values: [
          '{}',
          'null',
          '[]',
          '{"id":"YQ","rawId":"YQ","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA","userHandle":"AA"}}',
          '{"id":"YQ","rawId":"YQ","type":"public-key","response":{"clientDataJSON":1}}',
          '{"id":{"$ne":null},"rawId":"YQ","type":"public-key","response":{}}',
          'x'.repeat(17_000),
        ],
        tokenField: 'csrf',
        prepare: async () => {
          const { browser, token, uid } = await loginPage();
          await browser.get(`/interaction/${uid}/passkey`);
          return { browser, token, action: `/interaction/${uid}/passkey` };
        },
        path: (a) => a.action,
        afterwards: journeyAfterwards,
      },
      ...(['reset', 'invite'] as const).map((purpose): Target => ({
        // A mailed link's form. Never a successful reset: a new password that the rules would accept is
        // made to differ from its confirmation.
        name: `POST /${purpose}/:token`,
        personas: ['browser'],
        fields: ['password', 'password_confirm'],
        values: ['short', 'password', 'password1', '12345678', 'tim@acme.test', 'TIM@ACME.TEST', '', ' ', 'é'.repeat(8), 'a strong new passphrase'],
        tokenField: 'csrf',
        prepare: async () => {
          const token = randomBytes(32).toString('base64url');
          const identity = (await server.latchkey.stores.accounts.findIdentityByEmail('tim@acme.test'))!;
          const now = new Date();
          await server.latchkey.stores.links.create(createHash('sha256').update(token).digest('base64url'), {
            purpose,
            identityId: identity.id,
            createdAt: now,
            expiresAt: new Date(now.getTime() + 3_600_000),
          });
          const browser = new Browser(issuer);
          const page = await browser.get(`/${purpose}/${token}`);
          assert.ok(testIds(page).includes('reset-form'), `the ${purpose} form, got ${page.status}`);
          return { browser, token: csrfOf(page), action: `/${purpose}/${token}` };
        },
        path: (a) => a.action,
        sanitize: async (fields) => {
          const password = fields.find(([k, v]) => k === 'password' && typeof v === 'string')?.[1] as string | undefined;
          if (password === undefined || checkNewPassword(password, password, 'tim@acme.test')) return fields;
          return replaceValues(
            fields,
            ['password_confirm'],
            (v) => v === password,
            (v) => `${v}-differs`,
          );
        },
        afterwards: journeyAfterwards,
      })),
      // The account pages (src/account/*.ts).
      {
        // Legitimate: without a session, or with the session's token from our origin, a 303 to the
        // signed-out page (the sign-out is the form's purpose; Sam's session is then made again).
        name: 'POST /account/signout',
        personas: ['sam', 'anonymous'],
        fields: ['csrf', 'return_to'],
        values: ['/account', 'http://evil.example/'],
        tokenField: 'csrf',
        accountPages: true,
        runs: Math.round((RUNS * 2) / 3),
        prepare: async (persona) => {
          if (persona === 'anonymous') return sharedAccountActor('anonymous');
          const { browser, page } = await accountSignIn(server, { email: 'sam@acme.test' });
          return { browser, token: csrfOf(page), action: '/account', email: 'sam@acme.test' };
        },
        path: () => '/account/signout',
        special: (res, sent, persona) =>
          res.status === 303 && res.headers.get('location') === '/account/signed-out' && sent.originOk && (persona === 'anonymous' || sent.tokenSent)
            ? { reprepare: persona !== 'anonymous' }
            : null,
        allowedSuccesses: ['account.signout'],
        afterwards: accountAfterwards,
      },
      {
        // Switching to another login: these personas have one login each, so no value names a sibling and
        // every answer is a 4xx (the switch itself is test/account/switch.test.ts).
        name: 'POST /account/switch',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['login'],
        values: ['jane-emp', 'jane-mgr', 'acme-owner', 'bob-emp', 'gina-staff', '', '*'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/switch',
        afterwards: accountAfterwards,
      },
      {
        // Legitimate: the owner's form with a user type and the factor it already has — nothing changes,
        // and the answer is the PRG 303 back to the page. (A different factor is made the current one.)
        name: 'POST /account/security',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['user_type', 'second_factor', 'confirm'],
        values: [...TYPES, 'staff', 'EMPLOYEE', 'employee ', ...SECOND_FACTORS, 'sms', 'NONE', 'pin '],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/security',
        // The form holds every type: each `second_factor` that names a factor becomes the current one
        // of the `user_type` in its place, so whatever the repetition, nothing changes.
        sanitize: async (fields) => {
          const flat = (v: unknown) => (typeof v === 'string' ? [v] : Array.isArray(v) ? v : []);
          const types = fields.filter(([k]) => k === 'user_type').flatMap(([, v]) => flat(v));
          const currents = await Promise.all(types.map((t) => (typeof t === 'string' && TYPES.includes(t) ? currentFactor(t) : undefined)));
          let i = 0;
          const fix = <V>(v: V): V | string => {
            const current = currents[i++];
            return typeof v === 'string' && SECOND_FACTORS.includes(v) && current ? current : v;
          };
          return fields.map(([k, v]): Field => (k !== 'second_factor' ? [k, v] : [k, (typeof v === 'string' ? fix(v) : Array.isArray(v) ? v.map(fix) : v) as Value]));
        },
        special: (res, sent, persona) =>
          persona === 'owner' && accountSpecialOk(sent, persona) && res.status === 303 && res.headers.get('location') === '/account/security?notice=policy' ? {} : null,
        afterwards: accountAfterwards,
      },
      {
        // Legitimate: the owner's form with the policy the tenant has (the defaults) changes nothing and answers
        // the PRG 303; any other valid policy is turned into an invalid one.
        name: 'POST /account/security/sessions',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['lifetime_hours', 'idle_minutes', 'stay_signed_in'],
        values: ['336', '0', 'on', 'off', '1', '8', '-1', '337', '1e3', '0x10', ' 8', '8.5', '99999999', 'ON'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/security/sessions',
        sanitize: async (fields) => {
          const number = /^\s*\d+\s*$/;
          let out = replaceValues(
            fields,
            ['lifetime_hours'],
            (v) => number.test(v) && v.trim() !== '336',
            () => '0',
          );
          out = replaceValues(
            out,
            ['idle_minutes'],
            (v) => number.test(v) && Number(v) !== 0,
            () => '-1',
          );
          return replaceValues(
            out,
            ['stay_signed_in'],
            (v) => v === 'off',
            () => 'OFF',
          );
        },
        special: (res, sent, persona) =>
          persona === 'owner' && accountSpecialOk(sent, persona) && res.status === 303 && res.headers.get('location') === '/account/security?notice=sessionPolicy' ? {} : null,
        afterwards: async (actors) => {
          assert.equal((await server.latchkey.stores.accounts.getTenant('acme'))?.sessionPolicy, undefined, 'no policy was set');
          await accountAfterwards(actors);
        },
      },
      ...OWNER_ACTIONS.map((kind): Target => ({
        // Legitimate: the owner's post without `confirm=yes` (the users page's button) answers the
        // confirmation page, 200, changing nothing. `confirm=yes` itself is never sent whole.
        name: `POST /account/users/:loginId/${kind}`,
        personas: ['owner', 'user', 'anonymous'],
        fields: ['confirm'],
        values: ['no', 'YES', 'yes ', 'Yes', 'yes\u0000', 'true', '1', 'on'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: (_a, m) => `/account/users/${LOGIN_SEGMENTS[m.pick % LOGIN_SEGMENTS.length]}/${kind}`,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['confirm'],
            (v) => v === 'yes',
            () => 'yes!',
          ),
        special: (res, sent, persona) =>
          persona === 'owner' &&
          accountSpecialOk(sent, persona) &&
          res.status === 200 &&
          testIds(res).includes('confirm-reset-form') &&
          ACME_LOGINS.includes(sent.path.split('/')[3]!)
            ? {}
            : null,
        afterwards: accountAfterwards,
      })),
      // The owner's user types, owners, sign-in providers and applications: every value that could make
      // a change is spoiled first (a name with an invisible character, a factor that is none, an email
      // without @, an issuer or redirect URI that is no URL), and `confirm=yes` is never sent whole, so
      // the legitimate answers are the confirmation pages (200) and a connection test's result (200).
      {
        name: 'POST /account/user-types',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['name', 'second_factor'],
        values: ['Night nurse', 'Owner', 'owner', ...SECOND_FACTORS, 'sms', ' ', '\u200b', 'x'.repeat(101)],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/user-types',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['second_factor'],
            (v) => SECOND_FACTORS.includes(v),
            (v) => `${v}!`,
          ),
        afterwards: accountAfterwards,
      },
      {
        name: 'POST /account/user-types/:id/rename',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['name'],
        values: ['Night nurse', 'Owner', 'Employee', 'employee', ' ', 'x'.repeat(101)],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: (_a, m) => `/account/user-types/${[...TYPES, 'staff', 'nobody', '..', '%00'][m.pick % (TYPES.length + 4)]}/rename`,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['name'],
            () => true,
            (v) => `${v}\u200b`,
          ),
        afterwards: accountAfterwards,
      },
      ...(
        [
          ['user-types', 'confirm-remove-type-form', [...TYPES, 'staff', 'nobody', '%2e%2e']],
          ['owners', 'confirm-remove-owner-form', [...ACME_LOGINS, 'gina-staff', 'nobody']],
          ['providers', 'confirm-remove-provider-form', ['corp', 'nope', '%00']],
          ['applications', 'confirm-app-form', ['portal', 'partner', 'globex-app', 'nope']],
        ] as const
      ).map(([area, form, ids]): Target => ({
        name: `POST /account/${area}/:id/remove`,
        personas: ['owner', 'user', 'anonymous'],
        fields: ['confirm'],
        values: ['no', 'YES', 'yes ', 'Yes', 'yes\u0000', 'true', '1', 'on'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: (_a, m) => `/account/${area}/${ids[m.pick % ids.length]}/remove`,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['confirm'],
            (v) => v === 'yes',
            () => 'yes!',
          ),
        // A user type with logins and the only owner show their page with the reason instead of the form.
        special: (res, sent, persona) =>
          persona === 'owner' &&
          accountSpecialOk(sent, persona) &&
          res.status === 200 &&
          (testIds(res).includes(form) || testIds(res).includes('type-in-use') || testIds(res).includes('last-owner'))
            ? {}
            : null,
        afterwards: accountAfterwards,
      })),
      {
        name: 'POST /account/applications/:clientId/rotate',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['confirm'],
        values: ['no', 'YES', 'yes ', 'Yes', 'yes\u0000', 'true', '1', 'on'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: (_a, m) => `/account/applications/${['portal', 'partner', 'globex-app', 'nope'][m.pick % 4]}/rotate`,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['confirm'],
            (v) => v === 'yes',
            () => 'yes!',
          ),
        special: (res, sent, persona) => (persona === 'owner' && accountSpecialOk(sent, persona) && res.status === 200 && testIds(res).includes('confirm-app-form') ? {} : null),
        afterwards: accountAfterwards,
      },
      {
        name: 'POST /account/owners',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['email', 'user_type'],
        values: ['bob@acme.test', 'JANE@acme.test', 'gina@globex.test', 'nobody@acme.test', ...TYPES, ''],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/owners',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['email'],
            (v) => v.includes('@'),
            (v) => v.replaceAll('@', ' at '),
          ),
        afterwards: accountAfterwards,
      },
      ...(['/account/providers', '/account/providers/corp/edit', '/account/providers/nope/edit'] as const).map((path): Target => ({
        name: `POST ${path}`,
        personas: ['owner', 'user', 'anonymous'],
        fields: ['name', 'id', 'issuer', 'client_id', 'client_secret'],
        values: ['Corp ID', 'corp', 'social', issuer, 'https://id.example', 'latchkey', 'corp-client-secret', '', 'x'.repeat(600)],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => path,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['issuer'],
            (v) => v.includes('://'),
            (v) => v.replaceAll('://', ':/ /'),
          ),
        afterwards: accountAfterwards,
      })),
      {
        // Changes nothing: the owner's test of a stored provider answers its result (200).
        name: 'POST /account/providers/:id/test',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['x'],
        values: ['1'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: (_a, m) => `/account/providers/${['corp', 'nope', '%00'][m.pick % 3]}/test`,
        special: (res, sent, persona) => (persona === 'owner' && accountSpecialOk(sent, persona) && res.status === 200 && testIds(res).includes('test-result') ? {} : null),
        afterwards: accountAfterwards,
      },
      {
        name: 'POST /account/applications',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['name', 'redirect_uris', 'first_party', 'min_acr', 'client_type'],
        values: ['Rota', REDIRECT_URI, `${REDIRECT_URI}\nhttps://x.example/cb`, 'yes', 'no', 'confidential', 'public', 'urn:latchkey:acr:pin', '', 'javascript:alert(1)'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/applications',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['redirect_uris'],
            (v) => v.includes(':'),
            (v) => v.replaceAll(':', ' '),
          ),
        afterwards: accountAfterwards,
      },
      {
        // Adding a person: the email is never a valid address, so nothing is ever added; every answer is a 4xx.
        name: 'POST /account/users/new',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['first_name', 'last_name', 'email', 'user_type', 'nonce', 'same_name'],
        values: ['Bob', 'Doe', 'bob@acme.test', 'JANE@acme.test', ...TYPES, 'boss', 'yes', 'AAAAAAAAAAAAAAAAAAAAAA', ' ', '\u200b', 'x'.repeat(101)],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/users/new',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['email'],
            (v) => v.includes('@'),
            (v) => v.replaceAll('@', ' at '),
          ),
        afterwards: accountAfterwards,
      },
      {
        // Editing a person: as adding one, the email is never a valid address, so nothing is ever changed.
        name: 'POST /account/users/:loginId/edit',
        personas: ['owner', 'user', 'anonymous'],
        fields: ['first_name', 'last_name', 'email', 'user_type', 'same_name'],
        values: ['Bob', 'Doe', 'bob@acme.test', 'JANE@acme.test', ...TYPES, 'boss', 'yes', ' ', '\u200b', 'x'.repeat(101)],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: (_a, m) => `/account/users/${LOGIN_SEGMENTS[m.pick % LOGIN_SEGMENTS.length]}/edit`,
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['email'],
            (v) => v.includes('@'),
            (v) => v.replaceAll('@', ' at '),
          ),
        afterwards: accountAfterwards,
      },
      {
        name: 'POST /account/profile/factor/pin',
        personas: ['nurse', 'user', 'anonymous'],
        fields: ['current_pin', 'pin', 'pin_confirm'],
        values: [`${NINA_PIN}0`, '123456', '135790', '111111', '24680135', '12345', '0000000000', ` ${NINA_PIN}`],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/profile/factor/pin',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['current_pin'],
            (v) => v === NINA_PIN,
            (v) => `${v}1`,
          ),
        afterwards: accountAfterwards,
      },
      {
        name: 'POST /account/profile/factor/totp',
        personas: ['guard', 'user', 'anonymous'],
        fields: ['code'],
        values: ['000000', '123456', '123 456', '12-34-56', '1234567', ''],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/profile/factor/totp',
        sanitize: async (fields) => {
          const live = await liveCodes(accountActors.get('guard')!.secret!);
          return replaceValues(
            fields,
            ['code'],
            (v) => live.has(normalizeCode(v)),
            (v) => `x${v}`,
          );
        },
        afterwards: accountAfterwards,
      },
      {
        // New recovery codes (src/account/profile.ts): the app's code first. Never a live one, so no set is ever made.
        name: 'POST /account/profile/method/recovery/confirm',
        personas: ['guard', 'user', 'anonymous'],
        fields: ['code'],
        values: ['000000', '123456', '123 456', '12-34-56', '1234567', ''],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/profile/method/recovery/confirm',
        sanitize: async (fields) => {
          const live = await liveCodes(accountActors.get('guard')!.secret!);
          return replaceValues(
            fields,
            ['code'],
            (v) => live.has(normalizeCode(v)),
            (v) => `x${v}`,
          );
        },
        afterwards: accountAfterwards,
      },
      {
        name: 'POST /account/profile/password',
        personas: ['user', 'owner', 'anonymous'],
        fields: ['current_password', 'password', 'password_confirm'],
        values: ['wrong password', PASSWORD.slice(0, -1), 'a much longer new password 2024', 'password', 'bob@acme.test', 'short'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/profile/password',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['current_password'],
            (v) => v === PASSWORD,
            (v) => `${v}!`,
          ),
        afterwards: accountAfterwards,
      },
      {
        // Nobody fuzzing has a link: every answer is a 4xx, and Gina's link (another person's) stays.
        name: 'POST /account/profile/upstreams/unlink',
        personas: ['user', 'owner', 'anonymous'],
        fields: ['issuer', 'subject'],
        values: ['UPSTREAM_ISSUER', 'fuzz-gina', 'FUZZ-GINA', 'fuzz-gina ', 'https://idp.example', 'http://127.0.0.1:9'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/profile/upstreams/unlink',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['issuer', 'subject'],
            (v) => v === 'UPSTREAM_ISSUER',
            () => upstream.issuer,
          ),
        afterwards: accountAfterwards,
      },
      {
        // Nobody fuzzing names a session of their own: every answer is a 4xx, and no session ends.
        name: 'POST /account/profile/sessions/end',
        personas: ['user', 'owner', 'anonymous'],
        fields: ['session'],
        values: ['', 'x', 'SESSION', 'a'.repeat(43), 'a'.repeat(200), '../end-others'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/profile/sessions/end',
        afterwards: accountAfterwards,
      },
      {
        // Legitimate: the owner's own form ends the owner's other sessions (there are none: nothing else
        // signs in as the owner) and answers the PRG 303.
        name: 'POST /account/profile/sessions/end-others',
        personas: ['owner', 'anonymous'],
        // The form has no field but its token: any other is refused.
        fields: ['session'],
        values: ['yes', 'all'],
        tokenField: 'csrf',
        accountPages: true,
        prepare: sharedAccountActor,
        path: () => '/account/profile/sessions/end-others',
        special: (res, sent, persona) =>
          accountSpecialOk(sent, persona) && res.status === 303 && res.headers.get('location') === '/account?notice=otherSessionsEnded' ? {} : null,
        allowedSuccesses: ['session.ended'],
        afterwards: accountAfterwards,
      },
      // The provider's POST endpoints. The portal's own codes and tokens are never sent; another client's are.
      {
        name: 'POST /token',
        personas: ['client'],
        fields: ['grant_type', 'code', 'refresh_token', 'redirect_uri', 'code_verifier', 'scope', 'client_id', 'client_secret', 'client_assertion_type', 'resource'],
        values: [
          'authorization_code',
          'refresh_token',
          'client_credentials',
          'password',
          'urn:ietf:params:oauth:grant-type:device_code',
          'implicit',
          REDIRECT_URI,
          'openid',
          'portal',
          'globex-app',
          'latchkey-account',
          'FOREIGN_CODE',
          'FOREIGN_REFRESH',
          'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        ],
        clientAuth: true,
        reader: 'provider',
        prepare: anonymous,
        path: () => '/token',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['code', 'refresh_token', 'client_secret'],
            (v) => v.startsWith('FOREIGN_'),
            (v) => (v === 'FOREIGN_CODE' ? foreign.code : foreign.refreshToken),
          ),
        afterwards: providerAfterwards,
      },
      {
        // Legitimate (RFC 7662 §2.2): a client that authenticates gets 200 for any token; one that is
        // unknown, or another client's, is `{"active": false}` — checked below.
        name: 'POST /token/introspection',
        personas: ['client'],
        fields: ['token', 'token_type_hint'],
        values: ['access_token', 'refresh_token', 'FOREIGN_ACCESS', 'FOREIGN_REFRESH', 'portal'],
        clientAuth: true,
        reader: 'provider',
        prepare: anonymous,
        path: () => '/token/introspection',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['token'],
            (v) => v.startsWith('FOREIGN_'),
            (v) => (v === 'FOREIGN_ACCESS' ? foreign.accessToken : foreign.refreshToken),
          ),
        special: (res, sent) => {
          if (!sent.authValid || res.status !== 200) return null;
          assert.deepEqual(JSON.parse(res.html), { active: false }, "nothing about a token that is not the client's");
          return {};
        },
        afterwards: providerAfterwards,
      },
      {
        // Legitimate (RFC 7009 §2.2): a client that authenticates gets 200 for a token it does not hold.
        name: 'POST /token/revocation',
        personas: ['client'],
        fields: ['token', 'token_type_hint'],
        values: ['access_token', 'refresh_token', 'FOREIGN_ACCESS', 'FOREIGN_REFRESH', 'portal'],
        clientAuth: true,
        reader: 'provider',
        prepare: anonymous,
        path: () => '/token/revocation',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['token'],
            (v) => v.startsWith('FOREIGN_'),
            (v) => (v === 'FOREIGN_ACCESS' ? foreign.accessToken : foreign.refreshToken),
          ),
        special: (res, sent) => (sent.authValid && res.status === 200 ? {} : null),
        afterwards: providerAfterwards,
      },
      {
        // Legitimate (RFC 9126 §2.2): a client that authenticates and pushes a complete request gets 201.
        name: 'POST /request (pushed authorization)',
        personas: ['client'],
        fields: AUTH_PARAMS,
        values: AUTH_VALUES,
        clientAuth: true,
        reader: 'provider',
        prepare: anonymous,
        path: () => '/request',
        special: (res, sent) => (sent.authValid && res.status === 201 ? {} : null),
        afterwards: providerAfterwards,
      },
      {
        name: 'POST /me',
        personas: ['client'],
        fields: ['access_token', 'scope', 'claims'],
        values: ['Bearer', 'FOREIGN_REFRESH', 'openid'],
        bearer: true,
        reader: 'provider',
        prepare: anonymous,
        path: () => '/me',
        sanitize: async (fields) =>
          replaceValues(
            fields,
            ['access_token'],
            (v) => v === 'FOREIGN_REFRESH',
            () => foreign.refreshToken,
          ),
        afterwards: providerAfterwards,
      },
      {
        // Legitimate: with the session's logout token, a 303 to the "signed out" page (with `logout`,
        // the provider session ends — the form's purpose — and Bob signs in again for the next run).
        name: 'POST /session/end/confirm',
        personas: ['bob'],
        fields: ['xsrf', 'logout'],
        values: ['yes', 'no', 'true', ''],
        tokenField: 'xsrf',
        reader: 'provider',
        runs: Math.round((RUNS * 2) / 3),
        prepare: async () => {
          const browser = new Browser(issuer);
          const { page } = await signIn(browser, portal, { email: 'bob@acme.test' });
          assert.ok(callbackReached(page));
          const logout = await browser.get('/session/end');
          const xsrf = /name="xsrf" value="([^"]+)"/.exec(logout.html)?.[1];
          assert.ok(xsrf, `the logout form, got ${logout.status}`);
          return { browser, token: xsrf, action: '/session/end/confirm', email: 'bob@acme.test' };
        },
        path: (a) => a.action,
        special: (res, sent) =>
          sent.tokenSent && res.status === 303 && new URL(res.headers.get('location')!, issuer).pathname === '/session/end/success' ? { reprepare: true } : null,
        afterwards: async (actors) => {
          // Signed out, or still Bob: never anybody else.
          for (const actor of actors.values()) {
            const pending = await portal.authorize();
            const page = await actor.browser.get(pending.url);
            if (callbackReached(page)) assert.equal((await portal.callback(page.url, pending)).claims()!.sub, 'bob-emp');
            else assert.ok(testIds(page).includes('login-form'), `the login page, got ${page.status}`);
          }
        },
      },
      {
        // oidc-provider serves the authorization and end-session endpoints by GET only (enableHttpPostMethods: false).
        name: 'POST /auth',
        personas: ['browser'],
        fields: AUTH_PARAMS,
        values: AUTH_VALUES,
        prepare: anonymous,
        path: () => '/auth',
        afterwards: providerAfterwards,
      },
      {
        name: 'POST /session/end',
        personas: ['browser'],
        fields: ['id_token_hint', 'post_logout_redirect_uri', 'client_id', 'state', 'logout_hint', 'ui_locales'],
        values: ['portal', REDIRECT_URI, 'eyJhbGciOiJub25lIn0.e30.', 'bob@acme.test'],
        prepare: anonymous,
        path: () => '/session/end',
        afterwards: providerAfterwards,
      },
    ];

    for (const t of targets) {
      it(`${t.name}: random and malformed bodies get a 4xx and change nothing`, async (ctx) => {
        const { specials, statuses } = await fuzz(t);
        ctx.diagnostic(`statuses ${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}; legitimate non-4xx answers: ${specials}`);
      });
    }

    // The owner's pages that read their filters from the query string: any query answers the page or a 4xx page.
    it("answers any query of the owner's lists (users, audit log, its CSV, a person) with the page or a 4xx, never a 500", async () => {
      const KEYS = ['q', 'user_type', 'state', 'sort', 'order', 'page', 'person', 'login', 'type', 'from', 'to', 'tz', 'before', '__proto__', 'constructor'];
      const VALUES = [
        '',
        'bob@acme.test',
        'BOB@ACME.TEST',
        'tim-guard',
        'gina-staff',
        'signin.password',
        '$where',
        '2021-06-01',
        '2021-02-30',
        '9999-99-99',
        'Europe/Amsterdam',
        'Mars/Olympus',
        '../../etc',
        '2021-06-01T00:00:00Z',
        'yesterday',
        '-1',
        '0',
        '999999999',
        'desc',
        'email',
        '%00',
        '\u0000',
        '\ud800',
        'x'.repeat(400),
      ];
      const owner = accountActors.get('owner')!;
      const before = await snapshot();
      const encode = (s: string) => {
        try {
          return encodeURIComponent(s);
        } catch {
          return '%ED%A0%80'; // a lone surrogate as bytes: invalid UTF-8
        }
      };
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/account/users', '/account/audit', '/account/audit.csv', '/account/users/tim-guard', '/account/users/gina-staff', '/account/users/%E0%A4%A'),
          fc.array(fc.tuple(fc.constantFrom(...KEYS), fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }))), {
            maxLength: 6,
          }),
          async (path, pairs) => {
            const query = pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
            const res = await owner.browser.request(`${path}${query ? `?${query}` : ''}`, { headers: { 'user-agent': FUZZ_UA } });
            const what = `GET ${path}?${query}: ${res.status} ${res.html.slice(0, 200)}`;
            assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), what);
            assert.doesNotMatch(res.html, STACK, what);
            const type = res.headers.get('content-type') ?? '';
            if (res.status === 200 && path.endsWith('.csv')) assert.match(type, /^text\/csv/, what);
            else {
              assert.match(type, /^text\/html/, what);
              if (res.status >= 400) assert.ok(testIds(res).includes('error-message'), `the page says what went wrong — ${what}`);
            }
          },
        ),
        { seed: seedFor('GET owner lists'), numRuns: RUNS * 4 },
      );
      assert.deepEqual(await snapshot(), before, 'reading changes nothing');
      await assertStillSelf(owner);
    });

    describe('body size limits', () => {
      const filler = (size: number, prefix: string) => `${prefix}&pad=${'p'.repeat(size - prefix.length - 5)}`;

      it('refuses a form over 64 KB with 413 on our routes; one under it is read', async () => {
        const { browser, action, token } = await loginPage();
        const over = await browser.request(action, {
          method: 'POST',
          headers: { 'content-type': FORM },
          body: filler(65 * 1024, `email=bob%40acme.test&password=x&csrf=${token}`),
        });
        assert.equal(over.status, 413);
        assert.ok(testIds(over).includes('error-message'));
        const under = await browser.request(action, {
          method: 'POST',
          headers: { 'content-type': FORM },
          body: filler(63 * 1024, `email=bob%40acme.test&password=x&csrf=${token}`),
        });
        assert.equal(under.status, 400, 'read, and refused as a wrong password');
        const owner = accountActors.get('owner')!;
        const big = await owner.browser.request('/account/security', {
          method: 'POST',
          headers: { 'content-type': FORM, 'sec-fetch-site': 'same-origin' },
          body: filler(65 * 1024, `user_type=employee&second_factor=pin&csrf=${owner.token}`),
        });
        assert.equal(big.status, 413);
        const json = await owner.browser.request('/account/security', {
          method: 'POST',
          headers: { 'content-type': FORM, accept: 'application/json' },
          body: filler(65 * 1024, `csrf=${owner.token}`),
        });
        assert.equal(json.status, 413);
        assert.equal((JSON.parse(json.html) as { error: string }).error, 'payload_too_large');
        assert.equal((await server.latchkey.stores.accounts.getTenant('acme'))!.userTypes.find((u) => u.id === 'employee')!.secondFactor, 'none');
      });

      it("keeps the provider's own 56 KB limit on its endpoints (/token and the like)", async () => {
        const auth = { authorization: basic('portal', 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d'), 'content-type': FORM };
        for (const path of ['/token', '/token/introspection', '/token/revocation', '/request']) {
          const over = await fetch(`${issuer}${path}`, { method: 'POST', headers: auth, body: filler(57 * 1024, 'grant_type=refresh_token&refresh_token=x&token=x') });
          assert.equal(over.status, 400, path);
          assert.equal(((await over.json()) as { error: string }).error, 'invalid_request', `${path}: the body is not read`);
        }
        const under = await fetch(`${issuer}/token`, { method: 'POST', headers: auth, body: filler(55 * 1024, 'grant_type=refresh_token&refresh_token=x') });
        assert.equal(under.status, 400);
        assert.equal(((await under.json()) as { error: string }).error, 'invalid_grant', 'read: the refresh token is looked up');
      });
    });

    // Found by this fuzzer: paths and methods nobody routes (POST /auth, some malformed reset URLs)
    // reached the provider's bare Koa 404, a text/plain "Not Found".
    // The management API's bodies, paths and tokens: a problem (4xx, application/problem+json) for anything
    // it refuses, never a 5xx; a 2xx only for a request its schema accepts, and never in another tenant.
    it('answers any body, path and token of the management API with a problem or, for a valid request, its answer', async () => {
      const tokenOf = async (id: keyof typeof API_SECRETS) => {
        const config = await oidc.discovery(new URL(issuer), id, API_SECRETS[id], undefined, { execute: [oidc.allowInsecureRequests] });
        return (await oidc.clientCredentialsGrant(config, { scope: API_SCOPES.join(' ') })).access_token;
      };
      const tokens = { valid: await tokenOf('provisioner'), foreign: await tokenOf('globex-sync'), person: foreign.accessToken, garbage: 'x'.repeat(40), none: '' };
      // The API's target: a login of its own, so that what a valid request changes touches nobody the other tests sign in as.
      await server.latchkey.stores.accounts.upsertIdentity({ email: 'target@acme.test' });
      await server.latchkey.stores.accounts.upsertLogin({
        id: 'api-target',
        tenant: 'acme',
        email: 'target@acme.test',
        userType: 'employee',
        firstName: 'Tara',
        lastName: 'Target',
      });
      const SEGMENTS = [
        'api-target',
        'api-target',
        'api-target',
        'acme-owner',
        'gina-staff',
        'nobody',
        '%E0%A4%A',
        '..%2F..%2Fsecurity',
        'x'.repeat(300),
        '%00',
        encodeURIComponent('<script>'),
        '%2e%2e',
      ];
      const globexBefore = await server.latchkey.stores.accounts.listLogins('globex');
      const ownerBefore = await server.latchkey.stores.accounts.getLogin('acme-owner');
      const FIELDS = ['email', 'firstName', 'lastName', 'userType', 'allowSameName', 'url', 'events', 'disabled', 'id', '__proto__', 'constructor'];
      const leaf = fc.oneof(
        fc.constantFrom(...NASTY, 'new@acme.test', 'target@acme.test', 'employee', 'owner', 'staff', 'https://hooks.example/x', 'login.*', '*'),
        fc.string({ maxLength: 30 }),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.constantFrom(...OPERATORS),
      );
      const { value } = fc.letrec<{ value: unknown }>((tie) => ({
        value: fc.oneof(
          { maxDepth: 2 },
          { weight: 6, arbitrary: leaf },
          { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 3 }) },
          { weight: 1, arbitrary: fc.dictionary(fc.constantFrom(...FIELDS), tie('value'), { maxKeys: 3 }) },
        ),
      }));
      const ROUTES: [string, string, boolean][] = [
        ['POST', '/logins', true],
        ['PATCH', '/logins/{id}', true],
        ['POST', '/webhooks', true],
        ['POST', '/logins/{id}/disable', false],
        ['POST', '/logins/{id}/factors/{factor}/reset', false],
        ['DELETE', '/logins/{id}', false],
        ['GET', '/logins', false],
        ['GET', '/audit', false],
      ];
      const TYPES = ['application/json', 'application/json; charset=utf-8', FORM, 'text/plain', 'application/merge-patch+json', ''];
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...ROUTES),
          fc.constantFrom(...SEGMENTS),
          fc.constantFrom('pin', 'totp', 'sms', '%00'),
          fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 5 }),
          fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('{"email":', '[', 'null', '"x"', '{"a":1}{', '\u0000') }),
          weighted<keyof typeof tokens>(['valid', 8], ['foreign', 2], ['person', 1], ['garbage', 1], ['none', 1]),
          fc.constantFrom(...TYPES),
          fc.oneof(fc.constant(''), fc.constantFrom('q=bob', 'limit=0', 'limit=5000', 'state=x', 'cursor=%E0%A4%A', 'cursor=e30', 'type=$where', 'login[$ne]=x', 'q=a&q=b')),
          async ([method, template, hasBody], segment, factor, fields, broken, who, type, query) => {
            const path = template.replace('{id}', segment).replace('{factor}', factor);
            const body = hasBody ? (broken ?? JSON.stringify(fields)) : undefined;
            const headers: Record<string, string> = {
              'user-agent': FUZZ_UA,
              ...(tokens[who] ? { authorization: `Bearer ${tokens[who]}` } : {}),
              ...(body !== undefined && type ? { 'content-type': type } : {}),
            };
            const res = await fetch(`${issuer}/api/v1${path}${query && method === 'GET' ? `?${query}` : ''}`, { method, headers, body });
            const text = await res.text();
            const what = `${method} ${path} ${who} ${type} ${body?.slice(0, 200)}: ${res.status} ${text.slice(0, 300)}`;
            assert.ok(res.status < 500, `never a 5xx — ${what}`);
            assert.doesNotMatch(text, STACK, `no stack trace — ${what}`);
            if (res.status >= 400) {
              assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
              assert.equal(typeof (JSON.parse(text) as { code: unknown }).code, 'string', what);
              return;
            }
            // Another tenant's token reads its own tenant's lists, and nothing of Acme's; every other 2xx is Acme's token's.
            if (who === 'foreign') {
              assert.equal(method, 'GET', what);
              for (const id of [...ACME_LOGINS, 'api-target']) assert.ok(!text.includes(`"${id}"`), `nothing of another tenant — ${what}`);
              return;
            }
            assert.equal(who, 'valid', `only a valid token gets a 2xx — ${what}`);
            if (method === 'POST' && template === '/logins') assert.ok(NewLogin.safeParse(JSON.parse(body!)).success, `a create only from a valid body — ${what}`);
            if (method === 'PATCH') assert.ok(LoginChange.safeParse(JSON.parse(body!)).success, `a change only from a valid body — ${what}`);
            if (template === '/webhooks') assert.ok(NewSubscription.safeParse(JSON.parse(body!)).success, `a subscription only from a valid body — ${what}`);
          },
        ),
        { seed: seedFor('management API'), numRuns: RUNS * 10 },
      );
      assert.deepEqual(await server.latchkey.stores.accounts.listLogins('globex'), globexBefore, 'another tenant is untouched');
      assert.deepEqual(await server.latchkey.stores.accounts.getLogin('acme-owner'), ownerBefore, 'the owner is untouched');
      for (const s of await server.latchkey.webhooks.list('acme')) await server.latchkey.webhooks.remove('acme', s.id);
    });

    it('answers what nobody routes with a 404 page or JSON error', async () => {
      for (const [method, path] of [
        ['POST', '/auth'],
        ['POST', '/session/end'],
        ['POST', '/account/no-such-page'],
        ['GET', '/nothing-here'],
        ['DELETE', '/token'],
      ] as const) {
        const page = await fetch(`${issuer}${path}`, { method, headers: { 'content-type': FORM }, body: method === 'GET' ? null : 'a=b' });
        assert.equal(page.status, 404, `${method} ${path}`);
        assert.match(page.headers.get('content-type') ?? '', /^text\/html/, `${method} ${path}`);
        assert.ok(testIds({ status: 404, url: path, html: await page.text(), headers: page.headers }).includes('error-message'), `${method} ${path}: our error page`);
        const json = await fetch(`${issuer}${path}`, { method, headers: { 'content-type': FORM, accept: 'application/json' }, body: method === 'GET' ? null : 'a=b' });
        assert.equal(json.status, 404);
        assert.equal(((await json.json()) as { error: string }).error, 'not_found', `${method} ${path}: a JSON error`);
      }
    });

    // Found by this fuzzer: oidc-provider's default introspection policy answered any confidential client
    // about any token — the portal (Acme) read Globex's refresh token: active, its subject, its client.
    it("answers a client's introspection of another tenant's token with active: false", async () => {
      const introspect = async (client: string, secret: string, token: string) => {
        const res = await fetch(`${issuer}/token/introspection`, {
          method: 'POST',
          headers: { authorization: basic(client, secret), 'content-type': FORM },
          body: new URLSearchParams({ token }),
        });
        assert.equal(res.status, 200);
        return (await res.json()) as { active: boolean; sub?: string };
      };
      const { page, pending } = await signIn(new Browser(issuer), portal, { email: 'bob@acme.test' });
      const acme = await portal.callback(page.url, pending);
      for (const token of [foreign.accessToken, foreign.refreshToken]) {
        assert.deepEqual(await introspect('portal', 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', token), { active: false }, "Acme's client learns nothing of Globex's token");
        assert.equal((await introspect('globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d', token)).sub, 'gina-staff', 'its own client still introspects it');
      }
      assert.deepEqual(
        await introspect('globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d', acme.access_token),
        { active: false },
        "Globex's client learns nothing of Acme's token",
      );
      assert.equal(
        (await introspect('partner', 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d', acme.access_token)).sub,
        'bob-emp',
        'a client of the same tenant (a resource server) may',
      );
    });

    it('still signs everybody in after the fuzzing: nothing locked, nothing broken', async () => {
      const browser = new Browser(issuer);
      const { page, pending } = await signIn(browser, portal, { email: 'bob@acme.test' });
      assert.ok(callbackReached(page), `${page.status} ${page.url}`);
      assert.equal((await portal.callback(page.url, pending)).claims()!.sub, 'bob-emp');
      for (const actor of accountActors.values()) if (actor.email) await assertStillSelf(actor);
    });
  });
}

// SCIM bodies: random and malformed JSON, SCIM-shaped creates, replaces and
// PATCH operations (Entra's and Okta's forms among random ones), filters and
// paging, under every content type, with the tenant's bearer token. Every
// answer is below 500, and an error is SCIM error JSON; what a valid request
// may change is limited to the fuzzed login and the users the fuzz made: the
// fixture's other logins, every identity's password, and the tenants stay.
const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const SCIM_EXT = 'urn:latchkey:params:scim:schemas:extension:2.0:User';

for (const setup of SETUPS) {
  describe(`fuzzing SCIM bodies (${setup})`, () => {
    let server: TestServer;
    let token = '';
    let target = '';

    before(async () => {
      server = await startServer(setup);
      token = (await server.latchkey.scimTokens.create('acme', 'fuzz', 'cli')).token;
      const made = await fetch(`${server.issuer}/scim/v2/Users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
        body: JSON.stringify({ userName: 'fuzz-target@acme.test', name: { givenName: 'Fuzz', familyName: 'Target' }, emails: [{ value: 'fuzz-target@acme.test' }] }),
      });
      assert.equal(made.status, 201);
      target = ((await made.json()) as { id: string }).id;
    });
    after(() => server.stop());

    const ids = () => fc.constantFrom(target, target, 'gina-staff', 'nobody', '', '..%2F', 'x'.repeat(300));
    const paths = fc.oneof(
      fc.constantFrom(
        'active',
        'userName',
        'externalId',
        'name.givenName',
        'name.familyName',
        'name',
        'emails',
        'emails[type eq "work"].value',
        'emails[value co "@"]',
        'members',
        'displayName',
        `${SCIM_EXT}:userType`,
        SCIM_EXT,
        'urn:ietf:params:scim:schemas:core:2.0:User:active',
        'id',
        'meta.version',
        'groups',
        'emails[type eq',
        'members[value eq "bob-emp"]',
        'a.b.c',
        '[]',
        'not (',
      ),
      fc.string({ maxLength: 40 }),
    );
    const value = fc.oneof(
      fc.constantFrom('False', 'True', false, true, 'maybe', null, '', 'bob@acme.test', 'fuzz-target@acme.test', 'manager', 'Employee', 'astronaut', '\u0000', '\uD800'),
      fc.jsonValue({ maxDepth: 3 }),
      fc.array(fc.record({ value: ids() }, { requiredKeys: [] }), { maxLength: 3 }),
    );
    const operation = fc.record(
      { op: fc.oneof(fc.constantFrom('add', 'Replace', 'remove', 'REMOVE', 'copy'), fc.jsonValue({ maxDepth: 1 })), path: fc.oneof(paths, fc.jsonValue({ maxDepth: 1 })), value },
      { requiredKeys: [] },
    );
    const patchBody = fc.record(
      { schemas: fc.oneof(fc.constant([PATCH_OP]), fc.jsonValue({ maxDepth: 1 })), Operations: fc.oneof(fc.array(operation, { maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })) },
      { requiredKeys: [] },
    );
    const userBody = fc.record(
      {
        schemas: fc.jsonValue({ maxDepth: 1 }),
        userName: fc.oneof(
          fc.constantFrom('fuzz-target@acme.test', 'bob@acme.test', 'jane@acme.test#manager', 'new@acme.test', ''),
          fc.string({ maxLength: 300 }),
          fc.jsonValue({ maxDepth: 1 }),
        ),
        name: fc.oneof(
          fc.record({ givenName: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })), familyName: fc.string() }, { requiredKeys: [] }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        emails: fc.oneof(
          fc.array(fc.record({ value: fc.oneof(fc.constantFrom('fuzz-target@acme.test', 'not-an-email'), fc.string()), primary: value }, { requiredKeys: [] }), { maxLength: 2 }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        active: value,
        externalId: value,
        [SCIM_EXT]: fc.oneof(fc.record({ userType: value }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 1 })),
        members: value,
        displayName: value,
        ['__proto__']: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    );
    // Nearly valid users, so creates and replaces reach the store (and its uniqueness) too.
    const plausibleUser = fc.record({
      userName: fc.oneof(fc.constantFrom('fuzz-target@acme.test', 'bob@acme.test', 'new@acme.test', 'NEW@acme.test'), fc.emailAddress()),
      name: fc.record({ givenName: fc.constantFrom('Ann', 'Émile', 'Ann', ' ', '\u202e'), familyName: fc.constantFrom('Lee', 'Lee', 'Lee', 'x'.repeat(101)) }),
      emails: fc.array(
        fc.record({
          value: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('fuzz-target@acme.test', 'bob@acme.test', 'ann@acme.test') }, fc.emailAddress()),
          primary: fc.boolean(),
        }),
        {
          minLength: 1,
          maxLength: 2,
        },
      ),
      active: fc.constantFrom(true, false, 'True', 'False'),
      [SCIM_EXT]: fc.record({ userType: fc.constantFrom('employee', 'manager', 'Manager', 'owner', 'staff') }),
    });
    const bodyArb = fc.oneof(
      patchBody.map((b) => JSON.stringify(b)),
      plausibleUser.map((b) => JSON.stringify(b)),
      userBody.map((b) => JSON.stringify(b)),
      fc.jsonValue({ maxDepth: 4 }).map((b) => JSON.stringify(b)),
      fc.constantFrom('', '{', '{"schemas": [', 'null', '[]', '"x"', '{"Operations": [{"op": "add"}]}', '\u0000\u0001', `{"userName": "${'a'.repeat(600_000)}"}`),
      fc.string({ maxLength: 200 }),
    );
    const request = fc.record({
      route: fc.constantFrom(
        'POST /Users',
        'POST /Users',
        'POST /Users',
        'PATCH /Users/:id',
        'PUT /Users/:id',
        'PATCH /Users/:id',
        'PATCH /Groups/employee',
        'PUT /Groups/manager',
        'POST /Groups',
        'PATCH /Groups/:id',
        'GET /Users?filter',
        'GET /Groups?filter',
        'GET /Users?page',
      ),
      id: ids(),
      body: bodyArb,
      query: fc.oneof(
        fc.constantFrom('userName eq "bob@acme.test"', 'emails[type eq "work"', 'not (active eq true)', 'a eq', '(((', '"x"', 'userName eq "\\u"'),
        fc.string({ maxLength: 80 }),
      ),
      type: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom('application/scim+json', 'application/scim+json; charset=utf-8', 'application/json') },
        { weight: 1, arbitrary: fc.constantFrom('text/plain', FORM, 'application/scim+json; charset=latin1', null) },
      ),
      gzip: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      count: fc.constantFrom('1', '-5', '0', '99999999999', 'abc', '2.5', ''),
    });

    async function guarded() {
      const a = server.latchkey.stores.accounts;
      const tenants = await a.listTenants();
      const logins = (await Promise.all(tenants.map((t) => a.listLogins(t.id)))).flat().filter((l) => l.id === 'acme-owner' || !l.id.startsWith('l-'));
      return {
        tenants,
        logins,
        identities: await Promise.all(['jane@acme.test', 'bob@acme.test', 'owner@acme.test', 'gina@globex.test'].map((e) => a.findIdentityByEmail(e))),
        cutoffs: await Promise.all(logins.map((l) => a.loginSessionsNotBefore(l.id))),
      };
    }

    it('answers every SCIM request below 500, errors as SCIM error JSON, and changes only what it may', async (ctx) => {
      const before_ = await guarded();
      const prototypeNames = Object.getOwnPropertyNames(Object.prototype).sort();
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const [method, route] = r.route.split(' ') as [string, string];
          const id = encodeURIComponent(r.id);
          const path =
            route === '/Users?filter' || route === '/Groups?filter'
              ? `${route.split('?')[0]}?filter=${encodeURIComponent(r.query)}`
              : route === '/Users?page'
                ? `/Users?startIndex=${encodeURIComponent(r.count)}&count=${encodeURIComponent(r.count)}`
                : route.replace(':id', id);
          const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'user-agent': FUZZ_UA };
          if (r.type && method !== 'GET') headers['content-type'] = r.type;
          if (r.gzip && method !== 'GET') headers['content-encoding'] = 'gzip';
          const res = await fetch(`${server.issuer}/scim/v2${path}`, { method, headers, body: method === 'GET' ? undefined : r.body });
          const text = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const what = `${r.route} ${res.status} ${text.slice(0, 300)}`;
          if (process.env.FUZZ_DEBUG) console.error(what.slice(0, 200), '←', headers['content-type'], JSON.stringify(r.body.slice(0, 200)));
          assert.ok(res.status < 500, `never a 5xx — ${what}`);
          assert.doesNotMatch(text, STACK, `no stack trace — ${what}`);
          if (res.status === 204) return;
          assert.match(res.headers.get('content-type') ?? '', /^application\/scim\+json/, what);
          const body = JSON.parse(text) as Record<string, unknown>;
          if (res.status >= 400) {
            assert.deepEqual(body.schemas, [SCIM_ERROR], what);
            assert.equal(body.status, String(res.status), what);
            assert.equal(typeof body.detail, 'string', what);
          } else assert.ok([200, 201].includes(res.status), what);
          assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeNames, 'no prototype pollution');
        }),
        { seed: seedFor(`scim ${setup}`), numRuns: RUNS * 8 },
      );
      assert.equal((await fetch(`${server.issuer}/healthz`)).status, 200, 'the process is healthy');
      assert.deepEqual(await guarded(), before_, 'the fixture’s logins, identities, tenants and session cut-offs are as before');
      const owner = await server.latchkey.stores.accounts.getLogin('acme-owner');
      assert.equal(owner?.disabled, false);
      assert.ok(statuses.size > 3, `a spread of answers: ${[...statuses].join(' ')}`);
      ctx.diagnostic(
        `statuses ${[...statuses]
          .sort((a, b) => a[0] - b[0])
          .map(([s, n]) => `${s}×${n}`)
          .join(' ')}`,
      );
    });
  });
}
