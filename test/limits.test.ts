// Attempt limits (SPEC §7, src/limits.ts) under the configured defaults and a
// clock the test moves: a target key frozen at its 100th consecutive failure
// stays frozen past every lock and past the idle expiry, until it is
// unlocked; per-IP keys only ever lock for a while. On SQLite and on Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { defaults } from '../config/index.ts';
import { LatchkeyError } from '../src/errors.ts';
import { createLimiter, type Limiter } from '../src/limits.ts';
import type { CounterStore } from '../src/storage/counters/port.ts';
import { createSqliteCounterStore } from '../src/storage/counters/sqlite/index.ts';
import { createRedisCounterStore } from '../src/storage/counters/redis/index.ts';
import { testRedisPrefix, testRedisUrl } from './support/redis.ts';

const policy = defaults.lock;
const wrong = async () => false;
const right = async () => true;

/** The error `guard` threw, or null when it returned. */
async function thrown(p: Promise<unknown>): Promise<LatchkeyError | null> {
  try {
    await p;
    return null;
  } catch (err) {
    assert.ok(err instanceof LatchkeyError, String(err));
    return err;
  }
}

const backends: [string, () => Promise<{ counters: CounterStore; close(): Promise<void> }>][] = [
  ['sqlite', async () => {
    const db = new Database(':memory:');
    const counters = createSqliteCounterStore(db);
    return { counters, close: async () => { await counters.close(); db.close(); } };
  }],
  ['redis', async () => {
    const redis = new Redis(testRedisUrl());
    const prefix = testRedisPrefix();
    return {
      counters: createRedisCounterStore(redis, { prefix }),
      async close() {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length) await redis.del(...keys);
        await redis.quit();
      },
    };
  }],
];

for (const [name, open] of backends) {
  describe(`attempt limits with the default policy (${name})`, () => {
    let backend: Awaited<ReturnType<typeof open>>;
    let clock = Date.now();
    let limiter: Limiter;

    before(async () => {
      backend = await open();
      limiter = createLimiter(backend.counters, policy, () => clock);
    });
    after(() => backend.close());

    /** Wrong answers on `target`, each once the previous lock has passed; returns how many were let through. */
    async function failures(target: string, count: number, ip: string | null = null): Promise<number> {
      let evaluated = 0;
      for (let i = 0; i < count; i++) {
        const result = await limiter.run({ target, ip }, wrong);
        if (result.passed || !result.evaluated) break;
        evaluated += 1;
        clock += result.lockedForSeconds * 1000;
      }
      return evaluated;
    }

    it('locks after 5, lets exactly 100 consecutive failures through, and freezes on the 100th', async () => {
      const target = `pin:${randomUUID()}`;
      assert.equal(await failures(target, policy.threshold - 1), policy.threshold - 1);
      const fifth = await limiter.run({ target }, wrong);
      assert.deepEqual(fifth, { passed: false, evaluated: true, frozen: false, lockedForSeconds: policy.baseLockMs / 1000 });
      assert.equal(await limiter.state(target), 'locked');
      clock += policy.baseLockMs;
      assert.equal(await failures(target, policy.maxFailures - policy.threshold - 1), policy.maxFailures - policy.threshold - 1);
      const hundredth = await limiter.run({ target }, wrong);
      assert.deepEqual(hundredth, { passed: false, evaluated: true, frozen: true, lockedForSeconds: 0 });
      assert.equal(await limiter.state(target), 'frozen');

      // The 101st: refused, even with the right answer, after the longest lock and after the idle expiry.
      let checked = false;
      for (const wait of [0, policy.maxLockMs, policy.idleResetMs, 30 * policy.idleResetMs]) {
        clock += wait;
        assert.deepEqual(await limiter.run({ target }, async () => (checked = true)), { passed: false, evaluated: false, frozen: true, lockedForSeconds: 0 }, `after ${wait} ms more`);
        const err = await thrown(limiter.guard({ target }, right));
        assert.equal(err?.code, 'locked_out');
        assert.deepEqual(err?.detail, { frozen: true }, 'no Retry-After: no wait lifts it');
        assert.equal(err?.key, 'errors.frozen');
      }
      assert.equal(checked, false, 'the answer was never even checked');

      assert.equal(await limiter.unlock(target), 'frozen');
      assert.equal(await limiter.state(target), null);
      assert.deepEqual(await limiter.run({ target }, right), { passed: true });
    });

    it('guard throws the freeze for the failure that froze the key, and for every later attempt', async () => {
      const target = `pwd:${randomUUID()}`;
      assert.equal(await failures(target, policy.maxFailures - 1), policy.maxFailures - 1);
      clock += policy.maxLockMs;
      assert.deepEqual((await thrown(limiter.guard({ target }, wrong)))?.detail, { frozen: true });
      assert.deepEqual((await thrown(limiter.guard({ target }, right)))?.detail, { frozen: true });
    });

    it('a success before the 100th forgets the failures: the count is of consecutive ones', async () => {
      const target = `totp:${randomUUID()}`;
      assert.equal(await failures(target, policy.maxFailures - 1), policy.maxFailures - 1);
      clock += policy.maxLockMs;
      assert.deepEqual(await limiter.run({ target }, right), { passed: true });
      assert.equal(await failures(target, policy.maxFailures - 1), policy.maxFailures - 1);
      assert.notEqual(await limiter.state(target), 'frozen', '198 failures, but never 100 in a row');
      assert.deepEqual(await limiter.run({ target }, right), { passed: true });
    });

    it('never freezes a per-IP key: 150 failures from one address over many emails, and it signs in once the lock has passed', async () => {
      const ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
      let refusedByIp = 0;
      for (let i = 0; i < 150; i++) {
        const result = await limiter.run({ target: `pwd:${randomUUID()}`, ip }, wrong);
        assert.equal(result.passed, false);
        if (!result.evaluated) {
          refusedByIp += 1;
          clock += result.lockedForSeconds * 1000;
          i -= 1;
        }
      }
      assert.ok(refusedByIp > 100, `the address was locked again and again (${refusedByIp} times)`);
      assert.equal(await limiter.state(`ip:${ip}`), 'locked');
      clock += policy.maxLockMs;
      assert.equal(await limiter.state(`ip:${ip}`), null, 'never frozen');
      assert.deepEqual(await limiter.run({ target: `pwd:${randomUUID()}`, ip }, right), { passed: true });
    });
  });
}
