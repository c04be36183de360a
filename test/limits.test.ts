// Attempt limits (src/limits.ts) under the configured defaults and a clock the
// test moves: a target key frozen at its 100th consecutive failure stays
// frozen past every lock and past the idle expiry, until it is unlocked;
// parallel answers never get more tries than the threshold, and parallel right
// ones all pass; an address's window of failures only slows it down, and a
// success does not clear it. On SQLite and on Redis.
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
const addressLimit = defaults.addressLimit;
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
  [
    'sqlite',
    async () => {
      const db = new Database(':memory:');
      const counters = createSqliteCounterStore(db);
      return {
        counters,
        close: async () => {
          await counters.close();
          db.close();
        },
      };
    },
  ],
  [
    'redis',
    async () => {
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
    },
  ],
];

for (const [name, open] of backends) {
  describe(`attempt limits with the default policy (${name})`, () => {
    let backend: Awaited<ReturnType<typeof open>>;
    let clock = Date.now();
    let limiter: Limiter;

    before(async () => {
      backend = await open();
      limiter = createLimiter(backend.counters, { lock: policy, addressLimit }, () => clock);
    });
    after(() => backend.close());

    /** Wrong answers on `target`, each once the previous lock has passed; returns how many were let through. */
    async function failures(target: string, count: number, ip: string | null = null): Promise<number> {
      let evaluated = 0;
      for (let i = 0; i < count; i++) {
        const result = await limiter.run({ targets: [target], address: ip }, wrong);
        if (result.passed || !result.evaluated) break;
        evaluated += 1;
        clock += result.lockedForSeconds * 1000;
      }
      return evaluated;
    }

    it('locks after 5, lets exactly 100 consecutive failures through, and freezes on the 100th', async () => {
      const target = `pin:${randomUUID()}`;
      assert.equal(await failures(target, policy.threshold - 1), policy.threshold - 1);
      const fifth = await limiter.run({ targets: [target] }, wrong);
      assert.deepEqual(fifth, { passed: false, evaluated: true, frozen: false, lockedForSeconds: policy.baseLockMs / 1000 });
      assert.equal(await limiter.state(target), 'locked');
      clock += policy.baseLockMs;
      assert.equal(await failures(target, policy.maxFailures - policy.threshold - 1), policy.maxFailures - policy.threshold - 1);
      const hundredth = await limiter.run({ targets: [target] }, wrong);
      assert.deepEqual(hundredth, { passed: false, evaluated: true, frozen: true, lockedForSeconds: 0 });
      assert.equal(await limiter.state(target), 'frozen');

      // The 101st: refused, even with the right answer, after the longest lock and after the idle expiry.
      let checked = false;
      for (const wait of [0, policy.maxLockMs, policy.idleResetMs, 30 * policy.idleResetMs]) {
        clock += wait;
        assert.deepEqual(
          await limiter.run({ targets: [target] }, async () => (checked = true)),
          { passed: false, evaluated: false, frozen: true, lockedForSeconds: 0 },
          `after ${wait} ms more`,
        );
        const err = await thrown(limiter.guard({ targets: [target] }, right));
        assert.equal(err?.code, 'locked_out');
        assert.deepEqual(err?.detail, { frozen: true }, 'no Retry-After: no wait lifts it');
        assert.equal(err?.key, 'errors.frozen');
      }
      assert.equal(checked, false, 'the answer was never even checked');

      assert.equal(await limiter.unlock(target), 'frozen');
      assert.equal(await limiter.state(target), null);
      assert.deepEqual(await limiter.run({ targets: [target] }, right), { passed: true });
    });

    it('guard throws the freeze for the failure that froze the key, and for every later attempt', async () => {
      const target = `pwd:${randomUUID()}`;
      assert.equal(await failures(target, policy.maxFailures - 1), policy.maxFailures - 1);
      clock += policy.maxLockMs;
      assert.deepEqual((await thrown(limiter.guard({ targets: [target] }, wrong)))?.detail, { frozen: true });
      assert.deepEqual((await thrown(limiter.guard({ targets: [target] }, right)))?.detail, { frozen: true });
    });

    it('a success before the 100th forgets the failures: the count is of consecutive ones', async () => {
      const target = `totp:${randomUUID()}`;
      assert.equal(await failures(target, policy.maxFailures - 1), policy.maxFailures - 1);
      clock += policy.maxLockMs;
      assert.deepEqual(await limiter.run({ targets: [target] }, right), { passed: true });
      assert.equal(await failures(target, policy.maxFailures - 1), policy.maxFailures - 1);
      assert.notEqual(await limiter.state(target), 'frozen', '198 failures, but never 100 in a row');
      assert.deepEqual(await limiter.run({ targets: [target] }, right), { passed: true });
    });

    // Never one an earlier test filled: a random pick among a few hundred collided now and then.
    let addresses = 0;
    const freshAddress = () => `2001:db8:${randomUUID().slice(0, 4)}:${(addresses++).toString(16)}::1`;

    it('counts failures per address up front in a sliding window: beyond it an address is slowed down, never frozen', async () => {
      const ip = freshAddress();
      for (let i = 0; i < addressLimit.maxFailures; i++) {
        const result = await limiter.run({ targets: [`pwd:${randomUUID()}`], address: ip }, wrong);
        assert.equal(result.passed === false && result.evaluated, true, `failure ${i + 1} evaluated`);
      }
      let checked = false;
      const refused = await limiter.run({ targets: [`pwd:${randomUUID()}`], address: ip }, async () => (checked = true));
      assert.deepEqual(refused, { passed: false, evaluated: false, frozen: false, lockedForSeconds: addressLimit.windowMs / 1000, byAddress: true });
      assert.equal(checked, false);
      clock += addressLimit.windowMs;
      assert.deepEqual(await limiter.run({ targets: [`pwd:${randomUUID()}`], address: ip }, right), { passed: true }, 'the window slid on: never frozen');
    });

    it("a success from the address (an attacker's own account) does not reset the address's failures", async () => {
      const ip = freshAddress();
      const own = `pwd:${randomUUID()}`;
      for (let i = 0; i < addressLimit.maxFailures - 1; i++) await limiter.run({ targets: [`pwd:${randomUUID()}`], address: ip }, wrong);
      for (let i = 0; i < 3; i++) assert.deepEqual(await limiter.run({ targets: [own], address: ip }, right), { passed: true });
      assert.equal((await limiter.run({ targets: [`pwd:${randomUUID()}`], address: ip }, wrong)).passed, false);
      const after = await limiter.run({ targets: [`pwd:${randomUUID()}`], address: ip }, wrong);
      assert.equal(after.passed === false && after.byAddress, true, 'the 100 failures still stand');
      assert.equal((await limiter.run({ targets: [own], address: ip }, right)).passed, false, 'and the own account is slowed down with the address');
    });

    it('of parallel wrong answers from one address, no more than the window are evaluated', async () => {
      const ip = freshAddress();
      let evaluated = 0;
      const results = await Promise.all(
        Array.from({ length: addressLimit.maxFailures + 30 }, () =>
          limiter.run({ targets: [`pwd:${randomUUID()}`], address: ip }, async () => {
            evaluated += 1;
            return false;
          }),
        ),
      );
      assert.equal(evaluated, addressLimit.maxFailures);
      assert.equal(results.filter((r) => !r.passed && r.byAddress).length, 30);
    });

    it('evaluates at most threshold of 30 parallel wrong answers on one key', async () => {
      const target = `pin:${randomUUID()}`;
      let evaluated = 0;
      const results = await Promise.all(
        Array.from({ length: 30 }, () =>
          limiter.run({ targets: [target] }, async () => {
            evaluated += 1;
            await new Promise((resolve) => setImmediate(resolve));
            return false;
          }),
        ),
      );
      assert.equal(evaluated, policy.threshold);
      assert.equal(results.filter((r) => !r.passed && r.evaluated).length, policy.threshold);
      assert.equal(await limiter.state(target), 'locked');
    });

    it('lets 12 parallel correct answers on one key all pass: the ones beyond the threshold wait for a slot', async () => {
      const target = `pwd:${randomUUID()}`;
      let running = 0;
      let most = 0;
      const results = await Promise.all(
        Array.from({ length: 12 }, () =>
          limiter.run({ targets: [target], address: freshAddress() }, async () => {
            most = Math.max(most, ++running);
            await new Promise((resolve) => setTimeout(resolve, 20));
            running -= 1;
            return true;
          }),
        ),
      );
      assert.deepEqual(
        results,
        Array.from({ length: 12 }, () => ({ passed: true })),
      );
      assert.ok(most <= policy.threshold, `${most} evaluated at once`);
    });

    it("frees the slot and the address's place when the check throws, counting nothing", async () => {
      const target = `pin:${randomUUID()}`;
      const ip = freshAddress();
      for (let i = 0; i < policy.threshold * 2; i++) {
        await assert.rejects(
          limiter.run({ targets: [target], address: ip }, async () => {
            throw new Error('store down');
          }),
          /store down/,
        );
      }
      assert.equal(await limiter.state(target), null);
      assert.deepEqual(await limiter.run({ targets: [target], address: ip }, right), { passed: true });
    });

    it('needs every target key: a lock on one refuses, and a failure counts on each', async () => {
      const login = `pin:${randomUUID()}`;
      const identity = `pin-id:${randomUUID()}`;
      const other = `pin:${randomUUID()}`;
      for (let i = 0; i < policy.threshold - 1; i++) await limiter.run({ targets: [login, identity] }, wrong);
      const fifth = await limiter.run({ targets: [other, identity] }, wrong);
      assert.deepEqual(fifth, { passed: false, evaluated: true, frozen: false, lockedForSeconds: policy.baseLockMs / 1000 }, "the identity's 5th failure, on another login");
      assert.equal(await limiter.state(other), null);
      assert.deepEqual(await limiter.run({ targets: [other, identity] }, right), { passed: false, evaluated: false, frozen: false, lockedForSeconds: policy.baseLockMs / 1000 });
      clock += policy.baseLockMs;
      assert.deepEqual(await limiter.run({ targets: [other, identity] }, right), { passed: true });
    });
  });
}
