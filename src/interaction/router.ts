/**
 * The sign-in journey's pages: login → select login → second factor
 * → consent. Every POST checks the interaction's prompt and its CSRF token.
 */
import type { RouteDeps } from '../services.ts';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Client, Identity, Login, Tenant } from '../storage/accounts/port.ts';
import { normalizeEmail } from '../storage/accounts/port.ts';
import type { Factor, FactorMethod, FactorPage, FactorRequest } from '../factors/types.ts';
import type { AttemptResult } from '../limits.ts';
import { AMR, STEP_UP_REASON, requiredRank } from '../provider/acr.ts';
import { LatchkeyError, badRequest, frozenOut, invalidCredentials, lockedOut, noLoginForClient, signinEnded } from '../errors.ts';
import { checkCsrf, declaredFields, formFields } from '../web/forms.ts';
import { setRetryAfter } from '../web/errors.ts';
import { localeOf, sendPage } from '../web/views.ts';
import { hasText } from '../i18n.ts';
import { resolveLanguage, useLanguage } from '../web/language.ts';
import { ensureProgress, forLogin, heldFor, readProgress, saveProgress, type Interaction, type Progress, type StepUp, type SwitchFrom } from './journey.ts';
import { SWITCH_PARAM, readSwitchTicket } from './switch.ts';
import { oneRequestAtATime } from './lease.ts';
import { ACCOUNT_AUDIENCE, ANY_TENANT, clientFinder } from '../provider/account-client.ts';
import { endedBefore } from '../provider/revocation.ts';
import { requestInfo } from '../web/request.ts';
import { fullName, userTypeName, userTypeOf } from '../names.ts';
import { signInSecond } from '../provider/revocation.ts';
import { sessionPolicyOf } from '../sessions/index.ts';
import { EMAIL_MAX } from '../email.ts';

export type InteractionDeps = Pick<RouteDeps, 'provider' | 'config' | 'accounts' | 'counters' | 'hasher' | 'factors' | 'audit' | 'limiter' | 'browsers' | 'now'>;

const PASSWORD_MAX = 1024;

/** What the journey lends a first step that lives in its own module (the upstream sign-in). */
export interface JourneySteps {
  /** The interaction of this browser (its cookie) for `:uid`, its client and the client's tenant. */
  load(ctx: Context, expectedPrompt?: string): Promise<{ interaction: Interaction; client: Client; tenant: Tenant }>;
  /** `load` plus the progress, with the form's CSRF token checked. */
  loadForPost(ctx: Context, expectedPrompt: string): Promise<{ interaction: Interaction; client: Client; tenant: Tenant; progress: Progress }>;
  requestInfo(ctx: Context): { ip: string | null; userAgent: string | null };
  /**
   * The first step passed for `identity` by `method` (`pwd`, `fed`): on to the
   * login choice, the chosen login's factor, or the end of the journey.
   */
  firstStepPassed(ctx: Context, interaction: Interaction, tenant: Tenant, progress: Progress, identity: Identity, method: string): Promise<void>;
  /** The logins `email` may sign in as for the client's tenant (not disabled). */
  signInLogins(tenant: Tenant, email: string): Promise<Login[]>;
  /** The sign-in's progress, made on the first visit. */
  progress(interaction: Interaction): Promise<Progress>;
  /**
   * A factor that is a sign-in of its own (a passkey with user verification)
   * passed for `login`, proving `amr`: the journey ends with that factor's
   * level, or the app gets `unmet_authentication_requirements` when it asks
   * for more.
   */
  signedInWithFactor(ctx: Context, interaction: Interaction, tenant: Tenant, progress: Progress, login: Login, factorId: string, amr: readonly string[]): Promise<void>;
}

/** What a plugin may add to the journey's own pages. */
export interface JourneyHooks {
  /**
   * Locals for the login page (a passkey request in the email field's
   * autofill). It may keep what its answer is checked against in
   * `progress.draft`: the journey saves the progress with the page.
   */
  loginPage?(tenant: Tenant, progress: Progress): Promise<Record<string, unknown>>;
}

/** Adds routes under `/interaction/:uid` that use the journey's steps, and optionally hooks into its pages. */
export type JourneyPlugin = (router: Router, steps: JourneySteps) => JourneyHooks | void;

export function interactionRouter(
  { provider, config, accounts, counters, hasher, factors, audit, limiter, browsers, now = Date.now }: InteractionDeps,
  plugins: JourneyPlugin[] = [],
): Router {
  const router = new Router({ prefix: '/interaction/:uid' });
  // Before every route, the plugins' too: each request of a sign-in runs alone, so none undoes what another wrote.
  router.use(oneRequestAtATime(counters, now));
  // A sign-in whose first step no longer stands (`firstStepStands`) starts again at the login page, saying why.
  router.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof LatchkeyError) || err.code !== 'signin_ended') throw err;
      const { interaction, tenant } = await load(ctx);
      const fresh: Progress = { csrf: readProgress(interaction)?.csrf ?? (await ensureProgress(interaction)).csrf };
      await saveProgress(interaction, fresh);
      await loginPage(ctx, interaction, tenant, fresh, { email: '', error: err }, err.status);
    }
  });
  const findClient = clientFinder(accounts, config.issuer);

  async function load(ctx: Context, expectedPrompt?: string) {
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    useLanguage(ctx, resolveLanguage(ctx, { uiLocales: interaction.params.ui_locales, since: interaction.iat }));
    if (interaction.uid !== ctx.params.uid) throw badRequest('errors.signin.wrongPage');
    if (expectedPrompt && interaction.prompt.name !== expectedPrompt) throw badRequest('errors.signin.unexpectedStep');
    const clientId = String(interaction.params.client_id);
    const client = await findClient(clientId);
    if (!client) throw badRequest('errors.signin.unknownApp');
    const tenant = client.tenant === ANY_TENANT ? await accountAudience(interaction) : await accounts.getTenant(client.tenant);
    if (!tenant) throw badRequest('errors.signin.unknownApp');
    ctx.state.tenantName = tenant.id === ANY_TENANT ? localeOf(ctx).t('account.audience') : tenant.name;
    return { interaction, client, tenant };
  }

  /**
   * The account pages' client is bound to no tenant (docs/account.md): its
   * journey offers the identity's logins in every tenant, and once one is
   * chosen it goes on in that login's tenant.
   */
  async function accountAudience(interaction: Interaction): Promise<Tenant | null> {
    const loginId = readProgress(interaction)?.loginId;
    const login = loginId ? await accounts.getLogin(loginId) : null;
    return login ? accounts.getTenant(login.tenant) : ACCOUNT_AUDIENCE;
  }

  /** "First Last — User type", with "(Tenant name)" when the choice spans tenants. */
  async function loginChoices(tenant: Tenant, logins: Login[]) {
    const tenants = new Map<string, Tenant | null>([[tenant.id, tenant]]);
    for (const l of logins) if (!tenants.has(l.tenant)) tenants.set(l.tenant, await accounts.getTenant(l.tenant));
    return logins.map((l) => {
      const home = tenants.get(l.tenant) ?? tenant;
      const type = userTypeName(home, l.userType);
      return { id: l.id, label: fullName(l), type: tenant.id === ANY_TENANT ? `${type} (${home.name})` : type };
    });
  }

  async function loadForPost(ctx: Context, expectedPrompt: string) {
    const loaded = await load(ctx, expectedPrompt);
    const progress = readProgress(loaded.interaction);
    checkCsrf(progress?.csrf, ctx.request.body);
    return { ...loaded, progress: progress! };
  }

  const page = (ctx: Context, view: string, locals: Record<string, unknown>, status = 200) => sendPage(ctx, view, locals, status);

  const loginPageHooks: NonNullable<JourneyHooks['loginPage']>[] = [];

  /** The login page, with what the plugins add to it; saves the progress when they added something. */
  async function loginPage(ctx: Context, interaction: Interaction, tenant: Tenant, progress: Progress, locals: Record<string, unknown>, status = 200) {
    const added: Record<string, unknown> = {};
    for (const hook of loginPageHooks) Object.assign(added, await hook(tenant, progress));
    if (Object.keys(added).length) await saveProgress(interaction, progress);
    page(ctx, 'login', { ...baseLocals(interaction, progress), upstreams: await upstreamButtons(tenant), ...added, ...locals }, status);
  }

  const baseLocals = (interaction: Interaction, progress: Progress) => ({
    uid: interaction.uid,
    csrf: progress.csrf,
  });

  function factorOf(tenant: Tenant, login: Login): Factor {
    const type = userTypeOf(tenant, login.userType);
    if (!type) throw noLoginForClient('errors.signin.noUserType');
    return factors.get(type.secondFactor);
  }

  /**
   * The factor this sign-in asks for. The level needed is the user type's or
   * what the request and its app ask for, whichever is higher. The weakest
   * factor reaching it that the person has set up (or that needs none) is
   * asked; otherwise the user type's own factor is set up when it reaches the
   * level; otherwise, where the tenant allows it, the weakest stronger one is
   * set up now — once this sign-in has proven the user type's own level
   * (`provenRank`), else first the weakest factor the login has at that level.
   * Null when nothing can reach it.
   */
  async function factorFor(interaction: Interaction, tenant: Tenant, login: Login, progress: Progress): Promise<Factor | null> {
    const own = factorOf(tenant, login);
    const needed = await neededRank(interaction, tenant, login);
    const byRank = factors.all().sort((a, b) => factors.rank(a.acr) - factors.rank(b.acr));
    const reaching = byRank.filter((f) => factors.rank(f.acr) >= needed);
    const ready = reaching.find((f) => f.stage(login) !== 'enroll');
    if (ready) return ready;
    if (reaching.includes(own)) return own;
    if (!tenant.stepUpEnrollment || !reaching[0]) return null;
    // Whoever knows the password must not set up a factor of their own in place of the one the login has.
    const ownRank = factors.rank(own.acr);
    const standing = byRank.find((f) => factors.rank(f.acr) >= ownRank && f.stage(login) === 'verify');
    return !standing || provenRank(progress, login) >= ownRank ? reaching[0] : standing;
  }

  /** The level this sign-in of `login` has proven beyond its first step: the session a step-up builds on, or a factor passed before a step-up set-up. */
  function provenRank(progress: Progress, login: Login): number {
    const proven = progress.proven?.loginId === login.id ? progress.proven.acr : undefined;
    return Math.max(factors.rank(progress.stepUp?.acr), factors.rank(proven));
  }

  /** The level a sign-in of `login` (of `tenant`) must reach: its user type's factor's, or the request's when higher. */
  async function neededRank(interaction: Interaction, tenant: Tenant, login: Login): Promise<number> {
    return Math.max(factors.rank(factorOf(tenant, login).acr), await requestedRank(interaction));
  }

  /** The level the request and its app ask for (a rank of `factors.acrValues()`). */
  async function requestedRank(interaction: Interaction): Promise<number> {
    const client = await findClient(String(interaction.params.client_id));
    const defaults = client?.metadata.default_acr_values;
    return requiredRank(interaction.params, Array.isArray(defaults) ? (defaults as string[]) : undefined, factors.acrValues());
  }

  async function signedInWithFactor(ctx: Context, interaction: Interaction, tenant: Tenant, progress: Progress, login: Login, factorId: string, amr: readonly string[]) {
    const home = login.tenant === tenant.id ? tenant : await accounts.getTenant(login.tenant);
    if (!home) throw noLoginForClient();
    const factor = factors.get(factorId);
    const own = factorOf(home, login);
    if (factors.rank(factor.acr) < Math.max(factors.rank(own.acr), await requestedRank(interaction))) return unmet(ctx, home, login);
    const identity = await accounts.findIdentityByEmail(login.email);
    const next: Progress = { csrf: progress.csrf, email: login.email, amr: [], loginId: login.id, passedAt: now(), ...(identity ? { identityId: identity.id } : {}) };
    return finish(ctx, interaction, home, login, next, factor, undefined, amr);
  }

  /** Nothing this login has or may set up reaches the level asked for: the app gets `unmet_authentication_requirements`. */
  async function unmet(ctx: Context, tenant: Tenant, login: Login) {
    await audit.record({ type: 'signin.level_unmet', outcome: 'failure', tenant: tenant.id, login: login.id, ...requestInfo(ctx) });
    const returnTo = await provider.interactionResult(
      ctx.req,
      ctx.res,
      { error: 'unmet_authentication_requirements', error_description: 'no second factor of this login reaches the requested authentication level' },
      { mergeWithLastSubmission: false },
    );
    ctx.redirect(returnTo);
    ctx.status = 303;
  }

  /**
   * A session below the level asked for, and otherwise fine (the prompt has no
   * other reason): its first step stands and the journey goes on at the
   * factor. Null when the interaction has no such session.
   */
  async function stepUpProgress(interaction: Interaction, tenant: Tenant, progress: Progress): Promise<Progress | null> {
    const { session, prompt } = interaction;
    if (!session?.accountId || !session.uid || prompt.reasons.length !== 1 || prompt.reasons[0] !== STEP_UP_REASON) return null;
    const [stored, login] = await Promise.all([provider.Session.findByUid(session.uid), accounts.getLogin(session.accountId)]);
    if (!stored || !login || typeof stored.loginTs !== 'number' || !stored.acr || login.disabled) return null;
    if (tenant.id !== ANY_TENANT && login.tenant !== tenant.id) return null;
    const stepUp: StepUp = { sessionUid: session.uid, loginTs: stored.loginTs, acr: stored.acr };
    const [identity, stands] = await Promise.all([accounts.findIdentityByEmail(login.email), stepUpStands(login, stepUp)]);
    if (!identity || !stands) return null;
    return { csrf: progress.csrf, identityId: identity.id, email: identity.email, amr: stored.amr ?? [], loginId: login.id, stepUp, draft: {} };
  }

  /** The session a step-up builds on is still this login's, from the same sign-in, and not ended since. */
  async function stepUpStands(login: Login, stepUp: StepUp): Promise<boolean> {
    const [stored, notBefore] = await Promise.all([provider.Session.findByUid(stepUp.sessionUid), accounts.loginSessionsNotBefore(login.id)]);
    return !!stored && stored.accountId === login.id && stored.loginTs === stepUp.loginTs && !endedBefore(notBefore, stepUp.loginTs);
  }

  /**
   * A switch the account pages asked for (`./switch.ts`): the ticket is
   * valid, the browser's session is the one it names, still its login's and
   * not ended, and the sibling shares the login's email and was not ended
   * since the session's sign-in. Null otherwise (the journey starts at the password).
   */
  async function switchProgress(interaction: Interaction, tenant: Tenant, progress: Progress): Promise<Progress | null> {
    if (tenant.id !== ANY_TENANT) return null;
    const ticket = readSwitchTicket(config.keys.cookieKeys, interaction.params[SWITCH_PARAM], now());
    const { session } = interaction;
    if (!ticket || !session?.uid || session.uid !== ticket.sid || session.accountId !== ticket.from) return null;
    const [stored, from, to] = await Promise.all([provider.Session.findByUid(session.uid), accounts.getLogin(ticket.from), accounts.getLogin(ticket.to)]);
    if (!stored || stored.accountId !== ticket.from || typeof stored.loginTs !== 'number' || !from || !to || from.disabled || to.disabled || to.email !== from.email) return null;
    const switchFrom: SwitchFrom = { sessionUid: session.uid, loginTs: stored.loginTs, loginId: from.id };
    // Only the first step carries over: the other login's second factor is its own. The password is the
    // identity's, good in every tenant; an upstream sign-in only in the tenant whose upstream it was (another
    // tenant never chose to trust that provider, and its owner could assert the person's subject at will).
    const amr = (stored.amr ?? []).filter((m) => m === AMR.password || (m === AMR.federated && to.tenant === from.tenant));
    const [identity, stands, notBefore] = await Promise.all([accounts.findIdentityByEmail(from.email), switchStands(switchFrom), accounts.loginSessionsNotBefore(to.id)]);
    if (!identity || !stands || !amr.length || endedBefore(notBefore, stored.loginTs)) return null;
    return { csrf: progress.csrf, identityId: identity.id, email: identity.email, amr, loginId: to.id, switchFrom, draft: {} };
  }

  /** The session a switch builds on is still its login's, from the same sign-in, and neither was ended since. */
  async function switchStands(switchFrom: SwitchFrom): Promise<boolean> {
    const [stored, from, notBefore] = await Promise.all([
      provider.Session.findByUid(switchFrom.sessionUid),
      accounts.getLogin(switchFrom.loginId),
      accounts.loginSessionsNotBefore(switchFrom.loginId),
    ]);
    return !!stored && !!from && !from.disabled && stored.accountId === from.id && stored.loginTs === switchFrom.loginTs && !endedBefore(notBefore, switchFrom.loginTs);
  }

  async function signInLogins(tenant: Tenant, email: string): Promise<Login[]> {
    const logins = tenant.id === ANY_TENANT ? await accounts.listLoginsForEmailAllTenants(email) : await accounts.listLoginsForEmail(tenant.id, email);
    return logins.filter((l) => !l.disabled);
  }

  /**
   * Finishes the provider's login: the only place that does. It replaces the
   * journey's progress with the login on the interaction already loaded (what
   * oidc-provider's interactionResult does after reading it again). `ts` is
   * the session's sign-in time (`auth_time`, and what a cut-off is checked
   * against): when the last required step of a new sign-in passed, not the
   * later resume; a step-up or switch keeps the session's (the password's).
   * `finishedAt` is when this journey finished, whatever `ts` says.
   */
  async function finish(
    ctx: Context,
    interaction: Interaction,
    tenant: Tenant,
    login: Login,
    progress: Progress,
    factor: Factor,
    method?: FactorMethod,
    proved: readonly string[] = (method ?? factor).amr,
  ) {
    const { stepUp, switchFrom } = progress;
    // The last gate, whichever step led here.
    if (!(await firstStepStands(progress, login))) throw signinEnded();
    const home = login.tenant === tenant.id ? tenant : await accounts.getTenant(login.tenant);
    const switchHolds = async (from: SwitchFrom) => (await switchStands(from)) && !endedBefore(await accounts.loginSessionsNotBefore(login.id), from.loginTs);
    const stands = !(stepUp && !(await stepUpStands(login, stepUp))) && !(switchFrom && !(await switchHolds(switchFrom))) && !!home;
    // The factor passed must reach this login's level (its user type may have changed meanwhile).
    const short = stands && factors.rank(factor.acr) < (await neededRank(interaction, home, login));
    if (short && factors.rank(factor.acr) >= factors.rank(factorOf(home, login).acr) && home.stepUpEnrollment) {
      // The login's own level, passed before a stronger factor is set up (`factorFor`): on to the set-up.
      const { held: _held, method: _method, ...rest } = progress;
      await saveProgress(interaction, { ...rest, proven: { loginId: login.id, acr: factor.acr, amr: [...proved] }, draft: {} });
      ctx.redirect(`/interaction/${interaction.uid}`);
      ctx.status = 303;
      return;
    }
    if (!stands || short) {
      // The session it built on ended or changed meanwhile (signed out, another sign-in, a reset), or what was passed
      // no longer suffices: sign in from the start.
      await saveProgress(interaction, { csrf: progress.csrf });
      ctx.redirect(`/interaction/${interaction.uid}`);
      ctx.status = 303;
      return;
    }
    // What the answer proved (an alternative method's methods, or a passkey's: its kind of key, and whether the
    // person was verified), after what this sign-in proved before a step-up set-up.
    const before = progress.proven?.loginId === login.id ? progress.proven.amr : [];
    const amr = [...new Set([...(progress.amr ?? []), ...before, ...proved])];
    // The level reached: the factor's, or the session's when that was higher already.
    const acr = stepUp && factors.rank(stepUp.acr) > factors.rank(factor.acr) ? stepUp.acr : factor.acr;
    await audit.record({
      type: 'signin.success',
      outcome: 'success',
      tenant: tenant.id,
      login: login.id,
      ...requestInfo(ctx),
      detail: {
        amr,
        acr,
        lang: localeOf(ctx).lang,
        ...(method ? { method: method.id } : {}),
        ...(stepUp ? { stepUp: true } : {}),
        ...(switchFrom ? { switchedFrom: switchFrom.loginId } : {}),
      },
    });
    // "Stay signed in" off (a shared workstation): the session cookie ends with the browser.
    const remember = sessionPolicyOf(home).staySignedIn;
    // A switch or a step-up keeps the session's sign-in time, the password's: neither is a fresh sign-in (the account
    // pages' re-authentication and `max_age` ask for one, and the tenant's session lifetime runs from it).
    const kept = switchFrom ?? stepUp;
    const ts = kept ? kept.loginTs : signInSecond(await accounts.loginSessionsNotBefore(login.id), now());
    // When the journey finished, which is what a held result's age counts from (`heldTooLong`), whatever `ts` says.
    const finishedAt = now() / 1000;
    interaction.result = { login: { accountId: login.id, amr, acr, ts, finishedAt, remember } };
    await interaction.persist();
    if (progress.email) await browsers.remember(ctx, progress.email);
    ctx.redirect(interaction.returnTo);
    ctx.status = 303;
  }

  /** Moves on from a chosen login: its factor's page, or the end of the journey. Saves `progress` unless the journey ends. */
  async function continueWithLogin(ctx: Context, interaction: Interaction, tenant: Tenant, login: Login, progress: Progress) {
    const home = login.tenant === tenant.id ? tenant : await accounts.getTenant(login.tenant);
    if (!home) throw noLoginForClient();
    const factor = await factorFor(interaction, home, login, progress);
    if (!factor) return unmet(ctx, home, login);
    const stage = factor.stage(login);
    if (stage === 'done') return finish(ctx, interaction, home, login, progress, factor);
    await saveProgress(interaction, progress);
    ctx.redirect(`/interaction/${interaction.uid}`);
    ctx.status = 303;
  }

  function factorRequest(ctx: Context, tenant: Tenant, login: Login, progress: Progress, body: Record<string, string>): FactorRequest {
    progress.draft ??= {};
    return { tenant, login, body, draft: progress.draft, ...requestInfo(ctx) };
  }

  async function renderFactor(ctx: Context, interaction: Interaction, tenant: Tenant, login: Login, progress: Progress, error?: LatchkeyError) {
    const factor = await factorFor(interaction, tenant, login, progress);
    if (!factor) return unmet(ctx, tenant, login);
    const stage = factor.stage(login);
    if (stage === 'done') return finish(ctx, interaction, tenant, login, progress, factor);
    const req = factorRequest(ctx, tenant, login, progress, {});
    const method = methodOf(tenant, factor, stage, login, progress);
    const fp = method ? await method.page(req) : await factor.page(stage, req);
    await saveProgress(interaction, progress);
    const reason = stage === 'enroll' ? await setUpReason(ctx, tenant, login, factor) : null;
    // The other ways to pass this factor, offered on its page; on a method's page, the way back.
    const alternatives = stage === 'verify' && !method ? factors.offered(tenant, login, factor) : [];
    page(
      ctx,
      fp.view,
      {
        ...baseLocals(interaction, progress),
        ...fp.locals,
        login,
        userTypeName: userTypeName(tenant, login.userType),
        setUpReason: reason,
        alternatives: alternatives.map((m) => ({ id: m.id, text: `factor.${m.id}.use` })),
        backToFactor: method ? `factor.${factor.id}.useInstead` : null,
        error,
      },
      error?.status ?? 200,
    );
  }

  /** The alternative the person chose for this factor (`POST /method`), while it still applies. */
  function methodOf(tenant: Tenant, factor: Factor, stage: string, login: Login, progress: Progress): FactorMethod | null {
    if (stage !== 'verify' || !progress.method) return null;
    return factors.offered(tenant, login, factor).find((m) => m.id === progress.method) ?? null;
  }

  /**
   * Why a set-up page asks for a factor the person may have signed in without
   * before, from the audit log: the owner reset it, or the user type's policy
   * now asks for it — the newer of the two, with its date.
   */
  async function setUpReason(ctx: Context, tenant: Tenant, login: Login, factor: Factor): Promise<string | null> {
    const factorId = factor.id;
    // A stronger factor than the user type's, because the app asks for it.
    const reasonKey = (kind: 'stepUp' | 'reset' | 'policy') => `factor.${factorId}.setUpReason.${kind}`;
    if (factorId !== factorOf(tenant, login).id && hasText('en', reasonKey('stepUp'))) return localeOf(ctx).t(reasonKey('stepUp'));
    const [resets, policies] = await Promise.all([
      accounts.listAudit({ tenant: tenant.id, login: login.id, type: `factor.${factorId}.reset`, limit: 1 }),
      accounts.listAudit({ tenant: tenant.id, type: 'policy.changed', limit: 50 }),
    ]);
    const policy = policies.find((e) => e.detail?.userType === login.userType && e.detail?.to === factorId);
    const reset = resets[0];
    const why = reset && (!policy || reset.time >= policy.time) ? { key: reasonKey('reset'), time: reset.time } : policy ? { key: reasonKey('policy'), time: policy.time } : null;
    if (!why || !hasText('en', why.key)) return null;
    const { lang, t } = localeOf(ctx);
    const date = why.time.toLocaleDateString(lang === 'nl' ? 'nl-NL' : 'en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
    return t(why.key, { date, userType: userTypeName(tenant, login.userType) });
  }

  async function firstStepPassed(ctx: Context, interaction: Interaction, tenant: Tenant, progress: Progress, identity: Identity, method: string) {
    const logins = await signInLogins(tenant, identity.email);
    if (logins.length === 0) {
      await audit.record({ type: 'signin.no_login', outcome: 'failure', tenant: tenant.id, ...requestInfo(ctx) });
      throw noLoginForClient();
    }
    const next: Progress = { csrf: progress.csrf, identityId: identity.id, email: identity.email, amr: [method], passedAt: now() };
    if (logins.length === 1) {
      next.loginId = logins[0]!.id;
      return continueWithLogin(ctx, interaction, tenant, logins[0]!, next);
    }
    await saveProgress(interaction, next);
    ctx.redirect(`/interaction/${interaction.uid}`);
    ctx.status = 303;
  }

  /** One button per upstream provider of the tenant. */
  async function upstreamButtons(tenant: Tenant) {
    return (await accounts.listUpstreams(tenant.id)).map(({ id, name }) => ({ id, name }));
  }

  async function chosenLogin(progress: Progress, tenant: Tenant): Promise<Login | null> {
    if (!progress.loginId) return null;
    const login = await accounts.getLogin(progress.loginId);
    if (!login || login.disabled || login.tenant !== tenant.id || login.email !== progress.email) return null;
    if (!(await firstStepStands(progress, login))) throw signinEnded();
    return login;
  }

  /**
   * Whether what the sign-in's first step proved still holds for `login`: its sessions were not ended (a
   * password reset or change, "sign out everywhere") after the step passed. Someone who knew the old password
   * and waits at the login choice or a factor's page must not finish, nor set up a factor, after the person
   * reset it. A step-up or switch builds on a session instead, checked against it (`stepUpStands`,
   * `switchStands`). A first step of unknown time (a sign-in begun before this was recorded) stands only while
   * the login has no cut-off.
   */
  async function firstStepStands(progress: Progress, login: Login): Promise<boolean> {
    if (progress.stepUp || progress.switchFrom) return true;
    const notBefore = await accounts.loginSessionsNotBefore(login.id);
    return !notBefore || (typeof progress.passedAt === 'number' && progress.passedAt > notBefore.getTime());
  }

  router.get('/', async (ctx) => {
    const { interaction, tenant, client } = await load(ctx);
    const progress = await ensureProgress(interaction);
    if (interaction.prompt.name === 'login' && !progress.identityId) {
      const stepUp = (await stepUpProgress(interaction, tenant, progress)) ?? (await switchProgress(interaction, tenant, progress));
      if (stepUp) {
        await saveProgress(interaction, stepUp);
        ctx.redirect(`/interaction/${interaction.uid}`);
        ctx.status = 303;
        return;
      }
    }
    const locals = baseLocals(interaction, progress);
    if (interaction.prompt.name === 'consent') {
      const details = interaction.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      return page(ctx, 'consent', {
        ...locals,
        clientName: (client.metadata.client_name as string | undefined) ?? client.clientId,
        scopes: details.missingOIDCScope ?? [],
        claims: details.missingOIDCClaims ?? [],
      });
    }
    if (interaction.prompt.name !== 'login') throw badRequest('errors.signin.unsupportedStep');
    if (progress.identityId && progress.email) {
      const login = await chosenLogin(progress, tenant);
      if (login && heldFor(progress, login)) return renderHeld(ctx, interaction, tenant, login, progress);
      if (login) return renderFactor(ctx, interaction, tenant, login, progress);
      const logins = await signInLogins(tenant, progress.email);
      if (logins.length > 1) return page(ctx, 'select-login', { ...locals, logins: await loginChoices(tenant, logins) });
    }
    const hint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint.slice(0, EMAIL_MAX) : '';
    await loginPage(ctx, interaction, tenant, progress, { email: hint });
  });

  /**
   * The failure that locked or froze an identity's password (for every
   * browser it has not signed in from) is recorded for each of its logins, in
   * every tenant: their owners see it in the audit log and on the Users page.
   */
  async function tellLocked(email: string, result: Extract<AttemptResult, { passed: false }>, info: { ip: string | null; userAgent: string | null }) {
    if (!result.evaluated || !(result.frozen || result.lockedForSeconds > 0)) return;
    const detail = result.frozen ? { frozen: true } : { retryAfterSeconds: result.lockedForSeconds };
    for (const login of await accounts.listLoginsForEmailAllTenants(email)) {
      await audit.record({ type: 'password.locked', outcome: 'failure', tenant: login.tenant, login: login.id, ...info, detail });
    }
  }

  /**
   * The email of a failed sign-in, for the audit log, when it is one of the
   * tenant's people: their owner sees whose sign-in failed. An email unknown
   * here is not written (it may be a typo of anyone's, or a guess). Looked up
   * for every failure alike, so the answer takes no longer for a known email.
   */
  async function knownHere(tenant: Tenant, email: string): Promise<{ email?: string }> {
    if (!email || email.length > EMAIL_MAX) return {};
    return (await accounts.listLoginsForEmail(tenant.id, email)).length ? { email } : {};
  }

  router.post('/login', async (ctx) => {
    const { interaction, tenant, progress } = await loadForPost(ctx, 'login');
    const info = requestInfo(ctx);
    let email = '';
    try {
      const fields = formFields(ctx.request.body, ['email', 'password'], ['csrf'], PASSWORD_MAX);
      email = normalizeEmail(fields.email);
      if (!email || email.length > EMAIL_MAX || !fields.password) throw badRequest('errors.signin.missing');
      const counter = await browsers.passwordCounter(ctx, email, info.ip);
      const found: { identity?: Identity } = {};
      const result = await limiter.run(counter.keys, async () => {
        const identity = await accounts.findIdentityByEmail(email);
        if (!identity?.passwordHash) {
          await hasher.dummyVerify(fields.password);
          return false;
        }
        found.identity = identity;
        const stored = identity.passwordHash;
        return hasher.verify(stored, fields.password, { rehash: (next) => accounts.replacePasswordHash(identity.id, stored, next) });
      });
      if (!result.passed) {
        if (!counter.known) await tellLocked(email, result, info);
        if (result.frozen) throw frozenOut();
        if (!result.evaluated) throw lockedOut(result.lockedForSeconds);
      }
      if (!result.passed || !found.identity) {
        await audit.record({
          type: 'signin.password',
          outcome: 'failure',
          tenant: tenant.id,
          ...info,
          detail: { reason: 'invalid_credentials', ...(await knownHere(tenant, email)) },
        });
        throw invalidCredentials();
      }
      return await firstStepPassed(ctx, interaction, tenant, progress, found.identity, AMR.password);
    } catch (err) {
      if (err instanceof LatchkeyError && err.onForm) {
        if (err.code === 'locked_out') {
          setRetryAfter(ctx, err);
          await audit.record({
            type: 'signin.locked',
            outcome: 'failure',
            tenant: tenant.id,
            ...info,
            detail: { ...(err.detail.frozen ? { frozen: true } : {}), ...(await knownHere(tenant, email)) },
          });
        }
        return loginPage(ctx, interaction, tenant, progress, { email: email.slice(0, EMAIL_MAX), error: err }, err.status);
      }
      throw err;
    }
  });

  router.post('/select', async (ctx) => {
    const { interaction, tenant, progress } = await loadForPost(ctx, 'login');
    if (!progress.identityId || !progress.email) throw badRequest('errors.signin.passwordFirst');
    const { login: loginId } = formFields(ctx.request.body, ['login'], ['csrf'], 256);
    const login = (await signInLogins(tenant, progress.email)).find((l) => l.id === loginId);
    if (!login) throw badRequest('errors.signin.chooseLogin');
    if (!(await firstStepStands(progress, login))) throw signinEnded();
    await continueWithLogin(ctx, interaction, tenant, login, forLogin(progress, login));
  });

  router.post('/factor', async (ctx) => {
    const { interaction, tenant, progress } = await loadForPost(ctx, 'login');
    const login = await chosenLogin(progress, tenant);
    if (!progress.identityId || !login) throw badRequest('errors.signin.passwordFirst');
    const factor = await factorFor(interaction, tenant, login, progress);
    if (!factor) return unmet(ctx, tenant, login);
    const stage = factor.stage(login);
    if (stage === 'done') return finish(ctx, interaction, tenant, login, progress, factor);
    const method = methodOf(tenant, factor, stage, login, progress);
    let body: Record<string, string>;
    try {
      // Only the fields the factor (or the method) declared, each within its own length.
      body = declaredFields(ctx.request.body, (method ?? factor).fields);
    } catch (err) {
      if (err instanceof LatchkeyError) return renderFactor(ctx, interaction, tenant, login, progress, err);
      throw err;
    }
    const req = factorRequest(ctx, tenant, login, progress, body);
    const outcome = method ? await method.submit(req, factor) : await factor.submit(stage, req);
    // Either way the progress is saved once: by finish (replaced by the login), by renderHeld or by renderFactor.
    if (outcome.passed) {
      // A method may have something to say first (how many codes remain); a factor just set up, its methods' set-up (the recovery codes).
      const said = method ? (outcome as { page?: FactorPage }).page : undefined;
      const offered = !method && stage === 'enroll' ? factors.methods(factor).find((m) => m.afterEnrol) : undefined;
      if (said || offered) {
        const amr = !method && 'amr' in outcome ? outcome.amr : undefined;
        progress.held = {
          loginId: login.id,
          factor: factor.id,
          ...(method ? { method: method.id } : {}),
          ...(said ? { page: said } : {}),
          ...(offered ? { offered: offered.id } : {}),
          ...(amr ? { amr: [...amr] } : {}),
        };
        delete progress.method;
        return renderHeld(ctx, interaction, tenant, login, progress);
      }
      return finish(ctx, interaction, tenant, login, progress, factor, method ?? undefined, 'amr' in outcome ? outcome.amr : undefined);
    }
    setRetryAfter(ctx, outcome.error);
    return renderFactor(ctx, interaction, tenant, login, progress, outcome.error);
  });

  /**
   * The page between a passed factor and the end of the journey: a method's
   * set-up shown once (made afresh on a reload: the recovery codes are never
   * kept in the clear), or what a method had to say. Its form posts to `/continue`.
   */
  async function renderHeld(ctx: Context, interaction: Interaction, tenant: Tenant, login: Login, progress: Progress, error?: LatchkeyError) {
    const held = heldFor(progress, login);
    if (!held) throw badRequest('errors.signin.passwordFirst');
    const factor = factors.get(held.factor);
    let shown = held.page ?? null;
    if (held.offered) {
      const fresh = (await accounts.getLogin(login.id)) ?? login;
      shown = (await factors.method(held.offered)?.afterEnrol?.(factorRequest(ctx, tenant, fresh, progress, {}), factor)) ?? null;
    }
    if (!shown) return finish(ctx, interaction, tenant, login, progress, factor, held.method ? factors.method(held.method) : undefined, held.amr);
    await saveProgress(interaction, progress);
    page(ctx, shown.view, { ...baseLocals(interaction, progress), ...shown.locals, login, userTypeName: userTypeName(tenant, login.userType), error }, error?.status ?? 200);
  }

  router.post('/continue', async (ctx) => {
    const { interaction, tenant, progress } = await loadForPost(ctx, 'login');
    const login = await chosenLogin(progress, tenant);
    const held = login && heldFor(progress, login);
    if (!progress.identityId || !login || !held) throw badRequest('errors.signin.passwordFirst');
    const { saved } = formFields(ctx.request.body, [], ['csrf', 'saved'], 256);
    // Codes shown once must be confirmed as saved: the person cannot see them again.
    // (Shown again, they are new ones: the first set's hashes are replaced.)
    if (held.offered && saved !== 'yes') return renderHeld(ctx, interaction, tenant, login, progress, badRequest('errors.recoveryCode.confirmSaved'));
    return finish(ctx, interaction, tenant, login, progress, factors.get(held.factor), held.method ? factors.method(held.method) : undefined, held.amr);
  });

  // Another way to pass the factor asked for (`method`: one of its alternatives), or back to the factor (empty).
  router.post('/method', async (ctx) => {
    const { interaction, tenant, progress } = await loadForPost(ctx, 'login');
    const login = await chosenLogin(progress, tenant);
    if (!progress.identityId || !login) throw badRequest('errors.signin.passwordFirst');
    const { method: chosen } = formFields(ctx.request.body, [], ['csrf', 'method'], 64);
    const factor = await factorFor(interaction, tenant, login, progress);
    if (!factor) return unmet(ctx, tenant, login);
    if (chosen && !factors.offered(tenant, login, factor).some((m) => m.id === chosen)) throw badRequest('errors.signin.noSuchMethod');
    await saveProgress(interaction, { ...progress, method: chosen || undefined, draft: {} });
    ctx.redirect(`/interaction/${interaction.uid}`);
    ctx.status = 303;
  });

  router.post('/confirm', async (ctx) => {
    const { interaction } = await loadForPost(ctx, 'consent');
    const { prompt, params, session } = interaction;
    if (!session?.accountId) throw badRequest('errors.signin.signInFirst');
    const details = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    if (!grant) throw badRequest('errors.signin.expired');
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.redirect(returnTo);
    ctx.status = 303;
  });

  router.post('/abort', async (ctx) => {
    const { interaction } = await load(ctx);
    checkCsrf(readProgress(interaction)?.csrf, ctx.request.body);
    const returnTo = await provider.interactionResult(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    ctx.redirect(returnTo);
    ctx.status = 303;
  });

  for (const plug of plugins) {
    const hooks = plug(router, { load, loadForPost, requestInfo, firstStepPassed, signInLogins, progress: ensureProgress, signedInWithFactor });
    if (hooks?.loginPage) loginPageHooks.push(hooks.loginPage.bind(hooks));
  }

  return router;
}
