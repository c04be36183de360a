// Configuration: defaults, validation with the variable named, development
// keys kept in DATA_DIR, and production refusing to run without real keys.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { tempDir } from '../support/tmp.ts';

describe('configuration', () => {
  const dir = tempDir('lk-config-');
  after(() => dir.remove());

  it('uses the documented defaults', () => {
    const config = loadConfig({ DATA_DIR: dir.path });
    assert.equal(config.port, 3000);
    assert.equal(config.issuer, 'http://localhost:3000');
    assert.equal(config.mongodbUri, undefined);
    assert.equal(config.redisUrl, undefined);
    assert.deepEqual(config.argon2, { memoryCost: 19456, timeCost: 2, parallelism: 1 });
    assert.equal(config.lock.threshold, 5);
    assert.equal(config.lock.baseLockMs, 60_000);
    assert.equal(config.lock.maxLockMs, 3_600_000);
    assert.equal(config.pin.minLength, 6);
  });

  it('derives the issuer from PORT and strips a trailing slash from ISSUER', () => {
    assert.equal(loadConfig({ DATA_DIR: dir.path, PORT: '4100' }).issuer, 'http://localhost:4100');
    assert.equal(loadConfig({ DATA_DIR: dir.path, ISSUER: 'https://id.example.com/' }).issuer, 'https://id.example.com');
  });

  it('generates development keys once and keeps them in DATA_DIR', () => {
    const first = loadConfig({ DATA_DIR: dir.path });
    const path = join(dir.path, 'dev-keys.json');
    assert.ok(existsSync(path));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const second = loadConfig({ DATA_DIR: dir.path });
    assert.equal(first.keys.development, true);
    assert.deepEqual(second.keys.cookieKeys, first.keys.cookieKeys);
    assert.equal(second.keys.pepper, first.keys.pepper);
    assert.equal(first.keys.encryptionKeys[0]!.key.length, 32);
    assert.ok(first.keys.jwks.keys.every((k) => typeof k.d === 'string'));
  });

  it('names each invalid variable', () => {
    assert.throws(
      () => loadConfig({ DATA_DIR: dir.path, PORT: 'eighty', ISSUER: 'not a url', MONGODB_URI: 'postgres://x', ARGON2_MEMORY_KIB: '1024' }),
      (err: Error) => err instanceof ConfigError && ['PORT', 'ISSUER', 'MONGODB_URI', 'ARGON2_MEMORY_KIB'].every((v) => err.message.includes(v)),
    );
    assert.throws(() => loadConfig({ DATA_DIR: dir.path, LATCHKEY_ENCRYPTION_KEYS: 'k1:c2hvcnQ=' }), /LATCHKEY_ENCRYPTION_KEYS/);
    assert.throws(() => loadConfig({ DATA_DIR: dir.path, LATCHKEY_JWKS: '{"keys":[{"kty":"EC"}]}' }), /LATCHKEY_JWKS/);
    assert.throws(() => loadConfig({ DATA_DIR: dir.path, LOCK_BASE_MS: '5000', LOCK_MAX_MS: '1000' }), /LOCK_MAX_MS/);
  });

  it('freezes after 100 consecutive failures by default; LOCK_MAX_FAILURES may lower it, never raise it past 100', () => {
    assert.equal(loadConfig({ DATA_DIR: dir.path }).lock.maxFailures, 100);
    assert.equal(loadConfig({ DATA_DIR: dir.path, LOCK_MAX_FAILURES: '20' }).lock.maxFailures, 20);
    for (const bad of ['101', '0', 'ten', '2.5']) {
      assert.throws(
        () => loadConfig({ DATA_DIR: dir.path, LOCK_MAX_FAILURES: bad }),
        (err: Error) => err instanceof ConfigError && /LOCK_MAX_FAILURES/.test(err.message),
        bad,
      );
    }
    // The freeze cannot come before the first lock.
    assert.throws(() => loadConfig({ DATA_DIR: dir.path, LOCK_THRESHOLD: '10', LOCK_MAX_FAILURES: '9' }), /LOCK_MAX_FAILURES: must be at least LOCK_THRESHOLD/);
  });

  it("drops upstream links on a password change and an owner's reset by default; UPSTREAM_UNLINK_ON chooses", () => {
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path }).upstream.unlinkOn, ['password', 'reset']);
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path, UPSTREAM_UNLINK_ON: 'none' }).upstream.unlinkOn, []);
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path, UPSTREAM_UNLINK_ON: ' reset ' }).upstream.unlinkOn, ['reset']);
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path, UPSTREAM_UNLINK_ON: 'password,reset,password' }).upstream.unlinkOn, ['password', 'reset']);
    for (const bad of ['email', 'password;reset', 'PASSWORD']) {
      assert.throws(
        () => loadConfig({ DATA_DIR: dir.path, UPSTREAM_UNLINK_ON: bad }),
        (err: Error) => err instanceof ConfigError && /UPSTREAM_UNLINK_ON/.test(err.message),
        bad,
      );
    }
  });

  it('keeps audit events 365 days by default; AUDIT_RETENTION_DAYS sets it', () => {
    assert.equal(loadConfig({ DATA_DIR: dir.path }).audit.retentionDays, 365);
    assert.equal(loadConfig({ DATA_DIR: dir.path, AUDIT_RETENTION_DAYS: '30' }).audit.retentionDays, 30);
    for (const bad of ['0', '-1', 'a year', '1.5']) {
      assert.throws(
        () => loadConfig({ DATA_DIR: dir.path, AUDIT_RETENTION_DAYS: bad }),
        (err: Error) => err instanceof ConfigError && /AUDIT_RETENTION_DAYS/.test(err.message),
        bad,
      );
    }
  });

  it('takes TRUST_PROXY as a number of proxy hops or a list of proxy ranges, and refuses true with what to set instead', () => {
    assert.equal(loadConfig({ DATA_DIR: dir.path }).trustProxy, false);
    assert.equal(loadConfig({ DATA_DIR: dir.path, TRUST_PROXY: 'false' }).trustProxy, false);
    assert.equal(loadConfig({ DATA_DIR: dir.path, TRUST_PROXY: '0' }).trustProxy, false);
    assert.equal(loadConfig({ DATA_DIR: dir.path, TRUST_PROXY: '2' }).trustProxy, 2);
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path, TRUST_PROXY: '10.0.0.0/8, fd00::/8,192.0.2.7' }).trustProxy, ['10.0.0.0/8', 'fd00::/8', '192.0.2.7']);
    for (const yes of ['true', 'yes', 'TRUE']) {
      assert.throws(
        () => loadConfig({ DATA_DIR: dir.path, TRUST_PROXY: yes }),
        (err: Error) =>
          err instanceof ConfigError && /TRUST_PROXY: .*set the number of proxies in front of Latchkey \(e\.g\. TRUST_PROXY=1\) or their address ranges/.test(err.message),
        yes,
      );
    }
    for (const bad of ['10.0.0.0/33', 'proxy.example', '11', '10.0.0.0/8,nope']) {
      assert.throws(() => loadConfig({ DATA_DIR: dir.path, TRUST_PROXY: bad }), /TRUST_PROXY/, bad);
    }
  });

  it('opens no special-use address to outgoing requests in production or tests, loopback in development; OUTBOUND_ALLOW sets them', () => {
    const keys = {
      LATCHKEY_JWKS: JSON.stringify(loadConfig({ DATA_DIR: dir.path }).keys.jwks),
      LATCHKEY_COOKIE_KEYS: randomBytes(32).toString('base64url'),
      LATCHKEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      LATCHKEY_PEPPER: randomBytes(32).toString('base64url'),
    };
    const production = { DATA_DIR: dir.path, NODE_ENV: 'production', MAIL: 'off', ISSUER: 'https://id.example.com', ...keys };
    assert.deepEqual(loadConfig(production).outboundAllow, [], 'production opens nothing');
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path, NODE_ENV: 'test' }).outboundAllow, []);
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path }).outboundAllow, ['127.0.0.0/8', '::1'], 'the trial reaches a receiver beside it');
    assert.deepEqual(loadConfig({ ...production, OUTBOUND_ALLOW: '10.1.2.0/24, fd00:1::/64,Hooks.Internal' }).outboundAllow, ['10.1.2.0/24', 'fd00:1::/64', 'hooks.internal']);
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path, OUTBOUND_ALLOW: 'none' }).outboundAllow, []);
    for (const bad of ['10.0.0.0/33', 'http://hooks.internal', 'under_score.example', ',', 'none,10.0.0.0/8']) {
      assert.throws(() => loadConfig({ DATA_DIR: dir.path, OUTBOUND_ALLOW: bad }), /OUTBOUND_ALLOW/, bad);
    }
  });

  it('counts 100 password failures per address in 15 minutes by default; ADDRESS_MAX_FAILURES and ADDRESS_WINDOW_SECONDS change it', () => {
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path }).addressLimit, { maxFailures: 100, windowMs: 900_000 });
    assert.deepEqual(loadConfig({ DATA_DIR: dir.path, ADDRESS_MAX_FAILURES: '500', ADDRESS_WINDOW_SECONDS: '3600' }).addressLimit, { maxFailures: 500, windowMs: 3_600_000 });
    assert.throws(() => loadConfig({ DATA_DIR: dir.path, ADDRESS_MAX_FAILURES: '0' }), /ADDRESS_MAX_FAILURES/);
  });

  it('refuses to start in production without configured keys, naming them', () => {
    const prod = tempDir('lk-config-prod-');
    try {
      assert.throws(
        () => loadConfig({ DATA_DIR: prod.path, NODE_ENV: 'production' }),
        (err: Error) =>
          err instanceof ConfigError && ['LATCHKEY_JWKS', 'LATCHKEY_COOKIE_KEYS', 'LATCHKEY_ENCRYPTION_KEYS', 'LATCHKEY_PEPPER'].every((v) => err.message.includes(v)),
      );
      assert.ok(!existsSync(join(prod.path, 'dev-keys.json')), 'no development keys are written in production');
    } finally {
      prod.remove();
    }
  });

  it('production has no demo tenant by default, refuses DEMO=true and a non-loopback http issuer', () => {
    const dev = loadConfig({ DATA_DIR: dir.path });
    const keys = {
      LATCHKEY_JWKS: JSON.stringify(dev.keys.jwks),
      LATCHKEY_COOKIE_KEYS: randomBytes(32).toString('base64url'),
      LATCHKEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      LATCHKEY_PEPPER: randomBytes(32).toString('base64url'),
    };
    const prod = (env: Record<string, string>) => loadConfig({ DATA_DIR: dir.path, NODE_ENV: 'production', MAIL: 'off', ISSUER: 'https://id.example.com', ...keys, ...env });
    assert.equal(prod({}).demo, false);
    assert.equal(prod({ DEMO: 'false' }).demo, false);
    assert.equal(loadConfig({ DATA_DIR: dir.path }).demo, true, 'the trial keeps its demo');
    assert.throws(
      () => prod({ DEMO: 'true' }),
      (err: Error) => err instanceof ConfigError && /DEMO/.test(err.message),
    );
    for (const issuer of ['http://id.example.com', 'http://10.0.0.5:3000', 'http://127.0.0.1.example.com']) {
      assert.throws(
        () => prod({ ISSUER: issuer }),
        (err: Error) => err instanceof ConfigError && /ISSUER/.test(err.message),
        issuer,
      );
    }
    for (const issuer of ['http://localhost:3000', 'http://127.0.0.1:4000', 'http://[::1]:3000', 'https://id.example.com']) {
      assert.equal(prod({ ISSUER: issuer }).issuer, issuer, issuer);
    }
  });

  it('mail: SMTP_URL validated; production needs it unless MAIL=off; the trial writes mail to the log', () => {
    const trial = loadConfig({ DATA_DIR: dir.path });
    assert.equal(trial.mail.smtpUrl, undefined);
    assert.equal(trial.mail.enabled, true);
    assert.equal(trial.mail.from, 'Latchkey <no-reply@localhost>');
    const given = loadConfig({ DATA_DIR: dir.path, SMTP_URL: 'smtps://user:pass@mail.example.com:465', MAIL_FROM: 'Acme <id@acme.test>' });
    assert.equal(given.mail.smtpUrl, 'smtps://user:pass@mail.example.com:465');
    assert.equal(given.mail.from, 'Acme <id@acme.test>');
    for (const bad of ['http://mail.example.com', 'smtp://', 'mail.example.com:25']) {
      assert.throws(
        () => loadConfig({ DATA_DIR: dir.path, SMTP_URL: bad }),
        (err: Error) => err instanceof ConfigError && /SMTP_URL/.test(err.message),
        bad,
      );
    }
    assert.throws(() => loadConfig({ DATA_DIR: dir.path, MAIL_FROM: 'nobody' }), /MAIL_FROM/);
    const dev = loadConfig({ DATA_DIR: dir.path });
    const prod = {
      DATA_DIR: dir.path,
      NODE_ENV: 'production',
      LATCHKEY_JWKS: JSON.stringify(dev.keys.jwks),
      LATCHKEY_COOKIE_KEYS: randomBytes(32).toString('base64url'),
      LATCHKEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      LATCHKEY_PEPPER: randomBytes(32).toString('base64url'),
    };
    assert.throws(
      () => loadConfig(prod),
      (err: Error) => err instanceof ConfigError && /SMTP_URL/.test(err.message),
    );
    assert.equal(loadConfig({ ...prod, MAIL: 'off' }).mail.enabled, false);
    assert.equal(loadConfig({ ...prod, SMTP_URL: 'smtp://mailpit:1025' }).mail.smtpUrl, 'smtp://mailpit:1025');
  });

  it('starts in production with every key configured', () => {
    const dev = loadConfig({ DATA_DIR: dir.path });
    const config = loadConfig({
      DATA_DIR: dir.path,
      NODE_ENV: 'production',
      MAIL: 'off',
      LATCHKEY_JWKS: JSON.stringify(dev.keys.jwks),
      LATCHKEY_COOKIE_KEYS: `${randomBytes(32).toString('base64url')},${randomBytes(32).toString('base64url')}`,
      LATCHKEY_ENCRYPTION_KEYS: `new:${randomBytes(32).toString('base64')},old:${randomBytes(32).toString('base64')}`,
      LATCHKEY_PEPPER: randomBytes(32).toString('base64url'),
    });
    assert.equal(config.keys.development, false);
    assert.deepEqual(
      config.keys.encryptionKeys.map((k) => k.kid),
      ['new', 'old'],
    );
    assert.equal(config.keys.cookieKeys.length, 2);
  });
});
