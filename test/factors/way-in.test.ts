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
const codes = (unused: number) => ({
  codes: Array.from({ length: 10 }, (_, i) => ({ hash: `h${i}`, usedAt: i < unused ? null : '2026-01-02T00:00:00.000Z' })),
  createdAt: '2026-01-01T00:00:00.000Z',
});
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
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey, recovery: codes(3) }), 'passkey'), 'method');
    assert.equal(registry.wayInWithout(tenant, login('doctor', { passkey, totp: app }), 'passkey'), null, 'a weaker factor does not reach the level');
  });

  it('a weaker user type: another factor reaching its level, or a type that needs none', () => {
    assert.equal(registry.wayInWithout(tenant, login('open', { passkey }), 'passkey'), 'factor');
    assert.equal(registry.wayInWithout(tenant, login('manager', { passkey, totp: app }), 'passkey'), 'factor');
    assert.equal(registry.wayInWithout(tenant, login('manager', { passkey }), 'passkey'), null, 'the app would be linked again with the password alone');
    assert.equal(registry.wayInWithout(tenant, login('manager', { passkey, recovery: codes(1) }), 'passkey'), 'method');
    assert.equal(registry.wayInWithout(tenant, login('nurse', { passkey, pin: { hash: 'x' } }), 'passkey'), 'factor');
  });
});
