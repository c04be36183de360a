import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import type { AccountStore, AuditEvent, Client, LoginInput, Passkey, PasskeyUse, Tenant, Upstream, UpstreamWrite } from '../../src/storage/accounts/port.ts';
import { createSqliteAccountStore } from '../../src/storage/accounts/sqlite/index.ts';
import { createMongoAccountStore } from '../../src/storage/accounts/mongo/index.ts';
import { Redis } from 'ioredis';
import { ReadCache, cachedAccountStore } from '../../src/storage/accounts/cache.ts';
import { createRedisCacheVersions } from '../../src/storage/accounts/redis-versions.ts';
import { startMongo, type TestMongo } from '../support/mongo.ts';
import { testRedisPrefix, testRedisUrl } from '../support/redis.ts';
import { tempDir } from '../support/tmp.ts';

/** What the start-up migration told the operator. */
type Warning = { detail: Record<string, unknown>; message: string };

/** A store on data written by a version from before upstream handles, and what its `init()` warned about. */
interface Legacy {
  store: AccountStore;
  warnings: Warning[];
  /** Another store on the same data, initialized, with warnings of its own (a second process starting). */
  twin(): Promise<{ store: AccountStore; warnings: Warning[] }>;
}

interface Harness {
  store: AccountStore;
  /** A second store on the same data through a connection of its own. */
  twin(): Promise<AccountStore>;
  /** Fresh data holding `upstreams` as the version before handles stored them (no handle), then a store initialized on it. */
  legacy(upstreams: UpstreamWrite[]): Promise<Legacy>;
  cleanup(): Promise<void>;
}

const warningsLog = (warnings: Warning[]) => ({ warn: (detail: Record<string, unknown>, message: string) => warnings.push({ detail, message }) });

const tenant = (id: string, over: Partial<Tenant> = {}): Tenant => ({
  id,
  name: `Tenant ${id}`,
  owners: [],
  userTypes: [
    { id: 'staff', name: 'Staff', secondFactor: 'none' },
    { id: 'admin', name: 'Admin', secondFactor: 'totp' },
  ],
  stepUpEnrollment: false,
  ...over,
});

const login = (id: string, over: Partial<LoginInput> = {}): LoginInput => ({
  id,
  tenant: 'acme',
  email: `${id}@example.com`,
  userType: 'staff',
  firstName: 'Ada',
  lastName: 'Lovelace',
  ...over,
});

const client = (clientId: string, tenantId = 'acme', over: Partial<Client> = {}): Client => ({
  clientId,
  tenant: tenantId,
  firstParty: false,
  metadata: { client_id: clientId, redirect_uris: [`https://${clientId}.example/cb`], token_endpoint_auth_method: 'none' },
  ...over,
});

const upstream = (id: string, tenantId = 'acme', over: Partial<UpstreamWrite> = {}): UpstreamWrite => ({
  tenant: tenantId,
  id,
  name: `Upstream ${id}`,
  issuer: `https://${id}.example`,
  clientId: `latchkey-${tenantId}`,
  clientSecret: 'v1.k1.sealed',
  scopes: ['email'],
  ...over,
});

/** The upstream as stored: the written fields and the handle the store gave. */
const stored = (written: UpstreamWrite, handle: string): Upstream => ({ ...written, handle });
const GENERATED = (id: string) => new RegExp(`^${id}-[a-z2-7]{8}$`);

const event = (over: Partial<AuditEvent> = {}): AuditEvent => ({
  tenant: 'acme',
  login: 'l1',
  type: 'signin.password',
  time: new Date('2024-01-01T00:00:00Z'),
  ip: '127.0.0.1',
  userAgent: 'test',
  outcome: 'success',
  ...over,
});

function accountStoreContract(name: string, makeStore: () => Promise<Harness>) {
  describe(`AccountStore contract: ${name}`, () => {
    async function withStore(fn: (store: AccountStore, h: Harness) => Promise<void>) {
      const h = await makeStore();
      try {
        await h.store.init();
        await fn(h.store, h);
      } finally {
        await h.cleanup();
      }
    }

    describe('lifecycle', () => {
      it('init is idempotent, ping resolves, isEmpty follows tenants', () =>
        withStore(async (s) => {
          await s.init();
          await s.ping();
          assert.equal(await s.isEmpty(), true);
          await s.upsertTenant(tenant('acme'));
          assert.equal(await s.isEmpty(), false);
        }));

      it('close leaves the connection to its owner', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await other.close();
          await s.ping();
        }));

      it('rejects non-string ids instead of passing them into queries', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          const injection = { $ne: null } as unknown as string;
          await assert.rejects(s.getLogin(injection), TypeError);
          await assert.rejects(s.getTenant(injection), TypeError);
          await assert.rejects(s.findIdentityByEmail(injection), TypeError);
          await assert.rejects(s.listLoginsForEmail('acme', injection), TypeError);
          await assert.rejects(s.advanceFactorStep(injection, 'totp', 1), TypeError);
          await assert.rejects(s.setFactorState('l1', 'a.b', {}), TypeError);
          await assert.rejects(s.advanceFactorStep('l1', '$where', 1), TypeError);
        }));
    });

    describe('tenants', () => {
      it('upserts, gets and lists ordered by id', () =>
        withStore(async (s) => {
          await s.upsertTenant(tenant('zeta'));
          await s.upsertTenant(tenant('acme', { owners: ['l1'] }));
          assert.deepEqual(await s.getTenant('acme'), tenant('acme', { owners: ['l1'] }));
          assert.equal(await s.getTenant('nope'), null);
          assert.deepEqual(
            (await s.listTenants()).map((t) => t.id),
            ['acme', 'zeta'],
          );
        }));

      it('upsert replaces name, owner and user types', () =>
        withStore(async (s) => {
          await s.upsertTenant(tenant('acme', { owners: ['l1'] }));
          const replaced = tenant('acme', { name: 'Acme Inc', owners: [], userTypes: [{ id: 'guest', name: 'Guest', secondFactor: 'pin' }] });
          await s.upsertTenant(replaced);
          assert.deepEqual(await s.getTenant('acme'), replaced);
          assert.equal((await s.listTenants()).length, 1);
        }));

      it('setUserTypeFactor changes one user type; false for an unknown tenant or type', () =>
        withStore(async (s) => {
          await s.upsertTenant(tenant('acme'));
          assert.equal(await s.setUserTypeFactor('acme', 'admin', 'pin'), true);
          const t = await s.getTenant('acme');
          assert.deepEqual(t?.userTypes, [
            { id: 'staff', name: 'Staff', secondFactor: 'none' },
            { id: 'admin', name: 'Admin', secondFactor: 'pin' },
          ]);
          assert.equal(await s.setUserTypeFactor('acme', 'nope', 'pin'), false);
          assert.equal(await s.setUserTypeFactor('nope', 'admin', 'pin'), false);
          // Which factor ids exist is the registry's to say, at the edges; the store keeps any id-shaped string.
          assert.equal(await s.setUserTypeFactor('acme', 'admin', 'sms'), true);
          for (const bad of ['$where', 'a.b', 'PIN', '', 'x'.repeat(33), 42, { $ne: null }])
            await assert.rejects(s.setUserTypeFactor('acme', 'admin', bad as never), TypeError, String(bad));
        }));

      it('keeps a session policy: none for a new tenant, set by setSessionPolicy, kept by an upsert, only whole numbers', () =>
        withStore(async (s) => {
          await s.upsertTenant(tenant('acme'));
          assert.equal((await s.getTenant('acme'))?.sessionPolicy, undefined);
          const policy = { lifetimeHours: 8, idleMinutes: 30, staySignedIn: false };
          assert.equal(await s.setSessionPolicy('acme', { ...policy, extra: { $ne: null } } as never), true);
          assert.deepEqual((await s.getTenant('acme'))?.sessionPolicy, policy, 'only the three fields are kept');
          await s.upsertTenant(tenant('acme', { name: 'Acme Inc' }));
          assert.deepEqual((await s.listTenants())[0]?.sessionPolicy, policy, 'an upsert keeps it');
          assert.equal(await s.setSessionPolicy('nope', policy), false);
          for (const bad of [
            { ...policy, lifetimeHours: 0 },
            { ...policy, idleMinutes: 1.5 },
            { ...policy, staySignedIn: 'no' },
            { ...policy, lifetimeHours: '8' },
          ]) {
            await assert.rejects(s.setSessionPolicy('acme', bad as never), TypeError);
          }
        }));

      it('keeps whether a stronger factor may be set up on the spot: off for a new tenant, set by setStepUpEnrollment, kept by an upsert without it', () =>
        withStore(async (s) => {
          await s.upsertTenant(tenant('acme'));
          assert.equal((await s.getTenant('acme'))?.stepUpEnrollment, false);
          assert.equal(await s.setStepUpEnrollment('acme', true), true);
          assert.equal((await s.getTenant('acme'))?.stepUpEnrollment, true);
          const { stepUpEnrollment: _left, ...withoutIt } = tenant('acme', { name: 'Acme Inc' });
          await s.upsertTenant(withoutIt);
          const kept = await s.getTenant('acme');
          assert.equal(kept?.name, 'Acme Inc');
          assert.equal(kept?.stepUpEnrollment, true, 'an upsert without it keeps it');
          assert.equal((await s.listTenants())[0]?.stepUpEnrollment, true);
          await s.upsertTenant(tenant('acme', { stepUpEnrollment: false }));
          assert.equal((await s.getTenant('acme'))?.stepUpEnrollment, false, 'an upsert with it sets it');
          assert.equal(await s.setStepUpEnrollment('nope', true), false);
          assert.equal(await s.getTenant('nope'), null);
          await assert.rejects(s.setStepUpEnrollment('acme', 'yes' as never), TypeError);
        }));
    });

    describe('user types and owners', () => {
      it('adds, renames and deletes user types; a type a login has, the last type and an unknown one stay', () =>
        withStore(async (s) => {
          await s.upsertTenant(tenant('acme'));
          assert.equal(await s.addUserType('acme', { id: 'nurse', name: 'Nurse', secondFactor: 'pin' }), true);
          assert.equal(await s.addUserType('acme', { id: 'nurse', name: 'Other', secondFactor: 'none' }), false, 'an id is taken once');
          assert.equal(await s.addUserType('nope', { id: 'x', name: 'X', secondFactor: 'none' }), false);
          assert.equal(await s.renameUserType('acme', 'nurse', 'Night nurse'), true);
          assert.equal(await s.renameUserType('acme', 'nope', 'X'), false);
          assert.deepEqual((await s.getTenant('acme'))!.userTypes, [
            { id: 'staff', name: 'Staff', secondFactor: 'none' },
            { id: 'admin', name: 'Admin', secondFactor: 'totp' },
            { id: 'nurse', name: 'Night nurse', secondFactor: 'pin' },
          ]);
          await s.upsertLogin(login('l1', { userType: 'nurse' }));
          await s.upsertLogin(login('other-tenant', { tenant: 'beta', userType: 'admin' }));
          assert.equal(await s.deleteUserType('acme', 'nurse'), 'in_use');
          assert.equal(await s.deleteUserType('acme', 'admin'), 'deleted', "another tenant's login of that type id does not count");
          assert.equal(await s.deleteUserType('acme', 'admin'), 'not_found');
          assert.equal(await s.deleteUserType('nope', 'staff'), 'not_found');
          await s.upsertLogin(login('l1', { userType: 'staff' }));
          assert.equal(await s.deleteUserType('acme', 'nurse'), 'deleted');
          assert.equal(await s.deleteUserType('acme', 'staff'), 'last');
          assert.deepEqual(
            (await s.getTenant('acme'))!.userTypes.map((t) => t.id),
            ['staff'],
          );
          await assert.rejects(s.addUserType('acme', { id: 'x', name: 'X', secondFactor: '$where' as never }), TypeError);
          await assert.rejects(s.renameUserType('acme', 'staff', { $ne: null } as never), TypeError);
        }));

      it('parallel changes of user types through two connections lose none of them', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await s.upsertTenant(tenant('acme'));
          const results = await Promise.all([
            ...Array.from({ length: 6 }, (_, i) => (i % 2 ? s : other).addUserType('acme', { id: `t${i}`, name: `T${i}`, secondFactor: 'none' })),
            other.setUserTypeFactor('acme', 'staff', 'pin'),
            s.renameUserType('acme', 'admin', 'Administrator'),
            s.addUserType('acme', { id: 't0', name: 'Again', secondFactor: 'none' }),
          ]);
          // Two adds of t0 over two connections: either may come first, exactly one is true, and its name is kept.
          const [firstT0, secondT0] = [results[0], results[8]];
          assert.equal(Number(firstT0) + Number(secondT0), 1, 'one add of t0 wins');
          const types = (await s.getTenant('acme'))!.userTypes;
          assert.deepEqual(types.map((t) => t.id).sort(), ['admin', 'staff', 't0', 't1', 't2', 't3', 't4', 't5']);
          assert.equal(types.find((t) => t.id === 'staff')!.secondFactor, 'pin');
          assert.equal(types.find((t) => t.id === 'admin')!.name, 'Administrator');
          assert.equal(types.find((t) => t.id === 't0')!.name, firstT0 ? 'T0' : 'Again');
        }));

      it("a user type's name is the tenant's once, case aside: another id of that name, a rename to it and parallel adds of it over two connections", () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await s.upsertTenant(tenant('acme'));
          assert.equal(await s.addUserType('acme', { id: 'staff-2', name: 'STAFF', secondFactor: 'none' }), false, 'the name of another type');
          assert.equal(await s.renameUserType('acme', 'admin', 'staff'), false, 'a rename to it');
          assert.equal(await s.renameUserType('acme', 'admin', 'ADMIN'), true, 'its own name in other letters is fine');
          for (let round = 0; round < 3; round++) {
            const name = `Night nurse ${round}`;
            const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? s : other).addUserType('acme', { id: `n${round}-${i}`, name, secondFactor: 'none' })));
            assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(results)}`);
            assert.equal((await s.getTenant('acme'))!.userTypes.filter((t) => t.name === name).length, 1);
          }
        }));

      it('adds and removes owners, never the last; two owners removing each other at once leave one', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await s.upsertTenant(tenant('acme', { owners: ['a'] }));
          assert.equal(await s.addOwner('acme', 'b'), 'added');
          assert.equal(await s.addOwner('acme', 'b'), 'already');
          assert.equal(await s.addOwner('nope', 'b'), 'not_found');
          assert.deepEqual((await s.getTenant('acme'))!.owners, ['a', 'b']);
          assert.equal(await s.removeOwner('acme', 'c'), 'not_owner');
          assert.equal(await s.removeOwner('nope', 'a'), 'not_owner');
          for (let round = 0; round < 3; round++) {
            const results = await Promise.all([s.removeOwner('acme', 'a'), other.removeOwner('acme', 'b')]);
            assert.deepEqual(results.sort(), ['last', 'removed']);
            const left = (await s.getTenant('acme'))!.owners;
            assert.equal(left.length, 1);
            assert.equal(await s.removeOwner('acme', left[0]!), 'last');
            await s.addOwner('acme', left[0] === 'a' ? 'b' : 'a');
          }
          await Promise.all([s.addOwner('acme', 'c'), other.addOwner('acme', 'd')]);
          assert.deepEqual([...(await s.getTenant('acme'))!.owners].sort(), ['a', 'b', 'c', 'd']);
          await assert.rejects(s.addOwner('acme', { $ne: null } as never), TypeError);
        }));
    });

    describe('identities', () => {
      it('upserts by case-insensitive email and keeps the id', () =>
        withStore(async (s) => {
          const a = await s.upsertIdentity({ email: '  Ada@Example.COM ', passwordHash: 'h1' });
          assert.equal(a.email, 'ada@example.com');
          assert.equal(a.passwordHash, 'h1');
          assert.match(a.id, /^[0-9a-f-]{36}$/);
          const b = await s.upsertIdentity({ email: 'ada@example.com' });
          assert.equal(b.id, a.id);
          assert.equal(b.passwordHash, 'h1', 'undefined keeps the hash');
          assert.deepEqual(await s.findIdentityByEmail('ADA@example.com'), b);
          assert.deepEqual(await s.getIdentity(a.id), b);
          const c = await s.upsertIdentity({ email: 'Ada@example.com', passwordHash: null });
          assert.deepEqual(c, { id: a.id, email: 'ada@example.com', passwordHash: null });
          assert.equal(await s.findIdentityByEmail('nobody@example.com'), null);
          assert.equal(await s.getIdentity('nope'), null);
        }));

      it('creates an identity without a hash as null', () =>
        withStore(async (s) => {
          const a = await s.upsertIdentity({ email: 'upstream@example.com' });
          assert.equal(a.passwordHash, null);
          assert.deepEqual(await s.getIdentity(a.id), a);
        }));

      it('setPasswordHash sets the hash of one identity', () =>
        withStore(async (s) => {
          const a = await s.upsertIdentity({ email: 'a@example.com' });
          const b = await s.upsertIdentity({ email: 'b@example.com', passwordHash: 'hb' });
          await s.setPasswordHash(a.id, 'ha');
          assert.equal((await s.getIdentity(a.id))?.passwordHash, 'ha');
          assert.equal((await s.getIdentity(b.id))?.passwordHash, 'hb');
          await s.setPasswordHash('nope', 'x');
        }));

      it('replacePasswordHash replaces the hash only while it is still the one given', () =>
        withStore(async (s) => {
          const a = await s.upsertIdentity({ email: 'a@example.com', passwordHash: 'old' });
          assert.equal(await s.replacePasswordHash(a.id, 'old', 'rehashed'), true);
          assert.equal((await s.getIdentity(a.id))?.passwordHash, 'rehashed');
          // A password change in between wins over a rehash of the old password.
          await s.setPasswordHash(a.id, 'changed');
          assert.equal(await s.replacePasswordHash(a.id, 'rehashed', 'stale'), false);
          assert.equal((await s.getIdentity(a.id))?.passwordHash, 'changed');
          assert.equal(await s.replacePasswordHash('nope', 'changed', 'x'), false);
        }));

      it('a rehash racing a password change over another connection never brings the old password back', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          for (let round = 0; round < 20; round++) {
            const a = await s.upsertIdentity({ email: `race${round}@example.com`, passwordHash: 'old' });
            // The sign-in's rehash of the old password, and the person's change, at once.
            await Promise.all([s.replacePasswordHash(a.id, 'old', 'old-rehashed'), other.setPasswordHash(a.id, 'changed')]);
            assert.equal((await s.getIdentity(a.id))?.passwordHash, 'changed', `round ${round}`);
          }
        }));

      it('no other write of an identity brings an old password back: an upsert without a hash, or an import of one, racing a change', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          for (let round = 0; round < 20; round++) {
            const email = `upsert${round}@example.com`;
            const a = await s.upsertIdentity({ email, passwordHash: 'old' });
            await Promise.all([s.upsertIdentity({ email }), other.setPasswordHash(a.id, 'changed')]);
            assert.equal((await s.getIdentity(a.id))?.passwordHash, 'changed', `an upsert without a hash, round ${round}`);
            await Promise.all([s.replacePasswordHash(a.id, 'changed', 'changed-rehashed'), other.upsertIdentity({ email, passwordHash: 'imported' })]);
            assert.equal((await s.getIdentity(a.id))?.passwordHash, 'imported', `an import, round ${round}`);
          }
        }));

      it('setPasswordHashIf sets a new password only over the one given (null: none yet); of two at once from one read, one is set and the other is not written over it', () =>
        withStore(async (s, h) => {
          const a = await s.upsertIdentity({ email: 'cas@example.com', passwordHash: 'old' });
          assert.equal(await s.setPasswordHashIf(a.id, 'other', 'x'), false);
          assert.equal(await s.setPasswordHashIf(a.id, null, 'x'), false, 'it has a password');
          assert.equal(await s.setPasswordHashIf(a.id, 'old', 'new'), true);
          assert.equal((await s.getIdentity(a.id))?.passwordHash, 'new');
          const invited = await s.upsertIdentity({ email: 'invited@example.com' });
          assert.equal(await s.setPasswordHashIf(invited.id, null, 'first'), true, 'none yet');
          assert.equal(await s.setPasswordHashIf(invited.id, null, 'second'), false);
          assert.equal(await s.setPasswordHashIf('nope', null, 'x'), false);
          const other = await h.twin();
          for (let round = 0; round < 12; round++) {
            const b = await s.upsertIdentity({ email: `cas${round}@example.com`, passwordHash: 'old' });
            // A reset link and the account page, both chosen against 'old'.
            const [link, page] = await Promise.all([s.setPasswordHashIf(b.id, 'old', 'by-link'), other.setPasswordHashIf(b.id, 'old', 'by-page')]);
            assert.equal(Number(link) + Number(page), 1, `round ${round}: one is set`);
            assert.equal((await s.getIdentity(b.id))?.passwordHash, link ? 'by-link' : 'by-page', `round ${round}: the one set stays`);
            // And an unconditional change beside it: whichever comes first, the change is what stays (a
            // conditional set after it is refused), never written over.
            const [late] = await Promise.all([s.setPasswordHashIf(b.id, link ? 'by-link' : 'by-page', 'late'), other.setPasswordHash(b.id, 'changed')]);
            assert.equal((await s.getIdentity(b.id))?.passwordHash, 'changed', `round ${round} (the conditional set ${late ? 'was' : 'was not'} made)`);
          }
        }));

      it('keeps one identity per email, also under parallel upserts', () =>
        withStore(async (s) => {
          const all = await Promise.all(Array.from({ length: 10 }, (_, i) => s.upsertIdentity({ email: i % 2 ? 'X@example.com' : 'x@example.com' })));
          assert.equal(new Set(all.map((i) => i.id)).size, 1);
          const other = await s.upsertIdentity({ email: 'y@example.com' });
          assert.notEqual(other.id, all[0]!.id);
        }));
    });

    describe('logins', () => {
      it('upserts, gets, and keeps factor state across upserts', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1', { email: 'Ada@Example.com' }));
          assert.deepEqual(await s.getLogin('l1'), {
            id: 'l1',
            tenant: 'acme',
            email: 'ada@example.com',
            userType: 'staff',
            firstName: 'Ada',
            lastName: 'Lovelace',
            disabled: false,
            factors: {},
          });
          assert.equal(await s.setFactorState('l1', 'pin', { hash: 'p', setAt: 1 }), true);
          await s.upsertLogin(login('l1', { firstName: 'Augusta', userType: 'admin', disabled: true }));
          const l = await s.getLogin('l1');
          assert.equal(l?.firstName, 'Augusta');
          assert.equal(l?.userType, 'admin');
          assert.equal(l?.disabled, true);
          assert.deepEqual(l?.factors, { pin: { hash: 'p', setAt: 1 } });
          await s.upsertLogin(login('l1', { firstName: 'Augusta' }));
          assert.equal((await s.getLogin('l1'))?.disabled, true, 'disabled undefined keeps the flag');
          await s.upsertLogin(login('l1', { disabled: false }));
          assert.equal((await s.getLogin('l1'))?.disabled, false);
          assert.equal(await s.getLogin('unknown'), null);
        }));

      it('listLoginsForEmails answers for several emails in one call: tenant-scoped, case-insensitive, by email then id', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l3', { email: 'ada@example.com' }));
          await s.upsertLogin(login('l1', { email: 'ADA@example.com' }));
          await s.upsertLogin(login('l2', { email: 'ada@example.com', tenant: 'other' }));
          await s.upsertLogin(login('l4', { email: 'bob@example.com' }));
          await s.upsertLogin(login('l5', { email: 'cy@example.com' }));
          assert.deepEqual(
            (await s.listLoginsForEmails('acme', [' Bob@Example.com', 'ada@example.com', 'ADA@example.com', 'nobody@example.com'])).map((l) => l.id),
            ['l1', 'l3', 'l4'],
          );
          assert.deepEqual(
            (await s.listLoginsForEmails('other', ['ada@example.com', 'bob@example.com'])).map((l) => l.id),
            ['l2'],
          );
          assert.deepEqual(await s.listLoginsForEmails('acme', []), []);
          await assert.rejects(s.listLoginsForEmails('acme', [{ $ne: null }] as unknown as string[]), TypeError, 'an object never becomes part of a filter');
          await assert.rejects(
            s.listLoginsForEmails(
              'acme',
              Array.from({ length: 201 }, (_, i) => `p${i}@example.com`),
            ),
            TypeError,
            'at most a page of emails',
          );
        }));

      it('listLoginsForEmail is tenant-scoped, case-insensitive and ordered by id', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l3', { email: 'ada@example.com' }));
          await s.upsertLogin(login('l1', { email: 'ADA@example.com' }));
          await s.upsertLogin(login('l2', { email: 'ada@example.com', tenant: 'other' }));
          await s.upsertLogin(login('l4', { email: 'bob@example.com' }));
          assert.deepEqual(
            (await s.listLoginsForEmail('acme', ' Ada@Example.com')).map((l) => l.id),
            ['l1', 'l3'],
          );
          assert.deepEqual(
            (await s.listLoginsForEmail('other', 'ada@example.com')).map((l) => l.id),
            ['l2'],
          );
          assert.deepEqual(await s.listLoginsForEmail('acme', 'nobody@example.com'), []);
        }));

      it('listLogins orders by last name, first name, id within one tenant', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('c', { lastName: 'Babbage', firstName: 'Charles' }));
          await s.upsertLogin(login('b', { lastName: 'Lovelace', firstName: 'Ada' }));
          await s.upsertLogin(login('a', { lastName: 'Lovelace', firstName: 'Ada' }));
          await s.upsertLogin(login('d', { lastName: 'Babbage', firstName: 'Ada' }));
          await s.upsertLogin(login('e', { tenant: 'other', lastName: 'Aaron' }));
          assert.deepEqual(
            (await s.listLogins('acme')).map((l) => l.id),
            ['d', 'c', 'a', 'b'],
          );
          assert.deepEqual(await s.listLogins('none'), []);
        }));

      it('createLogin creates a login once and never changes an existing one', () =>
        withStore(async (s) => {
          assert.equal(await s.createLogin(login('n1', { firstName: 'Nora' })), true);
          assert.deepEqual(await s.getLogin('n1'), { ...login('n1', { firstName: 'Nora' }), disabled: false, factors: {} });
          await s.setFactorState('n1', 'pin', { hash: 'h' });
          assert.equal(await s.createLogin(login('n1', { tenant: 'other', firstName: 'Mallory', email: 'mallory@example.com' })), false);
          assert.deepEqual(await s.getLogin('n1'), { ...login('n1', { firstName: 'Nora' }), disabled: false, factors: { pin: { hash: 'h' } } }, 'unchanged, factor state kept');
          assert.equal(await s.createLogin(login('n2', { disabled: true })), true);
          assert.equal((await s.getLogin('n2'))!.disabled, true);
          await assert.rejects(s.createLogin({ ...login('n3'), id: { $ne: null } as never }), TypeError);
        }));

      it('setLoginDisabled disables and enables one login, keeping the rest; false for an unknown login', () =>
        withStore(async (s, h) => {
          await s.upsertLogin(login('d1'));
          await s.upsertLogin(login('d2'));
          await s.setFactorState('d1', 'pin', { hash: 'h' });
          const other = await h.twin();
          assert.equal((await other.getLogin('d1'))!.disabled, false, 'read (and cached) before');
          assert.equal(await s.setLoginDisabled('d1', true), true);
          assert.deepEqual(await other.getLogin('d1'), { ...login('d1'), disabled: true, factors: { pin: { hash: 'h' } } }, 'seen at once, elsewhere too');
          assert.equal((await s.getLogin('d2'))!.disabled, false);
          assert.deepEqual(
            (await s.searchLogins({ tenant: 'acme', state: 'disabled' })).logins.map((l) => l.id),
            ['d1'],
          );
          await s.upsertLogin(login('d1', { firstName: 'Renamed' }));
          assert.equal((await s.getLogin('d1'))!.disabled, true, 'a profile upsert without `disabled` keeps it');
          assert.equal(await s.setLoginDisabled('d1', false), true);
          assert.equal((await other.getLogin('d1'))!.disabled, false);
          assert.equal(await s.setLoginDisabled('nobody', true), false);
          assert.equal(await s.getLogin('nobody'), null);
          await assert.rejects(s.setLoginDisabled('d1', 'yes' as never), TypeError);
          await assert.rejects(s.setLoginDisabled({ $ne: null } as never, true), TypeError);
        }));

      it('deleteLogin deletes one login with its grants, keeps its sessions cut-off; of parallel calls one is true', () =>
        withStore(async (s, h) => {
          await s.upsertLogin(login('r1'));
          await s.upsertLogin(login('r2'));
          await s.setFactorState('r1', 'totp', { secret: 's' });
          assert.equal(await s.advanceFactorStep('r1', 'totp', 5), true);
          await s.addLoginGrant('r1', 'g1', new Date(Date.now() + 60_000));
          const cutoff = new Date('2030-01-01T00:00:00Z');
          await s.endLoginSessions('r1', cutoff);
          const other = await h.twin();
          assert.ok(await other.getLogin('r1'), 'read (and cached) before');
          const results = await Promise.all([s, other, s, other].map((x) => x.deleteLogin('r1')));
          assert.equal(results.filter(Boolean).length, 1);
          assert.equal(await s.getLogin('r1'), null);
          assert.equal(await other.getLogin('r1'), null, 'gone elsewhere too');
          assert.ok(await s.getLogin('r2'), 'another login stays');
          assert.deepEqual(await s.takeLoginGrants('r1'), []);
          assert.deepEqual(await s.loginSessionsNotBefore('r1'), cutoff, 'the cut-off stays');
          await s.upsertLogin(login('r1'));
          await s.setFactorState('r1', 'totp', { secret: 't' });
          assert.equal(await s.advanceFactorStep('r1', 'totp', 1), true, 'a login made again starts with no steps');
          assert.equal(await s.deleteLogin('nobody'), false);
          await assert.rejects(s.deleteLogin({ $ne: null } as never), TypeError);
        }));

      it('deleteLogin with the login as read deletes it only while its profile is that one, and then keeps everything', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('dr', { email: 'dora@example.com' }));
          await s.addLoginGrant('dr', 'g1', new Date(Date.now() + 60_000));
          const { factors: _factors, ...read } = (await s.getLogin('dr'))!;
          assert.equal(
            await s.updateLoginIf(read, { email: 'other@example.com', userType: read.userType, firstName: read.firstName, lastName: read.lastName }),
            true,
            'handed to another person',
          );
          assert.equal(await s.deleteLogin('dr', read), false, 'the login read before is no longer stored');
          assert.equal((await s.getLogin('dr'))?.email, 'other@example.com', 'nothing deleted');
          assert.deepEqual(await s.takeLoginGrants('dr'), ['g1'], 'its grants kept');
          const { factors: _f, ...fresh } = (await s.getLogin('dr'))!;
          assert.equal(await s.deleteLogin('dr', { ...fresh, disabled: !fresh.disabled }), false, 'disabled is part of it');
          assert.equal(await s.deleteLogin('dr', { ...fresh, tenant: 'other' }), false, 'the tenant too');
          assert.equal(await s.deleteLogin('dr', fresh), true, 'a fresh read deletes it');
          assert.equal(await s.getLogin('dr'), null);
          assert.equal(await s.deleteLogin('dr', fresh), false, 'once');
          await assert.rejects(s.deleteLogin('dr', { ...fresh, id: 'another' }), TypeError);
          await assert.rejects(s.deleteLogin('dr', { ...fresh, email: { $ne: null } as never }), TypeError);
        }));

      it('parallel deleteLogin and updateLoginIf from one read, from two connections: exactly one is made', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          for (let round = 0; round < 6; round++) {
            const id = `du-${round}`;
            await s.upsertLogin(login(id));
            const { factors: _factors, ...read } = (await s.getLogin(id))!;
            // Writers 0, 1, 4, 5 delete; 2, 3, 6, 7 change the first name; odd ones on the other connection.
            const deletes = (i: number) => i % 4 < 2;
            const results = await Promise.all(
              Array.from({ length: 8 }, (_, i) => {
                const store = i % 2 ? other : s;
                return deletes(i) ? store.deleteLogin(id, read) : store.updateLoginIf(read, { ...read, firstName: `F${i}` });
              }),
            );
            assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
            const stored = await other.getLogin(id);
            const winner = results.indexOf(true);
            if (deletes(winner)) assert.equal(stored, null, 'the delete won');
            else assert.equal(stored?.firstName, `F${winner}`, 'the change won and the login stays');
          }
        }));

      it('deleteIdentity deletes an identity and its upstream links only', () =>
        withStore(async (s) => {
          const a = await s.upsertIdentity({ email: 'a@example.com', passwordHash: 'h' });
          const b = await s.upsertIdentity({ email: 'b@example.com', passwordHash: 'h' });
          await s.linkUpstream({ issuer: 'https://up.example', subject: 'a', identityId: a.id });
          await s.linkUpstream({ issuer: 'https://up.example', subject: 'b', identityId: b.id });
          assert.equal(await s.deleteIdentity(a.id), true);
          assert.equal(await s.findIdentityByEmail('a@example.com'), null);
          assert.equal(await s.findIdentityByUpstream('https://up.example', 'a'), null);
          assert.deepEqual(await s.listUpstreamLinks(a.id), []);
          assert.equal((await s.findIdentityByUpstream('https://up.example', 'b'))?.id, b.id, 'another identity keeps its link');
          assert.equal(await s.deleteIdentity(a.id), false);
          await assert.rejects(s.deleteIdentity({ $ne: null } as never), TypeError);
        }));

      it('updateLoginIf changes the profile only while it is the one read, keeping factor state and the flag', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('u1', { email: 'ada@example.com' }));
          await s.setFactorState('u1', 'pin', { hash: 'h' });
          const read = (await s.getLogin('u1'))!;
          const { factors: _factors, ...profile } = read;
          const next = { email: 'Augusta@Example.com', userType: 'admin', firstName: 'Augusta', lastName: 'King' };
          assert.equal(await s.updateLoginIf(profile, next), true);
          assert.deepEqual(await s.getLogin('u1'), { ...read, ...next, email: 'augusta@example.com' });
          assert.equal(await s.updateLoginIf(profile, { ...next, firstName: 'Stale' }), false, 'the profile read before is no longer stored');
          const current = { ...profile, ...next, email: 'augusta@example.com' };
          await s.setLoginDisabled('u1', true);
          assert.equal(await s.updateLoginIf(current, { ...next, firstName: 'Late' }), false, 'disabling changed the profile too');
          assert.equal(await s.updateLoginIf({ ...current, disabled: true, tenant: 'other' }, next), false, 'the tenant is part of it');
          assert.equal(await s.updateLoginIf({ ...current, disabled: true, id: 'nobody' }, next), false);
          assert.equal((await s.getLogin('u1'))!.firstName, 'Augusta');
          assert.deepEqual((await s.getLogin('u1'))!.factors, { pin: { hash: 'h' } });
          const { factors: _again, ...fresh } = (await s.getLogin('u1'))!;
          assert.equal(await s.updateLoginIf(fresh, { ...next, firstName: 'Fresh' }), true, 'a fresh read changes it again');
          assert.equal(await s.updateLoginIf({ ...fresh, firstName: 'Fresh', email: 'augusta@example.com' }, { ...next, firstName: 'Again' }), true);
          await assert.rejects(s.updateLoginIf({ ...current, id: { $ne: null } as never }, next), TypeError);
          await assert.rejects(s.updateLoginIf(current, { ...next, email: { $ne: null } as never }), TypeError);
        }));

      it('updateLoginIf with `disabled` disables or enables in the same conditional write; without it the flag stays', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('d2', { email: 'dan@example.com' }));
          const { factors: _factors, ...read } = (await s.getLogin('d2'))!;
          const same = { email: read.email, userType: read.userType, firstName: read.firstName, lastName: read.lastName };
          assert.equal(await s.updateLoginIf(read, { ...same, disabled: true }), true);
          assert.equal((await s.getLogin('d2'))!.disabled, true);
          assert.equal(await s.updateLoginIf(read, { ...same, disabled: false }), false, 'from the read before the disable: nothing is written');
          assert.equal((await s.getLogin('d2'))!.disabled, true);
          const disabled = { ...read, disabled: true };
          assert.equal(await s.updateLoginIf(disabled, { ...same, firstName: 'Dana' }), true);
          assert.deepEqual([(await s.getLogin('d2'))!.disabled, (await s.getLogin('d2'))!.firstName], [true, 'Dana'], 'a change without `disabled` keeps it');
          await assert.rejects(s.updateLoginIf({ ...disabled, firstName: 'Dana' }, { ...same, disabled: 'no' as never }), TypeError);
        }));

      it('parallel updateLoginIf from one read, from two connections: exactly one wins', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await s.upsertLogin(login('cas'));
          const { factors: _factors, ...read } = (await s.getLogin('cas'))!;
          const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? other : s).updateLoginIf(read, { ...read, firstName: `F${i}` })));
          assert.equal(results.filter(Boolean).length, 1);
          assert.equal((await other.getLogin('cas'))!.firstName, `F${results.indexOf(true)}`);
        }));

      it('parallel createLogin of one id, from two connections: exactly one is true', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? other : s).createLogin(login('race', { firstName: `F${i}` }))));
          assert.equal(results.filter(Boolean).length, 1);
          const winner = results.indexOf(true);
          assert.equal((await other.getLogin('race'))!.firstName, `F${winner}`, 'the one that was created is the one kept');
        }));

      describe('searchLogins', () => {
        const people: LoginInput[] = [
          login('p1', { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com', userType: 'staff' }),
          login('p2', { firstName: 'Charles', lastName: 'Babbage', email: 'charles@engine.test', userType: 'admin' }),
          login('p3', { firstName: 'Émile', lastName: 'Zola', email: 'emile@example.com', userType: 'staff', disabled: true }),
          login('p4', { firstName: 'Ada', lastName: 'Byron', email: 'lady.b@example.com', userType: 'admin' }),
          login('p5', { firstName: 'Grace', lastName: 'Hopper', email: 'grace+cobol@navy.test', userType: 'staff' }),
          login('x1', { tenant: 'other', firstName: 'Ada', lastName: 'Other', email: 'ada@example.com' }),
        ];
        const ids = (page: { logins: { id: string }[] }) => page.logins.map((l) => l.id);
        const seeded = (fn: (s: AccountStore) => Promise<void>) =>
          withStore(async (s) => {
            for (const p of people) await s.upsertLogin(p);
            await fn(s);
          });

        it('without criteria: every login of the tenant by name, with the total', () =>
          seeded(async (s) => {
            assert.deepEqual(await s.searchLogins({ tenant: 'acme' }).then((p) => [ids(p), p.total]), [['p2', 'p4', 'p5', 'p1', 'p3'], 5]);
            assert.deepEqual(await s.searchLogins({ tenant: 'none' }), { logins: [], total: 0 });
          }));

        it('finds words in first name, last name or email, case-insensitively, every word required, only in the tenant', () =>
          seeded(async (s) => {
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'ADA' })), ['p4', 'p1']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: '  ada   byron ' })), ['p4']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'engine.TEST' })), ['p2']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'émile' })), ['p3'], 'beyond ASCII');
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'ÉMILE' })), ['p3'], 'beyond ASCII, folded');
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'ada lovelace nobody' })), []);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: '' })).length, 5, 'empty text: everyone');
          }));

        it('takes the text literally, never as a pattern', () =>
          seeded(async (s) => {
            for (const text of ['.*', 'a.a', '^ada', '%', '_', '[a-z]', '(', '\\', '$where']) {
              assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text })), [], text);
            }
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'grace+cobol' })), ['p5']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'lady.b' })), ['p4']);
          }));

        it('filters by user type and by state', () =>
          seeded(async (s) => {
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', userType: 'admin' })), ['p2', 'p4']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', state: 'disabled' })), ['p3']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', state: 'active', userType: 'staff' })), ['p5', 'p1']);
            assert.deepEqual(await s.searchLogins({ tenant: 'acme', userType: 'nobody' }), { logins: [], total: 0 });
            await s.upsertLogin({ ...people[0]!, disabled: true });
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', state: 'disabled' })), ['p1', 'p3'], 'follows a change');
          }));

        it('sorts by name, email or user type, either way, ties by id', () =>
          seeded(async (s) => {
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', sort: 'name', descending: true })), ['p3', 'p1', 'p5', 'p4', 'p2']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', sort: 'email' })), ['p1', 'p2', 'p3', 'p5', 'p4']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', sort: 'userType' })), ['p2', 'p4', 'p5', 'p1', 'p3']);
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', sort: 'userType', descending: true })), ['p3', 'p1', 'p5', 'p4', 'p2']);
            await s.upsertLogin(login('p0', { firstName: 'Ada', lastName: 'Lovelace', email: 'ada2@example.com' }));
            assert.deepEqual(ids(await s.searchLogins({ tenant: 'acme', text: 'lovelace' })), ['p0', 'p1'], 'the same name: by id');
          }));

        it('pages with offset and limit: every login exactly once, in order, the total on each page', () =>
          withStore(async (s) => {
            const n = 230;
            for (let i = 0; i < n; i++) {
              await s.upsertLogin(login(`m${String(i).padStart(3, '0')}`, { lastName: `Name${String((i * 7) % n).padStart(3, '0')}`, disabled: i % 10 === 0 }));
            }
            const seen: string[] = [];
            for (let offset = 0; offset < n; offset += 60) {
              const page = await s.searchLogins({ tenant: 'acme', offset, limit: 60 });
              assert.equal(page.total, n);
              assert.equal(page.logins.length, Math.min(60, n - offset));
              seen.push(...page.logins.map((l) => l.lastName));
            }
            assert.deepEqual(seen, [...seen].sort(), 'in order across pages');
            assert.equal(new Set(seen).size, n, 'each once');
            const last = await s.searchLogins({ tenant: 'acme', state: 'disabled', offset: 20, limit: 50 });
            assert.deepEqual([last.logins.length, last.total], [3, 23]);
            assert.deepEqual(await s.searchLogins({ tenant: 'acme', offset: 1000 }).then((p) => [p.logins.length, p.total]), [0, n]);
            assert.equal((await s.searchLogins({ tenant: 'acme' })).logins.length, 50, 'fifty by default');
            assert.equal((await s.searchLogins({ tenant: 'acme', limit: 200 })).logins.length, 200);
          }));

        it('refuses bad values with a TypeError', () =>
          seeded(async (s) => {
            const bad: Record<string, unknown>[] = [
              { tenant: { $ne: null } },
              { tenant: 'acme', text: { $regex: '.' } },
              { tenant: 'acme', userType: ['admin'] },
              { tenant: 'acme', state: 'locked' },
              { tenant: 'acme', sort: 'password' },
              { tenant: 'acme', descending: 'yes' },
              { tenant: 'acme', offset: -1 },
              { tenant: 'acme', offset: 1.5 },
              { tenant: 'acme', limit: 0 },
              { tenant: 'acme', limit: 201 },
              { tenant: 'acme', limit: Number.NaN },
            ];
            for (const search of bad) {
              await assert.rejects(s.searchLogins(search as never), TypeError, JSON.stringify(search));
            }
          }));
      });

      it('setFactorState sets, replaces and removes one factor', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          assert.equal(await s.setFactorState('l1', 'pin', { hash: 'p1' }), true);
          assert.equal(await s.setFactorState('l1', 'totp', { secret: 's', enrolledAt: '2024-01-01' }), true);
          assert.equal(await s.setFactorState('l1', 'pin', { hash: 'p2', setAt: 2 }), true);
          assert.deepEqual((await s.getLogin('l1'))?.factors, {
            pin: { hash: 'p2', setAt: 2 },
            totp: { secret: 's', enrolledAt: '2024-01-01' },
          });
          assert.equal(await s.setFactorState('l1', 'pin', null), true);
          assert.deepEqual((await s.getLogin('l1'))?.factors, { totp: { secret: 's', enrolledAt: '2024-01-01' } });
          assert.equal(await s.setFactorState('unknown', 'pin', { hash: 'x' }), false);
          assert.equal(await s.setFactorState('unknown', 'pin', null), false);
          assert.equal(await s.getLogin('unknown'), null);
        }));
    });

    describe('replaceFactorHash', () => {
      it("replaces a factor's hash only while it is still the one given, keeping the rest of the state", () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          await s.setFactorState('l1', 'pin', { hash: 'old', setAt: '2024-01-01' });
          assert.equal(await s.replaceFactorHash('l1', 'pin', 'old', 'rehashed'), true);
          assert.deepEqual((await s.getLogin('l1'))?.factors, { pin: { hash: 'rehashed', setAt: '2024-01-01' } });
          await s.setFactorState('l1', 'pin', { hash: 'changed', setAt: '2024-02-02' });
          assert.equal(await s.replaceFactorHash('l1', 'pin', 'rehashed', 'stale'), false);
          assert.deepEqual((await s.getLogin('l1'))?.factors, { pin: { hash: 'changed', setAt: '2024-02-02' } });
          assert.equal(await s.replaceFactorHash('l1', 'totp', 'changed', 'x'), false);
          assert.equal(await s.replaceFactorHash('unknown', 'pin', 'changed', 'x'), false);
          assert.deepEqual((await s.getLogin('l1'))?.factors, { pin: { hash: 'changed', setAt: '2024-02-02' } });
        }));
    });

    describe('parallel writes of one tenant over two connections', () => {
      it("a settings change never undoes an owner's removal, a user type's factor or another setting made at the same moment", () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          for (let round = 0; round < 20; round++) {
            const id = `t${round}`;
            await s.upsertTenant(tenant(id, { owners: ['ann', 'bob'] }));
            const policy = { lifetimeHours: 8 + round, idleMinutes: 30, staySignedIn: false };
            await Promise.all([other.removeOwner(id, 'bob'), s.setSessionPolicy(id, policy), other.setUserTypeFactor(id, 'staff', 'pin'), s.setStepUpEnrollment(id, true)]);
            const t = (await s.getTenant(id))!;
            assert.deepEqual(t.owners, ['ann'], `the owner's removal, round ${round}`);
            assert.deepEqual(t.sessionPolicy, policy, `the session policy, round ${round}`);
            assert.equal(t.userTypes.find((u) => u.id === 'staff')!.secondFactor, 'pin', `the user type's factor, round ${round}`);
            assert.equal(t.stepUpEnrollment, true, `step-up enrolment, round ${round}`);
          }
        }));
    });

    describe('parallel writes of one login over two connections', () => {
      it("a sign-in's writes never undo an owner's disable or factor reset made at the same moment", () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          for (let round = 0; round < 20; round++) {
            const id = `w${round}`;
            await s.upsertLogin(login(id));
            await s.setFactorState(id, 'totp', { secret: 'sealed', step: 1 });
            await s.setFactorState(id, 'pin', { hash: 'old' });
            // The person's sign-in writes its TOTP step and rehashes the PIN while the owner disables the login.
            await Promise.all([s.advanceFactorStep(id, 'totp', 2 + round), s.replaceFactorHash(id, 'pin', 'old', 'old-rehashed'), other.setLoginDisabled(id, true)]);
            assert.equal((await s.getLogin(id))!.disabled, true, `the disable, round ${round}`);
            // ... and while the owner resets the factors.
            await Promise.all([s.advanceFactorStep(id, 'totp', 100 + round), other.setFactorState(id, 'totp', null)]);
            await Promise.all([s.replaceFactorHash(id, 'pin', 'old-rehashed', 'stale'), other.setFactorState(id, 'pin', { hash: 'new' })]);
            const factors = (await s.getLogin(id))!.factors;
            assert.equal(factors.totp, undefined, `the TOTP reset, round ${round}`);
            assert.deepEqual(factors.pin, { hash: 'new' }, `the PIN change, round ${round}`);
          }
        }));
    });

    describe('advanceFactorStep', () => {
      it('accepts a greater step and refuses an equal or lower one', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          await s.setFactorState('l1', 'totp', { secret: 's' });
          assert.equal(await s.advanceFactorStep('l1', 'totp', 100), true);
          assert.equal((await s.getLogin('l1'))?.factors.totp?.step, 100);
          assert.equal(await s.advanceFactorStep('l1', 'totp', 100), false);
          assert.equal(await s.advanceFactorStep('l1', 'totp', 99), false);
          assert.equal(await s.advanceFactorStep('l1', 'totp', 101), true);
          assert.deepEqual((await s.getLogin('l1'))?.factors, { totp: { secret: 's', step: 101 } });
        }));

      it('is false without such a login or factor', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          assert.equal(await s.advanceFactorStep('l1', 'totp', 1), false);
          assert.equal(await s.advanceFactorStep('unknown', 'totp', 1), false);
          assert.deepEqual((await s.getLogin('l1'))?.factors, {});
        }));

      it('a new factor state starts over', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          await s.setFactorState('l1', 'totp', { secret: 'a' });
          assert.equal(await s.advanceFactorStep('l1', 'totp', 7), true);
          await s.setFactorState('l1', 'totp', { secret: 'b' });
          assert.equal(await s.advanceFactorStep('l1', 'totp', 7), true);
          assert.equal(await s.advanceFactorStep('l1', 'totp', 7), false);
        }));

      it('20 parallel calls with the same step: exactly one is true', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          await s.setFactorState('l1', 'totp', { secret: 's' });
          for (const step of [5, 6, 9]) {
            const results = await Promise.all(Array.from({ length: 20 }, () => s.advanceFactorStep('l1', 'totp', step)));
            assert.equal(results.filter(Boolean).length, 1, `step ${step}`);
          }
          assert.equal((await s.getLogin('l1'))?.factors.totp?.step, 9);
        }));

      it('parallel calls over two connections: exactly one is true', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await s.upsertLogin(login('l1'));
          await s.setFactorState('l1', 'pin', { hash: 'p' });
          const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? s : other).advanceFactorStep('l1', 'pin', 42)));
          assert.equal(results.filter(Boolean).length, 1);
          assert.equal(await other.advanceFactorStep('l1', 'pin', 42), false);
          assert.equal(await s.advanceFactorStep('l1', 'pin', 43), true);
        }));
    });

    describe('compareAndSetFactorState', () => {
      it('writes only over the expected state (none, or equal as JSON in any key order), removes with null', () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          assert.equal(await s.compareAndSetFactorState('l1', 'pin', { hash: 'x' }, { hash: 'a' }), false, 'nothing stored yet');
          assert.equal(await s.compareAndSetFactorState('l1', 'pin', null, { hash: 'a', setAt: '1' }), true);
          assert.equal(await s.compareAndSetFactorState('l1', 'pin', null, { hash: 'b' }), false, 'something is stored now');
          assert.equal(await s.compareAndSetFactorState('l1', 'pin', { hash: 'a' }, { hash: 'b' }), false, 'a part of the state is not the state');
          assert.equal(await s.compareAndSetFactorState('l1', 'pin', { setAt: '1', hash: 'a' }, { hash: 'b', n: [1, { x: 2 }] }), true, 'key order does not matter');
          assert.deepEqual((await s.getLogin('l1'))?.factors.pin, { hash: 'b', n: [1, { x: 2 }] });
          assert.equal(await s.compareAndSetFactorState('l1', 'totp', null, { secret: 's' }), true, 'each factor on its own');
          assert.equal(await s.compareAndSetFactorState('l1', 'pin', { hash: 'b', n: [1, { x: 2 }] }, null), true);
          assert.deepEqual((await s.getLogin('l1'))?.factors, { totp: { secret: 's' } });
          assert.equal(await s.compareAndSetFactorState('unknown', 'pin', null, { hash: 'a' }), false);
          await assert.rejects(s.compareAndSetFactorState('l1', '$where', null, { hash: 'a' }), TypeError);
          await assert.rejects(s.compareAndSetFactorState('l1', 'pin', 'x' as never, { hash: 'a' }), TypeError);
          await assert.rejects(s.compareAndSetFactorState('l1', 'pin', null, [1] as never), TypeError);
        }));

      it('8 parallel writers from one state over separate connections: exactly one wins, and its state is stored', () =>
        withStore(async (s, h) => {
          const stores = [s, ...(await Promise.all(Array.from({ length: 7 }, () => h.twin())))];
          await s.upsertLogin(login('l1'));
          let expected: Record<string, unknown> | null = null;
          for (let round = 0; round < 3; round++) {
            const from: Record<string, unknown> | null = expected;
            const results: boolean[] = await Promise.all(stores.map((store, i) => store.compareAndSetFactorState('l1', 'recovery', from, { round, writer: i })));
            assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results.join(' ')}`);
            const winner = results.indexOf(true);
            for (const store of stores) assert.deepEqual((await store.getLogin('l1'))?.factors.recovery, { round, writer: winner }, 'every connection reads the winner');
            expected = { round, writer: winner };
          }
        }));

      it('a state that comes back can be left again; a new state starts a new step sequence', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await s.upsertLogin(login('l1'));
          assert.equal(await s.compareAndSetFactorState('l1', 'totp', null, { secret: 'a', step: 0 }), true);
          assert.equal(await s.advanceFactorStep('l1', 'totp', 7), true);
          assert.equal(await other.compareAndSetFactorState('l1', 'totp', { secret: 'a', step: 7 }, null), true);
          assert.equal(await s.compareAndSetFactorState('l1', 'totp', null, { secret: 'b', step: 0 }), true, 'from none again');
          assert.equal(await other.advanceFactorStep('l1', 'totp', 7), true, 'the new secret may use step 7 once');
          assert.equal(await s.advanceFactorStep('l1', 'totp', 7), false);
        }));
    });

    describe('clients', () => {
      it('upserts, gets and lists by tenant ordered by client id', () =>
        withStore(async (s) => {
          await s.upsertClient(client('web'));
          await s.upsertClient(client('app', 'acme', { firstParty: true }));
          await s.upsertClient(client('other', 'beta'));
          assert.deepEqual(await s.getClient('app'), client('app', 'acme', { firstParty: true }));
          assert.equal(await s.getClient('nope'), null);
          assert.deepEqual(
            (await s.listClients('acme')).map((c) => c.clientId),
            ['app', 'web'],
          );
          assert.deepEqual(await s.listClients('none'), []);
          const replaced = client('web', 'beta', { firstParty: true, metadata: { client_id: 'web', client_secret: 'x', grant_types: ['authorization_code'] } });
          await s.upsertClient(replaced);
          assert.deepEqual(await s.getClient('web'), replaced);
          assert.deepEqual(
            (await s.listClients('beta')).map((c) => c.clientId),
            ['other', 'web'],
          );
        }));

      it('deletes a client once', () =>
        withStore(async (s) => {
          await s.upsertClient(client('web'));
          assert.equal(await s.deleteClient('web'), true);
          assert.equal(await s.deleteClient('web'), false);
          assert.equal(await s.getClient('web'), null);
          assert.deepEqual(await s.listClients('acme'), []);
        }));
    });

    describe('audit', () => {
      it('lists newest first, filtered by tenant, login and type', () =>
        withStore(async (s) => {
          const t = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m));
          await s.appendAudit(event({ time: t(1) }));
          await s.appendAudit(event({ time: t(3), type: 'factor.pin.set', detail: { attempt: 1, nested: { ok: true } } }));
          await s.appendAudit(event({ time: t(2), login: 'l2', outcome: 'failure' }));
          await s.appendAudit(event({ time: t(4), tenant: 'other' }));
          await s.appendAudit(event({ time: t(5), tenant: null, login: null, ip: null, userAgent: null }));
          const all = await s.listAudit({ tenant: 'acme' });
          assert.deepEqual(all, [
            event({ time: t(3), type: 'factor.pin.set', detail: { attempt: 1, nested: { ok: true } } }),
            event({ time: t(2), login: 'l2', outcome: 'failure' }),
            event({ time: t(1) }),
          ]);
          assert.ok(all[0]!.time instanceof Date);
          assert.deepEqual(
            (await s.listAudit({ tenant: 'acme', login: 'l1' })).map((e) => e.time.getTime()),
            [t(3).getTime(), t(1).getTime()],
          );
          assert.deepEqual(
            (await s.listAudit({ tenant: 'acme', type: 'signin.password' })).map((e) => e.login),
            ['l2', 'l1'],
          );
          assert.deepEqual(
            (await s.listAudit({ tenant: 'acme', login: 'l1', type: 'signin.password' })).map((e) => e.time),
            [t(1)],
          );
          assert.equal((await s.listAudit({ tenant: 'other' })).length, 1);
          assert.deepEqual(await s.listAudit({ tenant: 'none' }), []);
        }));

      it('pages with before and limit', () =>
        withStore(async (s) => {
          const base = Date.UTC(2024, 0, 1);
          for (let i = 0; i < 60; i++) await s.appendAudit(event({ time: new Date(base + i * 1000), detail: { i } }));
          const first = await s.listAudit({ tenant: 'acme' });
          assert.equal(first.length, 50, 'default limit');
          assert.deepEqual(first[0]!.detail, { i: 59 });
          const page = await s.listAudit({ tenant: 'acme', limit: 7 });
          assert.deepEqual(
            page.map((e) => e.detail?.i),
            [59, 58, 57, 56, 55, 54, 53],
          );
          const next = await s.listAudit({ tenant: 'acme', limit: 7, before: page.at(-1)!.time });
          assert.deepEqual(
            next.map((e) => e.detail?.i),
            [52, 51, 50, 49, 48, 47, 46],
          );
          const last = await s.listAudit({ tenant: 'acme', before: new Date(base + 3000) });
          assert.deepEqual(
            last.map((e) => e.detail?.i),
            [2, 1, 0],
          );
          assert.equal((await s.listAudit({ tenant: 'acme', limit: 10_000 })).length, 60);
        }));

      it("filters by one person (their logins, and their email's events without a login) and a date range, in the store", () =>
        withStore(async (s) => {
          const t = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m));
          await s.appendAudit(event({ time: t(1), login: 'jane-emp' }));
          await s.appendAudit(event({ time: t(2), login: 'jane-mgr', type: 'factor.totp.failed' }));
          await s.appendAudit(event({ time: t(3), login: null, outcome: 'failure', detail: { reason: 'invalid_credentials', email: 'jane@acme.test' } }));
          await s.appendAudit(event({ time: t(4), login: null, outcome: 'failure', detail: { reason: 'invalid_credentials', email: 'bob@acme.test' } }));
          await s.appendAudit(event({ time: t(5), login: 'bob-emp' }));
          await s.appendAudit(event({ time: t(6), login: 'other-jane', tenant: 'other', detail: { email: 'jane@acme.test' } }));
          // A login's event that merely names the email in its detail is not the person's (only events without a login match by email).
          await s.appendAudit(event({ time: t(7), login: 'bob-emp', detail: { email: 'jane@acme.test' } }));
          const minutes = (events: AuditEvent[]) => events.map((e) => e.time.getUTCMinutes());
          const jane = { logins: ['jane-emp', 'jane-mgr'], email: 'Jane@Acme.test' };
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'acme', person: jane })), [3, 2, 1]);
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'acme', person: { logins: ['jane-mgr'] } })), [2]);
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'acme', person: { logins: [], email: 'bob@acme.test' } })), [4]);
          assert.deepEqual(await s.listAudit({ tenant: 'acme', person: { logins: [] } }), [], 'nobody named: no event');
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'acme', person: jane, type: 'factor.totp.failed' })), [2]);
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'acme', person: jane, login: 'jane-emp' })), [1]);
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'acme', since: t(2), before: t(5) })), [4, 3, 2], 'since is inclusive, before exclusive');
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'acme', person: jane, since: t(2), limit: 1 })), [3]);
          assert.deepEqual(minutes(await s.listAudit({ tenant: 'other', person: jane })), [], "another tenant's event of the same email stays there");
          for (const bad of [
            { tenant: 'acme', since: new Date('nope') },
            { tenant: 'acme', before: 'yesterday' as unknown as Date },
            { tenant: 'acme', person: { logins: [{ $ne: null } as unknown as string] } },
            { tenant: 'acme', person: { logins: [], email: { $ne: null } as unknown as string } },
            { tenant: 'acme', person: { logins: Array.from({ length: 101 }, (_, i) => `l${i}`) } },
          ]) {
            await assert.rejects(s.listAudit(bad), TypeError, JSON.stringify(bad));
          }
        }));

      it('caps the limit at 500', () =>
        withStore(async (s) => {
          const time = new Date('2024-01-01T00:00:00Z');
          for (let i = 0; i < 501; i++) await s.appendAudit(event({ time, detail: { i } }));
          assert.equal((await s.listAudit({ tenant: 'acme', limit: 1000 })).length, 500);
        }));

      it('deleteAuditBefore deletes the oldest events before a time, at most limit at once, of every tenant', () =>
        withStore(async (s) => {
          const t = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m));
          for (let m = 0; m < 6; m++) await s.appendAudit(event({ time: t(m), detail: { m } }));
          await s.appendAudit(event({ time: t(1), tenant: null, login: null }));
          assert.equal(await s.deleteAuditBefore(t(4), 2), 2);
          assert.deepEqual(
            (await s.listAudit({ tenant: 'acme' })).map((e) => e.detail?.m),
            [5, 4, 3, 2],
          );
          assert.equal(await s.deleteAuditBefore(t(4)), 3, 'the rest before t(4), the tenant-less one too');
          assert.equal(await s.deleteAuditBefore(t(4)), 0);
          assert.deepEqual(
            (await s.listAudit({ tenant: 'acme' })).map((e) => e.detail?.m),
            [5, 4],
          );
          await assert.rejects(s.deleteAuditBefore(new Date('nope')), TypeError);
        }));
    });

    describe('upstream providers and links', () => {
      it("upserts, gets and lists a tenant's upstreams ordered by name, apart from other tenants'", () =>
        withStore(async (s) => {
          await s.upsertUpstream(upstream('zed', 'acme', { name: 'Zed' }));
          await s.upsertUpstream(upstream('corp', 'acme', { name: 'Corp ID' }));
          const globex = await s.upsertUpstream(upstream('corp', 'globex', { name: 'Globex SSO', issuer: 'https://sso.globex.example', scopes: [] }));
          assert.deepEqual(await s.getUpstream('acme', 'corp'), stored(upstream('corp', 'acme', { name: 'Corp ID' }), 'corp'));
          assert.deepEqual(
            await s.getUpstream('globex', 'corp'),
            stored(upstream('corp', 'globex', { name: 'Globex SSO', issuer: 'https://sso.globex.example', scopes: [] }), globex.handle),
          );
          assert.deepEqual(
            (await s.listUpstreams('acme')).map((u) => u.id),
            ['corp', 'zed'],
          );
          assert.deepEqual(
            (await s.listUpstreams('globex')).map((u) => u.name),
            ['Globex SSO'],
          );
          assert.equal(await s.getUpstream('acme', 'nope'), null);
          assert.equal(await s.getUpstream('initech', 'corp'), null);
          assert.deepEqual(await s.listUpstreams('initech'), []);
        }));

      it("upsert replaces an upstream's name, issuer, client and scopes", () =>
        withStore(async (s) => {
          await s.upsertUpstream(upstream('corp'));
          const replaced = upstream('corp', 'acme', { name: 'Corp 2', issuer: 'https://new.example', clientId: 'c2', clientSecret: 'v1.k1.other', scopes: ['email', 'profile'] });
          await s.upsertUpstream(replaced);
          assert.deepEqual(await s.getUpstream('acme', 'corp'), stored(replaced, 'corp'));
          assert.equal((await s.listUpstreams('acme')).length, 1);
        }));

      it("deletes one tenant's upstream once, leaving another tenant's of the same id", () =>
        withStore(async (s) => {
          await s.upsertUpstream(upstream('corp'));
          await s.upsertUpstream(upstream('corp', 'globex'));
          assert.equal(await s.deleteUpstream('acme', 'corp'), true);
          assert.equal(await s.deleteUpstream('acme', 'corp'), false);
          assert.equal(await s.getUpstream('acme', 'corp'), null);
          assert.deepEqual(await s.listUpstreams('acme'), []);
          assert.equal((await s.getUpstream('globex', 'corp'))?.tenant, 'globex');
        }));

      it('refuses upstream fields that are not strings', () =>
        withStore(async (s) => {
          const injection = { $ne: null } as unknown as string;
          await assert.rejects(s.upsertUpstream(upstream('corp', 'acme', { clientSecret: injection })), TypeError);
          await assert.rejects(s.upsertUpstream(upstream('corp', 'acme', { scopes: [injection] })), TypeError);
          await assert.rejects(s.getUpstream('acme', injection), TypeError);
          await assert.rejects(s.findIdentityByUpstream(injection, 'sub'), TypeError);
          await assert.rejects(s.linkUpstream({ issuer: 'https://a.example', subject: injection, identityId: 'x' }), TypeError);
          await assert.rejects(s.listUpstreamLinks(injection), TypeError);
          await assert.rejects(s.unlinkUpstream({ issuer: 'https://a.example', subject: 'sub', identityId: injection }), TypeError);
          assert.deepEqual(await s.listUpstreams('acme'), []);
        }));

      it('links an upstream subject to one identity; the first link wins and survives an email change', () =>
        withStore(async (s) => {
          const ada = await s.upsertIdentity({ email: 'ada@example.com', passwordHash: 'h' });
          const bob = await s.upsertIdentity({ email: 'bob@example.com' });
          const issuer = 'https://idp.example';
          assert.equal(await s.findIdentityByUpstream(issuer, 'sub-1'), null);
          assert.deepEqual(await s.linkUpstream({ issuer, subject: 'sub-1', identityId: ada.id }), { identityId: ada.id, created: true });
          assert.deepEqual(await s.findIdentityByUpstream(issuer, 'sub-1'), ada);
          assert.deepEqual(await s.linkUpstream({ issuer, subject: 'sub-1', identityId: bob.id }), { identityId: ada.id, created: false }, 'an existing link wins');
          assert.deepEqual(await s.linkUpstream({ issuer, subject: 'sub-1', identityId: ada.id }), { identityId: ada.id, created: false }, 'linked already');
          assert.deepEqual(await s.findIdentityByUpstream(issuer, 'sub-1'), ada);
          assert.deepEqual(
            await s.linkUpstream({ issuer: 'https://other.example', subject: 'sub-1', identityId: bob.id }),
            { identityId: bob.id, created: true },
            'the same subject at another issuer is another account',
          );
          assert.deepEqual(await s.findIdentityByUpstream('https://other.example', 'sub-1'), bob);
          assert.equal(await s.findIdentityByUpstream(issuer, 'SUB-1'), null, 'subjects are compared exactly');
          await s.upsertIdentity({ email: 'ada@example.com', passwordHash: 'h2' });
          assert.equal((await s.findIdentityByUpstream(issuer, 'sub-1'))?.passwordHash, 'h2', 'the link points at the identity, not a copy');
        }));

      it('parallel links of one subject to different identities, from two connections, agree on one', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => s.upsertIdentity({ email: `p${i}@example.com` })));
          const winners = await Promise.all(
            ids.map((identity, i) => (i % 2 ? other : s).linkUpstream({ issuer: 'https://idp.example', subject: 'racer', identityId: identity.id })),
          );
          assert.equal(new Set(winners.map((w) => w.identityId)).size, 1);
          assert.equal(winners.filter((w) => w.created).length, 1, 'exactly one call made the link');
          assert.ok(ids.some((i) => i.id === winners[0]!.identityId));
          assert.equal((await s.findIdentityByUpstream('https://idp.example', 'racer'))?.id, winners[0]!.identityId);
        }));

      it("lists an identity's links ordered by issuer and subject, and unlinks only the identity's own link", () =>
        withStore(async (s) => {
          const ada = await s.upsertIdentity({ email: 'ada@example.com' });
          const bob = await s.upsertIdentity({ email: 'bob@example.com' });
          await s.linkUpstream({ issuer: 'https://z.example', subject: 'a1', identityId: ada.id });
          await s.linkUpstream({ issuer: 'https://a.example', subject: 'a2', identityId: ada.id });
          await s.linkUpstream({ issuer: 'https://a.example', subject: 'a1', identityId: ada.id });
          await s.linkUpstream({ issuer: 'https://a.example', subject: 'b1', identityId: bob.id });
          assert.deepEqual(await s.listUpstreamLinks(ada.id), [
            { issuer: 'https://a.example', subject: 'a1', identityId: ada.id },
            { issuer: 'https://a.example', subject: 'a2', identityId: ada.id },
            { issuer: 'https://z.example', subject: 'a1', identityId: ada.id },
          ]);
          assert.equal(await s.unlinkUpstream({ issuer: 'https://a.example', subject: 'b1', identityId: ada.id }), false, "another identity's link stays");
          assert.equal((await s.findIdentityByUpstream('https://a.example', 'b1'))?.id, bob.id);
          assert.equal(await s.unlinkUpstream({ issuer: 'https://a.example', subject: 'a1', identityId: ada.id }), true);
          assert.equal(await s.unlinkUpstream({ issuer: 'https://a.example', subject: 'a1', identityId: ada.id }), false, 'gone already');
          assert.equal(await s.findIdentityByUpstream('https://a.example', 'a1'), null);
          assert.deepEqual(
            (await s.listUpstreamLinks(ada.id)).map((l) => l.subject),
            ['a2', 'a1'],
          );
          assert.deepEqual(await s.listUpstreamLinks('no-such-identity'), []);
          assert.deepEqual(
            await s.linkUpstream({ issuer: 'https://a.example', subject: 'a1', identityId: bob.id }),
            { identityId: bob.id, created: true },
            'once unlinked, the account can be linked again',
          );
        }));

      it('parallel unlinks of one link, from two connections: exactly one removes it', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          const ada = await s.upsertIdentity({ email: 'ada@example.com' });
          const link = { issuer: 'https://idp.example', subject: 'racer', identityId: ada.id };
          await s.linkUpstream(link);
          const removed = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? other : s).unlinkUpstream(link)));
          assert.equal(removed.filter(Boolean).length, 1);
          assert.deepEqual(await s.listUpstreamLinks(ada.id), []);
        }));

      it('returns detached upstreams', () =>
        withStore(async (s) => {
          const input = upstream('corp');
          await s.upsertUpstream(input);
          input.scopes.push('changed');
          const got = (await s.getUpstream('acme', 'corp'))!;
          got.scopes.push('profile');
          got.name = 'changed';
          (await s.listUpstreams('acme'))[0]!.scopes.length = 0;
          assert.deepEqual(await s.getUpstream('acme', 'corp'), stored(upstream('corp'), 'corp'));
          const byHandle = (await s.getUpstreamByHandle('corp'))!;
          byHandle.scopes.push('changed');
          assert.deepEqual(await s.getUpstreamByHandle('corp'), stored(upstream('corp'), 'corp'));
        }));
    });

    describe('upstream handles (the redirect URI, unique across tenants)', () => {
      it('gives a new upstream its id as handle, the same id in another tenant a generated one, and finds each by handle', () =>
        withStore(async (s) => {
          const acme = await s.upsertUpstream(upstream('google'));
          assert.deepEqual(acme, stored(upstream('google'), 'google'), 'upsert returns the upstream as stored');
          const globex = await s.upsertUpstream(upstream('google', 'globex'));
          assert.match(globex.handle, GENERATED('google'));
          const initech = await s.upsertUpstream(upstream('google', 'initech'));
          assert.match(initech.handle, GENERATED('google'));
          assert.notEqual(initech.handle, globex.handle);
          assert.deepEqual(await s.getUpstreamByHandle('google'), acme);
          assert.deepEqual(await s.getUpstreamByHandle(globex.handle), globex);
          assert.deepEqual(await s.getUpstream('globex', 'google'), globex);
          assert.deepEqual(
            (await s.listUpstreams('initech')).map((u) => u.handle),
            [initech.handle],
          );
          assert.equal(await s.getUpstreamByHandle('nope'), null);
          await assert.rejects(s.getUpstreamByHandle({ $ne: null } as unknown as string), TypeError);

          // An id that is another upstream's generated handle gets a generated one of its own.
          const squat = await s.upsertUpstream(upstream(globex.handle, 'umbrella'));
          assert.match(squat.handle, GENERATED(globex.handle));
          assert.equal((await s.getUpstreamByHandle(globex.handle))?.tenant, 'globex');
        }));

      it('keeps the handle through edits and re-imports, whatever handle the write carries', () =>
        withStore(async (s) => {
          await s.upsertUpstream(upstream('google'));
          const globex = await s.upsertUpstream(upstream('google', 'globex'));
          const edited = await s.upsertUpstream({ ...upstream('google', 'globex', { name: 'Renamed', issuer: 'https://other.example' }), handle: 'google' } as UpstreamWrite);
          assert.equal(edited.handle, globex.handle, 'a handle passed along is ignored');
          assert.equal(edited.name, 'Renamed');
          assert.deepEqual(await s.getUpstream('globex', 'google'), edited);
          assert.equal((await s.getUpstreamByHandle('google'))?.tenant, 'acme');
          await s.upsertUpstream(upstream('google'));
          assert.equal((await s.getUpstream('acme', 'google'))?.handle, 'google');
        }));

      it('frees a handle when its upstream is deleted', () =>
        withStore(async (s) => {
          await s.upsertUpstream(upstream('google'));
          await s.deleteUpstream('acme', 'google');
          assert.equal(await s.getUpstreamByHandle('google'), null);
          assert.equal((await s.upsertUpstream(upstream('google', 'globex'))).handle, 'google');
        }));

      it('parallel creates of one id in several tenants, from two connections, get different handles: one the id', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          const tenants = ['t1', 't2', 't3', 't4', 't5', 't6'];
          const created = await Promise.all(tenants.map((t, i) => (i % 2 ? other : s).upsertUpstream(upstream('google', t))));
          const handles = created.map((u) => u.handle);
          assert.equal(new Set(handles).size, tenants.length, `all different: ${handles.join(', ')}`);
          assert.equal(handles.filter((x) => x === 'google').length, 1, 'exactly one keeps the id');
          for (const u of created) {
            assert.ok(u.handle === 'google' || GENERATED('google').test(u.handle), u.handle);
            assert.deepEqual(await s.getUpstreamByHandle(u.handle), u);
            assert.deepEqual(await other.getUpstream(u.tenant, 'google'), u);
          }
        }));

      it('parallel writes of one new upstream store it once, with one handle', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          const written = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? other : s).upsertUpstream(upstream('google', 'acme', { name: `Google ${i}` }))));
          const handle = (await s.getUpstream('acme', 'google'))!.handle;
          assert.equal(handle, 'google');
          assert.deepEqual(new Set(written.map((u) => u.handle)), new Set(['google']));
          assert.equal((await s.listUpstreams('acme')).length, 1);
        }));

      it('migrates upstreams stored before handles: the first of an id keeps it, the others get generated ones, with a warning each', () =>
        withStore(async (_s, h) => {
          const legacy = await h.legacy([upstream('corp'), upstream('google'), upstream('google', 'globex'), upstream('google', 'initech'), upstream('solo', 'globex')]);
          const s = legacy.store;
          assert.equal((await s.getUpstream('acme', 'corp'))?.handle, 'corp');
          assert.equal((await s.getUpstream('acme', 'google'))?.handle, 'google', 'the first keeps its redirect URI');
          assert.equal((await s.getUpstream('globex', 'solo'))?.handle, 'solo');
          const globex = (await s.getUpstream('globex', 'google'))!;
          const initech = (await s.getUpstream('initech', 'google'))!;
          assert.match(globex.handle, GENERATED('google'));
          assert.match(initech.handle, GENERATED('google'));
          assert.notEqual(globex.handle, initech.handle);
          assert.deepEqual(await s.getUpstreamByHandle(globex.handle), globex);
          assert.deepEqual(
            legacy.warnings.map((w) => [w.detail.tenant, w.detail.upstream, w.detail.handle]),
            [
              ['globex', 'google', globex.handle],
              ['initech', 'google', initech.handle],
            ],
          );
          assert.match(legacy.warnings[0]!.message, /redirect URI changed/);
          assert.equal(legacy.warnings[0]!.detail.redirectUri, `{ISSUER}/upstream/${globex.handle}/callback`);

          const again = await legacy.twin();
          assert.deepEqual(again.warnings, [], 'a second start changes nothing');
          assert.equal((await again.store.getUpstream('initech', 'google'))?.handle, initech.handle);
          const next = await again.store.upsertUpstream(upstream('google', 'umbrella'));
          assert.match(next.handle, GENERATED('google'), 'the unique index holds after the migration');
        }));
    });

    describe('account pages: logins across tenants, ended sessions, login grants', () => {
      it("listLoginsForEmailAllTenants finds one email's logins in every tenant, ordered by tenant then id", () =>
        withStore(async (s) => {
          await s.upsertLogin(login('z1', { tenant: 'zeta', email: 'ada@example.com' }));
          await s.upsertLogin(login('l3', { email: 'ADA@example.com' }));
          await s.upsertLogin(login('l1', { email: 'ada@example.com' }));
          await s.upsertLogin(login('l2', { email: 'bob@example.com' }));
          assert.deepEqual(
            (await s.listLoginsForEmailAllTenants(' Ada@Example.com')).map((l) => `${l.tenant}/${l.id}`),
            ['acme/l1', 'acme/l3', 'zeta/z1'],
          );
          assert.deepEqual(await s.listLoginsForEmailAllTenants('nobody@example.com'), []);
          await assert.rejects(s.listLoginsForEmailAllTenants({ $ne: null } as unknown as string), TypeError);
        }));

      it('endLoginSessions only moves the time forward, and is false for an unknown login', () =>
        withStore(async (s, h) => {
          await s.upsertLogin(login('l1'));
          await s.upsertLogin(login('l2'));
          assert.equal(await s.loginSessionsNotBefore('l1'), null);
          const t1 = new Date('2024-05-01T10:00:00.000Z');
          const t0 = new Date('2024-04-01T10:00:00.000Z');
          assert.equal(await s.endLoginSessions('l1', t1), true);
          assert.equal((await s.loginSessionsNotBefore('l1'))?.toISOString(), t1.toISOString());
          assert.equal(await s.endLoginSessions('l1', t0), true);
          assert.equal((await s.loginSessionsNotBefore('l1'))?.toISOString(), t1.toISOString(), 'never moves back');
          const t2 = new Date('2024-06-01T10:00:00.000Z');
          assert.equal(await (await h.twin()).endLoginSessions('l1', t2), true);
          assert.equal((await s.loginSessionsNotBefore('l1'))?.toISOString(), t2.toISOString());
          assert.equal(await s.loginSessionsNotBefore('l2'), null, 'other logins are untouched');
          assert.equal(await s.endLoginSessions('nobody', t1), false);
          assert.equal(await s.loginSessionsNotBefore('nobody'), null);
          await s.upsertLogin(login('l1', { firstName: 'Augusta' }));
          assert.equal((await s.loginSessionsNotBefore('l1'))?.toISOString(), t2.toISOString(), 'an upsert keeps it');
          await assert.rejects(s.endLoginSessions('l1', 'yesterday' as unknown as Date), TypeError);
        }));

      it("takeLoginGrants returns a login's live grants once, without expired ones", () =>
        withStore(async (s) => {
          const soon = new Date(Date.now() + 60_000);
          await s.addLoginGrant('l1', 'g2', soon);
          await s.addLoginGrant('l1', 'g1', soon);
          await s.addLoginGrant('l1', 'g1', soon);
          await s.addLoginGrant('l1', 'old', new Date(Date.now() - 1000));
          await s.addLoginGrant('l2', 'g3', soon);
          assert.deepEqual(await s.takeLoginGrants('l1'), ['g1', 'g2']);
          assert.deepEqual(await s.takeLoginGrants('l1'), [], 'taken once');
          assert.deepEqual(await s.takeLoginGrants('l2'), ['g3']);
          await assert.rejects(s.addLoginGrant('l1', { $ne: null } as unknown as string, soon), TypeError);
        }));
    });

    describe('detached values', () => {
      it('mutating returned objects changes nothing stored', () =>
        withStore(async (s) => {
          await s.upsertTenant(tenant('acme'));
          await s.upsertLogin(login('l1'));
          await s.setFactorState('l1', 'pin', { hash: 'p' });
          await s.upsertClient(client('web'));
          const ident = await s.upsertIdentity({ email: 'a@example.com', passwordHash: 'h' });
          await s.appendAudit(event({ detail: { a: 1 } }));

          const t = (await s.getTenant('acme'))!;
          t.userTypes[0]!.secondFactor = 'pin';
          t.userTypes.push({ id: 'x', name: 'X', secondFactor: 'none' });
          (await s.listTenants())[0]!.name = 'changed';
          const l = (await s.getLogin('l1'))!;
          l.factors.pin!.hash = 'changed';
          l.factors.totp = { secret: 'x' };
          (await s.listLogins('acme'))[0]!.firstName = 'changed';
          const c = (await s.getClient('web'))!;
          c.metadata.client_id = 'changed';
          (c.metadata.redirect_uris as string[]).push('https://evil.example/cb');
          ident.passwordHash = 'changed';
          const a = (await s.listAudit({ tenant: 'acme' }))[0]!;
          a.detail!.a = 2;
          a.time.setTime(0);

          assert.deepEqual(await s.getTenant('acme'), tenant('acme'));
          assert.deepEqual((await s.getLogin('l1'))?.factors, { pin: { hash: 'p' } });
          assert.equal((await s.getLogin('l1'))?.firstName, 'Ada');
          assert.deepEqual(await s.getClient('web'), client('web'));
          assert.equal((await s.getIdentity(ident.id))?.passwordHash, 'h');
          assert.deepEqual(await s.listAudit({ tenant: 'acme' }), [event({ detail: { a: 1 } })]);
        }));

      it('mutating inputs after a call changes nothing stored', () =>
        withStore(async (s) => {
          const t = tenant('acme');
          await s.upsertTenant(t);
          t.userTypes[0]!.name = 'changed';
          const state = { hash: 'p' };
          await s.upsertLogin(login('l1'));
          await s.setFactorState('l1', 'pin', state);
          state.hash = 'changed';
          const time = new Date('2024-01-01T00:00:00Z');
          await s.appendAudit(event({ time }));
          time.setTime(0);
          assert.deepEqual(await s.getTenant('acme'), tenant('acme'));
          assert.deepEqual((await s.getLogin('l1'))?.factors, { pin: { hash: 'p' } });
          assert.deepEqual((await s.listAudit({ tenant: 'acme' }))[0]?.time, new Date('2024-01-01T00:00:00Z'));
        }));
    });
    describe('passkeys', () => {
      const key = (id: string, over: Partial<Passkey> = {}): Passkey => ({
        id,
        loginId: 'l1',
        tenant: 'acme',
        userHandle: 'aGFuZGxlLW9mLWwx',
        name: `Key ${id}`,
        publicKey: new Uint8Array([0xa5, 1, 2, 3, 0, 255]),
        counter: 0,
        transports: ['internal'],
        deviceType: 'singleDevice',
        backedUp: false,
        createdAt: new Date('2024-01-01T00:00:00Z'),
        lastUsedAt: null,
        ...over,
      });
      const use = (counter: number, newCounter: number, over: Partial<PasskeyUse> = {}): PasskeyUse => ({
        counter,
        newCounter,
        backedUp: false,
        usedAt: new Date('2024-02-01T00:00:00Z'),
        ...over,
      });

      it("adds, gets by credential id (any login) and lists a login's, oldest first; the key comes back as a plain Uint8Array", () =>
        withStore(async (s, h) => {
          assert.equal(await s.addPasskey(key('Yg', { createdAt: new Date('2024-01-02T00:00:00Z'), deviceType: 'multiDevice', backedUp: true })), true);
          assert.equal(await s.addPasskey(key('YQ')), true);
          assert.equal(await s.addPasskey(key('Yw', { loginId: 'l2', tenant: 'zeta', userHandle: 'b3RoZXI' })), true);
          const other = await h.twin();
          const got = await other.getPasskey('YQ');
          assert.deepEqual(got, key('YQ'));
          assert.equal(Object.getPrototypeOf(got!.publicKey), Uint8Array.prototype);
          assert.deepEqual(
            (await other.listPasskeys('l1')).map((p) => [p.id, p.deviceType, p.backedUp]),
            [
              ['YQ', 'singleDevice', false],
              ['Yg', 'multiDevice', true],
            ],
          );
          assert.equal((await s.getPasskey('Yw'))?.loginId, 'l2');
          assert.equal(await s.getPasskey('bm9uZQ'), null);
          assert.deepEqual(await s.listPasskeys('nobody'), []);
        }));

      it('a credential id is registered once, for any login; parallel adds: one is true', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? s : other).addPasskey(key('YQ', { loginId: `l${i}`, name: `n${i}` }))));
          assert.equal(results.filter(Boolean).length, 1);
          const winner = results.indexOf(true);
          assert.equal((await s.getPasskey('YQ'))?.loginId, `l${winner}`);
          assert.equal(await s.addPasskey(key('YQ')), false);
        }));

      it("renames and deletes only the login's own credential; of parallel deletes one is true", () =>
        withStore(async (s, h) => {
          await s.addPasskey(key('YQ'));
          await s.addPasskey(key('Yg', { loginId: 'l2' }));
          assert.equal(await s.renamePasskey('l1', 'YQ', 'Work laptop'), true);
          assert.equal((await s.getPasskey('YQ'))?.name, 'Work laptop');
          assert.equal(await s.renamePasskey('l1', 'Yg', 'stolen'), false);
          assert.equal((await s.getPasskey('Yg'))?.name, 'Key Yg');
          assert.equal(await s.deletePasskey('l1', 'Yg'), false);
          assert.notEqual(await s.getPasskey('Yg'), null);
          const other = await h.twin();
          const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? s : other).deletePasskey('l1', 'YQ')));
          assert.equal(results.filter(Boolean).length, 1);
          assert.equal(await s.getPasskey('YQ'), null);
        }));

      it("deletePasskeys removes all of one login's; deleteLogin removes them too", () =>
        withStore(async (s) => {
          await s.upsertLogin(login('l1'));
          await s.upsertLogin(login('l2'));
          await s.addPasskey(key('YQ'));
          await s.addPasskey(key('Yg'));
          await s.addPasskey(key('Yw', { loginId: 'l2' }));
          assert.equal(await s.deletePasskeys('l1'), 2);
          assert.deepEqual(await s.listPasskeys('l1'), []);
          assert.equal(await s.deletePasskeys('l1'), 0);
          assert.equal(await s.deleteLogin('l2'), true);
          assert.equal(await s.getPasskey('Yw'), null);
        }));

      it('recordPasskeyUse moves the count forward only from the stored count', () =>
        withStore(async (s) => {
          await s.addPasskey(key('YQ', { counter: 3 }));
          assert.equal(await s.recordPasskeyUse('YQ', use(3, 3)), false, 'the same count again');
          assert.equal(await s.recordPasskeyUse('YQ', use(3, 2)), false, 'a count going back');
          assert.equal(await s.recordPasskeyUse('YQ', use(2, 5)), false, 'verified against a stale count');
          assert.equal(await s.recordPasskeyUse('YQ', use(3, 4, { backedUp: true })), true);
          const p = await s.getPasskey('YQ');
          assert.equal(p?.counter, 4);
          assert.equal(p?.backedUp, true);
          assert.deepEqual(p?.lastUsedAt, new Date('2024-02-01T00:00:00Z'));
          assert.equal(await s.recordPasskeyUse('YQ', use(3, 4)), false, 'a replay of that use');
          assert.equal(await s.recordPasskeyUse('bm9uZQ', use(0, 1)), false);
          await s.addPasskey(key('Yg'));
          assert.equal(await s.recordPasskeyUse('Yg', use(0, 0)), true, 'an authenticator without a count');
          assert.equal(await s.recordPasskeyUse('Yg', use(0, 0)), true);
        }));

      it("a rename at the moment of a sign-in never undoes the sign-in's count, and the passkey keeps working", () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          for (let round = 0; round < 20; round++) {
            const id = `cmFjZQ${round}`;
            await s.addPasskey(key(id, { counter: 10 }));
            const [used] = await Promise.all([s.recordPasskeyUse(id, use(10, 11)), other.renamePasskey('l1', id, `Renamed ${round}`)]);
            assert.equal(used, true);
            const p = (await s.getPasskey(id))!;
            assert.deepEqual([p.counter, p.name], [11, `Renamed ${round}`], `round ${round}`);
            assert.equal(await s.recordPasskeyUse(id, use(11, 12)), true, `the next sign-in, round ${round}`);
          }
        }));

      it('parallel uses verified against one count, over two connections: exactly one is recorded', () =>
        withStore(async (s, h) => {
          const other = await h.twin();
          await s.addPasskey(key('YQ', { counter: 7 }));
          // Each round starts from the count the last one stored (which of the parallel uses won is the race's to decide).
          let from = 7;
          for (const step of [1, 4]) {
            const to = from + step;
            const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? s : other).recordPasskeyUse('YQ', use(from, to + (i % 3)))));
            assert.equal(results.filter(Boolean).length, 1, `from ${from}`);
            const stored = (await s.getPasskey('YQ'))!.counter;
            assert.ok(stored >= to && stored <= to + 2);
            assert.equal(await s.recordPasskeyUse('YQ', use(stored, from + 1)), false, 'a count that does not move on is refused');
            from = stored;
          }
        }));

      it('refuses bad values before they reach a query', () =>
        withStore(async (s) => {
          const injection = { $ne: null } as unknown as string;
          await assert.rejects(s.getPasskey(injection), TypeError);
          await assert.rejects(s.listPasskeys(injection), TypeError);
          await assert.rejects(s.deletePasskey('l1', injection), TypeError);
          await assert.rejects(s.deletePasskeys(injection), TypeError);
          await assert.rejects(s.renamePasskey('l1', 'YQ', injection), TypeError);
          await assert.rejects(s.getPasskey('not base64url!'), TypeError);
          await assert.rejects(s.addPasskey(key('YQ', { publicKey: 'key' as unknown as Uint8Array })), TypeError);
          await assert.rejects(s.addPasskey(key('YQ', { deviceType: 'both' as never })), TypeError);
          await assert.rejects(s.addPasskey(key('YQ', { counter: -1 })), TypeError);
          await assert.rejects(s.recordPasskeyUse('YQ', use(0, 2 ** 32)), TypeError);
          await assert.rejects(s.recordPasskeyUse('YQ', { ...use(0, 1), usedAt: 'now' as unknown as Date }), TypeError);
        }));

      it('values returned are detached from the store', () =>
        withStore(async (s) => {
          const input = key('YQ');
          await s.addPasskey(input);
          input.publicKey[0] = 0;
          input.name = 'changed';
          const got = (await s.getPasskey('YQ'))!;
          got.publicKey[1] = 9;
          got.transports.push('usb');
          assert.deepEqual(await s.getPasskey('YQ'), key('YQ'));
        }));
    });
  });
}

const sqliteDir = tempDir('lk-accounts-');
let sqliteCount = 0;
after(() => sqliteDir.remove());

function openSqlite(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  return db;
}

accountStoreContract('sqlite', async () => {
  const path = join(sqliteDir.path, `accounts-${++sqliteCount}.db`);
  const dbs = [openSqlite(path)];
  const stores: AccountStore[] = [createSqliteAccountStore(dbs[0]!)];
  return {
    store: stores[0]!,
    async twin() {
      const db = openSqlite(path);
      dbs.push(db);
      const store = createSqliteAccountStore(db);
      stores.push(store);
      await store.init();
      return store;
    },
    async legacy(upstreams) {
      const legacyPath = join(sqliteDir.path, `accounts-${++sqliteCount}.db`);
      const seed = openSqlite(legacyPath);
      // The upstreams table as the version before handles made it.
      seed.exec(`CREATE TABLE upstreams (tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, issuer TEXT NOT NULL, client_id TEXT NOT NULL,
        client_secret TEXT NOT NULL, scopes TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (tenant, id))`);
      const insert = seed.prepare('INSERT INTO upstreams (tenant, id, name, issuer, client_id, client_secret, scopes) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const u of upstreams) insert.run(u.tenant, u.id, u.name, u.issuer, u.clientId, u.clientSecret, JSON.stringify(u.scopes));
      dbs.push(seed);
      const open = async () => {
        const warnings: Warning[] = [];
        const db = openSqlite(legacyPath);
        dbs.push(db);
        const store = createSqliteAccountStore(db, { log: warningsLog(warnings) });
        stores.push(store);
        await store.init();
        return { store, warnings };
      };
      return { ...(await open()), twin: open };
    },
    async cleanup() {
      for (const store of stores) await store.close();
      for (const db of dbs) db.close();
    },
  };
});

let mongo: TestMongo;
let mongoCount = 0;
before(async () => {
  mongo = await startMongo();
});
after(async () => {
  await mongo?.stop();
});

/**
 * MongoDB stores of a fresh database, each (the store and its twins) on a
 * connection of its own; `behind` puts each in front of what an app process
 * adds (the account cache), and `cleanup` is that layer's own.
 */
function mongoHarness(behind: (store: AccountStore) => AccountStore = (store) => store, cleanup = async () => {}) {
  return async (): Promise<Harness> => {
    const dbName = `${mongo.dbName}_${++mongoCount}`;
    const legacyNames: string[] = [];
    const clients: MongoClient[] = [];
    const connect = async (name = dbName, warnings?: Warning[]) => {
      const c = new MongoClient(mongo.uri);
      await c.connect();
      clients.push(c);
      return behind(createMongoAccountStore(c.db(name), warnings ? { log: warningsLog(warnings) } : {}));
    };
    const store = await connect();
    return {
      store,
      async twin() {
        const other = await connect();
        await other.init();
        return other;
      },
      async legacy(upstreams) {
        const name = `${mongo.dbName}_${++mongoCount}`;
        legacyNames.push(name);
        // The documents as the version before handles wrote them.
        await clients[0]!
          .db(name)
          .collection('upstreams')
          .insertMany(upstreams.map((u) => ({ _id: JSON.stringify([u.tenant, u.id]) as never, ...u, scopes: [...u.scopes] })));
        const open = async () => {
          const warnings: Warning[] = [];
          const legacyStore = await connect(name, warnings);
          await legacyStore.init();
          return { store: legacyStore, warnings };
        };
        return { ...(await open()), twin: open };
      },
      async cleanup() {
        await store.close();
        for (const name of legacyNames) await clients[0]!.db(name).dropDatabase();
        await clients[0]!.db(dbName).dropDatabase();
        for (const c of clients) await c.close();
        await cleanup();
      },
    };
  };
}

accountStoreContract('mongodb', mongoHarness());

// The production set-up's account store: MongoDB behind the account cache, its
// version tokens in Redis. The twin is another app process: its own MongoDB
// connection, Redis connection and cache, so every twin test also checks that
// a write through one process is seen by the other's cache at once.
accountStoreContract('mongodb behind the account cache', () => {
  const prefix = testRedisPrefix();
  const redises: Redis[] = [];
  const cached = (store: AccountStore) => {
    const redis = new Redis(testRedisUrl());
    redises.push(redis);
    return cachedAccountStore(store, new ReadCache(createRedisCacheVersions(redis, prefix), { ttlMs: 60_000, maxEntries: 1000 }));
  };
  return mongoHarness(cached, async () => {
    const keys = await redises[0]!.keys(`${prefix}*`);
    if (keys.length) await redises[0]!.del(...keys);
    for (const r of redises) r.disconnect();
  })();
});
