/**
 * Every error Latchkey shows a person or a program, with a stable code.
 * Mapped to pages and JSON in one place (`src/web/errors.ts`).
 *
 * An error names its text by a key of the catalogues (`locales/*.json`, see
 * `src/i18n.ts`), with `detail` as the values it interpolates; pages show it
 * in the page's language, JSON bodies and logs in English (`message`).
 */
import { english } from './i18n.ts';

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
  | 'conflict'
  | 'no_login_for_client'
  | 'interaction_expired'
  | 'signin_busy'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'temporarily_unavailable'
  | 'invalid_client'
  | 'upstream_unavailable'
  | 'upstream_error'
  | 'upstream_invalid_response'
  | 'upstream_state'
  | 'upstream_no_account'
  | 'upstream_link_unconfirmable'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'namesake'
  | 'precondition_failed'
  | 'rate_limited'
  | 'signin_ended'
  | 'server_error';

/**
 * Errors the person corrects on the form they sent (it is shown again, with
 * the error), rather than on an error page: a missing or malformed field, a
 * wrong password, PIN or code, a refused new PIN, a lockout's wait.
 */
const FORM_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'bad_request',
  'conflict',
  'invalid_credentials',
  'invalid_factor_answer',
  'invalid_new_pin',
  'replay',
  'locked_out',
]);

export class LatchkeyError extends Error {
  override name = 'LatchkeyError';
  /** Shown on the form that was sent (see `FORM_ERRORS`). */
  get onForm(): boolean {
    return FORM_ERRORS.has(this.code);
  }
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    /** The text's key in the catalogues, e.g. `errors.pin.wrong`. */
    readonly key: string,
    /** Extra values for the page and its text (never secrets), e.g. `retryAfterSeconds`. */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(english(key, detail));
  }
}

export const badRequest = (key = 'errors.bad_request', detail: Record<string, unknown> = {}) => new LatchkeyError('bad_request', 400, key, detail);

export const invalidCredentials = (key = 'errors.signin.invalidCredentials') => new LatchkeyError('invalid_credentials', 400, key);

export const lockedOut = (retryAfterSeconds: number, key = 'errors.lockedOut') => new LatchkeyError('locked_out', 429, key, { retryAfterSeconds });

/**
 * A lockout that no wait lifts (`detail.frozen`, no `retryAfterSeconds`): the
 * key reached its most consecutive failures and waits for an unlock by the
 * tenant's owner or an operator (docs/security.md).
 */
export const frozenOut = () => new LatchkeyError('locked_out', 429, 'errors.frozen', { frozen: true });

/** A wrong or malformed PIN or authenticator code (400). */
export const invalidFactorAnswer = (key: string) => new LatchkeyError('invalid_factor_answer', 400, key);

/** A new PIN refused by the PIN rules; `detail.problem` names the rule (`errors.newPin.{problem}`). */
export const invalidNewPin = (problem: string, rules: { minLength: number; maxLength: number }) =>
  new LatchkeyError('invalid_new_pin', 400, `errors.newPin.${problem}`, { problem, minLength: rules.minLength, maxLength: rules.maxLength });

/** An authenticator code that was already used (a code is accepted once). */
export const replayRefused = (key = 'errors.totp.replay') => new LatchkeyError('replay', 400, key);

/** A second-factor set-up whose pending state is gone (expired, or finished in another window). */
export const factorSetupExpired = (key: string) => new LatchkeyError('factor_setup_expired', 400, key);

export const csrfRefused = () => new LatchkeyError('csrf', 403, 'errors.csrf');

export const forbidden = (key = 'errors.forbidden', detail: Record<string, unknown> = {}) => new LatchkeyError('forbidden', 403, key, detail);

export const notFound = (key = 'errors.not_found') => new LatchkeyError('not_found', 404, key);

/**
 * An owner page's id that is not of the owner's tenant: another tenant's, or
 * none at all. One answer for both, so nothing outside the tenant shows.
 */
export const notInTenant = () => new LatchkeyError('forbidden', 403, 'errors.account.notInTenant');

/** A change the tenant's current state does not allow (an id taken, a user type in use, the last owner); nothing changed. */
export const conflict = (key: string, detail: Record<string, unknown> = {}) => new LatchkeyError('conflict', 409, key, detail);

export const noLoginForClient = (key = 'errors.signin.noLogin') => new LatchkeyError('no_login_for_client', 403, key);

export const interactionExpired = () => new LatchkeyError('interaction_expired', 400, 'errors.signin.expired');

/**
 * The login's sessions were ended (a password reset or change, "sign out everywhere", a disable) after this
 * sign-in's first step passed: what that step proved no longer stands, and the sign-in starts again.
 */
export const signinEnded = () => new LatchkeyError('signin_ended', 409, 'errors.signin.ended');

/** Another request of the same sign-in (another tab, a second click) still ran after the wait (`src/interaction/lease.ts`); nothing was done. */
export const signinBusy = () => new LatchkeyError('signin_busy', 409, 'errors.signin.busy');

/** A public client (no secret) at an endpoint that needs the caller to authenticate (introspection, revocation). */
export const clientAuthenticationRequired = () => new LatchkeyError('invalid_client', 401, 'errors.clientAuthentication');

export const unavailable = (store?: string) => new LatchkeyError('temporarily_unavailable', 503, 'errors.unavailable', store ? { store } : {});

/**
 * Sign-in with an upstream OpenID provider (docs/upstream.md). `detail.provider`
 * is the provider's name; each page offers the way back to the login page.
 */
export const upstreamUnavailable = (name: string) => new LatchkeyError('upstream_unavailable', 502, 'errors.upstream.unavailable', { provider: name });

/** The upstream answered with an OAuth error (e.g. `access_denied`); `detail.error` carries it. */
export const upstreamError = (name: string, error: string) =>
  new LatchkeyError('upstream_error', 400, error === 'access_denied' ? 'errors.upstream.cancelled' : 'errors.upstream.error', { provider: name, error });

export const upstreamInvalidResponse = (name: string) => new LatchkeyError('upstream_invalid_response', 502, 'errors.upstream.invalidResponse', { provider: name });

/** The upstream's answer does not belong to this sign-in (a missing, tampered or already used state). */
export const upstreamState = () => new LatchkeyError('upstream_state', 400, 'errors.upstream.state');

/**
 * The first sign-in with an upstream account is confirmed with the identity's
 * password; an identity without one cannot confirm it.
 */
export const upstreamLinkUnconfirmable = (name: string) => new LatchkeyError('upstream_link_unconfirmable', 403, 'errors.upstream.noPassword', { provider: name });

export const upstreamNoAccount = (name: string, reason: 'email_not_verified' | 'no_identity') =>
  new LatchkeyError('upstream_no_account', 403, reason === 'email_not_verified' ? 'errors.upstream.emailNotVerified' : 'errors.upstream.noIdentity', {
    provider: name,
    problem: reason,
  });

/** The management API (docs/api.md): no bearer token, or one that is not a live client-credentials token of a tenant's client. */
export const invalidToken = () => new LatchkeyError('invalid_token', 401, 'errors.api.invalidToken');

/** The token lacks the scope the route needs (`detail.scope`). */
export const insufficientScope = (scope: string) => new LatchkeyError('insufficient_scope', 403, 'errors.api.insufficientScope', { scope });

/** Another login of the email in the tenant carries the same name; `detail.namesakes` are their ids. */
export const namesake = (namesakes: string[], suggestion: string) => new LatchkeyError('namesake', 409, 'errors.api.namesake', { namesakes, suggestion });

/** The record changed since it was read (`If-Match`, or a change made meanwhile). */
export const preconditionFailed = () => new LatchkeyError('precondition_failed', 412, 'errors.api.changedMeanwhile');

/** A client over its request rate; `detail.retryAfterSeconds` says when to try again. */
export const rateLimited = (retryAfterSeconds: number) => new LatchkeyError('rate_limited', 429, 'errors.api.rateLimited', { retryAfterSeconds });

/**
 * A SCIM error (RFC 7644 §3.12), answered as `urn:ietf:params:scim:api:messages:2.0:Error`
 * JSON by the SCIM router: its HTTP `status`, the RFC's `scimType` where one
 * applies (`invalidFilter`, `uniqueness`, `mutability`, `invalidValue`,
 * `invalidPath`, `noTarget`, `invalidSyntax`, `tooMany`) and a `detail` in English.
 */
export type ScimType = 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath' | 'noTarget' | 'invalidValue' | 'invalidVers' | 'sensitive';

export class ScimError extends Error {
  override name = 'ScimError';
  constructor(
    readonly status: number,
    readonly scimType: ScimType | null,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/**
 * An outgoing request refused because its address is special-use (loopback,
 * private, link-local, …) and not opened by `OUTBOUND_ALLOW`
 * (`src/web/egress.ts`). Never shown as is: `range` is what an owner may read
 * (`refused: private address`); `host` and `address` are for the log.
 */
export class EgressRefused extends Error {
  override name = 'EgressRefused';
  readonly code = 'ERR_EGRESS_REFUSED';
  constructor(
    readonly range: string,
    readonly host: string,
    readonly address: string,
  ) {
    super(`refused: ${range} address`);
  }
}
