/**
 * The sign-in journey's progress, kept in the provider's Interaction (so any
 * app process can continue it) until the login and its factor have passed;
 * only then is the provider's `login` finished, once, with `{ accountId, amr, acr }`.
 */
import { randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';

export interface Progress {
  /** Bound to this sign-in; every form of the journey posts it back. */
  csrf: string;
  /** Set once the first step (password or upstream) passed. */
  identityId?: string;
  email?: string;
  /**
   * When the first step passed (epoch ms, the app's clock). A login whose sessions were ended after it (a
   * password reset or change, "sign out everywhere") cannot finish this sign-in: it starts again.
   */
  passedAt?: number;
  /** Methods used so far (`pwd` or `fed`). */
  amr?: string[];
  /** The login chosen (or the only one). */
  loginId?: string;
  /**
   * Set when the journey steps up a session that is below the level asked for:
   * the session's first step stands (no password again), only the missing
   * factor is asked. The session must still be there, unchanged, when the
   * factor passes.
   */
  stepUp?: StepUp;
  /**
   * Set when the person switches from the session's login to a sibling login
   * (`./switch.ts`): the session's first step stands, the sibling's factor is
   * asked. The session must still be there, unchanged, when it passes.
   */
  switchFrom?: SwitchFrom;
  /**
   * Set when this sign-in of the login `loginId` passed a factor at its user
   * type's level (`acr`, with the methods it proved) and goes on to set up a
   * stronger one an app asks for (the tenant's step-up set-up): the set-up
   * comes only after the login's own level was proven, never instead of it.
   */
  proven?: { loginId: string; acr: string; amr: string[] };
  /** The alternative method chosen to pass the factor (`FactorInfo.alternatives`), instead of the factor itself. */
  method?: string;
  /**
   * The factor passed by the login `loginId`, and a page to show before the
   * journey finishes (`MethodBehaviour.afterEnrol`'s, made afresh each time;
   * or a method's `page`). It stands for that login only (`heldFor`): a
   * sign-in that moves to another login has passed nothing for it.
   */
  held?: { loginId: string; factor: string; method?: string; offered?: string; amr?: string[]; page?: { view: string; locals: Record<string, unknown> } };
  /** The factor's scratch space (see `FactorRequest.draft`). */
  draft?: Record<string, unknown>;
  /** An upstream sign-in under way (docs/upstream.md); cleared by its callback. */
  upstream?: PendingUpstream;
  /** An upstream account seen for the first time, linked once the person confirms it with the identity's password. */
  upstreamLink?: PendingUpstreamLink;
}

/** The session a step-up builds on. */
export interface StepUp {
  /** The session's uid and its sign-in time (epoch seconds). */
  sessionUid: string;
  loginTs: number;
  /** The level the session had reached. */
  acr: string;
}

/** The session a switch builds on: its uid, its sign-in time (epoch seconds) and its login. */
export interface SwitchFrom {
  sessionUid: string;
  loginTs: number;
  loginId: string;
}

/** The upstream account waiting for the person's confirmation, and the identity its verified email matched. */
export interface PendingUpstreamLink {
  /** The tenant's upstream id. */
  id: string;
  issuer: string;
  subject: string;
  identityId: string;
}

/** What the upstream's answer is checked against: bound to this interaction, never sent to the browser except `state`. */
export interface PendingUpstream {
  /** The tenant's upstream id. */
  id: string;
  /** `{interaction uid}.{random}`: the callback finds the interaction by it. */
  state: string;
  nonce: string;
  /** PKCE code verifier. */
  verifier: string;
}

export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const KEY = 'latchkey';

export function readProgress(interaction: Interaction): Progress | undefined {
  const stored = (interaction.result as Record<string, unknown> | undefined)?.[KEY];
  return stored && typeof stored === 'object' ? (stored as Progress) : undefined;
}

/** Saves the progress into the interaction, keeping its expiry. */
export async function saveProgress(interaction: Interaction, progress: Progress): Promise<void> {
  interaction.result = { [KEY]: progress };
  await interaction.persist();
}

/** The progress, created (with a fresh CSRF token) on the first visit. */
export async function ensureProgress(interaction: Interaction): Promise<Progress> {
  const existing = readProgress(interaction);
  if (existing) return existing;
  const progress: Progress = { csrf: randomBytes(24).toString('base64url') };
  await saveProgress(interaction, progress);
  return progress;
}

/** The factor `progress` holds as passed, when it was passed by `login`; else none. */
export const heldFor = (progress: Progress, login: { id: string }): Progress['held'] => (progress.held?.loginId === login.id ? progress.held : undefined);

/**
 * What a sign-in keeps when the person chooses another login: the first step
 * and the session it builds on, nothing of the login before (a factor passed,
 * a level proven, a method chosen, a factor's scratch space).
 */
export function forLogin(progress: Progress, login: { id: string }): Progress {
  const { held: _held, proven: _proven, method: _method, draft: _draft, ...kept } = progress;
  return { ...kept, loginId: login.id, draft: {} };
}
