/**
 * The owner's pages: Security settings (the second factor per user
 * type), Users (the list of `./people.ts`'s criteria; reset a user's
 * authenticator app or PIN, unlock a user locked out by failed attempts,
 * disable, enable or remove a login) and the Audit log.
 * Each request checks that the signed-in login owns its tenant, and only ever
 * reads or changes that tenant's logins.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError, badRequest, notFound } from '../errors.ts';
import { LOGIN_SORTS, LOGIN_STATES, type AuditEvent, type Login } from '../storage/accounts/port.ts';
import { formFields, formList } from '../web/forms.ts';
import { planFactorChanges, setUserTypeFactors, type FactorChange, type FactorChoice } from '../admin/user-types.ts';
import { endLoginSessions } from '../provider/revocation.ts';
import { loginLocks, type Lifted } from './locks.ts';
import { resetFactor, unlockLogin } from '../admin/resets.ts';
import { isOwner } from '../admin/owners.ts';
import { factorName, factorState, formatTime, noticeOf } from './labels.ts';
import type { AccountKit, Signed } from './kit.ts';
import { upstreamSettings } from '../upstream/settings.ts';
import { fullName, userTypeName } from '../names.ts';
import { PEOPLE_PAGE, peopleQuery, peopleUrl } from './people.ts';

/** What an owner can do to a user, by the last segment of its URL; each asks for a confirmation. */
export const USER_ACTIONS = ['reset-authenticator', 'reset-pin', 'unlock', 'disable', 'enable', 'remove'] as const;
type UserAction = (typeof USER_ACTIONS)[number];

/** The resets (`src/admin/resets.ts`): the factor's set-up and failed attempts are forgotten, and the login's sessions end. */
const RESETS = {
  'reset-authenticator': { factor: 'totp' },
  'reset-pin': { factor: 'pin' },
} as const;

/** Event types offered by the audit log's filter (others can still be asked for by URL). */
export const AUDIT_TYPES = [
  'account.signin',
  'account.signout',
  'factor.pin.changed',
  'factor.pin.failed',
  'factor.pin.locked',
  'factor.pin.reset',
  'factor.pin.set',
  'factor.pin.verified',
  'factor.totp.failed',
  'factor.totp.linked',
  'factor.totp.locked',
  'factor.totp.relinked',
  'factor.totp.replay',
  'factor.totp.reset',
  'factor.totp.verified',
  'login.added',
  'login.disabled',
  'login.edited',
  'login.enabled',
  'login.invited',
  'login.removed',
  'login.unlocked',
  'password.locked',
  'password.changed',
  'policy.changed',
  'policy.step_up_changed',
  'signin.locked',
  'signin.no_login',
  'signin.password',
  'signin.success',
  'signin.upstream',
  'upstream.linked',
  'upstream.unlinked',
];

const AUDIT_PAGE = 50;
const TYPE_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

export function ownerRoutes(router: Router, kit: AccountKit) {
  const { deps } = kit;
  const { accounts, factors, audit, provider } = deps;
  const locks = loginLocks(deps.limiter, factors);

  const owner = (ctx: Context, form = false) => kit.owner(ctx, form);

  // Security settings.

  async function securityPage(ctx: Context, signed: Signed, notice?: string, error?: LatchkeyError) {
    const [logins, upstreams] = await Promise.all([accounts.listLogins(signed.tenant.id), accounts.listUpstreams(signed.tenant.id)]);
    kit.render(
      ctx,
      'account/security',
      signed,
      {
        section: 'security',
        notice,
        error,
        ownTypeId: signed.login.userType,
        stepUpEnrollment: signed.tenant.stepUpEnrollment === true,
        factorOptions: factors.all().map((f) => ({ id: f.id, name: factorName(f.id) })),
        userTypes: signed.tenant.userTypes.map((t) => ({ ...t, logins: logins.filter((l) => l.userType === t.id).length })),
        upstreams: upstreamSettings(deps.config.issuer, upstreams),
      },
      error?.status ?? 200,
    );
  }

  router.get('/security', async (ctx) => {
    const signed = await owner(ctx);
    if (signed) await securityPage(ctx, signed, noticeOf(ctx.query.notice));
  });

  /**
   * The one form of every user type's factor: pairs of `user_type` and
   * `second_factor`, in order (a type left out keeps its factor). A change
   * for a type that has logins is shown first with what those people will
   * see, and made with `confirm=yes`.
   */
  router.post('/security', async (ctx) => {
    const signed = await owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/security')) return;
    let changes: FactorChange[];
    let choices: FactorChoice[];
    let confirmed: boolean;
    try {
      const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
      const types = formList(ctx.request.body, 'user_type', { maxLength: 128 });
      const chosen = formList(ctx.request.body, 'second_factor', { maxLength: 128 });
      if (!types.length || types.length !== chosen.length) throw badRequest('errors.account.chooseFactor');
      choices = types.map((userType, i) => ({ userType, secondFactor: chosen[i]! }));
      changes = await planFactorChanges(deps, signed.tenant, choices);
      confirmed = confirm === 'yes';
    } catch (err) {
      if (err instanceof LatchkeyError) return securityPage(ctx, signed, undefined, err);
      throw err;
    }
    if (!confirmed && changes.some((c) => c.logins > 0)) {
      return kit.render(ctx, 'account/confirm-policy', signed, {
        section: 'security',
        changes: changes.map((c) => ({ ...c, fromName: factorName(c.from), toName: factorName(c.to) })),
        choices,
      });
    }
    await setUserTypeFactors(deps, kit.actor(ctx, signed), choices);
    ctx.redirect('/account/security?notice=policy');
    ctx.status = 303;
  });

  // Whether a person may set up a stronger factor than their type's when an app asks for it (docs/relying-parties.md).
  router.post('/security/step-up', async (ctx) => {
    const signed = await owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/security')) return;
    let allowed: boolean;
    try {
      const fields = formFields(ctx.request.body, ['step_up_enrollment'], ['csrf'], 128);
      if (fields.step_up_enrollment !== 'on' && fields.step_up_enrollment !== 'off') throw badRequest('errors.account.onOrOff');
      allowed = fields.step_up_enrollment === 'on';
    } catch (err) {
      if (err instanceof LatchkeyError) return securityPage(ctx, signed, undefined, err);
      throw err;
    }
    const before = signed.tenant.stepUpEnrollment === true;
    if (before !== allowed) {
      if (!(await accounts.setStepUpEnrollment(signed.tenant.id, allowed))) throw notFound();
      await audit.record({
        type: 'policy.step_up_changed',
        outcome: 'success',
        tenant: signed.tenant.id,
        login: signed.login.id,
        ...kit.requestInfo(ctx),
        detail: { from: before, to: allowed },
      });
    }
    ctx.redirect('/account/security?notice=stepUp');
    ctx.status = 303;
  });

  // Users.

  router.get('/users', async (ctx) => {
    const signed = await owner(ctx);
    if (!signed) return;
    const query = peopleQuery(ctx, signed.tenant);
    const { logins, total } = await accounts.searchLogins({
      tenant: signed.tenant.id,
      text: query.text,
      ...(query.userType ? { userType: query.userType } : {}),
      ...(query.state ? { state: query.state } : {}),
      sort: query.sort,
      descending: query.descending,
      offset: (query.page - 1) * PEOPLE_PAGE,
      limit: PEOPLE_PAGE,
    });
    const lockStates = await Promise.all(logins.map((l) => locks.state(l)));
    const pages = Math.max(1, Math.ceil(total / PEOPLE_PAGE));
    kit.render(ctx, 'account/users', signed, {
      section: 'users',
      notice: noticeOf(ctx.query.notice),
      filter: { text: query.text, userType: query.userType ?? '', state: query.state ?? '' },
      userTypeOptions: signed.tenant.userTypes.map((t) => ({ id: t.id, name: t.name })),
      stateOptions: LOGIN_STATES,
      total,
      page: query.page,
      pages,
      previous: query.page > 1 ? peopleUrl(query, { page: Math.min(query.page - 1, pages) }) : null,
      next: query.page < pages ? peopleUrl(query, { page: query.page + 1 }) : null,
      // A column's heading sorts by it; again, the other way round.
      sortLinks: Object.fromEntries(
        LOGIN_SORTS.map((sort) => [
          sort,
          {
            href: peopleUrl(query, { sort, descending: query.sort === sort && !query.descending, page: 1 }),
            current: query.sort === sort ? (query.descending ? 'descending' : 'ascending') : null,
          },
        ]),
      ),
      users: logins.map((l, i) => ({
        id: l.id,
        name: fullName(l),
        email: l.email,
        userType: userTypeName(signed.tenant, l.userType),
        factorState: factorState(l),
        disabled: l.disabled,
        lock: lockStates[i],
        isMe: l.id === signed.login.id,
        isOwner: isOwner(signed.tenant, l.id),
      })),
    });
  });

  const tenantLogin = (signed: Signed, loginId: unknown) => kit.tenantLogin(signed, loginId);

  function confirmPage(ctx: Context, signed: Signed, kind: UserAction, target: Login) {
    kit.render(ctx, 'account/confirm-reset', signed, {
      section: 'users',
      kind,
      action: `/account/users/${encodeURIComponent(target.id)}/${kind}`,
      target: { id: target.id, name: fullName(target), email: target.email, userType: userTypeName(signed.tenant, target.userType) },
    });
  }

  /** Every lift of a lock is audited; an explicit unlock even when the lock had passed meanwhile. `kept`: what only the operator can lift. */
  async function recordUnlock(ctx: Context, signed: Signed, target: Login, { lifted, kept }: { lifted: Lifted; kept: Lifted }, via?: UserAction) {
    if (!via && !Object.keys(lifted).length && !Object.keys(kept).length) return;
    const detail = { by: signed.login.id, ...(via ? { via } : {}), ...lifted, ...(Object.keys(kept).length ? { kept } : {}) };
    await audit.record({ type: 'login.unlocked', outcome: 'success', tenant: signed.tenant.id, login: target.id, ...kit.requestInfo(ctx), detail });
  }

  /**
   * An owner who disabled their own login would lock everyone out of the
   * tenant's pages; one who reset their own factor from a stolen session would
   * let the thief set up their own. Another owner is taken off the owners
   * before being disabled or removed (`./owners.ts`).
   */
  function checkAllowed(signed: Signed, kind: UserAction, target: Login) {
    if ((kind === 'disable' || kind === 'remove') && target.id === signed.login.id) throw badRequest(`errors.people.${kind === 'disable' ? 'notYourself' : 'notYourselfRemove'}`);
    if (kind in RESETS && target.id === signed.login.id) throw badRequest('errors.owners.notOwnReset');
    if ((kind === 'disable' || kind === 'remove') && isOwner(signed.tenant, target.id)) throw badRequest('errors.owners.stillOwner');
  }

  /** Disabling ends the login's sessions and tokens at once; either is recorded only when it changes the login. */
  async function setDisabled(ctx: Context, signed: Signed, target: Login, disabled: boolean) {
    if (target.disabled === disabled) return;
    if (!(await accounts.setLoginDisabled(target.id, disabled))) throw notFound('errors.account.noSuchUser');
    if (disabled) await endLoginSessions(accounts, provider, [target.id]);
    await audit.record({
      type: disabled ? 'login.disabled' : 'login.enabled',
      outcome: 'success',
      tenant: signed.tenant.id,
      login: target.id,
      ...kit.requestInfo(ctx),
      detail: { by: signed.login.id },
    });
  }

  /**
   * Ends the login's sessions and tokens, deletes it and, with the email's
   * last login in any tenant, the identity and its upstream links. The audit
   * keeps the event under the login id alone.
   */
  async function remove(ctx: Context, signed: Signed, target: Login) {
    await endLoginSessions(accounts, provider, [target.id]);
    if (!(await accounts.deleteLogin(target.id))) return;
    await audit.record({ type: 'login.removed', outcome: 'success', tenant: signed.tenant.id, login: target.id, ...kit.requestInfo(ctx), detail: { by: signed.login.id } });
    if ((await accounts.listLoginsForEmailAllTenants(target.email)).length) return;
    const identity = await accounts.findIdentityByEmail(target.email);
    if (identity) await accounts.deleteIdentity(identity.id);
  }

  async function act(ctx: Context, signed: Signed, kind: UserAction, target: Login): Promise<{ kept: Lifted }> {
    if (kind === 'remove') {
      await remove(ctx, signed, target);
      return { kept: {} };
    }
    if (kind === 'disable' || kind === 'enable') {
      await setDisabled(ctx, signed, target, kind === 'disable');
      return { kept: {} };
    }
    if (kind === 'unlock') {
      const result = await unlockLogin(deps, target);
      await recordUnlock(ctx, signed, target, result);
      return result;
    }
    // A reset is for someone who lost their phone or PIN: their password's failures must not keep them out either.
    const result = await resetFactor(deps, kit.actor(ctx, signed), target, RESETS[kind].factor);
    if (Object.keys(result.lifted).length || Object.keys(result.kept).length) await recordUnlock(ctx, signed, target, result, kind);
    return result;
  }

  for (const kind of USER_ACTIONS) {
    const path = `/users/:loginId/${kind}`;

    router.get(path, async (ctx) => {
      const signed = await owner(ctx);
      if (!signed) return;
      const target = await tenantLogin(signed, ctx.params.loginId);
      checkAllowed(signed, kind, target);
      if (!kit.fresh(ctx, signed, `/account/users/${encodeURIComponent(target.id)}/${kind}`)) return;
      confirmPage(ctx, signed, kind, target);
    });

    // The users page's button posts here without `confirm`: that shows the confirmation; `confirm=yes` acts.
    router.post(path, async (ctx) => {
      const signed = await owner(ctx, true);
      if (!signed) return;
      const target = await tenantLogin(signed, ctx.params.loginId);
      checkAllowed(signed, kind, target);
      if (!kit.fresh(ctx, signed, `/account/users/${encodeURIComponent(target.id)}/${kind}`)) return;
      const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
      if (confirm !== 'yes') return confirmPage(ctx, signed, kind, target);
      const { kept } = await act(ctx, signed, kind, target);
      ctx.redirect(`/account/users?notice=${kind === 'unlock' && Object.keys(kept).length ? 'unlock-kept' : kind}`);
      ctx.status = 303;
    });
  }

  // Audit log.

  router.get('/audit', async (ctx) => {
    const signed = await owner(ctx);
    if (!signed) return;
    const logins = await accounts.listLogins(signed.tenant.id);
    const query = auditQuery(ctx, logins);
    const events = await accounts.listAudit({ tenant: signed.tenant.id, ...query, limit: AUDIT_PAGE + 1 });
    const shown = events.slice(0, AUDIT_PAGE);
    const names = new Map(logins.map((l) => [l.id, fullName(l)]));
    const last = shown.at(-1);
    const filters = { ...(query.login ? { login: query.login } : {}), ...(query.type ? { type: query.type } : {}) };
    const older = events.length > AUDIT_PAGE && last ? `/account/audit?${new URLSearchParams({ ...filters, before: last.time.toISOString() })}` : null;
    const newest = query.before ? `/account/audit?${new URLSearchParams(filters)}` : null;
    kit.render(ctx, 'account/audit', signed, {
      section: 'audit',
      filter: { login: query.login ?? '', type: query.type ?? '', paged: !!query.before },
      loginOptions: logins.map((l) => ({ id: l.id, label: `${fullName(l)} (${l.email}, ${userTypeName(signed.tenant, l.userType)})` })),
      typeOptions: [...new Set([...AUDIT_TYPES, ...(query.type ? [query.type] : [])])].sort(),
      events: shown.map((e) => eventRow(e, names)),
      older,
      newest,
    });
  });
}

function single(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 256) throw badRequest('errors.account.filterValue', { filter: name });
  return value;
}

function auditQuery(ctx: Context, logins: Login[]): { login?: string; type?: string; before?: Date } {
  const login = single(ctx, 'login');
  const type = single(ctx, 'type');
  const before = single(ctx, 'before');
  if (login !== undefined && !logins.some((l) => l.id === login)) throw badRequest('errors.account.noSuchUser');
  if (type !== undefined && !TYPE_PATTERN.test(type)) throw badRequest('errors.account.notEventType');
  const time = before === undefined ? undefined : new Date(before);
  if (time && Number.isNaN(time.getTime())) throw badRequest('errors.account.beforeTime');
  return { ...(login ? { login } : {}), ...(type ? { type } : {}), ...(time ? { before: time } : {}) };
}

function eventRow(e: AuditEvent, names: Map<string, string>) {
  const detail = e.detail
    ? Object.entries(e.detail).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    : [];
  const by = typeof e.detail?.by === 'string' ? names.get(e.detail.by) : undefined;
  return {
    time: formatTime(e.time),
    iso: e.time.toISOString(),
    type: e.type,
    outcome: e.outcome,
    login: e.login ? (names.get(e.login) ?? e.login) : '',
    loginId: e.login ?? '',
    ip: e.ip ?? '',
    userAgent: e.userAgent ?? '',
    detail,
    by: by ?? null,
  };
}
