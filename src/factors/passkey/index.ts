/**
 * Passkeys and security keys (WebAuthn) as a second factor, and as a sign-in
 * of their own (docs/passkeys.md). First sign-in: register one; later: use
 * one of the login's. A login may have several, named, added and removed on
 * the profile (`./profile.ts`); the credentials live in the account store's
 * passkey methods, and the factor's state only says the login has set up
 * passkeys and which user handle its credentials carry.
 */
import { z } from 'zod';
import { factorSetupExpired, frozenOut, invalidFactorAnswer, lockedOut, replayRefused, type LatchkeyError } from '../../errors.ts';
import type { Login, Passkey } from '../../storage/accounts/port.ts';
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
    const handle = state?.userHandle ?? (typeof req.draft.passkeyHandle === 'string' ? req.draft.passkeyHandle : newUserHandle());
    req.draft.passkeyHandle = handle;
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

  /**
   * Verifies a registration from `req.body.response` and stores the new passkey
   * (and the factor's state on the first). The answer to the draft's challenge,
   * counted in the login's attempts like any answer.
   */
  async function register(
    req: FactorRequest,
    stage: string,
    defaultName: string,
  ): Promise<{ passed: true; passkey: Passkey; userVerified: boolean } | { passed: false; outcome: FactorOutcome }> {
    const handle = passkeyState(req.login)?.userHandle ?? req.draft.passkeyHandle;
    if (typeof handle !== 'string') return { passed: false, outcome: fail(ceremonyError('expired')) };
    let failure: CeremonyFailure | null = null;
    let made: Passkey | null = null;
    let userVerified = false;
    const result = await attempts.run(req.login, async () => {
      const verified = await webauthn.verifyRegistration(req.draft[DRAFT], req.body.response ?? '');
      delete req.draft[DRAFT];
      if (!verified.ok) {
        failure = verified.failure;
        return false;
      }
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
    if (!result.passed || !made) return { passed: false, outcome: await failed(req, result as Extract<AttemptResult, { passed: false }>, failure ?? 'unverified', stage) };
    const passkey: Passkey = made;
    if (!passkeyState(req.login)) {
      const state: PasskeyState = { userHandle: handle, enrolledAt: new Date(now()).toISOString() };
      await accounts.setFactorState(req.login.id, 'passkey', state);
    }
    delete req.draft.passkeyHandle;
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

  async function verifyPage(req: FactorRequest) {
    const mine = await accounts.listPasskeys(req.login.id);
    const { options, challenge } = await webauthn.authenticationOptions(mine);
    req.draft[DRAFT] = challenge;
    // None left (the last one went while recovery codes remain): the page says so and offers the codes.
    return { view: 'factors/passkey/verify', locals: { passkeyOptions: JSON.stringify(options), noneLeft: mine.length === 0 } };
  }

  async function verify(req: FactorRequest): Promise<FactorOutcome> {
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
    if (!result.passed) return failed(req, result, failure, 'verify');
    await record(req, 'verified', 'success', { credential: parsed.credentialId.slice(0, 12), amr });
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
      // The profile's passkeys page: list, rename, remove, add (within the account pages' re-authentication window).
      async page(req) {
        const mine = await accounts.listPasskeys(req.login.id);
        const page = await registrationPage(req, 'factors/passkey/manage');
        return {
          view: page.view,
          locals: {
            ...page.locals,
            passkeys: mine.map((p) => ({
              id: p.id,
              name: p.name,
              kind: p.deviceType,
              createdAt: p.createdAt.toISOString().slice(0, 10),
              lastUsedAt: p.lastUsedAt?.toISOString().slice(0, 10) ?? null,
            })),
            canRemoveLast: withoutPasskeys(req) !== null,
          },
        };
      },
      async submit(req) {
        const action = req.body.action;
        const id = req.body.id ?? '';
        if (action === 'add') {
          const made = await register(req, 'add', 'Passkey');
          return made.passed ? { done: false } : { done: false, error: made.outcome.passed ? undefined : made.outcome.error };
        }
        const mine = await accounts.listPasskeys(req.login.id);
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
      await accounts.deletePasskeys(loginId);
      await accounts.setFactorState(loginId, 'passkey', null);
      await attempts.clear(loginId);
    },
  };
}
