/**
 * Changing the PIN from the account pages: the current PIN (counted against
 * the same attempt limits as the sign-in), then a new one by the same
 * rules, entered twice.
 */
import { factorSetupExpired, frozenOut, invalidFactorAnswer, invalidNewPin, lockedOut } from '../../errors.ts';
import type { Audit } from '../../audit.ts';
import type { Hasher } from '../../crypto/password.ts';
import type { AccountStore, Login } from '../../storage/accounts/port.ts';
import type { Attempts } from '../attempts.ts';
import type { FactorChange, FactorChangeOutcome, FactorRequest } from '../types.ts';
import { checkNewPin, type PinRules } from './rules.ts';

export interface PinChangeDeps {
  accounts: AccountStore;
  hasher: Hasher;
  audit: Audit;
  attempts: Attempts;
  rules: PinRules;
  pinHash: (login: Login) => string | null;
  now: () => number;
}

export function pinChange({ accounts, hasher, audit, attempts, rules, pinHash, now }: PinChangeDeps): FactorChange {
  const enteredPin = new RegExp(`^[0-9]{1,${rules.maxLength}}$`);
  const record = (req: FactorRequest, event: string, outcome: 'success' | 'failure', detail?: Record<string, unknown>) =>
    audit.record({ type: `factor.pin.${event}`, outcome, tenant: req.tenant.id, login: req.login.id, ip: req.ip, userAgent: req.userAgent, ...(detail ? { detail } : {}) });
  const refuse = (error: Extract<FactorChangeOutcome, { done: false }>['error']): FactorChangeOutcome => ({ done: false, error });

  return {
    alias: '/profile/pin',
    async page() {
      return { view: 'factors/pin/change', locals: { ...rules } };
    },
    async submit(req) {
      const hash = pinHash(req.login);
      if (!hash) return refuse(factorSetupExpired('errors.pin.noPin'));
      const current = req.body.current_pin ?? '';
      const pin = req.body.pin ?? '';
      if (!enteredPin.test(current)) return refuse(invalidFactorAnswer('errors.pin.currentDigitsOnly'));
      // The new PIN is checked first: a refusal for its shape spends no attempt.
      const problem = checkNewPin(pin, req.body.pin_confirm ?? '', rules);
      if (problem) return refuse(invalidNewPin(problem, rules));
      const result = await attempts.run(req.login, () => hasher.verify(hash, current, { pepper: true }));
      if (!result.passed) {
        if (result.evaluated) await record(req, 'failed', 'failure', { stage: 'change' });
        if (result.frozen) {
          await record(req, 'locked', 'failure', { frozen: true });
          return refuse(frozenOut());
        }
        if (result.lockedForSeconds > 0) {
          await record(req, 'locked', 'failure', { retryAfterSeconds: result.lockedForSeconds });
          return refuse(lockedOut(result.lockedForSeconds, result.evaluated ? 'errors.pin.currentWrongLocked' : 'errors.lockedOut'));
        }
        return refuse(invalidFactorAnswer('errors.pin.currentWrong'));
      }
      if (pin === current) return refuse(invalidNewPin('unchanged', rules));
      const state = { hash: await hasher.hash(pin, { pepper: true }), setAt: new Date(now()).toISOString() };
      // Only over the PIN just proven: a change in another window meanwhile wins, this one is refused.
      const proven = req.login.factors.pin ?? null;
      if (!(await accounts.compareAndSetFactorState(req.login.id, 'pin', proven, state))) return refuse(factorSetupExpired('errors.login.gone'));
      await record(req, 'changed', 'success');
      return { done: true };
    },
  };
}
