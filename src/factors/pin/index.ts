import { z } from 'zod';
import { frozenOut, invalidFactorAnswer, invalidNewPin, lockedOut, factorSetupExpired, type LatchkeyError } from '../../errors.ts';
import type { Login } from '../../storage/accounts/port.ts';
import type { FactorBehaviour, FactorDefinition, FactorOutcome, FactorRequest, FactorServices } from '../types.ts';
import { createAttempts, factorKeys } from '../attempts.ts';
import { checkNewPin, type PinRules } from './rules.ts';
import { pinChange } from './change.ts';

export { checkNewPin, pinProblemMessage, type PinProblem, type PinRules } from './rules.ts';

/** What the PIN factor keeps per login. */
export const pinState = z.object({
  /** argon2id PHC string of the PIN, peppered with `config.keys.pepper`. */
  hash: z.string().min(1),
  /** ISO time the PIN was chosen. */
  setAt: z.string(),
});
export type PinState = z.infer<typeof pinState>;

const pinHash = (login: Login): string | null => {
  const hash = login.factors.pin?.hash;
  return typeof hash === 'string' && hash ? hash : null;
};

/** A PIN may be up to `PIN_MAX_LENGTH` digits long (config); the form's fields are bounded a little above. */
const PIN_FIELD = 64;

/**
 * A PIN after the password. First sign-in: choose one (twice, checked by the
 * PIN rules); later: enter it, under the login's attempt limit.
 */
export const pinFactor: FactorDefinition = {
  id: 'pin',
  amr: ['pin'],
  acr: 'urn:latchkey:acr:pin',
  state: pinState,
  fields: { pin: PIN_FIELD, pin_confirm: PIN_FIELD },
  changeFields: { current_pin: PIN_FIELD, pin: PIN_FIELD, pin_confirm: PIN_FIELD },
  events: ['changed', 'failed', 'locked', 'reset', 'set', 'verified'].map((e) => `factor.pin.${e}`),
  notices: { 'factor.pin.reset': 'reset', 'factor.pin.set': 'set', 'factor.pin.changed': 'set', 'factor.pin.locked': 'locked' },
  ownerReset: { alias: 'reset-pin' },
  create: (services) => createPin(services),
};

function createPin({ config, accounts, hasher, audit, limiter, now }: FactorServices): FactorBehaviour {
  const rules: PinRules = { minLength: config.pin.minLength, maxLength: config.pin.maxLength };
  const keys = factorKeys('pin');
  const attempts = createAttempts(limiter, keys);
  // Any length up to the maximum: PINs chosen under an older, lower minimum still work.
  const enteredPin = new RegExp(`^[0-9]{1,${rules.maxLength}}$`);

  const record = (req: FactorRequest, event: string, outcome: 'success' | 'failure', detail?: Record<string, unknown>) =>
    audit.record({ type: `factor.pin.${event}`, outcome, tenant: req.tenant.id, login: req.login.id, ip: req.ip, userAgent: req.userAgent, ...(detail ? { detail } : {}) });

  const fail = (error: LatchkeyError): FactorOutcome => ({ passed: false, error });

  async function choose(req: FactorRequest): Promise<FactorOutcome> {
    const pin = req.body.pin ?? '';
    const problem = checkNewPin(pin, req.body.pin_confirm ?? '', rules);
    if (problem) return fail(invalidNewPin(problem, rules));
    const hash = await hasher.hash(pin, { pepper: true });
    const state: PinState = { hash, setAt: new Date(now()).toISOString() };
    // The stage was read at the start of the request; another window may have chosen a PIN since: only the first one counts.
    if (!(await accounts.compareAndSetFactorState(req.login.id, 'pin', null, state))) {
      return fail(factorSetupExpired((await accounts.getLogin(req.login.id)) ? 'errors.pin.chosenElsewhere' : 'errors.signin.expired'));
    }
    await record(req, 'set', 'success');
    return { passed: true };
  }

  async function enter(req: FactorRequest, hash: string): Promise<FactorOutcome> {
    const pin = req.body.pin ?? '';
    if (!enteredPin.test(pin)) return fail(invalidFactorAnswer('errors.pin.digitsOnly'));
    const rehash = (next: string) => accounts.replaceFactorHash(req.login.id, 'pin', hash, next);
    const result = await attempts.run(req.login, () => hasher.verify(hash, pin, { pepper: true, rehash }));
    if (result.passed) {
      await record(req, 'verified', 'success');
      return { passed: true };
    }
    if (result.evaluated) await record(req, 'failed', 'failure');
    if (result.frozen) {
      await record(req, 'locked', 'failure', { frozen: true });
      return fail(frozenOut());
    }
    if (result.lockedForSeconds > 0) {
      await record(req, 'locked', 'failure', { retryAfterSeconds: result.lockedForSeconds });
      return fail(lockedOut(result.lockedForSeconds, result.evaluated ? 'errors.pin.wrongLocked' : 'errors.lockedOut'));
    }
    return fail(invalidFactorAnswer('errors.pin.wrong'));
  }

  return {
    attemptKeys: keys,
    enrolled: (login) => pinHash(login) !== null,
    stage: (login) => (pinHash(login) ? 'verify' : 'enroll'),
    async page(stage) {
      return stage === 'enroll' ? { view: 'factors/pin/choose', locals: { ...rules } } : { view: 'factors/pin/enter', locals: {} };
    },
    async submit(stage, req) {
      if (stage === 'enroll') return choose(req);
      const hash = pinHash(req.login);
      if (!hash) return fail(factorSetupExpired('errors.pin.chooseFirst'));
      return enter(req, hash);
    },
    async reset(loginId) {
      await accounts.setFactorState(loginId, 'pin', null);
      await attempts.clear(loginId);
    },
    change: pinChange({ accounts, hasher, audit, attempts, rules, pinHash, now }),
  };
}
