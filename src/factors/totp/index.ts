import QRCode from 'qrcode';
import { z } from 'zod';
import { factorSetupExpired, frozenOut, invalidFactorAnswer, lockedOut, replayRefused, type LatchkeyError } from '../../errors.ts';
import { createSecretBox } from '../../crypto/secretbox.ts';
import type { Login } from '../../storage/accounts/port.ts';
import type { FactorBehaviour, FactorChange, FactorChangeOutcome, FactorDefinition, FactorOutcome, FactorRequest, FactorServices } from '../types.ts';
import { createAttempts, factorKeys } from '../attempts.ts';
import type { AttemptResult } from '../../limits.ts';
import { groupSecret, matchStep, newSecret, normalizeCode } from './code.ts';
import { authenticatorAccount, otpauthUri } from './label.ts';

export { TOTP, codeAt, matchStep, newSecret, stepAt } from './code.ts';
export { authenticatorAccount, otpauthUri } from './label.ts';

/** What the TOTP factor keeps per login. */
export const totpState = z.object({
  /** The base32 secret, sealed by `src/crypto/secretbox.ts` with the login id as context. */
  secret: z.string().min(1),
  /** The account name the app shows (see `authenticatorAccount`). */
  account: z.string(),
  /** ISO time the app was linked. */
  linkedAt: z.string(),
  /** The last accepted time step (the replay guard, `AccountStore.advanceFactorStep`). */
  step: z.number(),
});
export type TotpState = z.infer<typeof totpState>;

/** Six digits, with the spaces or dashes some people type. */
const CODE_FIELD = 64;

const DRAFT = 'totp';
/** The account pages' re-link: when the current app was proven (ms), in the draft. */
const CHANGE_DRAFT = 'totpChange';
/** How long a proven current code lets the person link a new app. */
const CHANGE_WINDOW_MS = 10 * 60_000;

const sealedSecret = (login: Login): string | null => {
  const secret = login.factors.totp?.secret;
  return typeof secret === 'string' && secret ? secret : null;
};

/**
 * An authenticator app (TOTP) after the password. First sign-in: link the app
 * (QR code, grouped secret, `otpauth://` link) and confirm with a code; later:
 * a 6-digit code, each accepted once, under the login's attempt limit.
 */
export const totpFactor: FactorDefinition = {
  id: 'totp',
  amr: ['otp', 'mfa'],
  acr: 'urn:latchkey:acr:totp',
  state: totpState,
  fields: { code: CODE_FIELD },
  changeFields: { code: CODE_FIELD },
  events: ['failed', 'linked', 'locked', 'relinked', 'replay', 'reset', 'verified'].map((e) => `factor.totp.${e}`),
  notices: { 'factor.totp.reset': 'reset', 'factor.totp.linked': 'set', 'factor.totp.relinked': 'set', 'factor.totp.locked': 'locked' },
  ownerReset: { alias: 'reset-authenticator', icon: 'phone' },
  alternatives: ['recovery'],
  create: (services) => createTotp(services),
};

function createTotp({ config, accounts, audit, limiter, now }: FactorServices): FactorBehaviour {
  const box = createSecretBox(config.keys.encryptionKeys);
  const keys = factorKeys('totp');
  const attempts = createAttempts(limiter, keys);
  // The pending secret gets a context of its own, so it can never pass for a stored one.
  const pendingContext = (loginId: string) => `pending:${loginId}`;

  const record = (req: FactorRequest, event: string, outcome: 'success' | 'failure', detail?: Record<string, unknown>) =>
    audit.record({ type: `factor.totp.${event}`, outcome, tenant: req.tenant.id, login: req.login.id, ip: req.ip, userAgent: req.userAgent, ...(detail ? { detail } : {}) });

  const fail = (error: LatchkeyError): FactorOutcome => ({ passed: false, error });

  function pendingSecret(req: FactorRequest): string | null {
    const sealed = (req.draft[DRAFT] as { secret?: unknown } | undefined)?.secret;
    if (typeof sealed !== 'string') return null;
    try {
      return box.open(sealed, pendingContext(req.login.id));
    } catch {
      return null;
    }
  }

  async function account(req: FactorRequest): Promise<string> {
    const siblings = await accounts.listLoginsForEmail(req.tenant.id, req.login.email);
    return authenticatorAccount(req.login, siblings, req.tenant.userTypes);
  }

  async function linkPage(req: FactorRequest, view = 'factors/totp/link') {
    let secret = pendingSecret(req);
    if (!secret) {
      secret = newSecret();
      req.draft[DRAFT] = { secret: box.seal(secret, pendingContext(req.login.id)) };
    }
    const name = await account(req);
    const uri = otpauthUri({ issuer: req.tenant.name, account: name, secret });
    const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 4 });
    return {
      view,
      locals: {
        otpauthUri: uri,
        qrDataUri: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
        secretGroups: groupSecret(secret),
        account: name,
        issuer: req.tenant.name,
      },
    };
  }

  /** Maps a failed attempt to its audit events and error. */
  async function failed(req: FactorRequest, result: Extract<AttemptResult, { passed: false }>, replay: boolean, stage: string): Promise<FactorOutcome> {
    if (result.evaluated) await record(req, replay ? 'replay' : 'failed', 'failure', { stage });
    if (result.frozen) {
      await record(req, 'locked', 'failure', { frozen: true });
      return fail(frozenOut());
    }
    if (result.lockedForSeconds > 0) {
      await record(req, 'locked', 'failure', { retryAfterSeconds: result.lockedForSeconds });
      return fail(lockedOut(result.lockedForSeconds, result.evaluated ? 'errors.totp.wrongLocked' : 'errors.lockedOut'));
    }
    return fail(replay ? replayRefused() : invalidFactorAnswer('errors.totp.wrong'));
  }

  async function link(req: FactorRequest): Promise<FactorOutcome> {
    const code = normalizeCode(req.body.code ?? '');
    if (!/^[0-9]{6}$/.test(code)) return fail(invalidFactorAnswer('errors.totp.enterCode'));
    const secret = pendingSecret(req);
    if (!secret) return fail(factorSetupExpired('errors.totp.setupExpired'));
    let step: number | null = null;
    const result = await attempts.run(req.login, async () => (step = await matchStep(secret, code, now())) !== null);
    if (!result.passed) return failed(req, result, false, 'enroll');
    const state: TotpState = { secret: box.seal(secret, req.login.id), account: await account(req), linkedAt: new Date(now()).toISOString(), step: step! };
    // The stage was read at the start of the request; another window may have linked an app since: only the first one counts.
    if (!(await accounts.compareAndSetFactorState(req.login.id, 'totp', null, state))) {
      return fail(factorSetupExpired((await accounts.getLogin(req.login.id)) ? 'errors.totp.linkedElsewhere' : 'errors.signin.expired'));
    }
    delete req.draft[DRAFT];
    await record(req, 'linked', 'success');
    return { passed: true };
  }

  async function enter(req: FactorRequest, sealed: string): Promise<FactorOutcome> {
    const code = normalizeCode(req.body.code ?? '');
    if (!/^[0-9]{6}$/.test(code)) return fail(invalidFactorAnswer('errors.totp.enterCode'));
    // Outside the attempt: a secret that does not open is a key configuration problem, not a wrong answer.
    const secret = box.open(sealed, req.login.id);
    let replay = false;
    const result = await attempts.run(req.login, async () => {
      const step = await matchStep(secret, code, now());
      if (step === null) return false;
      if (await accounts.advanceFactorStep(req.login.id, 'totp', step)) return true;
      replay = true;
      return false;
    });
    if (!result.passed) return failed(req, result, replay, 'verify');
    await record(req, 'verified', 'success');
    return { passed: true };
  }

  /** Re-linking from the account pages: a code from the current app, then the new app's QR code and a code from it. */
  const change: FactorChange = {
    alias: '/profile/authenticator',
    async page(req) {
      if (!provenForChange(req)) return { view: 'factors/totp/relink', locals: { step: 'verify' } };
      const page = await linkPage(req, 'factors/totp/relink');
      return { view: page.view, locals: { ...page.locals, step: 'link' } };
    },
    async submit(req): Promise<FactorChangeOutcome> {
      const sealed = sealedSecret(req.login);
      if (!sealed) return { done: false, error: factorSetupExpired('errors.totp.noApp') };
      if (!provenForChange(req)) {
        const outcome = await enter(req, sealed);
        if (!outcome.passed) return { done: false, error: outcome.error };
        delete req.draft[DRAFT];
        req.draft[CHANGE_DRAFT] = { provenAt: now() };
        return { done: false };
      }
      const code = normalizeCode(req.body.code ?? '');
      if (!/^[0-9]{6}$/.test(code)) return { done: false, error: invalidFactorAnswer('errors.totp.enterNewCode') };
      const secret = pendingSecret(req);
      if (!secret) return { done: false, error: factorSetupExpired('errors.totp.setupExpired') };
      let step: number | null = null;
      const result = await attempts.run(req.login, async () => (step = await matchStep(secret, code, now())) !== null);
      if (!result.passed) {
        const outcome = await failed(req, result, false, 'relink');
        return { done: false, error: outcome.passed ? undefined : outcome.error };
      }
      const state: TotpState = { secret: box.seal(secret, req.login.id), account: await account(req), linkedAt: new Date(now()).toISOString(), step: step! };
      // Only over the app this request was proven with: an owner's reset meanwhile wins.
      if (!(await accounts.compareAndSetFactorState(req.login.id, 'totp', req.login.factors.totp ?? null, state)))
        return { done: false, error: factorSetupExpired('errors.login.gone') };
      delete req.draft[DRAFT];
      delete req.draft[CHANGE_DRAFT];
      await record(req, 'relinked', 'success');
      return { done: true };
    },
  };

  function provenForChange(req: FactorRequest): boolean {
    const provenAt = (req.draft[CHANGE_DRAFT] as { provenAt?: unknown } | undefined)?.provenAt;
    return typeof provenAt === 'number' && now() - provenAt < CHANGE_WINDOW_MS;
  }

  return {
    attemptKeys: keys,
    enrolled: (login) => sealedSecret(login) !== null,
    stage: (login) => (sealedSecret(login) ? 'verify' : 'enroll'),
    async page(stage, req) {
      return stage === 'enroll' ? linkPage(req) : { view: 'factors/totp/enter', locals: {} };
    },
    async submit(stage, req) {
      if (stage === 'enroll') return link(req);
      const sealed = sealedSecret(req.login);
      if (!sealed) return fail(factorSetupExpired('errors.totp.linkFirst'));
      return enter(req, sealed);
    },
    async reset(loginId) {
      await accounts.setFactorState(loginId, 'totp', null);
      await attempts.clear(loginId);
    },
    change,
  };
}
