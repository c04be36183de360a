/**
 * Every error Latchkey shows a person or a program, with a stable code.
 * Mapped to pages and JSON in one place (`src/web/errors.ts`).
 */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_credentials'
  | 'invalid_factor_answer'
  | 'invalid_new_pin'
  | 'replay'
  | 'factor_setup_expired'
  | 'locked_out'
  | 'csrf'
  | 'forbidden'
  | 'not_found'
  | 'no_login_for_client'
  | 'interaction_expired'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'temporarily_unavailable'
  | 'server_error';

export class LatchkeyError extends Error {
  override name = 'LatchkeyError';
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    /** Extra values for the page (never secrets), e.g. `retryAfterSeconds`. */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message = 'The request could not be understood.') =>
  new LatchkeyError('bad_request', 400, message);

export const invalidCredentials = () =>
  new LatchkeyError('invalid_credentials', 400, 'The email address or password is not correct.');

export const lockedOut = (retryAfterSeconds: number, message = 'Too many failed attempts. Please wait before trying again.') =>
  new LatchkeyError('locked_out', 429, message, { retryAfterSeconds });

/** A wrong or malformed PIN or authenticator code (400). */
export const invalidFactorAnswer = (message: string) => new LatchkeyError('invalid_factor_answer', 400, message);

/** A new PIN refused by the PIN rules; `detail.problem` names the rule. */
export const invalidNewPin = (problem: string, message: string) => new LatchkeyError('invalid_new_pin', 400, message, { problem });

/** An authenticator code that was already used (SPEC §7: a code is accepted once). */
export const replayRefused = () =>
  new LatchkeyError('replay', 400, 'This code has already been used. Wait for the next code in your authenticator app and enter that one.');

/** A second-factor set-up whose pending state is gone (expired, or finished in another window). */
export const factorSetupExpired = (message: string) => new LatchkeyError('factor_setup_expired', 400, message);

export const csrfRefused = () =>
  new LatchkeyError('csrf', 403, 'This form has expired or did not come from this site. Please start again.');

export const forbidden = (message = 'You do not have access to this page.') => new LatchkeyError('forbidden', 403, message);

export const notFound = (message = 'This page does not exist.') => new LatchkeyError('not_found', 404, message);

export const noLoginForClient = () =>
  new LatchkeyError('no_login_for_client', 403, 'Your account has no access to this application. Ask your administrator for access.');

export const interactionExpired = () =>
  new LatchkeyError('interaction_expired', 400, 'This sign-in has expired. Go back to the application and start again.');

export const unavailable = (store?: string) =>
  new LatchkeyError('temporarily_unavailable', 503, 'The service is temporarily unavailable. Please try again in a moment.', store ? { store } : {});
