// The shared bootstrap of journey tests: a real Latchkey server on a loopback
// port (embedded store, or MongoDB/FerretDB + Redis), a fixture tenant, and an
// openid-client relying party.
import * as oidc from 'openid-client';
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createLatchkey, type Latchkey } from '../../src/server.ts';
import { importDocument, type ImportDocument } from '../../src/import/index.ts';
import type { ExtraFactors } from '../../src/factors/registry.ts';
import { startMongo, type TestMongo } from './mongo.ts';
import { testRedisPrefix, testRedisUrl } from './redis.ts';
import { tempDir } from './tmp.ts';
import { writeDevKeys } from './keys.ts';
import { actionOf, csrfOf, type Browser, type Page } from './browser.ts';
import { createServer } from 'node:http';
import { listenOnFreePort } from './net.ts';

export type StoreSetup = 'sqlite' | 'mongo+redis';
export const SETUPS: StoreSetup[] = ['sqlite', 'mongo+redis'];

export const PASSWORD = 'correct horse battery staple';

/** Acme (employees and managers; Jane has two logins) and Globex (another tenant). */
export function fixture(): ImportDocument {
  return {
    identities: [
      { email: 'jane@acme.test', password: PASSWORD },
      { email: 'bob@acme.test', password: PASSWORD },
      { email: 'owner@acme.test', password: PASSWORD },
      { email: 'gina@globex.test', password: PASSWORD },
    ],
    tenants: [
      {
        id: 'acme',
        name: 'Acme Care',
        owner: 'acme-owner',
        userTypes: [
          { id: 'owner', name: 'Owner', secondFactor: 'none' },
          { id: 'employee', name: 'Employee', secondFactor: 'none' },
          { id: 'manager', name: 'Manager', secondFactor: 'none' },
        ],
        logins: [
          { id: 'acme-owner', email: 'owner@acme.test', userType: 'owner', firstName: 'Olga', lastName: 'Owner' },
          { id: 'jane-emp', email: 'jane@acme.test', userType: 'employee', firstName: 'Jane', lastName: 'Doe' },
          { id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager', firstName: 'Jane', lastName: 'Doe' },
          { id: 'bob-emp', email: 'bob@acme.test', userType: 'employee', firstName: 'Bob', lastName: 'Baker' },
        ],
        clients: [
          { client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true },
          { client_id: 'partner', client_secret: 's3cret-partner-4f9a2c7e1b8d3f6a0c5e9b2d', client_name: 'Partner App', redirect_uris: ['http://127.0.0.1:8080/cb'] },
        ],
      },
      {
        id: 'globex',
        name: 'Globex',
        userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
        logins: [{ id: 'gina-staff', email: 'gina@globex.test', userType: 'staff', firstName: 'Gina', lastName: 'Green' }],
        clients: [{ client_id: 'globex-app', client_secret: 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
      },
    ],
  };
}

/**
 * A clock for the app that runs with the system clock and can be moved on:
 * a test waits out a lock or a freeze with `advance` instead of sleeping.
 * oidc-provider's own token times keep the system clock, so an advanced app
 * stamps a reset's cut-off ahead of the access tokens issued after it (their
 * `iat`): a test that advances does not use new access tokens after a reset.
 */
export interface TestClock {
  now(): number;
  /** Moves the clock on by `ms`. */
  advance(ms: number): void;
}

/** `at`: the clock stands still at that instant (epoch ms) and moves only with `advance`. */
export function testClock({ at }: { at?: number } = {}): TestClock {
  let offset = 0;
  return {
    now: () => (at ?? Date.now()) + offset,
    advance(ms) {
      offset += ms;
    },
  };
}

export interface TestServer {
  issuer: string;
  latchkey: Latchkey;
  env: Record<string, string>;
  /** Stops and starts the app again on the same port and stores. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  doc?: ImportDocument | null;
  /** Share one FerretDB between several servers of a test file. */
  mongo?: TestMongo;
  /** The app's clock (see `LatchkeyOptions`). */
  now?: () => number;
  /**
   * The issuer's host (default 127.0.0.1). WebAuthn tests use `localhost`:
   * a secure context over plain http, and a domain for the RP ID.
   */
  host?: 'localhost' | '127.0.0.1';
  /** Factors beside the built-in ones (see `LatchkeyOptions`). */
  factors?: ExtraFactors;
  /**
   * Import `doc`'s plaintext passwords as they are, for a test of the import itself. By default the
   * harness hands the import hashes instead, one per password and argon2 parameters in a process.
   */
  plainImport?: boolean;
}

const seedHashes = new Map<string, Promise<string>>();

/**
 * `plain` hashed by `latchkey`'s hasher, as the import would hash it (without the pepper), once per
 * process and argon2 parameters: the tests start hundreds of servers with the same passwords.
 */
export function seedPasswordHash(latchkey: Latchkey, plain: string): Promise<string> {
  const { memoryCost, timeCost, parallelism } = latchkey.config.argon2;
  const key = JSON.stringify([memoryCost, timeCost, parallelism, plain]);
  let hash = seedHashes.get(key);
  if (!hash) {
    hash = latchkey.hasher.hash(plain);
    seedHashes.set(key, hash);
    hash.catch(() => seedHashes.delete(key));
  }
  return hash;
}

async function withPasswordHashes(doc: ImportDocument, latchkey: Latchkey): Promise<ImportDocument> {
  if (!doc.identities) return doc;
  const identities = await Promise.all(
    doc.identities.map(async (identity) => {
      const { password, ...rest } = identity;
      return password === undefined || identity.passwordHash !== undefined ? identity : { ...rest, passwordHash: await seedPasswordHash(latchkey, password) };
    }),
  );
  return { ...doc, identities };
}

export async function startServer(setup: StoreSetup, options: StartOptions = {}): Promise<TestServer> {
  const dir = tempDir('lk-server-');
  writeDevKeys(dir.path);
  // The port comes from the OS before the app is made (it needs its issuer); the app then answers on it.
  const http = createServer();
  const port = await listenOnFreePort(http);
  let ownMongo: TestMongo | null = null;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    PORT: String(port),
    ISSUER: `http://${options.host ?? '127.0.0.1'}:${port}`,
    DATA_DIR: dir.path,
    DEMO: 'false',
    LOG_LEVEL: 'silent',
    // The tests' receivers, upstream providers and logout endpoints listen on this machine; a test of the guard
    // itself closes it again (`OUTBOUND_ALLOW: 'none'`).
    OUTBOUND_ALLOW: '127.0.0.0/8,::1',
    ...options.env,
  };
  if (setup === 'mongo+redis') {
    const mongo = options.mongo ?? (ownMongo = await startMongo());
    env.MONGODB_URI ??= mongo.uri;
    env.MONGODB_DB ??= `${mongo.dbName}_${port}`;
    env.REDIS_URL ??= testRedisUrl();
    env.REDIS_PREFIX ??= testRedisPrefix();
  }
  const boot = async () => {
    const config = loadConfig(env);
    const latchkey = await createLatchkey(config, createLogger(config.logLevel), { now: options.now, ...(options.factors ? { factors: options.factors } : {}) });
    http.removeAllListeners('request');
    http.on('request', latchkey.app.callback());
    return latchkey;
  };
  let first: Latchkey;
  try {
    first = await boot();
  } catch (err) {
    http.close();
    throw err;
  }
  const server: TestServer = {
    issuer: env.ISSUER!,
    env,
    latchkey: first,
    async restart() {
      await server.latchkey.close();
      server.latchkey = await boot();
    },
    async stop() {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
      await server.latchkey.close();
      await ownMongo?.stop();
      dir.remove();
    },
  };
  const given = options.doc === undefined ? fixture() : options.doc;
  if (given) {
    const doc = options.plainImport ? given : await withPasswordHashes(given, server.latchkey);
    await importDocument(doc, { accounts: server.latchkey.stores.accounts, hasher: server.latchkey.hasher, config: server.latchkey.config, factors: server.latchkey.factors });
  }
  return server;
}

export const REDIRECT_URI = 'http://127.0.0.1:8080/cb';

export interface RelyingParty {
  config: oidc.Configuration;
  /** Starts an authorization request; returns its URL and what the callback needs. */
  authorize(params?: Record<string, string>): Promise<{ url: string; verifier: string; state: string }>;
  /** Exchanges the code of a callback URL for tokens (validating the ID token). */
  callback(callbackUrl: string, pending: { verifier: string; state: string }): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers>;
}

/** The relying party of `clientId`; `secret` null plays a public client (no client authentication). */
export async function relyingParty(issuer: string, clientId = 'portal', secret: string | null = 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d'): Promise<RelyingParty> {
  const config = await oidc.discovery(new URL(issuer), clientId, secret ?? undefined, secret === null ? oidc.None() : undefined, { execute: [oidc.allowInsecureRequests] });
  return {
    config,
    async authorize(params = {}) {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid email profile offline_access',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        ...params,
      });
      return { url: url.href, verifier, state };
    },
    callback(callbackUrl, pending) {
      return oidc.authorizationCodeGrant(config, new URL(callbackUrl), { pkceCodeVerifier: pending.verifier, expectedState: pending.state });
    },
  };
}

/** Submits the login page. */
export async function submitLogin(browser: Browser, page: Page, email: string, password: string): Promise<Page> {
  return browser.post(actionOf(page, 'login-form'), { email, password, csrf: csrfOf(page) });
}

/** The whole journey with password (and login choice), up to the RP's callback URL. */
export async function signIn(browser: Browser, rp: RelyingParty, who: { email: string; password?: string; login?: string }, params?: Record<string, string>) {
  const pending = await rp.authorize(params);
  let page = await browser.get(pending.url);
  page = await submitLogin(browser, page, who.email, who.password ?? PASSWORD);
  if (page.html.includes('data-testid="select-form"')) {
    if (!who.login) throw new Error('the journey asks to choose a login but none was given');
    page = await browser.post(actionOf(page, 'select-form'), { login: who.login, csrf: csrfOf(page) });
  }
  return { page, pending };
}

export function callbackReached(page: Page): boolean {
  return page.url.startsWith(REDIRECT_URI);
}
