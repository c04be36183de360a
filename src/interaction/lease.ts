/**
 * One request at a time per sign-in.
 *
 * Every request of the journey loads the provider's Interaction, works (a
 * password or factor check takes tens of milliseconds), and writes the whole
 * Interaction back. Two at once for one sign-in (two tabs, a double click, one
 * answer sent twice) would each write what it loaded, and the later write
 * would undo the earlier: a refused answer saving its page's fresh challenge
 * could replace the login that the other, right answer had just finished.
 *
 * So each request first takes the sign-in's lease in the shared counter store
 * (an atomic take, seen by every app process) and gives it back when it has
 * answered; a second request waits for it, then runs on what the first wrote
 * (a finished sign-in: its form is spent). A lease lapses by itself after
 * `LEASE_MS`, should a process die holding it; a request that cannot take it
 * within `LEASE_WAIT_MS` is answered `signin_busy` (409) and changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context, Next } from 'koa';
import type { CounterStore } from '../storage/counters/port.ts';
import { signinBusy } from '../errors.ts';
import { hashedKey } from '../limits.ts';

/** The longest a request holds a sign-in's lease before it lapses (far beyond any request's work). */
export const LEASE_MS = 30_000;
/** How long a request waits for a lease another request of the same sign-in holds. */
export const LEASE_WAIT_MS = 5_000;
const RETRY_MS = 10;

/** Koa middleware for the routes under `/interaction/:uid`: holds that sign-in's lease while the request runs. */
export function oneRequestAtATime(counters: CounterStore, now: () => number = Date.now) {
  return async (ctx: Context, next: Next) => {
    const uid = (ctx.params as Record<string, string | undefined>).uid;
    if (!uid) return next();
    // Hashed: the uid comes from the path, any length.
    const key = hashedKey('journey', uid);
    const slot = randomUUID();
    // On the app's clock, as the lease is: a test moves both.
    const deadline = now() + LEASE_WAIT_MS;
    while (!(await counters.windowTake(key, slot, 1, LEASE_MS, now())).allowed) {
      if (now() >= deadline) throw signinBusy();
      await sleep(RETRY_MS + Math.random() * RETRY_MS);
    }
    try {
      await next();
    } finally {
      // A store that fails here leaves the lease to lapse by itself; the answer stands.
      await counters.windowRelease(key, slot).catch(() => undefined);
    }
  };
}
