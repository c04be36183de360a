/**
 * Recovery codes: a way back in for a person who lost the authenticator app
 * (or a passkey) without calling the owner. A method (docs/factors.md) that
 * any factor can list in its `alternatives`.
 *
 * Ten codes of 12 characters from a 32-letter alphabet (60 bits each), shown
 * once — after the factor is set up at a sign-in, and on the profile's
 * regeneration — and stored only as keyed hashes. Each is spent once by
 * compare-and-set, under the attempt limits of the factor it stands in for.
 * A set records the level (`acr`) of the factor set up or passed when it was
 * made, and stands in for no stronger factor (the registry's `offered`).
 */
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { frozenOut, invalidFactorAnswer, lockedOut } from '../../errors.ts';
import type { AccountStore, Login } from '../../storage/accounts/port.ts';
import { createAttempts, factorKeys } from '../attempts.ts';
import { hasText } from '../../i18n.ts';
import type { Factor, FactorRequest, MethodBehaviour, MethodDefinition, MethodOutcome } from '../types.ts';

export const RECOVERY = {
  count: 10,
  /** Crockford's base32 letters: no I, L, O, U to misread. 12 of them: 60 bits. */
  alphabet: '0123456789ABCDEFGHJKMNPQRSTVWXYZ',
  length: 12,
} as const;

/**
 * What the method keeps per login: the codes' hashes, in the order shown, and
 * when each was used; `level`, the `acr` of the factor the set was made under
 * (absent in a set stored before levels were recorded).
 */
export const recoveryState = z.object({
  codes: z.array(z.object({ hash: z.string(), usedAt: z.string().nullable() })),
  createdAt: z.string(),
  level: z.string().optional(),
});
export type RecoveryState = z.infer<typeof recoveryState>;

/** `XXXX-XXXX-XXXX`. */
export const formatCode = (code: string) => code.match(/.{1,4}/g)!.join('-');

/** What people type or paste: any case, with spaces or dashes. */
export const normalizeRecoveryCode = (input: string) => input.replace(/[\s-]/g, '').toUpperCase();

export function newCodes(): string[] {
  return Array.from({ length: RECOVERY.count }, () => Array.from({ length: RECOVERY.length }, () => RECOVERY.alphabet[randomInt(RECOVERY.alphabet.length)]).join(''));
}

const stateOf = (login: Login): RecoveryState | null => {
  const parsed = recoveryState.safeParse(login.factors.recovery);
  return parsed.success ? parsed.data : null;
};

const unused = (state: RecoveryState | null) => state?.codes.filter((c) => c.usedAt === null).length ?? 0;

/** Rounds of compare-and-set before a submission gives up: only another code being spent at the same moment makes one lose. */
const SPEND_TRIES = 5;

export interface RecoveryCodes {
  /** Replaces the login's codes with ten new ones made under `level` (their hashes stored); returns them, formatted, to be shown once. */
  generate(loginId: string, level: string): Promise<string[] | null>;
}

export function recoveryCodes(accounts: AccountStore, pepper: string, now: () => number): RecoveryCodes & { hash(code: string): string } {
  // A fast keyed hash is enough: the codes are random with 60 bits each, so
  // no dictionary applies and guessing is bounded by the attempt limits; the
  // key (from the pepper) makes a stolen store useless for an offline search.
  const key = createHmac('sha256', pepper).update('latchkey recovery codes v1').digest();
  const hash = (code: string) => createHmac('sha256', key).update(code).digest('base64url');
  return {
    hash,
    async generate(loginId, level) {
      const codes = newCodes();
      const next: RecoveryState = { codes: codes.map((c) => ({ hash: hash(c), usedAt: null })), createdAt: new Date(now()).toISOString(), level };
      for (let i = 0; i < SPEND_TRIES; i++) {
        const login = await accounts.getLogin(loginId);
        if (!login) return null;
        if (await accounts.compareAndSetFactorState(loginId, 'recovery', login.factors.recovery ?? null, next)) return codes.map(formatCode);
      }
      return null;
    },
  };
}

export const recoveryMethod: MethodDefinition = {
  id: 'recovery',
  // A one-time password after the password (RFC 8176); the audit's `signin.success` names the method.
  amr: ['otp', 'mfa'],
  state: recoveryState,
  fields: { recovery_code: 64 },
  events: ['generated', 'used', 'regenerated', 'voided', 'failed', 'locked'].map((e) => `factor.recovery.${e}`),
  create: ({ config, accounts, audit, limiter, now }): MethodBehaviour => {
    const codes = recoveryCodes(accounts, config.keys.pepper, now);
    const record = (req: FactorRequest, event: string, outcome: 'success' | 'failure', detail?: Record<string, unknown>) =>
      audit.record({ type: `factor.recovery.${event}`, outcome, tenant: req.tenant.id, login: req.login.id, ip: req.ip, userAgent: req.userAgent, ...(detail ? { detail } : {}) });

    /**
     * Marks the code used; null when it is not one of the login's unused codes
     * (or someone spent it first), or the set is no longer made under `level`,
     * the one the registry let stand in for this factor.
     */
    async function spend(loginId: string, code: string, level: string | undefined): Promise<{ remaining: number } | null> {
      const wanted = Buffer.from(codes.hash(code));
      for (let i = 0; i < SPEND_TRIES; i++) {
        const login = await accounts.getLogin(loginId);
        const state = login ? stateOf(login) : null;
        if (!login || !state || state.level !== level) return null;
        const index = state.codes.findIndex((c) => c.usedAt === null && c.hash.length === wanted.length && timingSafeEqual(Buffer.from(c.hash), wanted));
        if (index < 0) return null;
        const next: RecoveryState = { ...state, codes: state.codes.map((c, j) => (j === index ? { ...c, usedAt: new Date(now()).toISOString() } : c)) };
        // Of parallel submissions of one code exactly one writes; the others read it used on the next round.
        if (await accounts.compareAndSetFactorState(loginId, 'recovery', login.factors.recovery ?? null, next)) return { remaining: unused(next) };
      }
      return null;
    }

    return {
      available: (login) => unused(stateOf(login)) > 0,
      level: (login) => stateOf(login)?.level ?? null,
      count: (login) => (stateOf(login) ? unused(stateOf(login)) : null),
      async page() {
        return { view: 'factors/recovery/enter', locals: {} };
      },
      async submit(req, factor: Factor): Promise<MethodOutcome> {
        const code = normalizeRecoveryCode(req.body.recovery_code ?? '');
        if (code.length !== RECOVERY.length || [...code].some((ch) => !RECOVERY.alphabet.includes(ch))) {
          return { passed: false, error: invalidFactorAnswer('errors.recoveryCode.enterCode') };
        }
        // The same counters as the factor it stands in for: a code is one more guess at that factor.
        const attempts = createAttempts(limiter, factor.attemptKeys ?? factorKeys(factor.id));
        let spent: { remaining: number } | null = null;
        const level = stateOf(req.login)?.level;
        const result = await attempts.run(req.login, async () => (spent = await spend(req.login.id, code, level)) !== null);
        if (!result.passed) {
          if (result.evaluated) await record(req, 'failed', 'failure');
          if (result.frozen) {
            await record(req, 'locked', 'failure', { frozen: true });
            return { passed: false, error: frozenOut() };
          }
          if (result.lockedForSeconds > 0) {
            await record(req, 'locked', 'failure', { retryAfterSeconds: result.lockedForSeconds });
            return { passed: false, error: lockedOut(result.lockedForSeconds) };
          }
          return { passed: false, error: invalidFactorAnswer('errors.recoveryCode.wrong') };
        }
        const remaining = (spent as { remaining: number } | null)?.remaining ?? 0;
        await record(req, 'used', 'success', { remaining, factor: factor.id });
        // What to do about the lost factor is the factor's to say (`factor.<id>.afterRecovery`, else a general hint).
        const hint = hasText('en', `factor.${factor.id}.afterRecovery`) ? `factor.${factor.id}.afterRecovery` : 'factor.recovery.used.relink';
        return { passed: true, page: { view: 'factors/recovery/used', locals: { remaining, factor: factor.id, hint } } };
      },
      async afterEnrol(req, factor) {
        const shown = await codes.generate(req.login.id, factor.acr);
        if (!shown) return null;
        await record(req, 'generated', 'success', { count: shown.length });
        return { view: 'factors/recovery/codes', locals: { codes: shown, action: 'signin' } };
      },
      async regenerate(req, factor) {
        const shown = await codes.generate(req.login.id, factor.acr);
        if (!shown) return null;
        await record(req, 'regenerated', 'success', { count: shown.length, factor: factor.id });
        return { view: 'factors/recovery/codes', locals: { codes: shown, action: 'profile' } };
      },
      async void(loginId, by) {
        const login = await accounts.getLogin(loginId);
        if (!login?.factors.recovery) return;
        await accounts.setFactorState(loginId, 'recovery', null);
        await audit.record({ type: 'factor.recovery.voided', outcome: 'success', tenant: by.tenant, login: loginId, ip: by.ip, userAgent: by.userAgent, detail: { by: by.by } });
      },
    };
  },
};
