/**
 * The owner's pages: Security settings (the second factor per user
 * type), Users (the list of `./people.ts`'s criteria; reset a user's
 * authenticator app or PIN, unlock a user locked out by failed attempts,
 * disable, enable or remove a login). The audit log is `./audit.ts`.
 * Each request checks that the signed-in login owns its tenant, and only ever
 * reads or changes that tenant's logins.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError, badRequest, notFound } from '../errors.ts';
import { LOGIN_SORTS, LOGIN_STATES, type Login } from '../storage/accounts/port.ts';
import type { Factor } from '../factors/types.ts';
import type { FactorRegistry } from '../factors/registry.ts';
import { formFields, formList } from '../web/forms.ts';
import { planFactorChanges, setUserTypeFactors, type FactorChange, type FactorChoice } from '../admin/user-types.ts';
import { isOwner } from '../admin/owners.ts';
import type { Lifted } from '../admin/locks.ts';
import { factorName, factorNotice, factorState, factorText, noticeOf } from './labels.ts';
import type { AccountKit, Signed } from './kit.ts';
import { suggestedLastName } from '../admin/people.ts';
import { upstreamSettings } from '../upstream/settings.ts';
import { fullName, userTypeName } from '../names.ts';
import { PEOPLE_PAGE, peopleQuery, peopleUrl } from './people.ts';
import { sessionPolicyOf } from '../sessions/index.ts';
import { owned } from './owned.ts';

/**
 * What an owner can do to a user, by the last segment of its URL; each asks
 * for a confirmation. Besides these, each factor's reset:
 * `/users/:loginId/reset/<factor id>` (`src/admin/people.ts`'s `resetFactor`).
 */
export const USER_ACTIONS = ['unlock', 'disable', 'enable', 'remove'] as const;
type UserAction = (typeof USER_ACTIONS)[number] | `reset/${string}`;

/** A factor's reset, under a login's URL. */
const resetPath = (factor: Factor): UserAction => `reset/${factor.id}`;

/** Event types offered by the audit log's filter besides the factors' own (others can still be asked for by URL). */
export const AUDIT_TYPES = [
  'account.signin',
  'account.signout',
  'login.added',
  'login.disabled',
  'login.edited',
  'login.enabled',
  'login.invited',
  'login.removed',
  'login.sessions_ended',
  'login.unlocked',
  'password.locked',
  'password.changed',
  'policy.changed',
  'policy.step_up_changed',
  'scim.token.created',
  'scim.token.revoked',
  'policy.sessions_changed',
  'session.backchannel_logout',
  'session.ended',
  'signin.locked',
  'signin.no_login',
  'signin.password',
  'signin.success',
  'signin.upstream',
  'upstream.linked',
  'upstream.unlinked',
  'user_type.added',
  'user_type.renamed',
  'user_type.removed',
  'owner.added',
  'owner.removed',
  'upstream.added',
  'upstream.edited',
  'upstream.removed',
  'client.added',
  'client.secret_rotated',
  'client.removed',
  'webhook.added',
  'webhook.removed',
];

/** Every event type the audit filter offers: the list above and each factor's. */
export const auditTypes = (factors: FactorRegistry) => [...new Set([...AUDIT_TYPES, ...factors.events()])].sort();

/** The text of an event type: a factor's own (`factor.pin.events.set`), or `account.audit.events.<type>`. */
export function eventText(type: string, factors: FactorRegistry): string {
  const [head, id = '', ...rest] = type.split('.');
  return head === 'factor' && (factors.has(id) || factors.method(id)) && rest.length ? factorText(id, `events.${rest.join('.')}`) : `account.audit.events.${type}`;
}

export function ownerRoutes(router: Router, kit: AccountKit) {
  const { deps } = kit;
  const { accounts, factors, audit } = deps;
  const { people } = kit;

  const owner = (ctx: Context, form = false) => kit.owner(ctx, form);
  const resettable = factors.all().filter((f) => f.ownerReset);

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
        sessionPolicy: sessionPolicyOf(signed.tenant),
        longestSessionHours: Math.floor(deps.config.ttl.session / 3600),
        factorOptions: factors.ids().map((id) => ({ id, name: factorName(id) })),
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

  // How long sessions last (docs/relying-parties.md#session-lifetime). The provider keeps a session no longer than its TTL.
  router.post('/security/sessions', async (ctx) => {
    const signed = await owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/security')) return;
    const longest = Math.floor(deps.config.ttl.session / 3600);
    const whole = (v: string, min: number, max: number) => (/^\d{1,6}$/.test(v) && Number(v) >= min && Number(v) <= max ? Number(v) : null);
    let policy: { lifetimeHours: number; idleMinutes: number; staySignedIn: boolean };
    try {
      const fields = formFields(ctx.request.body, ['lifetime_hours', 'idle_minutes', 'stay_signed_in'], ['csrf'], 128);
      const lifetimeHours = whole(fields.lifetime_hours.trim(), 1, longest);
      if (lifetimeHours === null) throw badRequest('errors.account.sessionLifetime', { max: longest });
      const idleMinutes = whole(fields.idle_minutes.trim(), 0, lifetimeHours * 60);
      if (idleMinutes === null) throw badRequest('errors.account.idleTimeout', { max: lifetimeHours * 60 });
      if (fields.stay_signed_in !== 'on' && fields.stay_signed_in !== 'off') throw badRequest('errors.account.onOrOff');
      policy = { lifetimeHours, idleMinutes, staySignedIn: fields.stay_signed_in === 'on' };
    } catch (err) {
      if (err instanceof LatchkeyError) return securityPage(ctx, signed, undefined, err);
      throw err;
    }
    const before = sessionPolicyOf(signed.tenant);
    if (JSON.stringify(before) !== JSON.stringify(policy)) {
      if (!(await accounts.setSessionPolicy(signed.tenant.id, policy))) throw notFound();
      await audit.record({
        type: 'policy.sessions_changed',
        outcome: 'success',
        tenant: signed.tenant.id,
        login: signed.login.id,
        ...kit.requestInfo(ctx),
        detail: { from: before, to: policy },
      });
    }
    ctx.redirect('/account/security?notice=sessionPolicy');
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
    const lockStates = await Promise.all(logins.map((l) => people.lockState(l)));
    const alike = await namesakesOnPage(signed, logins);
    const pages = Math.max(1, Math.ceil(total / PEOPLE_PAGE));
    kit.render(ctx, 'account/users', signed, {
      section: 'users',
      notice: noticeOf(ctx.query.notice, factors),
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
        factorState: factorState(l, factors),
        // Only the resets that apply: the factors this login has set up.
        resets: resettable
          .filter((f) => f.enrolled(l))
          .map((f) => ({
            id: f.id,
            action: `/account/users/${encodeURIComponent(l.id)}/${resetPath(f)}`,
            text: factorText(f.id, 'resetButton'),
            icon: f.ownerReset?.icon ?? null,
          })),
        disabled: l.disabled,
        lock: lockStates[i],
        isMe: l.id === signed.login.id,
        isOwner: isOwner(signed.tenant, l.id),
        sameName: alike.has(l.id) ? { suggestion: `${l.firstName} ${suggestedLastName(signed.tenant, l)}` } : null,
      })),
    });
  });

  /**
   * The logins on the page that share their email's first and last name with
   * another login of the tenant: the person could not tell them apart in the
   * login choice. One read per email on the page.
   */
  async function namesakesOnPage(signed: Signed, logins: Login[]): Promise<Set<string>> {
    const emails = [...new Set(logins.map((l) => l.email))];
    const same = new Set<string>();
    const key = (l: Login) => `${l.firstName.toLowerCase()}\n${l.lastName.toLowerCase()}`;
    for (const all of await Promise.all(emails.map((e) => accounts.listLoginsForEmail(signed.tenant.id, e)))) {
      for (const l of all) if (all.some((o) => o.id !== l.id && key(o) === key(l))) same.add(l.id);
    }
    return same;
  }

  /** The factor a `reset/<id>` action resets, or null for the other actions. */
  const resetOf = (kind: UserAction): Factor | null => (kind.startsWith('reset/') ? factors.get(kind.slice('reset/'.length)) : null);

  function confirmPage(ctx: Context, signed: Signed, kind: UserAction, target: Login) {
    const factor = resetOf(kind);
    kit.render(ctx, 'account/confirm-reset', signed, {
      section: 'users',
      texts: factor ? factorText(factor.id, 'reset') : `account.reset.${kind}`,
      action: `/account/users/${encodeURIComponent(target.id)}/${kind}`,
      target: { id: target.id, name: fullName(target), email: target.email, userType: userTypeName(signed.tenant, target.userType) },
    });
  }

  /** An owner who disabled or removed their own login would lock everyone out of the tenant's pages (checked again by the operation). */
  function checkAllowed(signed: Signed, kind: UserAction, target: Login) {
    if ((kind === 'disable' || kind === 'remove') && target.id === signed.login.id) throw badRequest(`errors.people.${kind === 'disable' ? 'notYourself' : 'notYourselfRemove'}`);
  }

  async function act(ctx: Context, signed: Signed, kind: UserAction, target: Login): Promise<{ kept: Lifted }> {
    const actor = kit.actor(ctx, signed);
    if (kind === 'remove') await people.remove(actor, target);
    else if (kind === 'disable' || kind === 'enable') await people.setDisabled(actor, target, kind === 'disable');
    else if (kind === 'unlock') return people.unlock(actor, target);
    else return people.resetFactor(actor, target, resetOf(kind)!.id);
    return { kept: {} };
  }

  const actions: { kind: UserAction; path: string }[] = [
    ...USER_ACTIONS.map((kind) => ({ kind, path: kind })),
    ...resettable.flatMap((f) => [resetPath(f), ...(f.ownerReset?.alias ? [f.ownerReset.alias] : [])].map((path) => ({ kind: resetPath(f), path }))),
  ];
  for (const { kind, path: segment } of actions) {
    const path = `/users/:loginId/${segment}`;

    router.get(path, async (ctx) => {
      const signed = await owner(ctx);
      if (!signed) return;
      const target = owned(ctx, 'loginId');
      checkAllowed(signed, kind, target);
      if (!kit.fresh(ctx, signed, `/account/users/${encodeURIComponent(target.id)}/${kind}`)) return;
      confirmPage(ctx, signed, kind, target);
    });

    // The users page's button posts here without `confirm`: that shows the confirmation; `confirm=yes` acts.
    router.post(path, async (ctx) => {
      const signed = await owner(ctx, true);
      if (!signed) return;
      const target = owned(ctx, 'loginId');
      checkAllowed(signed, kind, target);
      if (!kit.fresh(ctx, signed, `/account/users/${encodeURIComponent(target.id)}/${kind}`)) return;
      const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
      if (confirm !== 'yes') return confirmPage(ctx, signed, kind, target);
      const { kept } = await act(ctx, signed, kind, target);
      const factor = resetOf(kind);
      ctx.redirect(`/account/users?notice=${factor ? factorNotice('reset', factor.id) : kind === 'unlock' && Object.keys(kept).length ? 'unlock-kept' : kind}`);
      ctx.status = 303;
    });
  }
}
