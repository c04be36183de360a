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
  | 'upstream_unavailable'
  | 'upstream_error'
  | 'upstream_invalid_response'
  | 'upstream_state'
  | 'upstream_no_account'
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

/**
 * Sign-in with an upstream OpenID provider (docs/upstream.md). `detail.upstream`
 * names the provider; each page offers the way back to the login page.
 */
export const upstreamUnavailable = (name: string) =>
  new LatchkeyError('upstream_unavailable', 502, `${name} cannot be reached right now. Try again in a moment, or sign in with your email address and password.`);

/** The upstream answered with an OAuth error (e.g. `access_denied`); `detail.error` carries it. */
export const upstreamError = (name: string, error: string) =>
  new LatchkeyError(
    'upstream_error',
    400,
    error === 'access_denied' ? `The sign-in with ${name} was cancelled or refused.` : `${name} could not sign you in (${error}).`,
    { error },
  );

export const upstreamInvalidResponse = (name: string) =>
  new LatchkeyError('upstream_invalid_response', 502, `${name} sent an answer that could not be verified, so it was not accepted.`);

/** The upstream's answer does not belong to this sign-in (a missing, tampered or already used state). */
export const upstreamState = () =>
  new LatchkeyError('upstream_state', 400, 'This answer does not match a sign-in in progress in this browser: it expired, was already used or was altered. Please start the sign-in again.');

export const upstreamNoAccount = (name: string, reason: 'email_not_verified' | 'no_identity') =>
  new LatchkeyError(
    'upstream_no_account',
    403,
    reason === 'email_not_verified'
      ? `No account matches your ${name} account: ${name} has not verified its email address.`
      : `No account matches the email address of your ${name} account.`,
    { problem: reason },
  );
