// What else lets a login in without one of its factors (the registry's
// `wayInWithout`): the rule that keeps a login's last passkey while nothing
// else would let the person in at their user type's level, and lets it go
// while recovery codes or another factor reaching that level remain.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../config/index.ts';
import { createFactorRegistry } from '../../src/factors/registry.ts';
import type { FactorBaseServices } from '../../src/factors/types.ts';
import type { Login, Tenant } from '../../src/storage/accounts/port.ts';

const tenant: Tenant = {
  id: 'acme',
  name: 'Acme Care',
  owners: [],
  userTypes: [
    { id: 'open', name: 'Open', secondFactor: 'none' },
    { id: 'nurse', name: 'Nurse', secondFactor: 'pin' },
    { id: 'manager', name: 'Manager', secondFactor: 'totp' },
    { id: 'doctor', name: 'Doctor', secondFactor: 'passkey' },
  ],
} as unknown as Tenant;

// Nothing here reads a store: the rule looks only at the login's factor state.
const registry = createFactorRegistry({ config: loadConfig({ DEMO: 'false', LOG_LEVEL: 'silent' }), now: Date.now } as unknown as FactorBaseServices);

const passkey = { userHandle: 'A'.repeat(43), enrolledAt: '2026-01-01T00:00:00.000Z' };
const app = { secret: 'sealed', account: 'x', linkedAt: '2026-01-01T00:00:00.000Z', step: 1 };
/** A set of recovery codes with `unused` left, made under `level` (none: stored before levels were recorded). */
const codes = (unused: number, level?: string) => ({
  codes: Array.from({ length: 10 }, (_, i) => ({ hash: `h${i}`, usedAt: i < unused ? null : '2026-01-02T00:00:00.000Z' })),
  createdAt: '2026-01-01T00:00:00.000Z',
  ...(level ? { level } : {}),
});
const TOTP = 'urn:latchkey:acr:totp';
const PASSKEY = 'urn:latchkey:acr:passkey';
const login = (userType: string, factors: Login['factors']): Login => ({
  id: 'l',
  tenant: 'acme',
  email: 'p@acme.test',
  userType,
  firstName: 'P',
  lastName: 'D',
  disabled: false,
  factors,
});

describe('a way in without a factor', () => {
  it('a passkey user type: only unused recovery codes stand in for the last passkey', () => {
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey }), 'passkey'), null);
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey, recovery: codes(0) }), 'passkey'), null, 'every code used');
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey, recovery: codes(3, PASSKEY) }), 'passkey'), 'method');
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey, recovery: codes(3) }), 'passkey'), 'method', "a set without a level: the user type's own factor");
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey, recovery: codes(3, TOTP) }), 'passkey'), null, 'codes made after the app never stand in for a passkey');
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey, totp: app }), 'passkey'), null, 'a weaker factor does not reach the level');
  });

  it('a weaker user type: another factor reaching its level, or a type that needs none', () => {
    assert.equal(registry.wayInWithout(tenant, login('open', { passkey }), 'passkey'), 'factor');
    assert.equal(registry.wayInWithout(tenant, login('manager', { passkey, totp: app }), 'passkey'), 'factor');
    assert.equal(registry.wayInWithout(tenant, login('manager', { passkey }), 'passkey'), null, 'the app would be linked again with the password alone');
    assert.equal(registry.wayInWithout(tenant, login('manager', { passkey, recovery: codes(1, PASSKEY) }), 'passkey'), 'method');
    assert.equal(registry.wayInWithout(tenant, login('manager', { passkey, recovery: codes(1, TOTP) }), 'passkey'), null, 'codes made after the app do not reach the passkey page');
    assert.equal(
      registry.wayInWithout(tenant, login('manager', { passkey, recovery: codes(1) }), 'passkey'),
      null,
      "a set without a level stands in for the app only, the user type's own",
    );
    assert.equal(registry.wayInWithout(tenant, login('nurse', { passkey, pin: { hash: 'x' } }), 'passkey'), 'factor');
  });
});

describe('what stands in for a factor', () => {
  const offered = (userType: string, factors: Login['factors'], factor: string) => registry.offered(tenant, login(userType, factors), registry.get(factor)).map((m) => m.id);

  it('a set stands in for the factor it was made under and weaker ones, never a stronger one', () => {
    assert.deepEqual(offered('manager', { totp: app, passkey, recovery: codes(5, TOTP) }, 'totp'), ['recovery']);
    assert.deepEqual(offered('manager', { totp: app, passkey, recovery: codes(5, TOTP) }, 'passkey'), []);
    assert.deepEqual(offered('manager', { totp: app, passkey, recovery: codes(5, PASSKEY) }, 'passkey'), ['recovery']);
    assert.deepEqual(offered('manager', { totp: app, passkey, recovery: codes(5, PASSKEY) }, 'totp'), ['recovery']);
    assert.deepEqual(offered('manager', { totp: app, recovery: codes(0, TOTP) }, 'totp'), [], 'none left');
    assert.deepEqual(offered('manager', { totp: app, recovery: codes(5, 'urn:example:unknown') }, 'totp'), [], 'a level Latchkey does not issue: nothing');
  });

  it("a set without a level stands in for the user type's own factor only", () => {
    assert.deepEqual(offered('manager', { totp: app, passkey, recovery: codes(5) }, 'totp'), ['recovery']);
    assert.deepEqual(offered('manager', { totp: app, passkey, recovery: codes(5) }, 'passkey'), []);
    assert.deepEqual(offered('doctor', { totp: app, passkey, recovery: codes(5) }, 'passkey'), ['recovery']);
    assert.deepEqual(offered('doctor', { totp: app, passkey, recovery: codes(5) }, 'totp'), []);
    assert.deepEqual(offered('open', { totp: app, recovery: codes(5) }, 'totp'), [], 'a user type whose factor lists no codes');
  });
});
