/**
 * The owner's audit log: `GET /account/audit` (fifty events a page, newest
 * first) and `GET /account/audit.csv` (the same filters, as a spreadsheet).
 * Filters by person (an email: every login of it, and its failed sign-ins
 * without a login), by login, by event type and by a date range in the
 * viewer's time zone; the store filters and pages, so a tenant of any size
 * costs one page. Only the logins on the page are read, to name them.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { badRequest } from '../errors.ts';
import { AUDIT_PERSON_LOGINS, normalizeEmail, type AuditEvent, type AuditQuery, type Login } from '../storage/accounts/port.ts';
import { fullName, userTypeName } from '../names.ts';
import { localeOf } from '../web/views.ts';
import { auditTypes, eventText } from './owner.ts';
import type { FactorRegistry } from '../factors/registry.ts';
import { csvCell, detailTexts, formatEventTime, startOfDay, timeZoneOf, type DetailContext } from './audit-text.ts';
import type { AccountKit, Signed } from './kit.ts';
import { EMAIL_MAX } from '../email.ts';

const AUDIT_PAGE = 50;
/** The most events one CSV export holds (the newest of the filter). */
export const AUDIT_EXPORT_MAX = 10_000;
const EXPORT_BATCH = 500;
const TYPE_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;
const DAY_MS = 86_400_000;

function single(ctx: Context, name: string, max = 256): string | undefined {
  const value = ctx.query[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > max) throw badRequest('errors.account.filterValue', { filter: name });
  return value.trim() || undefined;
}

/** What the log was asked for, every value checked; `links` is the query string that keeps it. */
interface AuditFilter {
  person: string;
  login: string;
  type: string;
  from: string;
  to: string;
  timeZone: string | null;
  before: Date | null;
  /** The store's query (without limit), or null when the person has no login here and no failed sign-in could be theirs. */
  query: AuditQuery;
}

async function auditFilter(ctx: Context, signed: Signed, kit: AccountKit): Promise<AuditFilter> {
  const tenant = signed.tenant.id;
  const person = single(ctx, 'person', EMAIL_MAX) ?? '';
  const login = single(ctx, 'login') ?? '';
  const type = single(ctx, 'type', 64) ?? '';
  const from = single(ctx, 'from', 10) ?? '';
  const to = single(ctx, 'to', 10) ?? '';
  const before = single(ctx, 'before', 64);
  const timeZone = timeZoneOf(single(ctx, 'tz', 64));
  if (type && !TYPE_PATTERN.test(type)) throw badRequest('errors.account.notEventType');
  // A login of another tenant is refused; a removed one's id still finds the events kept under it.
  const named = login ? await kit.deps.accounts.getLogin(login) : null;
  if (named && named.tenant !== tenant) throw badRequest('errors.account.noSuchUser');
  const since = from ? startOfDay(from, timeZone) : null;
  if (from && !since) throw badRequest('errors.account.auditDate', { filter: 'from' });
  const until = to ? startOfDay(to, timeZone) : null;
  if (to && !until) throw badRequest('errors.account.auditDate', { filter: 'to' });
  const page = before === undefined ? null : new Date(before);
  if (page && Number.isNaN(page.getTime())) throw badRequest('errors.account.beforeTime');
  // The end of the range is the end of its day: the next day's start, which also holds across a clock change.
  const end = until ? startOfDay(new Date(Date.parse(`${to}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10), timeZone) : null;
  const ends = [page, end].filter((d): d is Date => d !== null);
  const query: AuditQuery = {
    tenant,
    ...(login ? { login } : {}),
    ...(type ? { type } : {}),
    ...(since ? { since } : {}),
    ...(ends.length ? { before: new Date(Math.min(...ends.map((d) => d.getTime()))) } : {}),
  };
  if (person) {
    const email = normalizeEmail(person);
    const logins = (await kit.deps.accounts.listLoginsForEmail(tenant, email)).slice(0, AUDIT_PERSON_LOGINS);
    query.person = { logins: logins.map((l) => l.id), email };
  }
  return { person, login, type, from, to, timeZone, before: page, query };
}

/** The filter's query string, with `change` applied; empty values left out. */
function filterUrl(path: string, f: AuditFilter, change: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  const values: Record<string, string> = { person: f.person, login: f.login, type: f.type, from: f.from, to: f.to, tz: f.timeZone ?? '', ...change };
  for (const [k, v] of Object.entries(values)) if (v) params.set(k, v);
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

/** The people the events name: their logins read once each, and the logins of emails that failed to sign in. */
async function peopleOf(kit: AccountKit, signed: Signed, events: AuditEvent[]) {
  const { accounts } = kit.deps;
  const ids = new Set<string>();
  const emails = new Set<string>();
  for (const e of events) {
    if (e.login) ids.add(e.login);
    if (typeof e.detail?.by === 'string') ids.add(e.detail.by);
    if (!e.login && typeof e.detail?.email === 'string') emails.add(e.detail.email);
  }
  const logins = new Map<string, Login>();
  for (const login of await Promise.all([...ids].map((id) => accounts.getLogin(id)))) {
    if (login && login.tenant === signed.tenant.id) logins.set(login.id, login);
  }
  const byEmail = new Map<string, Login[]>();
  await Promise.all([...emails].map(async (email) => byEmail.set(email, await accounts.listLoginsForEmail(signed.tenant.id, email))));
  return { logins, byEmail };
}

type People = Awaited<ReturnType<typeof peopleOf>>;

function eventRow(e: AuditEvent, people: People, ctx: DetailContext, signed: Signed, lang: string, timeZone: string | null, factors: FactorRegistry) {
  const login = e.login ? people.logins.get(e.login) : undefined;
  const email = login?.email ?? (typeof e.detail?.email === 'string' ? e.detail.email : '');
  const namesakes = !e.login && email ? (people.byEmail.get(email) ?? []) : [];
  const name = login ? `${fullName(login)} — ${userTypeName(signed.tenant, login.userType)}` : namesakes.length ? [...new Set(namesakes.map(fullName))].join(', ') : '';
  return {
    iso: e.time.toISOString(),
    time: formatEventTime(e.time, lang, timeZone),
    type: e.type,
    event: ctx.t(eventText(e.type, factors), { defaultValue: e.type }),
    outcome: e.outcome,
    outcomeText: ctx.t(`account.audit.outcomes.${e.outcome}`),
    name,
    email,
    loginId: e.login ?? '',
    // A login removed since: the audit keeps its id only.
    removed: !!e.login && !login,
    ip: e.ip ?? '',
    userAgent: e.userAgent ?? '',
    details: detailTexts(e, ctx),
  };
}

export function auditRoutes(router: Router, kit: AccountKit) {
  const { accounts, factors } = kit.deps;

  function detailContext(ctx: Context, signed: Signed, people: People): DetailContext {
    const { t, lang } = localeOf(ctx);
    return { t, lang, tenant: signed.tenant, nameOf: (id) => (people.logins.has(id) ? fullName(people.logins.get(id)!) : undefined) };
  }

  router.get('/audit', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const filter = await auditFilter(ctx, signed, kit);
    const events = await accounts.listAudit({ ...filter.query, limit: AUDIT_PAGE + 1 });
    const shown = events.slice(0, AUDIT_PAGE);
    const people = await peopleOf(kit, signed, shown);
    const details = detailContext(ctx, signed, people);
    const last = shown.at(-1);
    const { lang } = localeOf(ctx);
    kit.render(ctx, 'account/audit', signed, {
      section: 'audit',
      filter: { person: filter.person, login: filter.login, type: filter.type, from: filter.from, to: filter.to, tz: filter.timeZone ?? '' },
      filterLogin: filter.login ? await accounts.getLogin(filter.login).then((l) => (l && l.tenant === signed.tenant.id ? fullName(l) : filter.login)) : null,
      typeOptions: [...new Set([...auditTypes(factors), ...(filter.type ? [filter.type] : [])])].sort().map((type) => ({ type, text: eventText(type, factors) })),
      events: shown.map((e) => eventRow(e, people, details, signed, lang, filter.timeZone, factors)),
      timeZone: filter.timeZone ?? 'UTC',
      older: events.length > AUDIT_PAGE && last ? filterUrl('/account/audit', filter, { before: last.time.toISOString() }) : null,
      newest: filter.before ? filterUrl('/account/audit', filter) : null,
      csv: filterUrl('/account/audit.csv', filter, filter.before ? { before: filter.before.toISOString() } : {}),
    });
  });

  router.get('/audit.csv', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (!signed) return;
    const filter = await auditFilter(ctx, signed, kit);
    const { t, lang } = localeOf(ctx);
    const lines = [['time', 'event', 'type', 'outcome', 'name', 'email', 'login', 'ip', 'user_agent', 'details'].map((k) => csvCell(t(`account.audit.csv.${k}`))).join(',')];
    let before = filter.query.before;
    let count = 0;
    // Paged by time; events of the boundary's millisecond that were written already are skipped, not lost.
    let seenAtBoundary = 0;
    while (count < AUDIT_EXPORT_MAX) {
      const batch = await accounts.listAudit({ ...filter.query, ...(before ? { before } : {}), limit: EXPORT_BATCH });
      const fresh = batch.slice(seenAtBoundary);
      if (!fresh.length) break;
      const people = await peopleOf(kit, signed, fresh);
      const details = detailContext(ctx, signed, people);
      for (const e of fresh.slice(0, AUDIT_EXPORT_MAX - count)) {
        const r = eventRow(e, people, details, signed, lang, filter.timeZone, factors);
        lines.push([r.iso, r.event, r.type, r.outcomeText, r.name, r.email, r.loginId, r.ip, r.userAgent, r.details.join('; ')].map(csvCell).join(','));
        count++;
      }
      if (batch.length < EXPORT_BATCH) break;
      const lastTime = batch.at(-1)!.time.getTime();
      const atLast = batch.filter((e) => e.time.getTime() === lastTime).length;
      // A whole batch in one millisecond: the next page starts after it, so nothing is written twice.
      if (atLast === batch.length) {
        before = new Date(lastTime);
        seenAtBoundary = 0;
      } else {
        before = new Date(lastTime + 1);
        seenAtBoundary = atLast;
      }
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Disposition', `attachment; filename="audit-${signed.tenant.id.replace(/[^A-Za-z0-9_-]/g, '_')}.csv"`);
    ctx.type = 'text/csv; charset=utf-8';
    // A byte order mark, so spreadsheet programs read the names' accents as UTF-8.
    ctx.body = `\uFEFF${lines.join('\r\n')}\r\n`;
  });
}
