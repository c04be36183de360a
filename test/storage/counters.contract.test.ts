// The attempt-counter contract (src/storage/counters/port.ts), run against
// every implementation, plus atomicity across connections for each.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { moduleUrl } from '../support/layout.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Cluster, Redis } from 'ioredis';
import { lockDurationMs } from '../../src/storage/counters/port.ts';
import type { BeginResult, CounterStore, LockPolicy } from '../../src/storage/counters/port.ts';
import { createSqliteCounterStore } from '../../src/storage/counters/sqlite/index.ts';
import { createRedisCounterStore } from '../../src/storage/counters/redis/index.ts';
import { testRedisPrefix, testRedisUrl } from '../support/redis.ts';
import { tempDir } from '../support/tmp.ts';
import { startRedisCluster } from '../support/redis-cluster.ts';

interface CounterHarness {
  store: CounterStore;
  cleanup(): Promise<void>;
}

const policy: LockPolicy = {
  threshold: 5,
  baseLockMs: 60_000,
  maxLockMs: 3_600_000,
  maxFailures: 100,
  idleResetMs: 86_400_000,
};

/** The lock starts at the freeze, so parallel takes at one instant can reach it. */
const lockAtFreeze: LockPolicy = { ...policy, threshold: 100 };

const newKey = () => `pwd:id:${randomUUID()}`;

/** How long a test's in-flight slots live. */
const SLOT_MS = 10_000;

/** A wrong answer begun and settled at once, as the sequential cases below take it. */
interface TakeResult {
  allowed: boolean;
  failures: number;
  lockedUntil: number;
  frozen: boolean;
}

/** Begins an attempt and, when admitted, settles it as a failure. */
async function take(store: CounterStore, key: string, p: LockPolicy, now: number): Promise<TakeResult> {
  const slot = randomUUID();
  const begun = await store.begin(key, slot, p, now, now + SLOT_MS);
  if (begun.outcome !== 'admitted') return { allowed: false, failures: begun.failures, lockedUntil: begun.lockedUntil, frozen: begun.frozen };
  return { allowed: true, ...(await store.settle(key, slot, 'failure', p, now)) };
}

function allowedOf(results: TakeResult[]): TakeResult[] {
  return results.filter((r) => r.allowed);
}

// Exactly `threshold` attempts get through, each with its own failure count: no lost update.
function assertOnlyThresholdAllowed(results: TakeResult[], p: LockPolicy): void {
  const allowed = allowedOf(results);
  assert.equal(allowed.length, p.threshold, `${allowed.length} of ${results.length} allowed`);
  assert.deepEqual(
    allowed.map((r) => r.failures).sort((a, b) => a - b),
    Array.from({ length: p.threshold }, (_, i) => i + 1),
  );
  for (const refused of results.filter((r) => !r.allowed)) assert.ok(refused.failures <= p.threshold);
}

/** Begins `count` attempts on `key` at once; returns the slots admitted and every answer. */
async function beginMany(store: CounterStore, key: string, p: LockPolicy, now: number, count: number) {
  const slots = Array.from({ length: count }, () => randomUUID());
  const results = await Promise.all(slots.map((slot) => store.begin(key, slot, p, now, now + SLOT_MS)));
  return { admitted: slots.filter((_, i) => results[i]!.outcome === 'admitted'), results };
}

/** Takes `count` attempts on `key`, each once the previous lock has passed; the last result and its time. */
async function failInTurn(store: CounterStore, key: string, p: LockPolicy, count: number, start = Date.now()) {
  let now = start;
  let last: TakeResult | undefined;
  for (let i = 0; i < count; i++) {
    last = await take(store, key, p, now);
    assert.equal(last.allowed, true, `attempt ${i + 1} refused`);
    now = Math.max(now, last.lockedUntil);
  }
  return { last: last!, now };
}

// Exactly `maxFailures` attempts get through, the last one freezing; every other is refused as frozen.
function assertOnlyMaxFailuresAllowed(results: TakeResult[], p: LockPolicy): void {
  const allowed = allowedOf(results);
  assert.equal(allowed.length, p.maxFailures, `${allowed.length} of ${results.length} allowed`);
  assert.deepEqual(
    allowed.map((r) => r.failures).sort((a, b) => a - b),
    Array.from({ length: p.maxFailures }, (_, i) => i + 1),
  );
  assert.deepEqual(
    allowed.filter((r) => r.frozen).map((r) => r.failures),
    [p.maxFailures],
  );
  // The rest were refused: busy while the last ones were in flight, or frozen after.
  for (const refused of results.filter((r) => !r.allowed)) assert.ok(refused.failures <= p.maxFailures && (!refused.frozen || refused.failures === p.maxFailures));
}

function counterContract(name: string, open: () => Promise<CounterHarness>): void {
  describe(`counter contract: ${name}`, () => {
    let harness: CounterHarness;
    const store = () => harness.store;

    before(async () => {
      harness = await open();
    });
    after(async () => {
      await harness.cleanup();
    });

    it('answers ping', async () => {
      await store().ping();
    });

    it('allows and counts attempts below the threshold', async () => {
      const key = newKey();
      const now = Date.now();
      for (let i = 1; i < policy.threshold; i++) {
        assert.deepEqual(await take(store(), key, policy, now + i), { allowed: true, failures: i, lockedUntil: 0, frozen: false });
      }
      assert.deepEqual(await store().peek(key, now + 10), { failures: policy.threshold - 1, lockedUntil: 0, frozen: false });
    });

    it('starts a lock of baseLockMs at the threshold and refuses without counting while locked', async () => {
      const key = newKey();
      const now = Date.now();
      for (let i = 1; i < policy.threshold; i++) await take(store(), key, policy, now);
      const locking = await take(store(), key, policy, now);
      assert.deepEqual(locking, { allowed: true, failures: policy.threshold, lockedUntil: now + policy.baseLockMs, frozen: false });

      for (const at of [now, now + 1, now + policy.baseLockMs - 1]) {
        assert.deepEqual(await take(store(), key, policy, at), {
          allowed: false,
          failures: policy.threshold,
          lockedUntil: now + policy.baseLockMs,
          frozen: false,
        });
      }
      assert.deepEqual(await store().peek(key, now + 1), {
        failures: policy.threshold,
        lockedUntil: now + policy.baseLockMs,
        frozen: false,
      });
    });

    it('allows the next attempt once the lock has passed, then doubles the lock up to maxLockMs', async () => {
      const key = newKey();
      let now = Date.now();
      for (let i = 0; i < policy.threshold; i++) await take(store(), key, policy, now);
      let lockedUntil = now + policy.baseLockMs;
      const locks: number[] = [];
      for (let failures = policy.threshold + 1; failures <= policy.threshold + 10; failures++) {
        now = lockedUntil;
        const result = await take(store(), key, policy, now);
        const expected = lockDurationMs(policy, failures);
        assert.deepEqual(result, { allowed: true, failures, lockedUntil: now + expected, frozen: false });
        locks.push(expected);
        lockedUntil = result.lockedUntil;
      }
      assert.deepEqual(locks.slice(0, 6), [120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000]);
      assert.ok(locks.slice(5).every((l) => l === policy.maxLockMs));
    });

    it('caps the doubling exponent at 30, as lockDurationMs does', async () => {
      const steep: LockPolicy = { threshold: 1, baseLockMs: 1, maxLockMs: 2 ** 40, maxFailures: 100, idleResetMs: 2 ** 41 };
      const key = newKey();
      let now = Date.now();
      let lock = 0;
      for (let failures = 1; failures <= 34; failures++) {
        const result = await take(store(), key, steep, now);
        assert.equal(result.allowed, true);
        lock = result.lockedUntil - now;
        assert.equal(lock, lockDurationMs(steep, failures), `failures ${failures}`);
        now = result.lockedUntil;
      }
      assert.equal(lock, 2 ** 30);
    });

    it('reset forgets the key', async () => {
      const key = newKey();
      const now = Date.now();
      for (let i = 0; i < policy.threshold; i++) await take(store(), key, policy, now);
      await store().reset(key);
      assert.equal(await store().peek(key, now), null);
      assert.deepEqual(await take(store(), key, policy, now), { allowed: true, failures: 1, lockedUntil: 0, frozen: false });
      await store().reset(newKey());
    });

    it('peek reads without counting and is null for an unknown key', async () => {
      const key = newKey();
      const now = Date.now();
      assert.equal(await store().peek(key, now), null);
      await take(store(), key, policy, now);
      await store().peek(key, now);
      await store().peek(key, now);
      assert.deepEqual(await store().peek(key, now), { failures: 1, lockedUntil: 0, frozen: false });
      assert.deepEqual(await take(store(), key, policy, now), { allowed: true, failures: 2, lockedUntil: 0, frozen: false });
    });

    it('forgets a record idleResetMs after its last change, judged by now', async () => {
      const key = newKey();
      const now = Date.now();
      await take(store(), key, policy, now);
      await take(store(), key, policy, now + 1000);
      assert.deepEqual(await store().peek(key, now + 1000 + policy.idleResetMs - 1), { failures: 2, lockedUntil: 0, frozen: false });
      assert.equal(await store().peek(key, now + 1000 + policy.idleResetMs), null);
      assert.deepEqual(await take(store(), key, policy, now + 1000 + policy.idleResetMs), {
        allowed: true,
        failures: 1,
        lockedUntil: 0,
        frozen: false,
      });
    });

    it('forgets an idle record after a real idleResetMs', async () => {
      const short: LockPolicy = { threshold: 5, baseLockMs: 100, maxLockMs: 500, maxFailures: 100, idleResetMs: 1_000 };
      const key = newKey();
      await take(store(), key, short, Date.now());
      await take(store(), key, short, Date.now());
      assert.equal((await store().peek(key, Date.now()))?.failures, 2);
      await sleep(1_200);
      assert.equal(await store().peek(key, Date.now()), null);
      assert.deepEqual(await take(store(), key, short, Date.now()), { allowed: true, failures: 1, lockedUntil: 0, frozen: false });
    });

    it('lets exactly threshold of 30 parallel takes through', async () => {
      const key = newKey();
      const now = Date.now();
      const results = await Promise.all(Array.from({ length: 30 }, () => take(store(), key, policy, now)));
      assertOnlyThresholdAllowed(results, policy);
      assert.deepEqual(await store().peek(key, now), {
        failures: policy.threshold,
        lockedUntil: now + policy.baseLockMs,
        frozen: false,
      });
    });

    it('keeps keys independent', async () => {
      const locked = newKey();
      const other = newKey();
      const now = Date.now();
      for (let i = 0; i < policy.threshold; i++) await take(store(), locked, policy, now);
      assert.equal((await take(store(), locked, policy, now)).allowed, false);
      assert.deepEqual(await take(store(), other, policy, now), { allowed: true, failures: 1, lockedUntil: 0, frozen: false });
      await store().reset(other);
      assert.equal((await store().peek(locked, now))?.failures, policy.threshold);
    });

    it('freezes at maxFailures: refused past every lock and past idleResetMs, remembered until reset', async () => {
      const key = newKey();
      const { last: ninetyNinth, now: at99 } = await failInTurn(store(), key, policy, policy.maxFailures - 1);
      assert.equal(ninetyNinth.frozen, false);
      const hundredth = await take(store(), key, policy, at99);
      assert.deepEqual(hundredth, { allowed: true, failures: policy.maxFailures, lockedUntil: at99 + policy.maxLockMs, frozen: true });
      const refused = { allowed: false, failures: policy.maxFailures, lockedUntil: at99 + policy.maxLockMs, frozen: true };
      for (const later of [at99 + policy.maxLockMs, at99 + policy.idleResetMs + 1, at99 + 10 * policy.idleResetMs]) {
        assert.deepEqual(await take(store(), key, policy, later), refused, `at +${later - at99} ms`);
      }
      assert.deepEqual(await store().peek(key, at99 + 10 * policy.idleResetMs), { failures: policy.maxFailures, lockedUntil: at99 + policy.maxLockMs, frozen: true });
      await store().reset(key);
      assert.equal(await store().peek(key, at99), null);
      assert.deepEqual(await take(store(), key, policy, at99), { allowed: true, failures: 1, lockedUntil: 0, frozen: false });
    });

    it('keeps a frozen record past a real idleResetMs', async () => {
      const short: LockPolicy = { threshold: 2, baseLockMs: 1, maxLockMs: 1, maxFailures: 3, idleResetMs: 1_000 };
      const key = newKey();
      const { last } = await failInTurn(store(), key, short, 3);
      assert.equal(last.frozen, true);
      await sleep(1_200);
      assert.equal((await store().peek(key, Date.now()))?.frozen, true);
      assert.equal((await take(store(), key, short, Date.now())).allowed, false);
    });

    it('never freezes under maxFailures Infinity (per-IP keys): only the temporary lock', async () => {
      const ipPolicy: LockPolicy = { ...policy, maxFailures: Infinity };
      const key = `ip:${randomUUID()}`;
      const { last, now } = await failInTurn(store(), key, ipPolicy, 150);
      assert.deepEqual(last, { allowed: true, failures: 150, lockedUntil: now, frozen: false });
      assert.equal((await take(store(), key, ipPolicy, now - 1)).allowed, false, 'still locked for a while');
      assert.equal((await take(store(), key, ipPolicy, now)).allowed, true, 'and allowed once the lock has passed');
    });

    it('lets exactly maxFailures of 300 parallel takes through, the last of them freezing', async () => {
      const key = newKey();
      const now = Date.now();
      const results = await Promise.all(Array.from({ length: 300 }, () => take(store(), key, lockAtFreeze, now)));
      assertOnlyMaxFailuresAllowed(results, lockAtFreeze);
      assert.equal((await take(store(), key, lockAtFreeze, now + 10 * policy.idleResetMs)).allowed, false);
    });

    it('admits no more attempts at once than failures are left before the lock, and refuses the rest as busy without counting', async () => {
      const key = newKey();
      const now = Date.now();
      await take(store(), key, policy, now);
      const { admitted, results } = await beginMany(store(), key, policy, now, 12);
      assert.equal(admitted.length, policy.threshold - 1);
      assert.deepEqual(
        results
          .filter((r) => r.outcome === 'admitted')
          .map((r) => r.inFlight)
          .sort((a, b) => a - b),
        [1, 2, 3, 4],
      );
      for (const r of results.filter((r) => r.outcome !== 'admitted')) assert.deepEqual(r, { outcome: 'busy', inFlight: 4, failures: 1, lockedUntil: 0, frozen: false });
      assert.deepEqual(await store().peek(key, now), { failures: 1, lockedUntil: 0, frozen: false }, 'in flight is not failed');
    });

    it('a success forgets the failures but keeps the other attempts in flight; abandon frees the slot alone', async () => {
      const key = newKey();
      const now = Date.now();
      await take(store(), key, policy, now);
      await take(store(), key, policy, now);
      const { admitted } = await beginMany(store(), key, policy, now, 3);
      assert.equal(admitted.length, 3);
      assert.deepEqual(await store().settle(key, admitted[0]!, 'success', policy, now), { failures: 0, lockedUntil: 0, frozen: false });
      assert.equal(await store().peek(key, now), null);
      const after = await beginMany(store(), key, policy, now, 5);
      assert.equal(after.admitted.length, 3, 'two slots still held: 5 - 2');
      assert.deepEqual(await store().settle(key, admitted[1]!, 'abandon', policy, now), { failures: 0, lockedUntil: 0, frozen: false });
      assert.equal((await store().begin(key, randomUUID(), policy, now, now + SLOT_MS)).outcome, 'admitted', 'the abandoned slot is free again');
      assert.equal(await store().peek(key, now), null, 'abandon counted nothing');
    });

    it('lets 12 parallel correct answers through in turns: each success frees a slot for a waiting one', async () => {
      const key = newKey();
      const now = Date.now();
      let waiting = Array.from({ length: 12 }, () => randomUUID());
      let passed = 0;
      while (waiting.length) {
        const results = await Promise.all(waiting.map((slot) => store().begin(key, slot, policy, now, now + SLOT_MS)));
        const admitted = waiting.filter((_, i) => results[i]!.outcome === 'admitted');
        assert.ok(admitted.length > 0 && admitted.length <= policy.threshold, `${admitted.length} admitted`);
        assert.ok(
          results.every((r) => r.outcome === 'admitted' || r.outcome === 'busy'),
          'never locked: no answer was wrong',
        );
        await Promise.all(admitted.map((slot) => store().settle(key, slot, 'success', policy, now)));
        passed += admitted.length;
        waiting = waiting.filter((slot) => !admitted.includes(slot));
      }
      assert.equal(passed, 12);
    });

    it('past the threshold, once the lock has passed, admits one attempt at a time', async () => {
      const key = newKey();
      const { now } = await failInTurn(store(), key, policy, policy.threshold);
      const { admitted, results } = await beginMany(store(), key, policy, now, 4);
      assert.equal(admitted.length, 1);
      assert.deepEqual(results.map((r) => r.outcome).sort(), ['admitted', 'busy', 'busy', 'busy']);
      const failed = await store().settle(key, admitted[0]!, 'failure', policy, now);
      assert.deepEqual(failed, { failures: policy.threshold + 1, lockedUntil: now + lockDurationMs(policy, policy.threshold + 1), frozen: false });
      assert.equal((await store().begin(key, randomUUID(), policy, now, now + SLOT_MS)).outcome, 'locked');
    });

    it('frees a slot by itself at its expiry (a process that died mid-attempt), judged by now', async () => {
      const key = newKey();
      const now = Date.now();
      const { admitted } = await beginMany(store(), key, policy, now, policy.threshold);
      assert.equal(admitted.length, policy.threshold);
      assert.equal((await store().begin(key, randomUUID(), policy, now + SLOT_MS - 1, now + 2 * SLOT_MS)).outcome, 'busy');
      const later = await store().begin(key, randomUUID(), policy, now + SLOT_MS, now + 2 * SLOT_MS);
      assert.deepEqual(later, { outcome: 'admitted', inFlight: 1, failures: 0, lockedUntil: 0, frozen: false });
    });

    it('still counts a failure whose slot expired or was reset meanwhile: the answer was evaluated', async () => {
      const key = newKey();
      const now = Date.now();
      const slot = randomUUID();
      await store().begin(key, slot, policy, now, now + 1);
      assert.deepEqual(await store().settle(key, slot, 'failure', policy, now + 5), { failures: 1, lockedUntil: 0, frozen: false });
      const other = randomUUID();
      await store().begin(key, other, policy, now, now + SLOT_MS);
      await store().reset(key);
      assert.deepEqual(await store().settle(key, other, 'failure', policy, now), { failures: 1, lockedUntil: 0, frozen: false });
    });

    it('reset frees the slots too', async () => {
      const key = newKey();
      const now = Date.now();
      await beginMany(store(), key, policy, now, policy.threshold);
      await store().reset(key);
      assert.equal((await beginMany(store(), key, policy, now, policy.threshold)).admitted.length, policy.threshold);
    });

    it('refuses begin while locked or frozen, holding nothing', async () => {
      const key = newKey();
      const { last, now } = await failInTurn(store(), key, lockAtFreeze, lockAtFreeze.maxFailures);
      assert.equal(last.frozen, true);
      const refused: BeginResult = await store().begin(key, randomUUID(), lockAtFreeze, now + 10 * policy.idleResetMs, now + SLOT_MS);
      assert.deepEqual(refused, { outcome: 'frozen', inFlight: 0, failures: lockAtFreeze.maxFailures, lockedUntil: last.lockedUntil, frozen: true });
    });

    describe('sliding windows', () => {
      const limit = 10;
      const windowMs = 900_000;
      const windowKey = () => `ip:${randomUUID()}`;

      it('takes places up to the limit, then refuses until the oldest leaves the window', async () => {
        const key = windowKey();
        const now = Date.now();
        for (let i = 0; i < limit; i++) {
          assert.deepEqual(await store().windowTake(key, randomUUID(), limit, windowMs, now + i * 1000), { allowed: true, count: i + 1, retryAt: 0 });
        }
        assert.deepEqual(await store().windowTake(key, randomUUID(), limit, windowMs, now + 60_000), { allowed: false, count: limit, retryAt: now + windowMs });
        assert.equal((await store().windowTake(key, randomUUID(), limit, windowMs, now + windowMs - 1)).allowed, false);
        assert.deepEqual(
          await store().windowTake(key, randomUUID(), limit, windowMs, now + windowMs),
          { allowed: true, count: limit, retryAt: 0 },
          'the first place left: one more fits',
        );
        assert.equal((await store().windowTake(key, randomUUID(), limit, windowMs, now + windowMs)).allowed, false, 'and only one');
      });

      it('release gives back only its own place', async () => {
        const key = windowKey();
        const now = Date.now();
        const mine = randomUUID();
        await store().windowTake(key, mine, limit, windowMs, now);
        for (let i = 1; i < limit; i++) await store().windowTake(key, randomUUID(), limit, windowMs, now);
        await store().windowRelease(key, mine);
        await store().windowRelease(key, randomUUID());
        assert.deepEqual(await store().windowTake(key, randomUUID(), limit, windowMs, now), { allowed: true, count: limit, retryAt: 0 });
        assert.equal((await store().windowTake(key, randomUUID(), limit, windowMs, now)).allowed, false);
      });

      it('lets exactly limit of 30 parallel takes through', async () => {
        const key = windowKey();
        const now = Date.now();
        const results = await Promise.all(Array.from({ length: 30 }, () => store().windowTake(key, randomUUID(), limit, windowMs, now)));
        assert.equal(results.filter((r) => r.allowed).length, limit);
        assert.deepEqual(
          results
            .filter((r) => r.allowed)
            .map((r) => r.count)
            .sort((a, b) => a - b),
          Array.from({ length: limit }, (_, i) => i + 1),
        );
      });

      it('keeps windows independent of each other and of counters of the same name', async () => {
        const key = windowKey();
        const now = Date.now();
        for (let i = 0; i < limit; i++) await store().windowTake(key, randomUUID(), limit, windowMs, now);
        assert.equal((await store().windowTake(windowKey(), randomUUID(), limit, windowMs, now)).allowed, true);
        assert.equal(await store().peek(key, now), null);
        assert.deepEqual(await take(store(), key, policy, now), { allowed: true, failures: 1, lockedUntil: 0, frozen: false });
        assert.equal((await store().windowTake(key, randomUUID(), limit, windowMs, now)).allowed, false);
      });
    });
  });
}

counterContract('sqlite', async () => {
  const dir = tempDir('lk-counters-');
  const db = new Database(join(dir.path, 'latchkey.db'));
  db.pragma('journal_mode = WAL');
  const store = createSqliteCounterStore(db);
  return {
    store,
    async cleanup() {
      await store.close();
      db.close();
      dir.remove();
    },
  };
});

counterContract('redis', async () => {
  const redis = new Redis(testRedisUrl());
  const prefix = testRedisPrefix();
  const store = createRedisCounterStore(redis, { prefix });
  return {
    store,
    async cleanup() {
      await store.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    },
  };
});

counterContract('redis-cluster', async () => {
  const cluster = await startRedisCluster();
  const redis = new Cluster(cluster.nodes);
  const store = createRedisCounterStore(redis, { prefix: testRedisPrefix() });
  return {
    store,
    async cleanup() {
      await store.close();
      await redis.quit();
      await cluster.stop();
    },
  };
});

// A worker thread with its own better-sqlite3 connection, loading the store through tsx.
const WORKER = `
(async () => {
  const { parentPort, workerData: w } = await import('node:worker_threads');
  const { register } = await import(w.tsxApi);
  register();
  const { default: Database } = await import(w.betterSqlite3);
  const { createSqliteCounterStore } = await import(w.storeModule);
  const db = new Database(w.file);
  const store = createSqliteCounterStore(db);
  parentPort.postMessage('ready');
  await new Promise((resolve) => parentPort.once('message', resolve));
  const results = [];
  for (let i = 0; i < w.takes; i++) {
    const slot = crypto.randomUUID();
    const begun = await store.begin(w.key, slot, w.policy, w.now, w.now + 10000);
    if (begun.outcome !== 'admitted') results.push({ allowed: false, failures: begun.failures, lockedUntil: begun.lockedUntil, frozen: begun.frozen });
    else results.push({ allowed: true, ...(await store.settle(w.key, slot, 'failure', w.policy, w.now)) });
  }
  await store.close();
  db.close();
  parentPort.postMessage(results);
})();
`;

interface Contender {
  ready: Promise<void>;
  go(): void;
  results: Promise<TakeResult[]>;
}

function sqliteContender(file: string, key: string, p: LockPolicy, now: number, takes: number): Contender {
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: {
      tsxApi: import.meta.resolve('tsx/esm/api'),
      betterSqlite3: import.meta.resolve('better-sqlite3'),
      storeModule: moduleUrl('src/storage/counters/sqlite/index'),
      file,
      key,
      policy: p,
      now,
      takes,
    },
  });
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const results = new Promise<TakeResult[]>((resolve, reject) => {
    worker.on('message', (message: unknown) => {
      if (message === 'ready') markReady();
      else resolve(message as TakeResult[]);
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
  });
  results.catch(() => markReady());
  return { ready, go: () => worker.postMessage('go'), results };
}

describe('counter atomicity across SQLite connections', () => {
  const dir = tempDir('lk-counters-mc-');
  const file = join(dir.path, 'latchkey.db');
  let db: Database.Database;
  let store: CounterStore;

  before(() => {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    store = createSqliteCounterStore(db);
  });
  after(async () => {
    await store.close();
    db.close();
    dir.remove();
  });

  it('lets exactly threshold takes through across three connections in two threads and this one', async () => {
    const wide: LockPolicy = { ...policy, threshold: 40 };
    const key = newKey();
    const now = Date.now();
    const workers = [sqliteContender(file, key, wide, now, 40), sqliteContender(file, key, wide, now, 40)];
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go();
    const mine: TakeResult[] = [];
    for (let i = 0; i < 40; i++) {
      mine.push(await take(store, key, wide, now));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const theirs = await Promise.all(workers.map((w) => w.results));
    assertOnlyThresholdAllowed([...mine, ...theirs.flat()], wide);
    assert.deepEqual(await store.peek(key, now), { failures: wide.threshold, lockedUntil: now + wide.baseLockMs, frozen: false });
  });

  it('lets exactly maxFailures takes through across three connections, then refuses them all as frozen', async () => {
    const key = newKey();
    const now = Date.now();
    const workers = [sqliteContender(file, key, lockAtFreeze, now, 60), sqliteContender(file, key, lockAtFreeze, now, 60)];
    await Promise.all(workers.map((w) => w.ready));
    for (const w of workers) w.go();
    const mine: TakeResult[] = [];
    for (let i = 0; i < 60; i++) {
      mine.push(await take(store, key, lockAtFreeze, now));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const theirs = await Promise.all(workers.map((w) => w.results));
    assertOnlyMaxFailuresAllowed([...mine, ...theirs.flat()], lockAtFreeze);
  });
});

describe('counter atomicity across Redis connections', () => {
  const prefix = testRedisPrefix();
  const clients: Redis[] = [];

  after(async () => {
    const keys = clients[0] ? await clients[0].keys(`${prefix}*`) : [];
    if (keys.length) await clients[0]?.del(...keys);
    await Promise.all(clients.map((c) => c.quit()));
  });

  it('lets exactly threshold takes through across three clients', async () => {
    for (let i = 0; i < 3; i++) clients.push(new Redis(testRedisUrl()));
    const stores = clients.map((c) => createRedisCounterStore(c, { prefix }));
    const key = newKey();
    const now = Date.now();
    const results = await Promise.all(stores.flatMap((s) => Array.from({ length: 20 }, () => take(s, key, policy, now))));
    assertOnlyThresholdAllowed(results, policy);
  });

  it('lets exactly maxFailures of 300 takes through across three clients', async () => {
    const stores = clients.map((c) => createRedisCounterStore(c, { prefix }));
    const key = newKey();
    const now = Date.now();
    const results = await Promise.all(stores.flatMap((s) => Array.from({ length: 100 }, () => take(s, key, lockAtFreeze, now))));
    assertOnlyMaxFailuresAllowed(results, lockAtFreeze);
  });
});
