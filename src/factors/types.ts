/**
 * The second-factor interface (docs/factors.md). Each factor is one folder,
 * `src/factors/<id>/`, exporting one `FactorDefinition`, and one line of
 * `src/factors/registry.ts`; its views live in `views/factors/<id>/` and its
 * texts under `factor.<id>.*` in both catalogues. Everything else — the user
 * type's values, the import schema, discovery's `acr_values_supported`, the
 * Security settings drop-down, the Users page's state column and reset
 * buttons, the profile's links, the audit filter, log redaction and the
 * journey's form fields — is read from the registry.
 *
 * A tenant's user type names the factor its logins must pass
 * (`UserType.secondFactor`). After the password (or an upstream sign-in) the
 * journey asks the factor for the login's `stage`:
 * - `done`: nothing to do (the `none` factor, always);
 * - `enroll`: first time — show the set-up page (`page('enroll')`), then
 *   `submit('enroll')` with the form;
 * - `verify`: show the challenge page, then `submit('verify')`; or, instead,
 *   one of the factor's `alternatives` (a `FactorMethod`, e.g. recovery codes).
 * A submission that passes adds `amr` (the factor's, or the method's) to the
 * session's methods and makes the factor's `acr` the session's level; the
 * provider's login is finished only then.
 */
import type { z } from 'zod';
import type { Config } from '../../config/index.ts';
import type { Hasher } from '../crypto/password.ts';
import type { LatchkeyError } from '../errors.ts';
import type { AccountStore, Login, Tenant } from '../storage/accounts/port.ts';
import type { Audit } from '../audit.ts';
import type { Limiter } from '../limits.ts';
import type { FactorKeys } from './attempts.ts';
import type { CounterStore } from '../storage/counters/port.ts';

export type FactorStage = 'done' | 'enroll' | 'verify';

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
  /**
   * What else would let `login` reach its user type's level without the
   * factor `factorId` (the registry answers, so a factor needs to know no
   * other): `factor` when another factor it has set up (or one that needs
   * nothing) reaches that level; `method` when one of this factor's
   * alternatives stands in for it (unused recovery codes made at its level,
   * `FactorRegistry.offered`) — the factor must then stay set up, so that
   * its sign-in still asks and offers them; null
   * when nothing would: this factor is its only way in.
   */
  wayInWithout(tenant: Tenant, login: Login, factorId: string): 'factor' | 'method' | null;
}

/** What the composition root gives the registry; the registry adds what only it knows. */
export type FactorBaseServices = Omit<FactorServices, 'wayInWithout'>;

/** One request of the journey (or of the account pages), as a factor sees it. */
export interface FactorRequest {
  tenant: Tenant;
  login: Login;
  /** The form's fields (only those the factor declared), each a single string within its declared length. */
  body: Record<string, string>;
  /**
   * Scratch space kept with the sign-in between requests (e.g. a TOTP secret
   * shown but not yet confirmed). A factor may change it; the journey saves it.
   */
  draft: Record<string, unknown>;
  ip: string | null;
  userAgent: string | null;
}

/** A page to render: a view under `views/` (a factor's own under `views/factors/<id>/`) and its locals. */
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

/**
 * The form fields a page accepts, by name, with the longest value each may
 * have. Anything else is dropped; a longer value is refused before the factor
 * sees it. Every field is redacted from the logs.
 */
export type FormFields = Readonly<Record<string, number>>;

/** What the owner's Users page offers for a factor the login has set up. */
export interface FactorOwnerReset {
  /**
   * An older URL segment of the reset (`/account/users/:id/<alias>`), kept
   * working beside `/account/users/:id/reset/<factor id>`.
   */
  readonly alias?: string;
  /** The button's icon (`factorIcon` in `views/account/mixins.pug`); without one, the button shows its text. */
  readonly icon?: 'phone' | 'key';
}

/**
 * What a factor is, known without any service: read by the import (user type
 * values), discovery and everything that lists factors.
 */
export interface FactorInfo {
  /** The value of `UserType.secondFactor` that selects this factor: lower-case letters, digits, `_` (it is a key in the store). */
  readonly id: string;
  /** RFC 8176 methods added to the session's `amr` when it passes (e.g. `['otp', 'mfa']`). */
  readonly amr: readonly string[];
  /** The session's `acr` after it passes (also after one of its alternatives). */
  readonly acr: string;
  /** The shape of what it keeps per login (`Login.factors[id]`); absent for a factor that keeps nothing. */
  readonly state?: z.ZodType;
  /** The journey form's fields (enrol and verify pages). */
  readonly fields: FormFields;
  /** The profile's change page's fields, for a factor with a `change`. */
  readonly changeFields?: FormFields;
  /** Its audit event types, in full (`factor.<id>.verified`): the audit filter offers them. */
  readonly events: readonly string[];
  /**
   * Which of its events tell the person by mail (docs/mail.md): set up or
   * changed (`set`), reset by the owner (`reset`), locked (`locked`).
   */
  readonly notices?: Readonly<Record<string, 'set' | 'reset' | 'locked'>>;
  /** The ids of the methods (`FactorMethod`) that also satisfy it, in the order offered. */
  readonly alternatives?: readonly string[];
  /** The owner's reset; absent for a factor with nothing to reset. */
  readonly ownerReset?: FactorOwnerReset;
}

/** What a factor does, made once per process from the services. */
export interface FactorBehaviour {
  /** Whether the login has set this factor up (the Users page's state, the reset button, the profile's link). */
  enrolled(login: Login): boolean;
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
  /** Replacing an enrolled set-up from the profile; absent for a factor with nothing to replace. */
  readonly change?: FactorChange;
}

export type Factor = FactorInfo & FactorBehaviour;

/** One factor folder's export: what it is, and how to make what it does. */
export interface FactorDefinition extends FactorInfo {
  create(services: FactorServices): FactorBehaviour;
}

/**
 * What a change step answers: `done` once the new set-up is stored; otherwise
 * the change page is shown again — with `error`, or at its next step.
 */
export type FactorChangeOutcome = { done: true } | { done: false; error?: LatchkeyError };

/**
 * Changing an enrolled factor from the profile (change the PIN, re-link the
 * authenticator app), at `/account/profile/factor/<id>`: the person proves
 * the current set-up first, under the same attempt limits as the sign-in,
 * then sets up a new one by the same rules. Steps live in `req.draft`, which
 * the account pages keep tamper-proof between requests. Writes its own audit
 * events. Its link's text is `factor.<id>.change`, the notice after it
 * `factor.<id>.changed`.
 */
export interface FactorChange {
  /** An older path of the change pages under `/account` (`/profile/pin`), kept working. */
  readonly alias?: string;
  /** The page for where the change stands (`req.draft`). */
  page(req: FactorRequest): Promise<FactorPage>;
  /** Handles that page's form. */
  submit(req: FactorRequest): Promise<FactorChangeOutcome>;
}

export interface MethodInfo {
  readonly id: string;
  readonly amr: readonly string[];
  readonly fields: FormFields;
  /** Its audit event types, in full. */
  readonly events: readonly string[];
  /** The shape of what it keeps per login (`Login.factors[id]`), when it keeps something. */
  readonly state?: z.ZodType;
}

/** What passing a method may ask the journey to show before it finishes (e.g. how many codes remain). */
export type MethodOutcome = { passed: true; page?: FactorPage } | { passed: false; error: LatchkeyError };

export interface MethodBehaviour {
  /**
   * Whether `login` has some of it left (unused codes). Whether it stands in
   * for a given factor is the registry's to say (`FactorRegistry.offered`),
   * by `level` below: the journey offers and accepts only what that answers.
   */
  available(login: Login): boolean;
  /**
   * The level (`acr`) the login's set was made under, for a method whose use
   * must not reach higher than what made it: the `acr` of the factor set up
   * (`afterEnrol`) or passed (`regenerate`) when it was made. The registry lets
   * it stand in only for a factor ranked at most there. Null: a set stored
   * before levels were recorded — it stands in for the user type's own factor
   * only. Absent: the method has no level of its own and stands in for every
   * factor that lists it.
   */
  level?(login: Login): string | null;
  page(req: FactorRequest): Promise<FactorPage>;
  /**
   * Handles the page's form for `factor` (the one it stands in for: it counts
   * attempts under the factor's `attemptKeys`); writes audit events itself.
   * A `page` in the outcome is shown before the sign-in finishes; its form
   * posts to `/interaction/<uid>/continue`.
   */
  submit(req: FactorRequest, factor: Factor): Promise<MethodOutcome>;
  /**
   * Shown once right after `factor` was set up at a sign-in (the recovery
   * codes); its form posts `saved=yes` to `/interaction/<uid>/continue`. May
   * store state (e.g. the codes' hashes, made under `factor.acr`). Null:
   * nothing to show.
   */
  afterEnrol?(req: FactorRequest, factor: Factor): Promise<FactorPage | null>;
  /**
   * A new set for the profile, made once the person passed `factor` (one the
   * method stands in for) again on the profile, within the re-authentication
   * window, made under `factor.acr`: the page that shows it once; null when
   * the login is gone. Its
   * texts: `factor.<id>.regenerate` (the profile's link) and
   * `factor.<id>.confirmFactor` (what the factor's page says first).
   */
  regenerate?(req: FactorRequest, factor: Factor): Promise<FactorPage | null>;
  /** How much of it the login has left (the profile and the Users page show `factor.<id>.count`), or null when it has none. */
  count?(login: Login): number | null;
  /** Forgets it for the login (the owner reset the factor it stood in for); writes its audit event. */
  void?(loginId: string, audit: { tenant: string; by: string; ip: string | null; userAgent: string | null }): Promise<void>;
}

/**
 * Another way to pass a factor (recovery codes for the authenticator app):
 * offered on the factor's verify page as `factor.<method id>.use` while it
 * stands in for that factor (`FactorRegistry.offered`). Passing it finishes
 * the sign-in with the factor's `acr` and the method's `amr`; its `submit`, as
 * the registry hands it out, refuses a factor it does not stand in for.
 */
export type FactorMethod = MethodInfo & MethodBehaviour;

export interface MethodDefinition extends MethodInfo {
  create(services: FactorServices): MethodBehaviour;
}
