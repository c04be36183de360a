/**
 * The profile (every login): who is signed in and the factor in force, the
 * recent sign-ins, and the changes a person makes to their own login — the
 * PIN and the authenticator app through the factor's `change`, the password
 * here. Each change needs a recent sign-in. The upstream accounts linked to
 * the person are listed, each with an "unlink" button.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError, badRequest, conflict, invalidCredentials, notFound } from '../errors.ts';
import type { Factor, FactorChange, FactorMethod } from '../factors/types.ts';
import { setRetryAfter } from '../web/errors.ts';
import { declaredFields, formFields } from '../web/forms.ts';
import { enrolledMethods, factorName, factorNotice, factorText, noticeOf } from './labels.ts';
import { amrText, formatEventTime } from './audit-text.ts';
import { localeOf } from '../web/views.ts';
import { fullName } from '../names.ts';
import { checkNewPassword, PASSWORD_RULES } from './passwords.ts';
import { signInSecond } from '../provider/revocation.ts';
import { upstreamLinks } from '../upstream/links.ts';
import type { AccountKit, Signed } from './kit.ts';
import { sessionsShown } from './sessions.ts';
import { userTypeOf } from '../names.ts';

const SIGN_INS_SHOWN = 10;
/** Issuer identifiers and subjects are URLs and opaque ids: generous, but bounded. */
const LINK_FIELD_MAX = 2048;

export function profileRoutes(router: Router, kit: AccountKit) {
  const { deps, cookies } = kit;
  const { accounts, factors, hasher, limiter, browsers, audit, config } = deps;
  const links = upstreamLinks({ accounts, audit });

  router.get('/', async (ctx) => {
    const signed = await kit.signedIn(ctx);
    if (!signed) return;
    const { login, tenant } = signed;
    const type = userTypeOf(tenant, login.userType);
    const [identity, events, upstreams, sessions] = await Promise.all([
      accounts.findIdentityByEmail(login.email),
      accounts.listAudit({ tenant: tenant.id, login: login.id, type: 'signin.success', limit: SIGN_INS_SHOWN }),
      accounts.listUpstreams(tenant.id),
      deps.sessions.listSessions(login.id),
    ]);
    const linked = identity ? await accounts.listUpstreamLinks(identity.id) : [];
    kit.render(ctx, 'account/profile', signed, {
      section: 'profile',
      notice: noticeOf(ctx.query.notice, factors),
      sessions: sessionsShown(sessions, signed.session.sid, localeOf(ctx).t),
      profile: {
        name: fullName(login),
        email: login.email,
        userType: type?.name ?? login.userType,
        factor: factorName(type && factors.has(type.secondFactor) ? type.secondFactor : 'none'),
        hasPassword: !!identity?.passwordHash,
      },
      // Each factor the person has set up and can change here.
      factorLinks: factors
        .all()
        .filter((f) => f.change && f.enrolled(login))
        .map((f) => ({ id: f.id, href: `/account${changePath(f)}`, text: factorText(f.id, 'changeLink') })),
      // What the methods of the factors set up have left, and a new set where they offer one.
      methodLinks: enrolledMethods(login, factors)
        .filter((m) => m.regenerate || m.count)
        .map((m) => ({
          id: m.id,
          count: m.count?.(login) ?? null,
          countText: factorText(m.id, 'count'),
          regenerate: m.regenerate ? `/account/profile/method/${m.id}` : null,
          text: factorText(m.id, 'regenerate'),
        })),
      signIns: events.map((e) => ({
        iso: e.time.toISOString(),
        time: formatEventTime(e.time, localeOf(ctx).lang, null),
        ip: e.ip ?? '',
        device: e.userAgent ?? '',
        methods: amrText(localeOf(ctx).t, e.detail?.amr),
      })),
      // A link made in another tenant names an upstream this tenant may not have: then its issuer is shown.
      upstreamLinks: linked.map((l) => ({ issuer: l.issuer, subject: l.subject, provider: upstreams.find((u) => u.issuer === l.issuer)?.name ?? l.issuer })),
    });
  });

  router.post('/profile/upstreams/unlink', async (ctx) => {
    const signed = await kit.signedInForm(ctx);
    if (!signed) return;
    const { issuer, subject } = formFields(ctx.request.body, ['issuer', 'subject'], ['csrf'], LINK_FIELD_MAX);
    const identity = await accounts.findIdentityByEmail(signed.login.email);
    const removed = identity ? await links.unlink(identity, { issuer, subject }, { ...kit.requestInfo(ctx), by: signed.login.id, reason: 'person' }) : false;
    if (!removed) throw notFound('errors.upstream.noSuchLink');
    ctx.redirect('/account?notice=upstreamUnlinked');
    ctx.status = 303;
  });

  const changePath = (f: Factor) => `/profile/factor/${f.id}`;

  /** A factor's change pages at `/profile/factor/<id>` (and its older path, when it has one). */
  function changeRoutes(factor: Factor, change: FactorChange) {
    const fields = factor.changeFields ?? {};
    const home = changePath(factor);
    const notEnrolled = () => badRequest(factorText(factor.id, 'notSetUp'));

    async function show(ctx: Context, signed: Signed, error?: LatchkeyError) {
      const draft = cookies.draft(ctx, signed.login.id);
      const req = kit.factorRequest(ctx, signed, {}, draft);
      const page = await change.page(req);
      cookies.setDraft(ctx, signed.login.id, req.draft);
      setRetryAfter(ctx, error);
      kit.render(ctx, page.view, signed, { section: 'profile', action: `/account${home}`, ...page.locals, error }, error?.status ?? 200);
    }

    for (const path of [home, ...(change.alias ? [change.alias] : [])]) {
      router.get(path, async (ctx) => {
        const signed = await kit.signedIn(ctx);
        if (!signed || !kit.fresh(ctx, signed, `/account${path}`)) return;
        if (!factor.enrolled(signed.login)) throw notEnrolled();
        await show(ctx, signed);
      });

      router.post(path, async (ctx) => {
        const signed = await kit.signedInForm(ctx);
        if (!signed || !kit.fresh(ctx, signed, `/account${path}`)) return;
        if (!factor.enrolled(signed.login)) throw notEnrolled();
        let body: Record<string, string>;
        try {
          body = declaredFields(ctx.request.body, fields);
        } catch (err) {
          if (err instanceof LatchkeyError) return show(ctx, signed, err);
          throw err;
        }
        const req = kit.factorRequest(ctx, signed, body, cookies.draft(ctx, signed.login.id));
        const outcome = await change.submit(req);
        cookies.setDraft(ctx, signed.login.id, outcome.done ? {} : req.draft);
        if (outcome.done) {
          ctx.redirect(`/account?notice=${factorNotice('changed', factor.id)}`);
          ctx.status = 303;
          return;
        }
        if (outcome.error) return show(ctx, signed, outcome.error);
        ctx.redirect(`/account${path}`);
        ctx.status = 303;
      });
    }
  }

  for (const factor of factors.all()) if (factor.change) changeRoutes(factor, factor.change);

  /**
   * The factor a method's new set is made after: the strongest one the login
   * has set up and can pass now that lists the method. The set is made under
   * its level and stands in for no stronger factor, so the strongest makes a
   * set that serves every factor the login has. Null: the method is not
   * offered to this login.
   */
  function confirmingFactor(signed: Signed, method: FactorMethod): Factor | null {
    const { login } = signed;
    const standing = factors.all().filter((f) => f.alternatives?.includes(method.id) && f.enrolled(login) && f.stage(login) === 'verify');
    return standing.sort((a, b) => factors.rank(b.acr) - factors.rank(a.acr))[0] ?? null;
  }

  function regenerable(ctx: Context, signed: Signed): { method: FactorMethod; factor: Factor } {
    const method = factors.method(String(ctx.params.method));
    const factor = method?.regenerate ? confirmingFactor(signed, method) : null;
    if (!method || !factor) throw notFound();
    return { method, factor };
  }

  /**
   * A method's new set (the recovery codes), shown once: within the
   * re-authentication window, and only after the factor it stands in for is
   * passed again right here — a recent sign-in may itself have used one of
   * the codes (its amr does not tell), and a code must never buy a new set.
   * The old set keeps working until the new one is made, which replaces it.
   */
  const methodPath = (id: string) => `/account/profile/method/${id}`;

  async function confirmPage(ctx: Context, signed: Signed, method: FactorMethod, factor: Factor, error?: LatchkeyError) {
    const req = kit.factorRequest(ctx, signed, {}, cookies.draft(ctx, signed.login.id));
    const page = await factor.page('verify', req);
    cookies.setDraft(ctx, signed.login.id, req.draft);
    setRetryAfter(ctx, error);
    kit.render(
      ctx,
      page.view,
      signed,
      {
        section: 'profile',
        ...page.locals,
        login: signed.login,
        userTypeName: userTypeOf(signed.tenant, signed.login.userType)?.name ?? signed.login.userType,
        confirmIntro: factorText(method.id, 'confirmFactor'),
        action: `${methodPath(method.id)}/confirm`,
        cancelTo: '/account',
        alternatives: [],
        error,
      },
      error?.status ?? 200,
    );
  }

  // The profile's button: on to the factor's page.
  router.post('/profile/method/:method', async (ctx) => {
    const signed = await kit.signedInForm(ctx);
    if (!signed || !kit.fresh(ctx, signed, methodPath(String(ctx.params.method)))) return;
    const { method } = regenerable(ctx, signed);
    ctx.redirect(methodPath(method.id));
    ctx.status = 303;
  });

  router.get('/profile/method/:method', async (ctx) => {
    const signed = await kit.signedIn(ctx);
    if (!signed || !kit.fresh(ctx, signed, methodPath(String(ctx.params.method)))) return;
    const { method, factor } = regenerable(ctx, signed);
    await confirmPage(ctx, signed, method, factor);
  });

  router.post('/profile/method/:method/confirm', async (ctx) => {
    const signed = await kit.signedInForm(ctx);
    if (!signed || !kit.fresh(ctx, signed, methodPath(String(ctx.params.method)))) return;
    const { method, factor } = regenerable(ctx, signed);
    let body: Record<string, string>;
    try {
      body = declaredFields(ctx.request.body, factor.fields);
    } catch (err) {
      if (err instanceof LatchkeyError) return confirmPage(ctx, signed, method, factor, err);
      throw err;
    }
    const req = kit.factorRequest(ctx, signed, body, cookies.draft(ctx, signed.login.id));
    // The same attempt limits, replay guard and audit events as at a sign-in.
    const outcome = await factor.submit('verify', req);
    // The factor took what it checked the answer against (a passkey's challenge) out of the draft itself.
    cookies.setDraft(ctx, signed.login.id, req.draft);
    if (!outcome.passed) return confirmPage(ctx, signed, method, factor, outcome.error);
    const page = await method.regenerate!(kit.factorRequest(ctx, signed, {}), factor);
    if (!page) throw notFound('errors.login.gone');
    kit.render(ctx, 'factors/recovery/regenerated', signed, { section: 'profile', ...page.locals });
  });

  const passwordPage = (ctx: Context, signed: Signed, error?: LatchkeyError) => {
    setRetryAfter(ctx, error);
    kit.render(ctx, 'account/change-password', signed, { section: 'profile', ...PASSWORD_RULES, error }, error?.status ?? 200);
  };

  async function identityWithPassword(signed: Signed) {
    const identity = await accounts.findIdentityByEmail(signed.login.email);
    if (!identity?.passwordHash) throw badRequest('errors.password.none');
    return { ...identity, passwordHash: identity.passwordHash };
  }

  router.get('/profile/password', async (ctx) => {
    const signed = await kit.signedIn(ctx);
    if (!signed || !kit.fresh(ctx, signed, '/account/profile/password')) return;
    await identityWithPassword(signed);
    passwordPage(ctx, signed);
  });

  router.post('/profile/password', async (ctx) => {
    const signed = await kit.signedInForm(ctx);
    if (!signed || !kit.fresh(ctx, signed, '/account/profile/password')) return;
    const identity = await identityWithPassword(signed);
    const info = kit.requestInfo(ctx);
    const record = (outcome: 'success' | 'failure', detail?: Record<string, unknown>) =>
      audit.record({ type: 'password.changed', outcome, tenant: signed.tenant.id, login: signed.login.id, ...info, ...(detail ? { detail } : {}) });
    try {
      const fields = formFields(ctx.request.body, [], ['csrf', 'current_password', 'password', 'password_confirm'], PASSWORD_RULES.maxLength);
      const current = fields.current_password ?? '';
      const next = fields.password ?? '';
      if (!current) throw badRequest('errors.password.enterCurrent');
      const problem = checkNewPassword(next, fields.password_confirm ?? '', identity.email);
      if (problem) throw badRequest(`errors.password.${problem}`, { problem, ...PASSWORD_RULES });
      // The same limits as the sign-in's password (this browser signed in, so it is usually a known one).
      const counter = await browsers.passwordCounter(ctx, identity.email, info.ip);
      const ok = await limiter.guard(counter.keys, () => hasher.verify(identity.passwordHash, current));
      if (!ok) {
        await record('failure', { reason: 'wrong_current_password' });
        throw invalidCredentials('errors.password.currentWrong');
      }
      if (next === current) throw badRequest('errors.password.unchanged', { problem: 'unchanged' });
      // Only over the password just checked: a reset that lands meanwhile is not written over.
      if (!(await accounts.setPasswordHashIf(identity.id, identity.passwordHash, await hasher.hash(next)))) throw conflict('errors.password.changedMeanwhile');
      // Whoever held a session or token from the old password loses it: every login of this person,
      // in every tenant. Only this page's own session is kept, so the person stays here.
      const logins = await accounts.listLoginsForEmailAllTenants(identity.email);
      const cutOff = await deps.sessions.endLoginSessions(
        logins.map((l) => l.id),
        { keepSessionId: signed.session.sid },
      );
      cookies.setSession(ctx, { ...signed.session, keptAt: signInSecond(cutOff, cutOff.getTime()) });
      await record('success', { loginsSignedOut: logins.length });
      // Whoever linked an upstream account with the old password must confirm it again with the new one.
      if (config.upstream.unlinkOn.includes('password')) await links.unlinkAll(identity, { ...info, by: signed.login.id, reason: 'password' });
      ctx.redirect('/account?notice=password');
      ctx.status = 303;
    } catch (err) {
      if (err instanceof LatchkeyError && err.onForm) {
        if (err.code === 'locked_out') await record('failure', { reason: 'locked', ...err.detail });
        return passwordPage(ctx, signed, err);
      }
      throw err;
    }
  });
}
