/**
 * The second-factor interface. Each factor lives in `src/factors/<id>/` and is
 * registered in `src/factors/registry.ts`; the sign-in journey and the account
 * pages only talk to this interface, so adding a factor (WebAuthn, recovery
 * codes) touches that list and nothing else.
 *
 * A tenant's user type names the factor its logins must pass
 * (`UserType.secondFactor`). After the password (or an upstream sign-in) the
 * journey asks the factor for the login's `stage`:
 * - `done`: nothing to do (the `none` factor, always);
 * - `enroll`: first time — show the set-up page (`page('enroll')`), then
 *   `submit('enroll')` with the form;
 * - `verify`: show the challenge page, then `submit('verify')`.
 * A submission that passes adds `amr` to the session's methods and makes `acr`
 * the session's level; the provider's login is finished only then.
 */
import type { Config } from '../../config/index.ts';
import type { Hasher } from '../crypto/password.ts';
import type { LatchkeyError } from '../errors.ts';
import type { AccountStore, Login, Tenant } from '../storage/accounts/port.ts';
import type { Audit } from '../audit.ts';
import type { Limiter } from '../limits.ts';
import type { FactorKeys } from './attempts.ts';
import type { CounterStore } from '../storage/counters/port.ts';

export type FactorStage = 'done' | 'enroll' | 'verify';

/** What every factor gets from the composition root. */
/** What every factor is given: the shared stores, hasher, audit and attempt limiter (one per process). */
export interface FactorServices {
  config: Config;
  accounts: AccountStore;
  hasher: Hasher;
  audit: Audit;
  limiter: Limiter;
  /** The shared counters (a WebAuthn challenge is claimed once there). */
  counters: CounterStore;
  /** The app's clock (epoch ms): the TOTP step, the attempt limits, the dates a factor records. */
  now: () => number;
}

/** One request of the journey, as a factor sees it. */
export interface FactorRequest {
  tenant: Tenant;
  login: Login;
  /** The form's fields, each already checked to be a single string. */
  body: Record<string, string>;
  /**
   * Scratch space kept with the sign-in between requests (e.g. a TOTP secret
   * shown but not yet confirmed). A factor may change it; the journey saves it.
   */
  draft: Record<string, unknown>;
  ip: string | null;
  userAgent: string | null;
}

/** A page to render: a view under `views/` and its locals. */
export interface FactorPage {
  view: string;
  locals: Record<string, unknown>;
}

/**
 * A passed answer may name the RFC 8176 methods it proved (a passkey: `hwk` or
 * `swk` by the key, `user` when the person was verified); otherwise the
 * factor's `amr` is used.
 */
export type FactorOutcome = { passed: true; amr?: readonly string[] } | { passed: false; error: LatchkeyError; page?: FactorPage };

export interface Factor {
  /** The value of `UserType.secondFactor` that selects this factor. */
  readonly id: string;
  /** RFC 8176 methods added to the session's `amr` when it passes (e.g. `['otp', 'mfa']`). */
  readonly amr: readonly string[];
  /** The session's `acr` after it passes. */
  readonly acr: string;
  /** What `login` must do now. */
  stage(login: Login): FactorStage;
  /** The page for a stage. */
  page(stage: Exclude<FactorStage, 'done'>, req: FactorRequest): Promise<FactorPage>;
  /** Handles the page's form. Counts attempts and writes audit events itself. */
  submit(stage: Exclude<FactorStage, 'done'>, req: FactorRequest): Promise<FactorOutcome>;
  /** Forgets the login's state and failed attempts, so it enrolls again at the next sign-in (owner's reset). */
  reset(loginId: string): Promise<void>;
  /**
   * The counter keys (`src/limits.ts`) of the answers, for a factor that
   * counts them: the login's own and its identity's (shared by every login of
   * the email). The owner's and the operator's unlock clear them.
   */
  readonly attemptKeys?: FactorKeys;
  /** Replacing an enrolled set-up from the account pages; absent for a factor with nothing to replace. */
  readonly change?: FactorChange;
}

/**
 * What a change step answers: `done` once the new set-up is stored; otherwise
 * the change page is shown again — with `error`, or at its next step.
 */
export type FactorChangeOutcome = { done: true } | { done: false; error?: LatchkeyError };

/**
 * Changing an enrolled factor from the account pages (change the PIN, re-link
 * the authenticator app): the person proves the current set-up first, under
 * the same attempt limits as the sign-in, then sets up a new one by the same
 * rules. Steps live in `req.draft`, which the account pages keep tamper-proof
 * between requests. Writes its own audit events.
 */
export interface FactorChange {
  /** The page for where the change stands (`req.draft`). */
  page(req: FactorRequest): Promise<FactorPage>;
  /** Handles that page's form. */
  submit(req: FactorRequest): Promise<FactorChangeOutcome>;
}

export type FactorFactory = (services: FactorServices) => Factor;
