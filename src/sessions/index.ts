/**
 * A login's sessions (docs/account.md, docs/relying-parties.md): the index
 * that finds them, the pages and the API that list and end them, and the
 * back-channel logouts that tell the apps when a session ends.
 *
 * oidc-provider stores sessions by their id, which is the browser's cookie,
 * so nothing finds a login's sessions. The Session adapter is wrapped
 * (`trackSessions`): every save records the session in the session store
 * under its `uid`, with the apps it signed in to (and the `sid` each knows),
 * the browser and address of the request that saved it and when it was last
 * used; every destroy forgets it.
 *
 * oidc-provider sends a back-channel logout once and forgets it. Here its
 * client's `backchannelLogout` queues one in the session store instead (at
 * most one per client and sid), and a worker sends it with the provider's own
 * logout token, retried with backoff until the app answers 200 or 204; each
 * attempt is in the audit log.
 *
 * A session also ends when it reaches its tenant's lifetime or idle timeout:
 * a sweep each minute finds those in the index and ends them as a sign-out
 * does (`expireOutlived`). Sessions saved before the index existed are found
 * in the provider's storage and recorded at start (`indexUnrecorded`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type Provider from 'oidc-provider';
import type { Adapter, AdapterBackend, AdapterPayload, StoredAdapter } from '../storage/adapter/port.ts';
import { idHash } from '../storage/adapter/hashed-ids.ts';
import type { AccountStore, SessionPolicy, Tenant } from '../storage/accounts/port.ts';
import type { ClaimedLogout, NewLogout, SessionRecord, SessionStore } from '../storage/sessions/port.ts';
import type { Audit } from '../audit.ts';
import type { Logger } from '../log.ts';
import { queueWorker } from '../queue-worker.ts';
import { endLoginSessions as cutOffLoginSessions } from '../provider/revocation.ts';
import { egressRefusal } from '../web/egress.ts';

const LEASE_MS = 60_000;
const BATCH = 20;
const FIRST_RETRY_MS = 5_000;
const LONGEST_RETRY_MS = 3_600_000;
const KEEP_DELIVERED_MS = 7 * 24 * 3_600_000;
const SWEEP_EVERY_MS = 10 * 60_000;
const EXPIRE_EVERY_MS = 60_000;
const EXPIRY_JOB = 'session-expiry';
const EXPIRY_PAGE = 100;
// A record outlives its provider session a little, so the expiry sweep sees a session that reached its lifetime as the provider forgot it.
const KEEP_EXPIRED_RECORDS_MS = 10 * EXPIRE_EVERY_MS;
const USER_AGENT_MAX = 512;

export const logoutRetryDelayMs = (attempt: number) => Math.min(FIRST_RETRY_MS * 2 ** Math.min(attempt - 1, 20), LONGEST_RETRY_MS);

/** A tenant without a policy of its own: 14 days, however idle, and the sign-in outlives closing the browser. */
export const DEFAULT_SESSION_POLICY: SessionPolicy = { lifetimeHours: 14 * 24, idleMinutes: 0, staySignedIn: true };

export const sessionPolicyOf = (tenant: Pick<Tenant, 'sessionPolicy'> | null | undefined): SessionPolicy => tenant?.sessionPolicy ?? DEFAULT_SESSION_POLICY;

/**
 * Which limit of its tenant's policy a session has outlived at `now` (epoch
 * ms), or null: signed in (`signedInAt`, epoch ms) longer ago than the
 * lifetime, or unused since `lastSeenAt` (null: not since the sign-in) longer
 * than the idle timeout. A sign-in counts as a use, so a session signed in
 * again is fresh.
 */
export function outlivedLimit(policy: SessionPolicy, times: { signedInAt: number; lastSeenAt: number | null }, now: number): 'lifetime' | 'idle' | null {
  if (now - times.signedInAt > policy.lifetimeHours * 3_600_000) return 'lifetime';
  const lastUse = Math.max(times.signedInAt, times.lastSeenAt ?? 0);
  return policy.idleMinutes > 0 && now - lastUse > policy.idleMinutes * 60_000 ? 'idle' : null;
}

/** True when a session has outlived its tenant's policy at `now` (see `outlivedLimit`). */
export const outlived = (policy: SessionPolicy, times: { signedInAt: number; lastSeenAt: number | null }, now: number): boolean => outlivedLimit(policy, times, now) !== null;

/** The index records an expiry sweep looks at for a policy: signed in or last seen before its limits (`outlivedLimit` decides). */
function cutoffOf(policies: SessionPolicy[], now: number) {
  const idle = policies.map((p) => p.idleMinutes).filter((m) => m > 0);
  return {
    signedInBefore: new Date(now - Math.min(...policies.map((p) => p.lifetimeHours)) * 3_600_000),
    lastSeenBefore: idle.length ? new Date(now - Math.min(...idle) * 60_000) : null,
  };
}

/** The browser of the request being served, for the session it saves. */
export interface RequestBrowser {
  userAgent: string | null;
  ip: string | null;
}

/** Set by a provider middleware around each request (`createProvider`), read when a session is saved. */
export const currentBrowser = new AsyncLocalStorage<RequestBrowser>();

type Authorizations = Record<string, { sid?: unknown }>;

function clientsOf(payload: AdapterPayload): Record<string, string> {
  const clients: Record<string, string> = {};
  for (const [clientId, a] of Object.entries((payload.authorizations ?? {}) as Authorizations)) if (typeof a?.sid === 'string') clients[clientId] = a.sid;
  return clients;
}

/** Wraps the Session adapter so every saved session is recorded under its login (and the login's tenant), and a destroyed one forgotten. */
export function trackSessions(
  inner: StoredAdapter,
  store: SessionStore,
  { now = Date.now, tenantOf }: { now?: () => number; tenantOf: (loginId: string) => Promise<string | null> },
): Adapter {
  return {
    async upsert(id, payload, expiresIn) {
      // An ended session stays ended: a request that loaded it before saves it in vain, and is not indexed again.
      if (!(await inner.upsert(id, payload, expiresIn))) return;
      const uid = payload.uid;
      if (typeof uid !== 'string') return;
      if (typeof payload.accountId !== 'string') {
        await store.removeSession(uid);
        return;
      }
      const at = now();
      const browser = currentBrowser.getStore();
      await store.recordSession({
        uid,
        key: idHash(id),
        loginId: payload.accountId,
        tenant: await tenantOf(payload.accountId),
        clients: clientsOf(payload),
        signedInAt: new Date(typeof payload.loginTs === 'number' ? payload.loginTs * 1000 : at),
        lastSeenAt: new Date(at),
        expiresAt: new Date(at + (expiresIn ?? 0) * 1000),
        userAgent: browser?.userAgent?.slice(0, USER_AGENT_MAX) ?? null,
        ip: browser?.ip ?? null,
      });
    },
    find: (id) => inner.find(id),
    findByUid: (uid) => inner.findByUid(uid),
    findByUserCode: (code) => inner.findByUserCode(code),
    consume: (id) => inner.consume(id),
    async destroy(id) {
      await inner.destroy(id);
      await store.removeSessionByKey(idHash(id));
    },
    revokeByGrantId: (grantId) => inner.revokeByGrantId(grantId),
  };
}

/** A session as the sessions page and the API show it. */
export interface SessionView {
  /** The session's uid: what `endSession` takes. */
  id: string;
  signedInAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  /** "Firefox on Linux", or null when the browser did not say. */
  browser: string | null;
  userAgent: string | null;
  ip: string | null;
  /** The apps the session signed in to. */
  apps: { clientId: string; name: string }[];
}

export interface Sessions {
  /** The login's live sessions, most recently used first. */
  listSessions(loginId: string): Promise<SessionView[]>;
  /** Ends one session of the login (its sign-in everywhere, the tokens of its apps) and tells its apps; false when the login has no such session. */
  endSession(loginId: string, sessionId: string): Promise<boolean>;
  /** Ends every session of the login but `keepSessionId` (none: all); returns how many it ended. */
  endOtherSessions(loginId: string, keepSessionId: string | null): Promise<number>;
  /**
   * Ends every session and token of each login at once (an owner's reset or
   * disable, a changed or reset password): the cut-off of
   * `src/provider/revocation.ts`, then each indexed session is destroyed and
   * its apps are told. `keepSessionId` is not destroyed (the page that made
   * the change stays signed in), but its apps are told and forgotten too.
   */
  endLoginSessions(loginIds: string[], opts?: { keepSessionId?: string }): Promise<Date>;
  /**
   * Whether the session `sessionId` of a login of `tenant`, signed in at
   * `signedInAt` (epoch seconds), is still within the tenant's lifetime and
   * idle timeout; when it is, this use counts (its last-seen time moves).
   */
  stillLive(tenant: Tenant, sessionId: string, signedInAt: number): Promise<boolean>;
  /**
   * Ends every session past its tenant's lifetime or idle timeout, as signing
   * it out does but keeping its tokens (they have lifetimes of their own):
   * its apps are told, it is destroyed and audited. A serving process runs it
   * every minute; one process per minute does the work (the store's
   * `claimRun`), and the logouts are queued once per (client, sid) whoever
   * ends a session. Resolves with how many it ended (0 when another process
   * has this minute).
   */
  expireOutlived(): Promise<number>;
  /**
   * Records every provider session that has no record (one saved before the
   * index existed, or by a process of that time), so it is listed and ended
   * like the others; resolves with how many. A serving process runs it once
   * at start.
   */
  indexUnrecorded(): Promise<number>;
  /** Sends the logouts that are due; resolves with how many were delivered. */
  drain(): Promise<number>;
  close(): void;
}

export interface SessionDeps {
  store: SessionStore;
  accounts: AccountStore;
  provider: Provider;
  /** The provider's storage, whose sessions `indexUnrecorded` looks through. */
  adapter: AdapterBackend;
  audit: Audit;
  log: Logger;
  now?: () => number;
  /** A serving process sends logouts and ends outlived sessions; the CLI only queues them. */
  worker?: boolean;
  intervalMs?: number;
  expireEveryMs?: number;
}

interface LogoutClient {
  clientId: string;
  clientName?: string;
  backchannelLogoutUri?: string;
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

/** A short name for a User-Agent: the browser and the system, as far as it tells. */
export function browserLabel(userAgent: string | null): string | null {
  if (!userAgent) return null;
  const browser =
    [
      [/Edg(e|A|iOS)?\//, 'Edge'],
      [/OPR\/|Opera/, 'Opera'],
      [/Firefox\/|FxiOS/, 'Firefox'],
      [/Chrome\/|CriOS|Chromium/, 'Chrome'],
      [/Safari\//, 'Safari'],
    ].find(([re]) => (re as RegExp).test(userAgent))?.[1] ?? null;
  const system =
    [
      [/Android/, 'Android'],
      [/iPhone|iPad|iOS/, 'iOS'],
      [/Windows/, 'Windows'],
      [/Mac OS X|Macintosh/, 'macOS'],
      [/CrOS/, 'ChromeOS'],
      [/Linux/, 'Linux'],
    ].find(([re]) => (re as RegExp).test(userAgent))?.[1] ?? null;
  if (browser && system) return `${browser as string} on ${system as string}`;
  return ((browser ?? system) as string | null) ?? userAgent.slice(0, 60);
}

export function createSessions({
  store,
  accounts,
  provider,
  adapter,
  audit,
  log,
  now = Date.now,
  worker = true,
  intervalMs = 2_000,
  expireEveryMs = EXPIRE_EVERY_MS,
}: SessionDeps): Sessions {
  const proto = provider.Client.prototype as unknown as LogoutClient;
  // The provider's sender signs the logout token and posts it once; the queue calls it, and the provider queues.
  const sendLogout = proto.backchannelLogout;
  proto.backchannelLogout = async function queueLogout(this: LogoutClient, sub: string, sid: string) {
    const login = await accounts.getLogin(sub);
    await enqueue([{ clientId: this.clientId, sid, loginId: sub, tenant: login?.tenant ?? null }]);
  };

  const findClient = async (clientId: string) => (await provider.Client.find(clientId).catch(() => undefined)) as unknown as LogoutClient | undefined;

  async function enqueue(logouts: NewLogout[]) {
    if (!logouts.length) return;
    await store.enqueueLogouts(logouts, new Date(now()));
    loop.kick();
  }

  /** The logouts owed to the apps of a session with a back-channel logout URI. */
  async function logoutsOf(record: SessionRecord, tenant: string | null): Promise<NewLogout[]> {
    const owed: NewLogout[] = [];
    for (const [clientId, sid] of Object.entries(record.clients)) {
      if ((await findClient(clientId))?.backchannelLogoutUri) owed.push({ clientId, sid, loginId: record.loginId, tenant });
    }
    return owed;
  }

  async function revokeGrants(grantIds: string[]) {
    for (const grantId of grantIds) {
      // As the provider's own logout does: the grant's codes and tokens, then the grant.
      await provider.AccessToken.revokeByGrantId(grantId);
      await provider.Grant.adapter.destroy(grantId);
    }
  }

  /** Ends one indexed session: tells its apps, revokes its grants and destroys it (or, kept, forgets its apps). */
  async function end(record: SessionRecord, tenant: string | null, keep = false): Promise<void> {
    await enqueue(await logoutsOf(record, tenant));
    const session = await provider.Session.findByUid(record.uid);
    const authorizations = (session?.authorizations ?? {}) as Record<string, { grantId?: string }>;
    await revokeGrants(Object.values(authorizations).flatMap((a) => (typeof a.grantId === 'string' ? [a.grantId] : [])));
    if (session && keep) {
      // Its apps' next sign-in gets a new sid, which a later logout can reach.
      session.authorizations = {};
      await session.save(Math.max(1, Math.floor(((session.exp ?? 0) * 1000 - now()) / 1000)));
      return;
    }
    if (session) await session.destroy();
    await store.removeSession(record.uid);
  }

  const tenantOf = async (loginId: string) => (await accounts.getLogin(loginId))?.tenant ?? null;

  /** Ends one session that outlived its tenant's policy, once: true when this call ended it. */
  async function expire(record: SessionRecord, policy: SessionPolicy, at: number): Promise<boolean> {
    const limit = outlivedLimit(policy, { signedInAt: record.signedInAt.getTime(), lastSeenAt: record.lastSeenAt.getTime() }, at);
    if (!limit) return false;
    const session = await provider.Session.findByUid(record.uid);
    // Signed in again since the record was read: that save records the new sign-in.
    if (typeof session?.loginTs === 'number' && session.loginTs * 1000 > record.signedInAt.getTime()) return false;
    // Queued first (once per client and sid, whoever queues it): a process that dies after this leaves the session
    // unindexed at worst, and the start-up's indexing of unindexed sessions brings it back to the next sweep.
    await enqueue(await logoutsOf(record, record.tenant));
    if (!(await store.removeSession(record.uid))) return false;
    if (session) await session.destroy();
    await audit.record({ type: 'session.ended', outcome: 'success', tenant: record.tenant, login: record.loginId, detail: { reason: limit, sessions: 1 } });
    return true;
  }

  /** The records of `tenant` (null: records without one) that may be past `cutoff`, page by page. */
  async function* candidates(tenant: string | null, cutoff: ReturnType<typeof cutoffOf>) {
    for (let after = ''; ;) {
      const page = await store.sessionsPast(tenant, cutoff, after, EXPIRY_PAGE);
      yield* page;
      if (page.length < EXPIRY_PAGE) return;
      after = page.at(-1)!.uid;
    }
  }

  async function indexUnrecorded(): Promise<number> {
    let recorded = 0;
    for await (const payload of adapter.scan('Session')) {
      const { jti: id, uid, accountId } = payload;
      if (typeof id !== 'string' || typeof uid !== 'string' || typeof accountId !== 'string') continue;
      // Its last use is unknown: its sign-in stands for it, as the request-time check takes it.
      const signedInAt = new Date(typeof payload.loginTs === 'number' ? payload.loginTs * 1000 : now());
      const expiresAt = new Date(typeof payload.exp === 'number' ? payload.exp * 1000 : now() + DEFAULT_SESSION_POLICY.lifetimeHours * 3_600_000);
      const record = {
        uid,
        key: idHash(id),
        loginId: accountId,
        tenant: await tenantOf(accountId),
        clients: clientsOf(payload),
        signedInAt,
        lastSeenAt: signedInAt,
        expiresAt,
        userAgent: null,
        ip: null,
      };
      if (!(await store.recordSessionIfAbsent(record))) continue;
      // Destroyed while it was being recorded: its destroy found no record to forget.
      if (!(await provider.Session.adapter.findByUid(uid))) await store.removeSession(uid);
      else recorded++;
    }
    if (recorded) log.info({ sessions: recorded }, 'sessions from before the sessions index are now listed');
    return recorded;
  }

  async function expireOutlived(): Promise<number> {
    const at = now();
    if (!(await store.claimRun(EXPIRY_JOB, Math.floor(at / expireEveryMs)))) return 0;
    let ended = 0;
    const policies = new Map((await accounts.listTenants()).map((t) => [t.id, sessionPolicyOf(t)]));
    for (const [tenant, policy] of policies) {
      for await (const record of candidates(tenant, cutoffOf([policy], at))) if (await expire(record, policy, at)) ended++;
    }
    // A record from before the index kept the tenant: it gets its login's, and its tenant's policy decides.
    for await (const record of candidates(null, cutoffOf([DEFAULT_SESSION_POLICY, ...policies.values()], at))) {
      const tenant = await tenantOf(record.loginId);
      if (tenant) await store.setSessionTenant(record.uid, tenant);
      if (await expire({ ...record, tenant }, (tenant && policies.get(tenant)) || DEFAULT_SESSION_POLICY, at)) ended++;
    }
    return ended;
  }

  async function send(l: ClaimedLogout): Promise<boolean> {
    const client = await findClient(l.clientId);
    const event = { tenant: l.tenant, login: l.loginId, detail: { client: l.clientId, attempt: l.attempt } };
    if (!client?.backchannelLogoutUri) {
      // The app is gone or no longer takes logouts: nothing is owed.
      await store.logoutDelivered(l.id, l.attempt, new Date(now()));
      await audit.record({ type: 'session.backchannel_logout', outcome: 'failure', ...event, detail: { ...event.detail, reason: 'no_logout_uri' } });
      return false;
    }
    try {
      await sendLogout.call(client, l.loginId, l.sid);
    } catch (err) {
      const retryAt = new Date(now() + logoutRetryDelayMs(l.attempt));
      // A refusal of the outgoing guard (a special-use address) says which range; nothing was sent.
      const refused = egressRefusal(err);
      const error = refused?.message ?? (err as Error).message;
      log.warn(
        { err: error, client: l.clientId, attempt: l.attempt, retryAt, ...(refused ? { host: refused.host, address: refused.address } : {}) },
        'back-channel logout not delivered; will retry',
      );
      await store.logoutFailed(l.id, l.attempt, retryAt, error);
      await audit.record({
        type: 'session.backchannel_logout',
        outcome: 'failure',
        ...event,
        detail: { ...event.detail, error: error.slice(0, 200), retryAt: retryAt.toISOString() },
      });
      return false;
    }
    await store.logoutDelivered(l.id, l.attempt, new Date(now()));
    await audit.record({ type: 'session.backchannel_logout', outcome: 'success', ...event });
    return true;
  }

  async function drainOnce(): Promise<number> {
    let delivered = 0;
    for (;;) {
      const batch = await store.claimLogouts(new Date(now()), LEASE_MS, BATCH);
      if (batch.length === 0) return delivered;
      delivered += (await Promise.all(batch.map(send))).filter(Boolean).length;
    }
  }

  const loop = queueWorker({
    drainOnce,
    sweep: () => Promise.all([store.sweepLogouts(new Date(now() - KEEP_DELIVERED_MS)), store.sweepSessions(new Date(now() - KEEP_EXPIRED_RECORDS_MS))]),
    log,
    waiting: 'logout queue unavailable; back-channel logouts wait',
    running: worker,
    intervalMs,
    sweepEveryMs: SWEEP_EVERY_MS,
  });

  if (worker)
    void indexUnrecorded().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'sessions from before the sessions index not listed yet; the next start tries again'));
  const expiry = worker
    ? setInterval(
        () => void expireOutlived().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'session store unavailable; outlived sessions end later')),
        expireEveryMs,
      )
    : undefined;
  expiry?.unref();

  async function view(record: SessionRecord): Promise<SessionView> {
    const apps = await Promise.all(Object.keys(record.clients).map(async (clientId) => ({ clientId, name: (await findClient(clientId))?.clientName ?? clientId })));
    return {
      id: record.uid,
      signedInAt: record.signedInAt,
      lastSeenAt: record.lastSeenAt,
      expiresAt: record.expiresAt,
      browser: browserLabel(record.userAgent),
      userAgent: record.userAgent,
      ip: record.ip,
      apps,
    };
  }

  /**
   * The records of a login's sessions that still live. The index can outlive a session: a save that began
   * before the session ended records it again after its end removed the record. The provider's session
   * decides, here rather than on every save, which would cost each request a read. A record without one is
   * not listed, and is forgotten unless its session may just have run out, whose record the expiry sweep
   * still needs for its logouts and audit.
   */
  async function liveSessions(loginId: string): Promise<SessionRecord[]> {
    const at = now();
    const records = await store.listSessions(loginId, new Date(at));
    const live = await Promise.all(
      records.map(async (record) => {
        if (await provider.Session.adapter.findByUid(record.uid)) return true;
        if (record.expiresAt.getTime() - at > EXPIRE_EVERY_MS) await store.removeSession(record.uid);
        return false;
      }),
    );
    return records.filter((_, i) => live[i]);
  }

  return {
    async listSessions(loginId) {
      return Promise.all((await liveSessions(loginId)).map(view));
    },
    async endSession(loginId, sessionId) {
      const record = await store.getSession(sessionId);
      if (!record || record.loginId !== loginId) return false;
      await end(record, await tenantOf(loginId));
      return true;
    },
    async endOtherSessions(loginId, keepSessionId) {
      const tenant = await tenantOf(loginId);
      const others = (await liveSessions(loginId)).filter((r) => r.uid !== keepSessionId);
      for (const record of others) await end(record, tenant);
      return others.length;
    },
    async endLoginSessions(loginIds, { keepSessionId } = {}) {
      const cutOff = await cutOffLoginSessions(accounts, provider, loginIds, now);
      for (const loginId of loginIds) {
        const tenant = await tenantOf(loginId);
        for (const record of await store.listSessions(loginId, new Date(now()))) await end(record, tenant, record.uid === keepSessionId);
      }
      return cutOff;
    },
    async stillLive(tenant, sessionId, signedInAt) {
      const record = await store.getSession(sessionId);
      if (outlived(sessionPolicyOf(tenant), { signedInAt: signedInAt * 1000, lastSeenAt: record?.lastSeenAt.getTime() ?? null }, now())) return false;
      if (record) await store.touchSession(sessionId, new Date(now()));
      return true;
    },
    expireOutlived,
    indexUnrecorded,
    drain: loop.drain,
    close() {
      loop.close();
      clearInterval(expiry);
    },
  };
}
