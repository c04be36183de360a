/**
 * The owner's page of one person: `GET /account/users/{loginId}` — the
 * login's facts, the factors it really has set up with only the resets that
 * apply to them, what their alternatives have left (recovery codes), the
 * lock, the last sign-in, where the login is signed in (the profile's list,
 * with "Sign out" per session and "Sign out everywhere"), the person's
 * links to this tenant's upstream providers and other logins here, and the
 * login's recent events (read like the audit log). Only facts of this tenant:
 * not whether the email has a password (an address another tenant uses may
 * have one), nor links to other tenants' providers, nor the identity's locks
 * of other tenants' attempts (`LoginLocks.state`), so adding a login for an
 * email tells the owner nothing of its other logins. Only ever a login of the owner's own tenant
 * (`./owned.ts`). Signing out goes through `src/admin/people.ts`, which
 * audits it with the owner as the one who acted and tells the apps by
 * back-channel logout.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { notFound } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import type { Login } from '../storage/accounts/port.ts';
import { fullName, loginLabel, userTypeName, userTypeOf } from '../names.ts';
import { localeOf } from '../web/views.ts';
import { detailTexts, formatEventTime } from './audit-text.ts';
import type { AccountKit } from './kit.ts';
import { enrolledMethods, factorName, factorText, noticeOf } from './labels.ts';
import { eventText } from './owner.ts';
import { owned } from './owned.ts';
import { sessionsShown } from './sessions.ts';

/** Events shown on the page; the audit log has the rest (`/account/audit?login=`). */
const RECENT_EVENTS = 10;
const SESSION_ID_MAX = 128;

const personPath = (login: Login, action = '') => `/account/users/${encodeURIComponent(login.id)}${action}`;

export function personPageRoutes(router: Router, kit: AccountKit) {
  const { accounts, factors } = kit.deps;

  router.get('/users/:loginId', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const target = owned(ctx, 'loginId');
    const tenant = signed.tenant;
    const [events, lastSignIn, identity, siblings, lock, sessions] = await Promise.all([
      accounts.listAudit({ tenant: tenant.id, login: target.id, limit: RECENT_EVENTS }),
      accounts.listAudit({ tenant: tenant.id, login: target.id, type: 'signin.success', limit: 1 }),
      accounts.findIdentityByEmail(target.email),
      accounts.listLoginsForEmail(tenant.id, target.email),
      kit.people.lockState(target),
      kit.people.listSessions(kit.actor(ctx, signed), target),
    ]);
    const [links, upstreams] = await Promise.all([identity ? accounts.listUpstreamLinks(identity.id) : [], accounts.listUpstreams(tenant.id)]);
    // The owners named in the events ("by Olga Owner"): the few logins the events mention, read once each.
    const mentioned = [...new Set(events.flatMap((e) => (typeof e.detail?.by === 'string' ? [e.detail.by] : [])))];
    const names = new Map((await Promise.all(mentioned.map((id) => accounts.getLogin(id)))).flatMap((l) => (l && l.tenant === tenant.id ? [[l.id, fullName(l)] as const] : [])));
    const { t, lang } = localeOf(ctx);
    const policy = userTypeOf(tenant, target.userType)?.secondFactor ?? 'none';
    // The factors this login really has set up; an owner's reset only where the factor offers one (`./owner.ts`'s `reset/<id>`).
    const enrolled = factors
      .all()
      .filter((f) => f.enrolled(target))
      .map((f) => ({
        id: f.id,
        name: factorName(f.id),
        reset: f.ownerReset ? { action: `/account/users/${encodeURIComponent(target.id)}/reset/${f.id}`, text: factorText(f.id, 'resetButton') } : null,
      }));
    const fmt = (time: Date) => ({ iso: time.toISOString(), text: formatEventTime(time, lang, null) });
    const isMe = target.id === signed.login.id;
    kit.render(ctx, 'account/person-page', signed, {
      section: 'users',
      notice: noticeOf(ctx.query.notice),
      person: {
        id: target.id,
        name: fullName(target),
        label: loginLabel(target, tenant),
        email: target.email,
        userType: userTypeName(tenant, target.userType),
        policy: factorName(policy),
        disabled: target.disabled,
        lock,
        isMe,
      },
      enrolled,
      // What the alternatives of the factors set up have left, for those that count (the app's recovery codes).
      methods: enrolledMethods(target, factors)
        .filter((m) => m.count)
        .map((m) => ({ id: m.id, name: factorName(m.id), count: m.count!(target) ?? 0, countText: factorText(m.id, 'count') })),
      // The owner's own sessions are ended from their profile (this browser's with its sign-out).
      sessions: sessionsShown(sessions, signed.session.sid, t),
      endSession: isMe ? null : personPath(target, '/sessions/end'),
      endSessions: isMe ? null : personPath(target, '/sessions/end-all'),
      lastSignIn: lastSignIn[0] ? fmt(lastSignIn[0].time) : null,
      links: links.flatMap((l) =>
        upstreams
          .filter((u) => u.issuer === l.issuer)
          .slice(0, 1)
          .map((u) => ({ issuer: l.issuer, name: u.name })),
      ),
      others: siblings.filter((l) => l.id !== target.id).map((l) => ({ id: l.id, label: loginLabel(l, tenant), disabled: l.disabled })),
      events: events.map((e) => ({
        ...fmt(e.time),
        type: e.type,
        event: t(eventText(e.type, factors), { defaultValue: e.type }),
        outcome: t(`account.audit.outcomes.${e.outcome}`),
        details: detailTexts(e, { t, lang, tenant, nameOf: (id) => names.get(id) }),
      })),
      allEvents: `/account/audit?${new URLSearchParams({ login: target.id })}`,
    });
  });

  const signedOut = (ctx: Context, target: Login, notice: 'sessionEnded' | 'sessionsEnded') => {
    ctx.redirect(`${personPath(target)}?notice=${notice}`);
    ctx.status = 303;
  };

  // One session of the person: its sign-in everywhere and its apps' tokens end, and its apps are told.
  router.post('/users/:loginId/sessions/end', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const target = owned(ctx, 'loginId');
    const { session } = formFields(ctx.request.body, ['session'], ['csrf'], SESSION_ID_MAX);
    // Another login's session (of this tenant or not), or one ended already: the same answer.
    if (!(await kit.people.endSession(kit.actor(ctx, signed), target, session))) throw notFound('errors.sessions.noSuchSession');
    signedOut(ctx, target, 'sessionEnded');
  });

  // Every session and token of the person, after a confirmation.
  router.post('/users/:loginId/sessions/end-all', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const target = owned(ctx, 'loginId');
    const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
    if (confirm !== 'yes') {
      return kit.render(ctx, 'account/confirm-reset', signed, {
        section: 'users',
        texts: 'account.person.endSessions',
        action: personPath(target, '/sessions/end-all'),
        target: { id: target.id, name: fullName(target), email: target.email, userType: userTypeName(signed.tenant, target.userType) },
      });
    }
    await kit.people.endSessions(kit.actor(ctx, signed), target);
    signedOut(ctx, target, 'sessionsEnded');
  });
}
