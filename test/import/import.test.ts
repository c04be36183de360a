// The import: a file of tenants, identities, logins and clients,
// validated whole and written as idempotent upserts, on the embedded store and
// on MongoDB; the real CLI as a child process; and a client imported into a
// running server that works without a restart.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import argon2 from 'argon2';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import { loadConfig, type Config } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createStores, type Stores } from '../../src/storage/index.ts';
import { createHasher, type Hasher } from '../../src/crypto/password.ts';
import type { AccountStore } from '../../src/storage/accounts/port.ts';
import { ImportError, importDocument, validateImport, type ImportDocument } from '../../src/import/index.ts';
import { Browser } from '../support/browser.ts';
import { PASSWORD, callbackReached, fixture, relyingParty, signIn, startServer } from '../support/latchkey.ts';
import { startMongo, type TestMongo } from '../support/mongo.ts';
import { tempDir } from '../support/tmp.ts';
import { writeDevKeys } from '../support/keys.ts';
import { runCli } from '../support/cli.ts';

const NEW_PASSWORD = 'Nina-imports-Σ-plain-marker-7f3a';
const CHANGED_JANE_PASSWORD = 'Jane-changed-Σ-plain-marker-91c2';

/** Every id the tests look at, present or not, for snapshots of the store. */
const LOGIN_IDS = ['acme-owner', 'jane-emp', 'jane-mgr', 'bob-emp', 'gina-staff', 'new-staff', 'new-staff-2'];
const CLIENT_IDS = ['portal', 'partner', 'globex-app', 'initech-app', 'initech-2'];
const EMAILS = ['jane@acme.test', 'bob@acme.test', 'owner@acme.test', 'gina@globex.test', 'new@initech.test'];

/**
 * A valid file that, applied over `fixture()`, changes something of every
 * kind: a renamed tenant, a changed profile, a new password, a moved redirect
 * URI, and a new tenant with a new identity, login and client. Every invalid
 * file below is this one with one defect, so "the store is unchanged" means
 * the whole file was refused, not only its broken part.
 */
function changedDoc(): ImportDocument {
  const doc = fixture();
  doc.identities![0]!.password = CHANGED_JANE_PASSWORD; // jane
  doc.identities!.push({ email: 'new@initech.test', password: NEW_PASSWORD });
  const acme = doc.tenants![0]!;
  acme.name = 'Acme Renamed';
  acme.logins![1]!.firstName = 'Janet';
  acme.clients![0]!.redirect_uris = ['http://127.0.0.1:9999/cb'];
  doc.tenants!.push({
    id: 'initech',
    name: 'Initech',
    owner: 'new-staff',
    userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
    logins: [{ id: 'new-staff', email: 'new@initech.test', userType: 'staff', firstName: 'Nina', lastName: 'New' }],
    clients: [{ client_id: 'initech-app', client_secret: 's3cret-initech-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
  });
  return doc;
}

/** What a person or an RP could observe of the store. */
async function snapshot(accounts: AccountStore) {
  return {
    tenants: await accounts.listTenants(),
    logins: await Promise.all(LOGIN_IDS.map((id) => accounts.getLogin(id))),
    clients: await Promise.all(CLIENT_IDS.map((id) => accounts.getClient(id))),
    identities: await Promise.all(EMAILS.map((e) => accounts.findIdentityByEmail(e))),
  };
}

/** An argon2id PHC string at or above OWASP's minimum, parameters in any order. */
function assertStrongPhc(hash: string | null | undefined) {
  assert.ok(hash, 'a password hash is stored');
  const m = /^\$argon2id\$v=19\$([^$]+)\$[A-Za-z0-9+/]{16,}\$[A-Za-z0-9+/]{32,}$/.exec(hash);
  assert.ok(m, `an argon2id PHC string, got ${hash.slice(0, 40)}…`);
  const params = Object.fromEntries(
    m[1]!
      .split(',')
      .map((kv) => kv.split('='))
      .map(([k, v]) => [k, Number(v)]),
  );
  assert.deepEqual(Object.keys(params).sort(), ['m', 'p', 't']);
  assert.ok(params.m! >= 19456, `m=${params.m} >= 19456`);
  assert.ok(params.t! >= 2, `t=${params.t} >= 2`);
  assert.ok(params.p! >= 1, `p=${params.p} >= 1`);
}

type Kind = 'sqlite' | 'mongodb';

interface Harness {
  config: Config;
  stores: Stores;
  accounts: AccountStore;
  hasher: Hasher;
  /** Rows / documents in one of the account tables / collections. */
  count(table: 'tenants' | 'identities' | 'logins' | 'clients'): Promise<number>;
  /** Everything the store holds, as text (to look for secrets in the clear). */
  dump(): Promise<string>;
  close(): Promise<void>;
}

let sharedMongo: TestMongo | null = null;
let dbCounter = 0;

async function openHarness(kind: Kind): Promise<Harness> {
  const dir = tempDir('lk-import-');
  // The run's signing keys: a fresh DATA_DIR would otherwise generate an RSA key pair per harness.
  writeDevKeys(dir.path);
  const env: Record<string, string> = { NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dir.path, DEMO: 'false' };
  let mongoClient: MongoClient | null = null;
  if (kind === 'mongodb') {
    sharedMongo ??= await startMongo();
    env.MONGODB_URI = sharedMongo.uri;
    env.MONGODB_DB = `${sharedMongo.dbName}_${++dbCounter}`;
    mongoClient = new MongoClient(sharedMongo.uri);
    await mongoClient.connect();
  }
  const config = loadConfig(env);
  const stores = await createStores(config, createLogger('silent'));
  const hasher = await createHasher(config.argon2, config.keys.pepper);
  const db = mongoClient?.db(env.MONGODB_DB);
  return {
    config,
    stores,
    accounts: stores.accounts,
    hasher,
    async count(table) {
      if (db) return db.collection(table).countDocuments();
      const sqlite = new Database(join(dir.path, 'latchkey.db'), { readonly: true });
      try {
        return (sqlite.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
      } finally {
        sqlite.close();
      }
    },
    async dump() {
      if (db) {
        const parts: string[] = [];
        for (const { name } of await db.listCollections().toArray()) parts.push(JSON.stringify(await db.collection(name).find().toArray()));
        return parts.join('\n');
      }
      // Every byte of every file of the embedded store (database, WAL, keys).
      return readdirSync(dir.path)
        .map((f) => readFileSync(join(dir.path, f)).toString('utf8'))
        .join('\n');
    },
    async close() {
      await stores.close();
      await mongoClient?.close();
      dir.remove();
    },
  };
}

async function withHarness(kind: Kind, fn: (h: Harness) => Promise<void>) {
  const h = await openHarness(kind);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

const deps = (h: Harness) => ({ accounts: h.accounts, hasher: h.hasher, config: h.config });

/** Asserts `promise` rejects with an ImportError one of whose problems matches `field`. */
async function assertRefused(promise: Promise<unknown>, field: RegExp): Promise<ImportError> {
  let caught: unknown;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof ImportError, `an ImportError, got ${String(caught)}`);
  assert.ok(
    caught.problems.some((p) => field.test(p)),
    `a problem matching ${field}, got:\n${caught.problems.join('\n')}`,
  );
  return caught;
}

/** One defect each, over `changedDoc()`; `field` must match one of the problems. */
const INVALID: { name: string; field: RegExp; mutate(doc: ImportDocument): unknown }[] = [
  {
    name: 'an unknown top-level key',
    field: /^\(file\): .*"users"/,
    mutate: (doc) => Object.assign(doc, { users: [{ email: 'x@acme.test' }] }),
  },
  {
    name: 'an unknown key in a login',
    field: /^tenants\[2\]\.logins\[0\]: .*"role"/,
    mutate: (doc) => Object.assign(doc.tenants![2]!.logins![0]!, { role: 'admin' }),
  },
  {
    name: 'an acr value Latchkey does not issue as a client minimum',
    field: /^tenants\[0\]\.clients\[0\]\.default_acr_values\[0\]: /,
    mutate: (doc) => Object.assign(doc.tenants![0]!.clients![0]!, { default_acr_values: ['urn:example:acr:gold'] }),
  },
  {
    name: 'a step-up switch that is not a boolean',
    field: /^tenants\[0\]\.stepUpEnrollment: /,
    mutate: (doc) => Object.assign(doc.tenants![0]!, { stepUpEnrollment: 'yes' }),
  },
  {
    name: 'a tenant without a name',
    field: /^tenants\[2\]\.name: /,
    mutate: (doc) => delete (doc.tenants![2] as { name?: string }).name,
  },
  {
    name: 'a blank tenant name',
    field: /^tenants\[0\]\.name: /,
    mutate: (doc) => (doc.tenants![0]!.name = '   '),
  },
  {
    name: 'a bad identity email',
    field: /^identities\[4\]\.email: /,
    mutate: (doc) => (doc.identities![4]!.email = 'not-an-email'),
  },
  {
    name: 'a bad login email',
    field: /^tenants\[2\]\.logins\[0\]\.email: /,
    mutate: (doc) => (doc.tenants![2]!.logins![0]!.email = 'nina at initech'),
  },
  {
    name: 'a second factor that is not none|pin|totp',
    field: /^tenants\[2\]\.userTypes\[0\]\.secondFactor: /,
    mutate: (doc) => ((doc.tenants![2]!.userTypes[0] as { secondFactor: string }).secondFactor = 'sms'),
  },
  {
    name: 'a login with an unknown user type',
    field: /^tenants\[0\]\.logins\[1\]\.userType: .*"boss"/,
    mutate: (doc) => (doc.tenants![0]!.logins![1]!.userType = 'boss'),
  },
  {
    name: 'a login whose email has no identity',
    field: /^tenants\[2\]\.logins\[1\]\.email: .*ghost@initech\.test/,
    mutate: (doc) => doc.tenants![2]!.logins!.push({ id: 'new-staff-2', email: 'ghost@initech.test', userType: 'staff', firstName: 'G', lastName: 'Host' }),
  },
  {
    name: 'a duplicate login id within a tenant',
    field: /^tenants\[2\]\.logins\[1\]\.id: duplicate login id "new-staff"/,
    mutate: (doc) => doc.tenants![2]!.logins!.push({ id: 'new-staff', email: 'new@initech.test', userType: 'staff', firstName: 'N', lastName: 'Two' }),
  },
  {
    name: 'a duplicate login id across tenants of the file',
    field: /^tenants\[2\]\.logins\[1\]\.id: duplicate login id "jane-emp"/,
    mutate: (doc) => doc.tenants![2]!.logins!.push({ id: 'jane-emp', email: 'new@initech.test', userType: 'staff', firstName: 'N', lastName: 'Two' }),
  },
  {
    name: 'an owner that is not a login of the tenant',
    field: /^tenants\[2\]\.owner: .*"jane-emp"/,
    mutate: (doc) => (doc.tenants![2]!.owner = 'jane-emp'),
  },
  {
    name: 'an owner that is no login at all',
    field: /^tenants\[2\]\.owner: .*"nobody"/,
    mutate: (doc) => (doc.tenants![2]!.owner = 'nobody'),
  },
  {
    name: 'a client without redirect_uris',
    field: /^tenants\[2\]\.clients\[0\]\.redirect_uris: /,
    mutate: (doc) => delete (doc.tenants![2]!.clients![0] as { redirect_uris?: string[] }).redirect_uris,
  },
  {
    name: 'API scopes for a public client',
    field: /^tenants\[2\]\.clients\[0\]\.api_scopes: needs a client_secret/,
    mutate: (doc) => {
      const client = doc.tenants![2]!.clients![0]!;
      delete client.client_secret;
      Object.assign(client, { grant_types: ['client_credentials'], api_scopes: ['latchkey:logins.read'] });
    },
  },
  {
    name: 'API scopes without the client_credentials grant',
    field: /^tenants\[2\]\.clients\[0\]\.api_scopes: /,
    mutate: (doc) => Object.assign(doc.tenants![2]!.clients![0]!, { client_secret: 'x'.repeat(40), api_scopes: ['latchkey:logins.read'] }),
  },
  {
    name: 'an unknown API scope',
    field: /^tenants\[2\]\.clients\[0\]\.api_scopes\[0\]: /,
    mutate: (doc) => Object.assign(doc.tenants![2]!.clients![0]!, { client_secret: 'x'.repeat(40), grant_types: ['client_credentials'], api_scopes: ['latchkey:everything'] }),
  },
  {
    name: 'a client with an empty redirect_uris',
    field: /^tenants\[2\]\.clients\[0\]\.redirect_uris: /,
    mutate: (doc) => (doc.tenants![2]!.clients![0]!.redirect_uris = []),
  },
  {
    name: 'a javascript: redirect URI',
    field: /^tenants\[2\]\.clients\[0\]\.redirect_uris\[1\]: /,
    mutate: (doc) => doc.tenants![2]!.clients![0]!.redirect_uris!.push('javascript:alert(1)'),
  },
  {
    name: 'an ftp: redirect URI',
    field: /^tenants\[0\]\.clients\[1\]\.redirect_uris\[0\]: /,
    mutate: (doc) => (doc.tenants![0]!.clients![1]!.redirect_uris = ['ftp://127.0.0.1/cb']),
  },
  {
    name: 'a duplicate client id in the file',
    field: /^tenants\[2\]\.clients\[1\]\.client_id: duplicate client id "portal"/,
    mutate: (doc) => doc.tenants![2]!.clients!.push({ client_id: 'portal', client_secret: 's3cret-other-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'] }),
  },
  {
    name: 'a login id that belongs to another tenant in the store',
    field: /^tenants\[1\]\.logins\[0\]\.id: "gina-staff" already belongs to tenant "globex"/,
    mutate: (doc) => {
      // Globex is not in this file: gina-staff is only in the store.
      doc.tenants = [doc.tenants![0]!, doc.tenants![2]!];
      doc.tenants[1]!.logins!.unshift({ id: 'gina-staff', email: 'new@initech.test', userType: 'staff', firstName: 'G', lastName: 'Taken' });
    },
  },
  {
    name: 'a client id that belongs to another tenant in the store',
    field: /^tenants\[1\]\.clients\[0\]\.client_id: "globex-app" already belongs to tenant "globex"/,
    mutate: (doc) => {
      doc.tenants = [doc.tenants![0]!, doc.tenants![2]!];
      doc.tenants[1]!.clients![0]!.client_id = 'globex-app';
    },
  },
  {
    name: 'a weak passwordHash (argon2i)',
    field: /^identities\[4\]\.passwordHash: /,
    mutate: async (doc) => (doc.identities![4] = { email: 'new@initech.test', passwordHash: await argon2.hash(NEW_PASSWORD, { type: argon2.argon2i }) }),
  },
  {
    name: 'a password and a passwordHash together',
    field: /^identities\[0\]: .*not both/,
    mutate: (doc) => (doc.identities![0]!.passwordHash = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo'),
  },
  {
    name: 'a password shorter than 8 characters',
    field: /^identities\[4\]\.password: /,
    mutate: (doc) => (doc.identities![4]!.password = 'short'),
  },
  {
    name: 'a tenant id with a slash',
    field: /^tenants\[2\]\.id: /,
    mutate: (doc) => (doc.tenants![2]!.id = '../etc'),
  },
  {
    name: 'a client secret shorter than 32 characters',
    field: /^tenants\[2\]\.clients\[0\]\.client_secret: must be at least 32 random characters/,
    mutate: (doc) => (doc.tenants![2]!.clients![0]!.client_secret = 'only-31-characters-long-secret!'),
  },
  {
    name: 'a wrong type (first_party as a string)',
    field: /^tenants\[2\]\.clients\[0\]\.first_party: /,
    mutate: (doc) => ((doc.tenants![2]!.clients![0] as { first_party: unknown }).first_party = 'yes'),
  },
];

describe('import', () => {
  after(async () => {
    await sharedMongo?.stop();
  });

  for (const kind of ['sqlite', 'mongodb'] as const) {
    describe(`import into ${kind}`, () => {
      it('creates tenants, identities (argon2id, never the plain password), logins and clients', () =>
        withHarness(kind, async (h) => {
          const doc = changedDoc();
          const summary = await importDocument(doc, deps(h));
          assert.deepEqual(summary, { identities: 5, tenants: 3, logins: 6, clients: 4 });

          assert.deepEqual((await h.accounts.listTenants()).map((t) => t.id).sort(), ['acme', 'globex', 'initech']);
          const initech = await h.accounts.getTenant('initech');
          assert.deepEqual(initech, {
            id: 'initech',
            name: 'Initech',
            owners: ['new-staff'],
            userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
            stepUpEnrollment: false,
          });
          assert.equal((await h.accounts.getTenant('acme'))!.owners[0], 'acme-owner');
          assert.deepEqual((await h.accounts.getTenant('globex'))!.owners, []);

          const nina = await h.accounts.findIdentityByEmail('NEW@initech.test');
          assert.ok(nina, 'identity found case-insensitively');
          assert.equal(nina.email, 'new@initech.test');
          assertStrongPhc(nina.passwordHash);
          assert.equal(await h.hasher.verify(nina.passwordHash!, NEW_PASSWORD), true);
          assert.equal(await h.hasher.verify(nina.passwordHash!, PASSWORD), false);
          const jane = await h.accounts.findIdentityByEmail('jane@acme.test');
          assertStrongPhc(jane!.passwordHash);
          assert.notEqual(jane!.passwordHash, nina.passwordHash);

          const dump = await h.dump();
          assert.ok(dump.includes(nina.passwordHash!), 'the dump sees the stored hash (so it would see a plain password too)');
          for (const secret of [NEW_PASSWORD, CHANGED_JANE_PASSWORD, PASSWORD]) assert.ok(!dump.includes(secret), `the plain password "${secret}" is not in the store`);
          for (const c of doc.tenants!.flatMap((t) => t.clients ?? [])) {
            if (c.client_secret) assert.ok(!dump.includes(c.client_secret), `the client secret of ${c.client_id} is not in the store`);
          }

          assert.deepEqual(await h.accounts.getLogin('jane-emp'), {
            id: 'jane-emp',
            tenant: 'acme',
            email: 'jane@acme.test',
            userType: 'employee',
            firstName: 'Janet',
            lastName: 'Doe',
            disabled: false,
            factors: {},
          });
          assert.deepEqual(
            (await h.accounts.listLoginsForEmail('acme', 'jane@acme.test')).map((l) => l.id),
            ['jane-emp', 'jane-mgr'],
          );
          assert.deepEqual(
            (await h.accounts.listLogins('initech')).map((l) => l.id),
            ['new-staff'],
          );

          const portal = await h.accounts.getClient('portal');
          assert.equal(portal!.tenant, 'acme');
          assert.equal(portal!.firstParty, true);
          assert.deepEqual(portal!.metadata.redirect_uris, ['http://127.0.0.1:9999/cb']);
          assert.match(String(portal!.metadata.client_secret), /^hmac-sha256\.[A-Za-z0-9_-]{43}$/, 'stored as a keyed hash');
          assert.equal('first_party' in portal!.metadata, false, 'first_party is mapped to firstParty, not left in the metadata');
          const partner = await h.accounts.getClient('partner');
          assert.equal(partner!.firstParty, false);
          assert.equal(partner!.metadata.client_name, 'Partner App');
          assert.equal((await h.accounts.getClient('initech-app'))!.tenant, 'initech');
          assert.deepEqual((await h.accounts.listClients('acme')).map((c) => c.clientId).sort(), ['partner', 'portal']);

          assert.equal(await h.count('identities'), 5);
          assert.equal(await h.count('logins'), 6);
          assert.equal(await h.count('clients'), 4);
          assert.equal(await h.count('tenants'), 3);
        }));

      it('is idempotent: same ids, same hash (no re-hash), same counts, factor state kept', () =>
        withHarness(kind, async (h) => {
          const doc = fixture();
          await importDocument(doc, deps(h));
          // Factor state set after the first import (as a sign-in would) must survive a re-import.
          const pinState = { hash: '$argon2id$v=19$m=19456,t=2,p=1$cGlucGlucGlu$cGluaGFzaHBpbmhhc2g', setAt: 1_700_000_000_000 };
          assert.equal(await h.accounts.setFactorState('jane-mgr', 'pin', pinState), true);
          assert.equal(await h.accounts.advanceFactorStep('jane-mgr', 'totp', 42), false, 'no totp state: no step');
          const before = await snapshot(h.accounts);
          const counts = await Promise.all((['tenants', 'identities', 'logins', 'clients'] as const).map((t) => h.count(t)));
          assert.deepEqual(counts, [2, 4, 5, 3]);

          const summary = await importDocument(fixture(), deps(h));
          assert.deepEqual(summary, { identities: 4, tenants: 2, logins: 5, clients: 3 });
          const afterOnce = await snapshot(h.accounts);
          assert.deepEqual(afterOnce, before);
          await importDocument(fixture(), deps(h));
          assert.deepEqual(await snapshot(h.accounts), before);
          assert.deepEqual(await Promise.all((['tenants', 'identities', 'logins', 'clients'] as const).map((t) => h.count(t))), counts);
          assert.deepEqual((await h.accounts.getLogin('jane-mgr'))!.factors, { pin: pinState });
          // Identity ids and hashes are the very same strings (a re-hash would change the salt).
          for (const [i, identity] of before.identities.entries()) {
            if (!identity) continue;
            assert.equal(afterOnce.identities[i]!.id, identity.id);
            assert.equal(afterOnce.identities[i]!.passwordHash, identity.passwordHash);
          }
        }));

      it('re-hashes a changed password and updates profiles, keeping ids and factor state', () =>
        withHarness(kind, async (h) => {
          await importDocument(fixture(), deps(h));
          await h.accounts.setFactorState('jane-emp', 'pin', { hash: 'x', setAt: 1 });
          const before = await h.accounts.findIdentityByEmail('jane@acme.test');
          await importDocument(changedDoc(), deps(h));
          const afterChange = await h.accounts.findIdentityByEmail('jane@acme.test');
          assert.equal(afterChange!.id, before!.id);
          assert.notEqual(afterChange!.passwordHash, before!.passwordHash);
          assertStrongPhc(afterChange!.passwordHash);
          assert.equal(await h.hasher.verify(afterChange!.passwordHash!, CHANGED_JANE_PASSWORD), true);
          assert.equal(await h.hasher.verify(afterChange!.passwordHash!, PASSWORD), false);
          const jane = await h.accounts.getLogin('jane-emp');
          assert.equal(jane!.firstName, 'Janet');
          assert.deepEqual(jane!.factors, { pin: { hash: 'x', setAt: 1 } });
          assert.equal((await h.accounts.getTenant('acme'))!.name, 'Acme Renamed');
          // Bob's password did not change: his hash is untouched.
          const bobBefore = (await h.accounts.findIdentityByEmail('bob@acme.test'))!.passwordHash;
          await importDocument(changedDoc(), deps(h));
          assert.equal((await h.accounts.findIdentityByEmail('bob@acme.test'))!.passwordHash, bobBefore);
        }));

      it('imports a client minimum level and the step-up switch, keeping the switch when the file gives none', () =>
        withHarness(kind, async (h) => {
          const doc = fixture();
          Object.assign(doc.tenants![0]!, { stepUpEnrollment: true });
          Object.assign(doc.tenants![0]!.clients![0]!, { default_acr_values: ['urn:latchkey:acr:totp'] });
          await importDocument(doc, deps(h));
          assert.equal((await h.accounts.getTenant('acme'))!.stepUpEnrollment, true);
          const client = await h.accounts.getClient(doc.tenants![0]!.clients![0]!.client_id);
          assert.deepEqual(client!.metadata.default_acr_values, ['urn:latchkey:acr:totp']);
          await importDocument(fixture(), deps(h));
          assert.equal((await h.accounts.getTenant('acme'))!.stepUpEnrollment, true);
        }));

      it('keeps an owner already in the store when the file gives none', () =>
        withHarness(kind, async (h) => {
          await importDocument(fixture(), deps(h));
          const doc = fixture();
          delete doc.tenants![0]!.owner;
          doc.tenants![0]!.logins = [];
          await importDocument(doc, deps(h));
          assert.equal((await h.accounts.getTenant('acme'))!.owners[0], 'acme-owner');
          // …and an owner that is a login of the tenant in the store (not in the file) is accepted.
          doc.tenants![0]!.owner = 'bob-emp';
          await importDocument(doc, deps(h));
          assert.deepEqual((await h.accounts.getTenant('acme'))!.owners, ['bob-emp', 'acme-owner']);
        }));

      it('accepts a strong passwordHash as given, refuses a weak one naming the field', () =>
        withHarness(kind, async (h) => {
          const strong = await argon2.hash(NEW_PASSWORD, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
          const stronger = await argon2.hash(NEW_PASSWORD, { type: argon2.argon2id, memoryCost: 32768, timeCost: 3, parallelism: 1 });
          const weak: [string, string][] = [
            ['argon2i', await argon2.hash(NEW_PASSWORD, { type: argon2.argon2i, memoryCost: 19456, timeCost: 2 })],
            ['argon2d', await argon2.hash(NEW_PASSWORD, { type: argon2.argon2d, memoryCost: 19456, timeCost: 2 })],
            ['m=4096', await argon2.hash(NEW_PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 3 })],
            ['t=1', await argon2.hash(NEW_PASSWORD, { type: argon2.argon2id, memoryCost: 19456, timeCost: 1 })],
            ['m=4096 in reference order', '$argon2id$v=19$m=4096,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
            ['a parameter twice', '$argon2id$v=19$m=19456,m=19456,t=2$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g'],
            ['bcrypt', '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW'],
            ['garbage', 'not a hash at all'],
          ];
          const withHash = (passwordHash: string): ImportDocument => ({
            identities: [
              { email: 'bob@acme.test', password: PASSWORD },
              { email: 'new@initech.test', passwordHash },
            ],
          });
          for (const [label, hash] of weak) {
            const before = await snapshot(h.accounts);
            const err = await assertRefused(importDocument(withHash(hash), deps(h)), /^identities\[1\]\.passwordHash: .*argon2id/);
            assert.ok(!err.message.includes(hash) || label === 'garbage', `the message does not echo the hash (${label})`);
            assert.deepEqual(await snapshot(h.accounts), before, `store unchanged after ${label}`);
          }
          assert.equal(await h.accounts.findIdentityByEmail('new@initech.test'), null);

          await importDocument(withHash(strong), deps(h));
          const nina = await h.accounts.findIdentityByEmail('new@initech.test');
          assert.equal(nina!.passwordHash, strong, 'stored as given, not re-hashed');
          assert.equal(await h.hasher.verify(nina!.passwordHash!, NEW_PASSWORD), true);
          await importDocument(withHash(stronger), deps(h));
          assert.equal((await h.accounts.findIdentityByEmail('new@initech.test'))!.passwordHash, stronger);
          assert.equal((await h.accounts.findIdentityByEmail('new@initech.test'))!.id, nina!.id);
          // The reference implementation's parameter order (m, t, p) is accepted as well.
          const reference = strong.replace(/m=(\d+),p=(\d+),t=(\d+)/, 'm=$1,t=$3,p=$2');
          assert.match(reference, /\$m=19456,t=2,p=1\$/);
          await importDocument(withHash(reference), deps(h));
          assert.equal((await h.accounts.findIdentityByEmail('new@initech.test'))!.passwordHash, reference);
          assert.equal(await h.hasher.verify(reference, NEW_PASSWORD), true);
        }));

      it('applies the changed file over the fixture (the control for the refusals below)', () =>
        withHarness(kind, async (h) => {
          await importDocument(fixture(), deps(h));
          const before = await snapshot(h.accounts);
          await validateImport(changedDoc(), h.accounts, h.config);
          assert.deepEqual(await snapshot(h.accounts), before, 'validation alone writes nothing');
          await importDocument(changedDoc(), deps(h));
          const changed = await snapshot(h.accounts);
          assert.notDeepEqual(changed.tenants, before.tenants);
          assert.notDeepEqual(changed.logins, before.logins);
          assert.notDeepEqual(changed.clients, before.clients);
          assert.notDeepEqual(changed.identities, before.identities);
        }));

      describe('refuses an invalid file whole, naming the field, and changes nothing', () => {
        let h: Harness;
        let baseline: Awaited<ReturnType<typeof snapshot>>;
        let counts: number[];
        const countAll = () => Promise.all((['tenants', 'identities', 'logins', 'clients'] as const).map((t) => h.count(t)));

        before(async () => {
          h = await openHarness(kind);
          await importDocument(fixture(), deps(h));
          baseline = await snapshot(h.accounts);
          counts = await countAll();
        });
        after(() => h.close());

        for (const c of INVALID) {
          it(c.name, async () => {
            const doc = changedDoc();
            await c.mutate(doc);
            await assertRefused(importDocument(doc, deps(h)), c.field);
            await assertRefused(validateImport(doc, h.accounts, h.config), c.field);
            assert.deepEqual(await snapshot(h.accounts), baseline);
            assert.deepEqual(await countAll(), counts);
          });
        }

        it('not a JSON object at all', async () => {
          for (const raw of [null, 42, 'tenants', [fixture()], { tenants: {} }, { identities: [null] }]) {
            await assertRefused(importDocument(raw, deps(h)), /.+: .+/);
          }
          assert.deepEqual(await snapshot(h.accounts), baseline);
        });

        it('names every problem of a file with several', async () => {
          const doc = changedDoc();
          doc.tenants![2]!.owner = 'nobody';
          doc.tenants![0]!.logins![1]!.userType = 'boss';
          const err = await assertRefused(importDocument(doc, deps(h)), /^tenants\[2\]\.owner: /);
          assert.ok(
            err.problems.some((p) => p.startsWith('tenants[0].logins[1].userType: ')),
            err.problems.join('\n'),
          );
          assert.match(err.message, /tenants\[2\]\.owner/);
          assert.deepEqual(await snapshot(h.accounts), baseline);
        });
      });
    });
  }

  describe('the CLI (npm run cli -- import FILE)', () => {
    const dir = tempDir('lk-cli-');
    const dataDir = join(dir.path, 'data');
    after(() => dir.remove());

    // Only what the CLI needs: no MONGODB_URI / REDIS_URL leaking in from the test run.
    const cli = (args: string[]) => runCli(args, { DATA_DIR: dataDir, NODE_ENV: 'test', LOG_LEVEL: 'silent' });

    async function storeSnapshot() {
      const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dataDir });
      const stores = await createStores(config, createLogger('silent'));
      try {
        return await snapshot(stores.accounts);
      } finally {
        await stores.close();
      }
    }

    function file(name: string, content: unknown): string {
      const path = join(dir.path, name);
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      return path;
    }

    it('imports a valid file (exit 0, a summary line) and again idempotently', async () => {
      const path = file('valid.json', fixture());
      const first = await cli(['import', path]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout.trim(), 'imported 4 identities, 2 tenants, 5 logins, 3 clients');
      const snap = await storeSnapshot();
      assert.deepEqual(snap.tenants.map((t) => t.id).sort(), ['acme', 'globex']);
      assert.equal(snap.logins[LOGIN_IDS.indexOf('jane-mgr')]!.userType, 'manager');
      assert.equal(snap.clients[CLIENT_IDS.indexOf('portal')]!.firstParty, true);
      assertStrongPhc(snap.identities[0]!.passwordHash);
      const again = await cli(['import', path]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(await storeSnapshot(), snap);
    });

    it('refuses an invalid file: exit 1, stderr names the field, nothing written', async () => {
      const before = await storeSnapshot();
      assert.ok(before.tenants.length > 0, 'runs after the valid import');
      const doc = changedDoc();
      doc.tenants![2]!.logins![0]!.userType = 'boss';
      const res = await cli(['import', file('invalid.json', doc)]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /tenants\[2\]\.logins\[0\]\.userType/);
      assert.doesNotMatch(res.stdout, /imported/);
      assert.deepEqual(await storeSnapshot(), before);
    });

    it('refuses a missing file and a file that is not JSON (exit 1)', async () => {
      const before = await storeSnapshot();
      const missing = await cli(['import', join(dir.path, 'no-such-file.json')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /cannot read .*no-such-file\.json/);
      const broken = await cli(['import', file('broken.json', '{"tenants": [')]);
      assert.equal(broken.code, 1);
      assert.match(broken.stderr, /cannot read .*broken\.json/);
      assert.deepEqual(await storeSnapshot(), before);
    });

    it('prints the usage for no arguments or an unknown command (exit 2)', async () => {
      for (const args of [[], ['import'], ['export', 'x.json']]) {
        const res = await cli(args);
        assert.equal(res.code, 2, `args ${JSON.stringify(args)}`);
        assert.match(res.stderr, /usage: npm run cli -- import FILE\.json/);
      }
    });
  });

  describe('a running server', () => {
    it('serves a client imported while it runs, without a restart', async () => {
      const server = await startServer('sqlite', { doc: fixture(), plainImport: true });
      try {
        const rp = await relyingParty(server.issuer, 'initech-app', 's3cret-initech-4f9a2c7e1b8d3f6a0c5e9b2d');
        // Before the import the client is unknown to the provider.
        const unknown = await new Browser(server.issuer).get((await rp.authorize()).url);
        assert.ok(unknown.status >= 400 && unknown.status < 500, `unknown client: ${unknown.status}`);
        assert.match(unknown.html, /invalid_client|client/i);

        const doc = changedDoc();
        const addition: ImportDocument = { identities: [doc.identities![4]!], tenants: [doc.tenants![2]!] };
        const { hasher, config } = server.latchkey;
        const accounts = server.latchkey.stores.accounts;
        await importDocument(addition, { accounts, hasher, config });

        const browser = new Browser(server.issuer);
        const { page, pending } = await signIn(browser, rp, { email: 'new@initech.test', password: NEW_PASSWORD });
        assert.ok(callbackReached(page), `expected the RP callback, got ${page.status} ${page.url}\n${page.html.slice(0, 300)}`);
        const claims = (await rp.callback(page.url, pending)).claims()!;
        assert.equal(claims.sub, 'new-staff');
        assert.equal(claims.tenant, 'initech');

        // A changed secret takes effect at once too: the old one is refused at the token endpoint.
        const rotated = structuredClone(addition);
        rotated.tenants![0]!.clients![0]!.client_secret = 's3cret-initech-rotated-4f9a2c7e1b8d3f6a0c5e9b2d';
        await importDocument(rotated, { accounts, hasher, config });
        const stale = await signIn(new Browser(server.issuer), rp, { email: 'new@initech.test', password: NEW_PASSWORD });
        assert.ok(callbackReached(stale.page));
        await assert.rejects(rp.callback(stale.page.url, stale.pending), (err: Error & { error?: string }) => err.error === 'invalid_client');
        const fresh = await relyingParty(server.issuer, 'initech-app', 's3cret-initech-rotated-4f9a2c7e1b8d3f6a0c5e9b2d');
        const ok = await signIn(new Browser(server.issuer), fresh, { email: 'new@initech.test', password: NEW_PASSWORD });
        assert.equal((await fresh.callback(ok.page.url, ok.pending)).claims()!.sub, 'new-staff');
      } finally {
        await server.stop();
      }
    });
  });
});
