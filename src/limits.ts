/**
 * Attempt limits (docs/security.md) over the counter port.
 *
 * Target keys (an identity's password, a login's or an identity's factor)
 * count consecutive failures: `run` begins the attempt on every target key
 * *before* the answer is checked, holding an in-flight slot, so parallel
 * guesses never get more tries than the threshold; attempts beyond what may
 * run at once wait briefly for a slot instead of being refused, so parallel
 * correct answers all pass. A target key frozen at `policy.maxFailures`
 * refuses every attempt until `unlock`.
 *
 * Client addresses get a loose sliding window of failures instead: a place is
 * taken up front (so parallel guesses cannot overrun it either) and given
 * back only when this very answer was right, so a success never clears the
 * others' failures. A full window makes an attempt wait briefly (a place in
 * flight may come back) and then refuses it for a while: it never freezes and
 * only slows an address down.
 */
import { createHash, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CounterRecord, CounterStore, LockPolicy } from './storage/counters/port.ts';
import { frozenOut, lockedOut, rateLimited } from './errors.ts';

export type AttemptResult =
  | { passed: true }
  /**
   * `evaluated`: the answer was checked (and was wrong). `frozen`: a target
   * key is frozen now (this failure may have frozen it). `lockedForSeconds` >
   * 0 when a key refuses attempts for a while now (this failure may have
   * started the lock). `byAddress`: refused by the address's window.
   */
  | { passed: false; evaluated: boolean; frozen: boolean; lockedForSeconds: number; byAddress?: true };

/** Why a key refuses attempts right now, or null when it does not. */
export type LockState = 'frozen' | 'locked' | null;

/** The sliding window of failures per client address. */
export interface AddressPolicy {
  /** Failures from one address (IPv6: one /64) within the window before it is slowed down. */
  maxFailures: number;
  /** The window, in ms. */
  windowMs: number;
}

export interface AttemptKeys {
  /** Keys that must all admit the attempt; each counts the failure. */
  targets: string[];
  /** The client's address, whose window of failures applies; null or absent: none applies (a known browser). */
  address?: string | null;
}

export interface Limiter {
  /**
   * Runs `attempt` when every key admits it. `attempt` resolves true for a
   * correct answer (the targets' failures are forgotten) or false (a failure
   * is counted on each). A thrown error counts nothing and is rethrown. Says
   * what happened; never throws for a lock.
   */
  run(keys: AttemptKeys, attempt: () => Promise<boolean>): Promise<AttemptResult>;
  /**
   * `run` for callers that show errors: returns whether the answer was right;
   * throws a 429 `locked_out` error while locked, and one with `detail.frozen`
   * while frozen and for the failure that froze a key.
   */
  guard(keys: AttemptKeys, attempt: () => Promise<boolean>): Promise<boolean>;
  state(key: string): Promise<LockState>;
  /** `state` of each of `keys`, in their order, in one counter-store call. */
  states(keys: string[]): Promise<LockState[]>;
  /** Forgets the key's failures, lifting a lock or a freeze; says which there was. */
  unlock(key: string): Promise<LockState>;
}

/** How long an in-flight slot lives when its process dies mid-attempt. */
const SLOT_MS = 15_000;
/** The longest an attempt waits for a slot or a place before it is refused (429). */
const WAIT_MS = 2_000;
const RETRY_MS = 15;
/** A full window frees up only when an attempt in it turns out right: look again less often. */
const WINDOW_RETRY_MS = 100;

export function createLimiter(counters: CounterStore, limits: { lock: LockPolicy; addressLimit: AddressPolicy }, now: () => number = Date.now): Limiter {
  const policy = limits.lock;
  const secondsUntil = (until: number) => Math.max(0, Math.ceil((until - now()) / 1000));
  const stateOf = (rec: CounterRecord | null): LockState => (rec?.frozen ? 'frozen' : rec && rec.lockedUntil > now() ? 'locked' : null);
  const refused = (frozen: boolean, lockedForSeconds: number) => ({
    passed: false as const,
    evaluated: false,
    frozen,
    lockedForSeconds: frozen ? 0 : Math.max(1, lockedForSeconds),
  });

  /** Holds `slot` on every target, waiting while one is busy; null when held, else the refusal. */
  async function admit(targets: string[], slot: string, deadline: number): Promise<AttemptResult | null> {
    for (;;) {
      const at = now();
      const results = await Promise.all(targets.map((t) => counters.begin(t, slot, policy, at, at + SLOT_MS)));
      if (results.every((r) => r.outcome === 'admitted')) return null;
      await Promise.all(targets.filter((_, i) => results[i]!.outcome === 'admitted').map((t) => counters.settle(t, slot, 'abandon', policy, now())));
      if (results.some((r) => r.outcome === 'frozen')) return refused(true, 0);
      const locked = results.filter((r) => r.outcome === 'locked');
      if (locked.length) return refused(false, Math.max(...locked.map((r) => secondsUntil(r.lockedUntil))));
      if (performance.now() >= deadline) return refused(false, 1);
      await sleep(RETRY_MS + Math.random() * RETRY_MS);
    }
  }

  const limiter: Limiter = {
    async run({ targets, address }, attempt) {
      const slot = randomUUID();
      const place = address ? `ip:${addressGroup(address)}` : null;
      const deadline = performance.now() + WAIT_MS;
      // A full window waits briefly too: its places include attempts in flight, which a right answer gives back.
      for (let taken = place ? await counters.windowTake(place, slot, limits.addressLimit.maxFailures, limits.addressLimit.windowMs, now()) : null; taken && !taken.allowed;) {
        if (performance.now() >= deadline) return { ...refused(false, secondsUntil(taken.retryAt)), byAddress: true };
        await sleep(WINDOW_RETRY_MS);
        taken = await counters.windowTake(place!, slot, limits.addressLimit.maxFailures, limits.addressLimit.windowMs, now());
      }
      const giveBack = async () => {
        if (place) await counters.windowRelease(place, slot);
      };
      const refusal = await admit(targets, slot, deadline);
      if (refusal) {
        await giveBack();
        return refusal;
      }
      let passed: boolean;
      try {
        passed = await attempt();
      } catch (err) {
        await Promise.all([...targets.map((t) => counters.settle(t, slot, 'abandon', policy, now())), giveBack()]);
        throw err;
      }
      const records = await Promise.all(targets.map((t) => counters.settle(t, slot, passed ? 'success' : 'failure', policy, now())));
      if (passed) {
        await giveBack();
        return { passed: true };
      }
      const frozen = records.some((r) => r.frozen);
      return { passed: false, evaluated: true, frozen, lockedForSeconds: frozen ? 0 : Math.max(0, ...records.map((r) => secondsUntil(r.lockedUntil))) };
    },
    async guard(keys, attempt) {
      const result = await limiter.run(keys, attempt);
      if (result.passed) return true;
      if (result.frozen) throw frozenOut();
      if (!result.evaluated) throw lockedOut(result.lockedForSeconds);
      return false;
    },
    async state(key) {
      return stateOf(await counters.peek(key, now()));
    },
    async states(keys) {
      return (await counters.peekMany(keys, now())).map(stateOf);
    },
    async unlock(key) {
      const state = stateOf(await counters.peek(key, now()));
      await counters.reset(key);
      return state;
    },
  };
  return limiter;
}

/**
 * The group an address is counted in: an IPv4 address itself, an IPv6
 * address by its /64 (one household or office gets a whole /64, and can pick
 * any address in it).
 */
export function addressGroup(address: string): string {
  // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: each is its own IPv4 address, not one /64.
  const mapped = /^::ffff:([0-9.]+)$/i.exec(address);
  if (mapped && isIP(mapped[1]!) === 4) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups; only the first four groups matter here.
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** A counter key that does not carry personal data (e.g. an email) in the clear. */
export function hashedKey(kind: string, value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url').slice(0, 22)}`;
}

/** The password's key: per identity, by its (normalized) email, known or not, so a lock tells nothing. */
export const passwordKey = (email: string) => hashedKey('pwd', email);

/**
 * A sliding window of requests per caller (an API client, a SCIM token) in the
 * counter store, so every process counts together: past `limit` requests in
 * `windowMs` a request is refused 429, with when to try again.
 */
export async function takeRequestSlot(counters: CounterStore, key: string, limit: number, windowMs: number, now: number): Promise<void> {
  const taken = await counters.windowTake(key, randomUUID(), limit, windowMs, now);
  if (!taken.allowed) throw rateLimited(Math.max(1, Math.ceil((taken.retryAt - now) / 1000)));
}
