/**
 * The owner's page of one person: `GET /account/users/{loginId}` — the
 * login's facts, the factors it really has set up with only the resets that
 * apply to them, the lock, the last sign-in, the person's upstream links and
 * other logins here, and the login's recent events (read like the audit log).
 * Only ever a login of the owner's own tenant (another tenant's is a 404).
 */
import type Router from '@koa/router';
import { fullName, loginLabel, userTypeName, userTypeOf } from '../names.ts';
import { localeOf } from '../web/views.ts';
import { detailTexts, formatEventTime } from './audit-text.ts';
import type { AccountKit } from './kit.ts';
import { factorName, factorText } from './labels.ts';
import { eventText } from './owner.ts';

/** Events shown on the page; the audit log has the rest (`/account/audit?login=`). */
const RECENT_EVENTS = 10;

export function personPageRoutes(router: Router, kit: AccountKit) {
  const { accounts, factors } = kit.deps;

  router.get('/users/:loginId', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const target = await kit.tenantLogin(signed, ctx.params.loginId);
    const tenant = signed.tenant;
    const [events, lastSignIn, identity, siblings, lock] = await Promise.all([
      accounts.listAudit({ tenant: tenant.id, login: target.id, limit: RECENT_EVENTS }),
      accounts.listAudit({ tenant: tenant.id, login: target.id, type: 'signin.success', limit: 1 }),
      accounts.findIdentityByEmail(target.email),
      accounts.listLoginsForEmail(tenant.id, target.email),
      kit.people.lockState(target),
    ]);
    const links = identity ? await accounts.listUpstreamLinks(identity.id) : [];
    const upstreams = await accounts.listUpstreams(tenant.id);
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
    kit.render(ctx, 'account/person-page', signed, {
      section: 'users',
      person: {
        id: target.id,
        name: fullName(target),
        label: loginLabel(target, tenant),
        email: target.email,
        userType: userTypeName(tenant, target.userType),
        policy: factorName(policy),
        disabled: target.disabled,
        lock,
        isMe: target.id === signed.login.id,
        passwordSet: !!identity?.passwordHash,
      },
      enrolled,
      lastSignIn: lastSignIn[0] ? fmt(lastSignIn[0].time) : null,
      links: links.map((l) => ({ issuer: l.issuer, name: upstreams.find((u) => u.issuer === l.issuer)?.name ?? l.issuer })),
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
}
