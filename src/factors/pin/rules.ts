/**
 * The rules a new PIN must meet, as pure functions: used by
 * the sign-in journey's "choose a PIN" page and by the account pages' "change
 * PIN" form.
 */
import { english, type Translate } from '../../i18n.ts';

export interface PinRules {
  /** Fewest digits (`config.pin.minLength`, 6 by default). */
  minLength: number;
  /** Most digits (`config.pin.maxLength`). */
  maxLength: number;
}

/** Why a new PIN is refused, in the order they are checked. */
export type PinProblem = 'not_digits' | 'too_short' | 'too_long' | 'one_digit' | 'sequence' | 'mismatch';

/**
 * The first reason to refuse `pin` (entered twice: `pin` and `confirm`), or
 * null when it is acceptable. Weakness is reported before a mismatch, so the
 * person learns what to choose instead rather than to retype.
 */
export function checkNewPin(pin: string, confirm: string, rules: PinRules): PinProblem | null {
  if (!/^[0-9]*$/.test(pin)) return 'not_digits';
  if (pin.length < rules.minLength) return 'too_short';
  if (pin.length > rules.maxLength) return 'too_long';
  if (/^(\d)\1*$/.test(pin)) return 'one_digit';
  if (isPlainSequence(pin)) return 'sequence';
  if (pin !== confirm) return 'mismatch';
  return null;
}

/** The text shown for a refused PIN, in `t`'s language (English by default): `errors.newPin.{problem}`. */
export function pinProblemMessage(problem: PinProblem, rules: PinRules, t: Translate = english): string {
  return t(`errors.newPin.${problem}`, { minLength: rules.minLength, maxLength: rules.maxLength });
}

/** 123456, 654321, and the same wrapping around the keypad row (890123, 210987). */
function isPlainSequence(pin: string): boolean {
  const digits = [...pin].map(Number);
  const steps = digits.slice(1).map((d, i) => (d - digits[i]! + 10) % 10);
  return steps.every((s) => s === 1) || steps.every((s) => s === 9);
}
