// The rules a new PIN must meet.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkNewPin, pinProblemMessage, type PinProblem } from '../../src/factors/pin/rules.ts';

const rules = { minLength: 6, maxLength: 12 };
const check = (pin: string, confirm = pin, r = rules) => checkNewPin(pin, confirm, r);

describe('PIN rules', () => {
  it('accepts PINs of enough digits that are neither one digit nor a plain sequence', () => {
    for (const pin of ['385920', '102938', '1234568', '123465', '975310', '246802', '112233', '000001', '9071462839']) {
      assert.equal(check(pin), null, pin);
    }
  });

  it('refuses PINs that are not all digits', () => {
    for (const pin of ['12345a', 'abcdef', '12 456', '１２３４５６', '-12345', '123.45', '٣٨٥٩٢٠']) assert.equal(check(pin), 'not_digits', pin);
  });

  it('refuses PINs shorter than the minimum, which is configurable', () => {
    assert.equal(check(''), 'too_short');
    assert.equal(check('38592'), 'too_short');
    assert.equal(check('3859'), 'too_short');
    assert.equal(check('3859', '3859', { minLength: 4, maxLength: 12 }), null);
    assert.equal(check('385920', '385920', { minLength: 8, maxLength: 12 }), 'too_short');
  });

  it('refuses PINs longer than the maximum', () => {
    assert.equal(check('3859203859203'), 'too_long');
    assert.equal(check('385920385920'), null);
  });

  it('refuses one digit repeated', () => {
    for (const pin of ['000000', '111111', '9999999', '555555555555']) assert.equal(check(pin), 'one_digit', pin);
  });

  it('refuses plain ascending and descending sequences, also wrapping past 9 and 0', () => {
    for (const pin of ['123456', '012345', '456789', '1234567890', '654321', '987654', '543210', '890123', '901234', '210987', '109876']) {
      assert.equal(check(pin), 'sequence', pin);
    }
    for (const pin of ['123457', '135791', '654320', '121212']) assert.equal(check(pin), null, pin);
  });

  it('refuses two different entries, after the weakness checks', () => {
    assert.equal(check('385920', '385921'), 'mismatch');
    assert.equal(check('385920', ''), 'mismatch');
    assert.equal(check('111111', '222222'), 'one_digit');
  });

  it('has a clear message for every problem', () => {
    const problems: PinProblem[] = ['not_digits', 'too_short', 'too_long', 'one_digit', 'sequence', 'mismatch'];
    for (const p of problems) assert.ok(pinProblemMessage(p, rules).length > 10, p);
    assert.match(pinProblemMessage('too_short', { minLength: 8, maxLength: 12 }), /at least 8 digits/);
    assert.match(pinProblemMessage('mismatch', rules), /not the same/);
    assert.match(pinProblemMessage('sequence', rules), /sequence/);
  });
});
