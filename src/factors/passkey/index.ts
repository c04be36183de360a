/**
 * Passkeys and security keys (WebAuthn) as a second factor, and as a sign-in
 * of their own (docs/passkeys.md). First sign-in: register one; later: use
 * one of the login's. A login may have several, named, added and removed on
 * the profile (`./profile.ts`); the credentials live in the account store's
 * passkey methods, and the factor's state only says the login has set up
 * passkeys and which user handle its credentials carry.
 */
import { z } from 'zod';
import { factorSetupExpired, forbidden, frozenOut, invalidFactorAnswer, lockedOut, replayRefused, type LatchkeyError } from '../../errors.ts';
import type { FactorState, Login, Passkey } from '../../storage/accounts/port.ts';
import type { AttemptResult } from '../../limits.ts';
import type { FactorBehaviour, FactorDefinition, FactorOutcome, FactorRequest, FactorServices } from '../types.ts';
import { createAttempts, factorKeys } from '../attempts.ts';
import { RESPONSE_MAX_LENGTH, createWebAuthn, newUserHandle, passkeyAmr, type CeremonyFailure, type WebAuthn } from './ceremony.ts';

export { passkeyAmr } from './ceremony.ts';

/**
 * What the passkey factor keeps per login (`Login.factors.passkey`); the
 * credentials themselves are the store's passkeys (`AccountStore.listPasskeys`).
 */
export const passkeyStateSchema = z.object({
  /** The WebAuthn user handle of the login's credentials (base64url, random). */
  userHandle: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/),
  /** ISO time the first passkey was registered. */
  enrolledAt: z.string(),
});
export type PasskeyState = z.infer<typeof passkeyStateSchema>;

/** The sign-in's pending challenge, in the draft. */
const DRAFT = 'passkey';
/**
 * A registration's set-up, in the draft beside its challenge: the user handle
 * the options carry, and the `enrolledAt` of the set-up they were made for
 * (null: none yet). An owner's reset since makes the registration void.
 */
const HANDLE_DRAFT = 'passkeyHandle';
const FROM_DRAFT = 'passkeyEnrolledAt';
/** The account pages' passkeys page: when one of the login's passkeys was proven there, in the draft. */
const CHANGE_DRAFT = 'passkeyChange';
/** How long a proven passkey lets the person add, rename and remove passkeys (the authenticator app's re-link window). */
export const CHANGE_WINDOW_MS = 10 * 60_000;
/** The longest name a person may give a passkey. */
export const PASSKEY_NAME_MAX = 64;

export const passkeyKeys = factorKeys('passkey');

export function passkeyState(login: Login): PasskeyState | null {
  const s = login.factors.passkey;
  return s && typeof s.userHandle === 'string' && typeof s.enrolledAt === 'string' ? { userHandle: s.userHandle, enrolledAt: s.enrolledAt } : null;
}

/** A name as the person typed it (trimmed, no control characters), or the default. */
export function passkeyName(raw: string | undefined, fallback: string): string {
  const printable = [...(raw ?? '')].filter((c) => c >= ' ' && c !== '\u007f').join('');
  const name = printable.trim().slice(0, PASSKEY_NAME_MAX);
  return name || fallback;
}

/** The WebAuthn ceremonies of this process (one per issuer). */
export function webauthnOf(services: Pick<FactorServices, 'config' | 'counters' | 'now'>): WebAuthn {
  return createWebAuthn({ issuer: services.config.issuer, counters: services.counters, now: services.now });
}

/** The error a refused ceremony shows. */
export function ceremonyError(failure: CeremonyFailure | 'unknown_credential' | 'other_login'): LatchkeyError {
  switch (failure) {
    case 'replayed':
      return replayRefused('factor.passkey.errors.replay');
    case 'expired':
      return factorSetupExpired('factor.passkey.errors.expired');
    case 'malformed':
      return invalidFactorAnswer('factor.passkey.errors.none');
    case 'counter':
      return invalidFactorAnswer('factor.passkey.errors.cloned');
    case 'unknown_credential':
      return invalidFactorAnswer('factor.passkey.errors.unknown');
    default:
      return invalidFactorAnswer('factor.passkey.errors.wrong');
  }
}

/** Its audit events (`factor.passkey.*`). */
const EVENTS = ['added', 'cloned', 'failed', 'locked', 'removed', 'renamed', 'replay', 'reset', 'verified'] as const;

export const passkeyFactor: FactorDefinition = {
  id: 'passkey',
  // The default for discovery and docs; a use reports its own (`hwk` or `swk`, `user` when verified).
  amr: ['hwk', 'mfa'],
  acr: 'urn:latchkey:acr:passkey',
  state: passkeyStateSchema,
  fields: { response: RESPONSE_MAX_LENGTH, name: PASSKEY_NAME_MAX * 4 },
  changeFields: { action: 16, id: 1400, response: RESPONSE_MAX_LENGTH, name: PASSKEY_NAME_MAX * 4 },
  events: EVENTS.map((e) => `factor.passkey.${e}`),
  notices: { 'factor.passkey.reset': 'reset', 'factor.passkey.added': 'set', 'factor.passkey.locked': 'locked' },
  ownerReset: { icon: 'key' },
  // A lost passkey: a recovery code signs in once instead (the passkey's level, the code's amr).
  alternatives: ['recovery'],
  create: (services) => createPasskey(services),
};

function createPasskey(services: FactorServices): FactorBehaviour {
  const { accounts, audit, limiter, now, wayInWithout } = services;
  const webauthn = webauthnOf(services);
  const attempts = createAttempts(limiter, passkeyKeys);

  const record = (req: FactorRequest, event: string, outcome: 'success' | 'failure', detail?: Record<string, unknown>) =>
    audit.record({ type: `factor.passkey.${event}`, outcome, tenant: req.tenant.id, login: req.login.id, ip: req.ip, userAgent: req.userAgent, ...(detail ? { detail } : {}) });
  const fail = (error: LatchkeyError): FactorOutcome => ({ passed: false, error });

  async function failed(
    req: FactorRequest,
    result: Extract<AttemptResult, { passed: false }>,
    failure: Parameters<typeof ceremonyError>[0],
    stage: string,
  ): Promise<FactorOutcome> {
    if (result.evaluated) await record(req, failure === 'replayed' ? 'replay' : failure === 'counter' ? 'cloned' : 'failed', 'failure', { stage, reason: failure });
    if (result.frozen) {
      await record(req, 'locked', 'failure', { frozen: true });
      return fail(frozenOut());
    }
    if (result.lockedForSeconds > 0) {
      await record(req, 'locked', 'failure', { retryAfterSeconds: result.lockedForSeconds });
      return fail(lockedOut(result.lockedForSeconds, result.evaluated ? 'factor.passkey.errors.wrongLocked' : 'errors.lockedOut'));
    }
    return fail(ceremonyError(failure));
  }

  async function registrationPage(req: FactorRequest, view: string) {
    const state = passkeyState(req.login);
    // A first set-up keeps its handle across reloads; one left from before a reset does not come back.
    const pending = req.draft[FROM_DRAFT] === null && typeof req.draft[HANDLE_DRAFT] === 'string' ? req.draft[HANDLE_DRAFT] : null;
    const handle = state?.userHandle ?? pending ?? newUserHandle();
    req.draft[HANDLE_DRAFT] = handle;
    req.draft[FROM_DRAFT] = state?.enrolledAt ?? null;
    const existing = await accounts.listPasskeys(req.login.id);
    const { options, challenge } = await webauthn.registrationOptions({
      handle,
      name: req.login.email,
      displayName: `${req.login.firstName} ${req.login.lastName}`.trim() || req.login.email,
      exclude: existing,
      rpName: req.tenant.name,
    });
    req.draft[DRAFT] = challenge;
    return { view, locals: { passkeyOptions: JSON.stringify(options), nameMax: PASSKEY_NAME_MAX } };
  }

  /** A registration whose set-up was reset (or set up anew) meanwhile: its passkey, if stored, goes again. */
  async function refusedSetUp(req: FactorRequest, stage: string, stored: Passkey | null): Promise<{ passed: false; outcome: FactorOutcome }> {
    delete req.draft[DRAFT];
    if (stored) await accounts.deletePasskey(req.login.id, stored.id);
    await record(req, 'failed', 'failure', { stage, reason: 'set_up_changed', ...(stored ? { credential: stored.id.slice(0, 12) } : {}) });
    return { passed: false, outcome: fail(factorSetupExpired('factor.passkey.errors.setUpChanged')) };
  }

  /**
   * Verifies a registration from `req.body.response` and stores the new passkey
   * (and the factor's state on the first). The answer to the draft's challenge,
   * counted in the login's attempts like any answer.
   *
   * The registration belongs to the set-up its options were made for: one
   * reset since (or set up anew) is refused. The passkey is kept only while
   * that set-up still stands after it was stored — checked by compare-and-set
   * on the factor's state, which the reset clears before it deletes the
   * passkeys — so of an add and an owner's reset racing, the reset wins.
   */
  async function register(
    req: FactorRequest,
    stage: string,
    defaultName: string,
  ): Promise<{ passed: true; passkey: Passkey; userVerified: boolean } | { passed: false; outcome: FactorOutcome }> {
    const handle = req.draft[HANDLE_DRAFT];
    const from = req.draft[FROM_DRAFT];
    const current = passkeyState(req.login);
    const sameSetUp = current ? current.userHandle === handle && current.enrolledAt === from : from === null;
    if (typeof handle !== 'string') return { passed: false, outcome: fail(ceremonyError('expired')) };
    if (!sameSetUp) return refusedSetUp(req, stage, null);
    let failure: CeremonyFailure | null = null;
    let made: Passkey | null = null;
    let userVerified = false;
    /** The stored state the passkey is added under (as read, for the compare-and-set); null until claimed. */
    let under: FactorState | null = current ? req.login.factors.passkey! : null;
    let claimed: PasskeyState | null = null;
    const result = await attempts.run(req.login, async () => {
      const verified = await webauthn.verifyRegistration(req.draft[DRAFT], req.body.response ?? '');
      delete req.draft[DRAFT];
      if (!verified.ok) {
        failure = verified.failure;
        return false;
      }
      if (!under) {
        // The first passkey: the set-up is claimed before the passkey exists, so a reset after it clears the claim.
        const state: PasskeyState = { userHandle: handle, enrolledAt: new Date(now()).toISOString() };
        if (await accounts.compareAndSetFactorState(req.login.id, 'passkey', null, state)) under = claimed = state;
        else {
          // Another tab of this very set-up got there first: added beside it; anything else is a set-up of its own.
          const stored = (await accounts.getLogin(req.login.id))?.factors.passkey;
          if (stored && stored.userHandle === handle) under = stored;
        }
      }
      if (!under) return true;
      const c = verified.credential;
      userVerified = c.userVerified;
      const at = new Date(now());
      made = { ...c, loginId: req.login.id, tenant: req.login.tenant, userHandle: handle, name: passkeyName(req.body.name, defaultName), createdAt: at, lastUsedAt: null };
      if (!(await accounts.addPasskey(made))) {
        failure = 'replayed';
        return false;
      }
      return true;
    });
    if (!result.passed) {
      if (claimed) await accounts.compareAndSetFactorState(req.login.id, 'passkey', claimed, null);
      return { passed: false, outcome: await failed(req, result, failure ?? 'unverified', stage) };
    }
    const passkey = made as Passkey | null;
    if (!passkey || !under || !(await accounts.compareAndSetFactorState(req.login.id, 'passkey', under, under))) return refusedSetUp(req, stage, passkey);
    delete req.draft[HANDLE_DRAFT];
    delete req.draft[FROM_DRAFT];
    await record(req, 'added', 'success', { credential: passkey.id.slice(0, 12), deviceType: passkey.deviceType, name: passkey.name });
    return { passed: true, passkey, userVerified };
  }

  /**
   * What is left when the last passkey goes: another factor reaching the user
   * type's level (the passkey set-up goes too), unused recovery codes (it
   * stays set up, so the sign-in still asks for a passkey and offers the
   * codes; a new one is added on the profile), or nothing (it stays).
   */
  const withoutPasskeys = (req: FactorRequest, login: Login = req.login) => wayInWithout(req.tenant, login, 'passkey');

  /**
   * Whether the passkeys page may change the login's passkeys now: one of them
   * was proven on it within `CHANGE_WINDOW_MS` (for this login and this
   * set-up), or it has none (its first is added as at a sign-in). A recent
   * sign-in alone is not enough: it may have needed no passkey.
   */
  function mayChange(req: FactorRequest, mine: Passkey[]): boolean {
    if (mine.length === 0) return true;
    const proof = req.draft[CHANGE_DRAFT] as { provenAt?: unknown; loginId?: unknown; userHandle?: unknown } | undefined;
    const at = proof?.provenAt;
    return (
      typeof at === 'number' && proof?.loginId === req.login.id && proof.userHandle === passkeyState(req.login)?.userHandle && now() - at >= 0 && now() - at < CHANGE_WINDOW_MS
    );
  }

  async function verifyPage(req: FactorRequest) {
    const mine = await accounts.listPasskeys(req.login.id);
    const { options, challenge } = await webauthn.authenticationOptions(mine);
    req.draft[DRAFT] = challenge;
    // None left (the last one went while recovery codes remain): the page says so and offers the codes.
    return { view: 'factors/passkey/verify', locals: { passkeyOptions: JSON.stringify(options), noneLeft: mine.length === 0 } };
  }

  async function verify(req: FactorRequest, stage = 'verify'): Promise<FactorOutcome> {
    const parsed = webauthn.parseAuthentication(req.body.response ?? '');
    if (!parsed) return fail(ceremonyError('malformed'));
    let failure: Parameters<typeof ceremonyError>[0] = 'unverified';
    let amr: string[] = [];
    const result = await attempts.run(req.login, async () => {
      const challenge = req.draft[DRAFT];
      delete req.draft[DRAFT];
      const passkey = await accounts.getPasskey(parsed.credentialId);
      // Someone else's key (another login of the same person included) never passes for this login.
      if (!passkey || passkey.loginId !== req.login.id) {
        failure = passkey ? 'other_login' : 'unknown_credential';
        return false;
      }
      if (parsed.userHandle !== null && parsed.userHandle !== passkey.userHandle) {
        failure = 'other_login';
        return false;
      }
      const checked = await webauthn.verifyAuthentication(challenge, parsed.response, passkey);
      if (!checked.ok) {
        failure = checked.failure;
        return false;
      }
      const a = checked.assertion;
      if (!(await accounts.recordPasskeyUse(passkey.id, { counter: passkey.counter, newCounter: a.newCounter, backedUp: a.backedUp, usedAt: new Date(now()) }))) {
        failure = 'counter';
        return false;
      }
      amr = passkeyAmr(a);
      return true;
    });
    if (!result.passed) return failed(req, result, failure, stage);
    await record(req, 'verified', 'success', { credential: parsed.credentialId.slice(0, 12), amr, ...(stage === 'verify' ? {} : { stage }) });
    return { passed: true, amr };
  }

  return {
    attemptKeys: passkeyKeys,
    enrolled: (login) => passkeyState(login) !== null,
    stage: (login) => (passkeyState(login) ? 'verify' : 'enroll'),
    async page(stage, req) {
      return stage === 'enroll' ? registrationPage(req, 'factors/passkey/enroll') : verifyPage(req);
    },
    async submit(stage, req) {
      if (stage === 'verify') {
        if (!passkeyState(req.login)) return fail(factorSetupExpired('factor.passkey.errors.registerFirst'));
        return verify(req);
      }
      // Another window may have registered one meanwhile: this one is added beside it.
      const made = await register(req, 'enroll', 'Passkey');
      if (!made.passed) return made.outcome;
      return { passed: true, amr: passkeyAmr({ deviceType: made.passkey.deviceType, userVerified: made.userVerified }) };
    },
    change: {
      // The profile's passkeys page (docs/passkeys.md#the-profile): first one of the login's passkeys, then list, rename, remove, add.
      async page(req) {
        const mine = await accounts.listPasskeys(req.login.id);
        const passkeys = mine.map((p) => ({
          id: p.id,
          name: p.name,
          kind: p.deviceType,
          createdAt: p.createdAt.toISOString().slice(0, 10),
          lastUsedAt: p.lastUsedAt?.toISOString().slice(0, 10) ?? null,
        }));
        if (!mayChange(req, mine)) {
          const { options, challenge } = await webauthn.authenticationOptions(mine);
          req.draft[DRAFT] = challenge;
          return { view: 'factors/passkey/manage', locals: { step: 'prove', passkeys, passkeyOptions: JSON.stringify(options), proveMinutes: CHANGE_WINDOW_MS / 60_000 } };
        }
        const page = await registrationPage(req, 'factors/passkey/manage');
        return { view: page.view, locals: { ...page.locals, step: 'manage', passkeys, canRemoveLast: withoutPasskeys(req) !== null } };
      },
      async submit(req) {
        const action = req.body.action;
        const id = req.body.id ?? '';
        const mine = await accounts.listPasskeys(req.login.id);
        if (action === 'prove') {
          // Nothing to prove with: the page offers the first passkey instead.
          if (mine.length === 0) return { done: false };
          const outcome = await verify(req, 'prove');
          if (!outcome.passed) return { done: false, error: outcome.error };
          req.draft[CHANGE_DRAFT] = { provenAt: now(), loginId: req.login.id, userHandle: passkeyState(req.login)?.userHandle ?? null };
          return { done: false };
        }
        if (!mayChange(req, mine)) {
          await record(req, 'failed', 'failure', { stage: action === 'add' || action === 'rename' || action === 'remove' ? action : 'change', reason: 'unproven' });
          return { done: false, error: forbidden('factor.passkey.errors.proveFirst') };
        }
        if (action === 'add') {
          const made = await register(req, 'add', 'Passkey');
          return made.passed ? { done: false } : { done: false, error: made.outcome.passed ? undefined : made.outcome.error };
        }
        const target = mine.find((p) => p.id === id);
        if (!target) return { done: false, error: factorSetupExpired('factor.passkey.errors.noSuchPasskey') };
        if (action === 'rename') {
          const name = passkeyName(req.body.name, target.name);
          await accounts.renamePasskey(req.login.id, target.id, name);
          await record(req, 'renamed', 'success', { credential: target.id.slice(0, 12), name });
          return { done: false };
        }
        if (action !== 'remove') return { done: false, error: invalidFactorAnswer('factor.passkey.errors.noSuchPasskey') };
        if (!(await accounts.deletePasskey(req.login.id, target.id))) return { done: false, error: factorSetupExpired('factor.passkey.errors.noSuchPasskey') };
        // Read after the delete: of two tabs removing the last two, at least one sees none left and puts its own back.
        if ((await accounts.listPasskeys(req.login.id)).length === 0) {
          const left = withoutPasskeys(req, (await accounts.getLogin(req.login.id)) ?? req.login);
          if (left === null) {
            await accounts.addPasskey(target);
            return { done: false, error: invalidFactorAnswer('factor.passkey.errors.lastOne') };
          }
          if (left === 'factor') await accounts.setFactorState(req.login.id, 'passkey', null);
        }
        await record(req, 'removed', 'success', { credential: target.id.slice(0, 12), name: target.name });
        return { done: false };
      },
    },
    async reset(loginId) {
      // The set-up goes before its passkeys: an add racing the reset checks the set-up after storing its passkey (`register`).
      await accounts.setFactorState(loginId, 'passkey', null);
      await accounts.deletePasskeys(loginId);
      await attempts.clear(loginId);
    },
  };
}
