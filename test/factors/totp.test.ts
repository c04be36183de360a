// The authenticator-app code check (RFC 6238 / RFC 4226) and the labels apps
// file secrets under ("Authenticator labels": unique per tenant).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TOTP, codeAt, matchStep, newSecret, stepAt } from '../../src/factors/totp/code.ts';
import { authenticatorAccount, otpauthUri } from '../../src/factors/totp/label.ts';

// RFC 6238 appendix B, SHA1 column: the 20-byte ASCII secret "12345678901234567890".
const RFC_SECRET = new TextEncoder().encode('12345678901234567890');
const RFC_VECTORS: [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('TOTP codes', () => {
  it('generates the 8-digit SHA1 test vectors of RFC 6238', async () => {
    for (const [t, expected] of RFC_VECTORS) assert.equal(await codeAt(RFC_SECRET, t, 8), expected, `T=${t}`);
  });

  it("accepts each vector's 6-digit code at its time and reports its time step", async () => {
    for (const [t, eight] of RFC_VECTORS) {
      const six = eight.slice(-6);
      assert.equal(await codeAt(RFC_SECRET, t), six, `6 digits at T=${t}`);
      assert.equal(await matchStep(RFC_SECRET, six, t * 1000), Math.floor(t / 30), `T=${t}`);
    }
  });

  it('tolerates one step of clock drift either way, not two', async () => {
    const t = 1111111109;
    const code = '081804';
    const step = Math.floor(t / 30);
    assert.equal(await matchStep(RFC_SECRET, code, (t - 30) * 1000), step);
    assert.equal(await matchStep(RFC_SECRET, code, (t + 30) * 1000), step);
    assert.equal(await matchStep(RFC_SECRET, code, (t - 60) * 1000), null);
    assert.equal(await matchStep(RFC_SECRET, code, (t + 60) * 1000), null);
  });

  it('refuses wrong codes and anything that is not 6 digits, without throwing', async () => {
    const t = 1111111109 * 1000;
    for (const bad of ['081805', '', '81804', '0818045', 'abcdef', '08180a', ' 081804', '08 1804', '１２３４５６']) {
      assert.equal(await matchStep(RFC_SECRET, bad, t), null, JSON.stringify(bad));
    }
  });

  it('makes 160-bit base32 secrets that round-trip through a code check', async () => {
    const secret = newSecret();
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.notEqual(newSecret(), secret);
    const now = Date.now();
    const code = await codeAt(secret, Math.floor(now / 1000));
    assert.equal(await matchStep(secret, code, now), stepAt(now));
    assert.deepEqual([TOTP.algorithm, TOTP.digits, TOTP.periodSeconds, TOTP.secretBytes], ['sha1', 6, 30, 20]);
  });
});

describe('authenticator labels', () => {
  const types = [
    { id: 'employee', name: 'Employee' },
    { id: 'manager', name: 'Manager' },
    { id: 'manager-2', name: 'Manager' },
  ];

  it('names a login by email and user type', () => {
    const login = { id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager' };
    const siblings = [{ id: 'jane-emp', email: 'jane@acme.test', userType: 'employee' }, login];
    assert.equal(authenticatorAccount(login, siblings, types), 'jane@acme.test (Manager)');
    assert.equal(authenticatorAccount(siblings[0]!, siblings, types), 'jane@acme.test (Employee)');
  });

  it('gives two logins of one person with the same email and type name different labels', () => {
    const a = { id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager' };
    const b = { id: 'jane-mgr-north', email: 'jane@acme.test', userType: 'manager' };
    const c = { id: 'jane-mgr-south', email: 'jane@acme.test', userType: 'manager-2' };
    const all = [a, b, c];
    const labels = all.map((l) => authenticatorAccount(l, all, types));
    assert.equal(new Set(labels).size, 3, labels.join(' | '));
    assert.equal(labels[0], 'jane@acme.test (Manager, jane-mgr)');
    for (const [i, l] of all.entries()) assert.ok(labels[i]!.includes(l.id));
  });

  it('stays unique when a type name imitates a disambiguated label', () => {
    const tricky = [...types, { id: 'odd', name: 'Manager, jane-mgr' }];
    const all = [
      { id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager' },
      { id: 'jane-mgr-2', email: 'jane@acme.test', userType: 'manager' },
      { id: 'jane-odd', email: 'jane@acme.test', userType: 'odd' },
    ];
    const labels = all.map((l) => authenticatorAccount(l, all, tricky));
    assert.equal(new Set(labels).size, 3, labels.join(' | '));
  });

  it('ignores logins of other emails, and is the same whatever the list order', () => {
    const login = { id: 'jane-mgr', email: 'jane@acme.test', userType: 'manager' };
    const other = { id: 'bob-mgr', email: 'bob@acme.test', userType: 'manager' };
    assert.equal(authenticatorAccount(login, [other, login], types), 'jane@acme.test (Manager)');
    const twin = { id: 'jane-mgr-2', email: 'jane@acme.test', userType: 'manager' };
    assert.equal(authenticatorAccount(login, [twin, login], types), authenticatorAccount(login, [login, twin], types));
  });

  it("builds the otpauth URI of Google's Key Uri Format, encoding issuer and account", () => {
    const uri = otpauthUri({ issuer: 'Acme: Care & Co', account: 'jane@acme.test (Manager)', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' });
    assert.equal(
      uri,
      'otpauth://totp/Acme%3A%20Care%20%26%20Co:jane%40acme.test%20(Manager)?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme%3A%20Care%20%26%20Co&algorithm=SHA1&digits=6&period=30',
    );
    const url = new URL(uri);
    assert.equal(url.protocol, 'otpauth:');
    const [issuer, account] = decodeURIComponent(url.pathname.replace(/^\/\/totp\//, '').replace(/^\//, '')).split(/:(?=[^:]*$)/);
    assert.equal(url.searchParams.get('issuer'), 'Acme: Care & Co');
    assert.equal(account, 'jane@acme.test (Manager)');
    assert.ok(issuer!.endsWith('Acme: Care & Co'));
  });
});
