/**
 * How the audit log reads: an event's details as sentences in the page's
 * language (never `reason: invalid_credentials`), and its time in the
 * viewer's zone and locale. The CSV export uses the same texts.
 */
import { hasText, type Language, type Translate } from '../i18n.ts';
import type { AuditEvent, Tenant } from '../storage/accounts/port.ts';
import { userTypeName } from '../names.ts';

/** What the texts need besides the event: who a login id is, the tenant's user types. */
export interface DetailContext {
  t: Translate;
  lang: Language;
  tenant: Pick<Tenant, 'userTypes'>;
  /** A login id's "First Last", or undefined when the login is gone. */
  nameOf(loginId: string): string | undefined;
}

/** Keys never shown as a detail: the person column shows the email, the rest is internal. */
const HIDDEN = new Set(['email', 'identity', 'lang', 'subject']);

/** `amr` values as words, in the order they are shown; `mfa` only says "more than one" and is left out. */
const AMR_WORDS = ['pwd', 'fed', 'pin', 'otp', 'hwk', 'swk', 'user', 'rec'];

const asText = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v));

function minutes(t: Translate, seconds: number) {
  return seconds > 90 ? t('common.minutes', { count: Math.ceil(seconds / 60) }) : t('common.seconds', { count: seconds });
}

/** What a sign-in used, in words ("password, authenticator code"); `mfa` only says "more than one" and is left out. */
export function amrText(t: Translate, amr: unknown): string {
  const words = (Array.isArray(amr) ? amr : []).map(asText).filter((a) => AMR_WORDS.includes(a));
  words.sort((a, b) => AMR_WORDS.indexOf(a) - AMR_WORDS.indexOf(b));
  return words.map((a) => t(`account.audit.amr.${a}`)).join(', ');
}

/** One sentence per detail of the event, in `ctx.t`'s language. */
export function detailTexts(event: AuditEvent, ctx: DetailContext): string[] {
  const { t } = ctx;
  const known = (_t: Translate, key: string) => (hasText(ctx.lang, key) ? t(key) : null);
  const d = event.detail ?? {};
  const out: string[] = [];
  const factor = (id: unknown) => known(t, `factor.${asText(id)}.name`) ?? asText(id);
  const person = (id: unknown) => (typeof id === 'string' ? (ctx.nameOf(id) ?? t('account.audit.detail.removedLogin', { id })) : asText(id));
  const fields = new Set(Object.keys(d));

  // Pairs that read as one sentence.
  if (event.type === 'policy.changed' && fields.has('userType')) {
    out.push(t('account.audit.detail.policy', { userType: userTypeName(ctx.tenant, asText(d.userType)), from: factor(d.from), to: factor(d.to) }));
    for (const k of ['userType', 'from', 'to']) fields.delete(k);
  } else if (event.type === 'policy.step_up_changed' && fields.has('to')) {
    out.push(t(d.to === true ? 'account.audit.detail.stepUpOn' : 'account.audit.detail.stepUpOff'));
    for (const k of ['from', 'to']) fields.delete(k);
  } else if (event.type === 'policy.sessions_changed' && fields.has('to')) {
    const to = (d.to ?? {}) as { lifetimeHours?: unknown; idleMinutes?: unknown; staySignedIn?: unknown };
    out.push(
      t('account.audit.detail.sessionPolicy', {
        hours: Number(to.lifetimeHours) || 0,
        idle: Number(to.idleMinutes) ? t('common.minutes', { count: Number(to.idleMinutes) }) : t('account.audit.detail.never'),
        stay: t(to.staySignedIn === false ? 'account.audit.detail.no' : 'account.audit.detail.yes'),
      }),
    );
    for (const k of ['from', 'to']) fields.delete(k);
  } else if (event.type === 'user_type.renamed' && fields.has('to')) {
    out.push(t('account.audit.detail.renamed', { from: asText(d.from), to: asText(d.to) }));
    for (const k of ['from', 'to']) fields.delete(k);
  } else if (fields.has('from') && fields.has('to')) {
    out.push(t('account.audit.detail.userTypeMoved', { from: userTypeName(ctx.tenant, asText(d.from)), to: userTypeName(ctx.tenant, asText(d.to)) }));
    for (const k of ['from', 'to']) fields.delete(k);
  }
  if (event.type === 'session.backchannel_logout' && fields.has('error')) {
    // The app's logout endpoint, not an upstream provider, answered this.
    out.push(t('account.audit.detail.logoutError', { error: asText(d.error) }));
    fields.delete('error');
  }
  if (fields.has('suppressed')) {
    out.push(t('account.audit.detail.suppressed', { count: Number(d.suppressed) || 0 }));
    fields.delete('suppressed');
    fields.delete('since');
  }

  for (const key of fields) {
    if (HIDDEN.has(key)) continue;
    const v = d[key];
    switch (key) {
      case 'by':
        out.push(t('account.audit.by', { name: person(v) }));
        break;
      case 'switchedFrom':
        out.push(t('account.audit.detail.switchedFrom', { name: person(v) }));
        break;
      case 'client':
        // On a back-channel logout the app that was told; elsewhere an
        // application acting through the management API (docs/api.md) or SCIM.
        out.push(event.type === 'session.backchannel_logout' ? t('account.audit.detail.app', { id: asText(v) }) : t('account.audit.byClient', { client: asText(v) }));
        break;
      case 'url':
        out.push(t('account.audit.detail.receiver', { url: asText(v) }));
        break;
      case 'events':
        out.push(t('account.audit.detail.events', { events: (Array.isArray(v) ? v : [v]).map(asText).join(', ') }));
        break;
      case 'subscription':
        break;
      case 'reason':
        out.push(known(t, `account.audit.reasons.${asText(v)}`) ?? t('account.audit.detail.reasonOther', { code: asText(v) }));
        break;
      case 'amr': {
        const what = amrText(t, v);
        if (what) out.push(t('account.audit.detail.with', { what }));
        break;
      }
      case 'acr':
        if (typeof v === 'string' && v) out.push(t('account.audit.detail.level', { level: known(t, `account.audit.acr.${v.split(':').at(-1)}`) ?? v }));
        break;
      case 'userType':
        out.push(t('account.audit.detail.userType', { userType: userTypeName(ctx.tenant, asText(v)) }));
        break;
      case 'changed':
        out.push(
          t('account.audit.detail.changed', {
            fields: (Array.isArray(v) ? v : [v]).map((f) => known(t, `account.audit.fields.${asText(f)}`) ?? asText(f)).join(', '),
          }),
        );
        break;
      case 'invited':
        if (v === true) out.push(t('account.audit.detail.invited'));
        break;
      case 'stepUp':
        if (v === true) out.push(t('account.audit.detail.stepUp'));
        break;
      case 'frozen':
        if (v === true) out.push(t('account.audit.detail.frozen'));
        break;
      case 'retryAfterSeconds':
        out.push(t('account.audit.detail.lockedFor', { duration: minutes(t, Number(v) || 0) }));
        break;
      case 'stage':
        out.push(known(t, `account.audit.stages.${asText(v)}`) ?? t('account.audit.detail.reasonOther', { code: asText(v) }));
        break;
      case 'via': {
        // An owner's reset names its factor (`reset/totp`); rows from before the factor seam say `reset-pin`, `reset-authenticator`.
        const reset = /^reset\/([a-z][a-z0-9_]*)$/.exec(asText(v));
        const what = reset ? t('account.audit.via.reset', { factor: known(t, `factor.${reset[1]}.name`) ?? reset[1] }) : (known(t, `account.audit.via.${asText(v)}`) ?? asText(v));
        out.push(t('account.audit.detail.via', { what }));
        break;
      }
      case 'sessions':
        out.push(t('account.audit.detail.sessionsEnded', { count: Number(v) || 0 }));
        break;
      case 'others':
        if (v === true) out.push(t('account.audit.detail.everywhereElse'));
        break;
      case 'attempt':
        out.push(t('account.audit.detail.attempt', { n: Number(v) || 0 }));
        break;
      case 'retryAt':
        out.push(t('account.audit.detail.retryAt', { time: asText(v).replace('T', ' ').slice(0, 19) + ' UTC' }));
        break;
      case 'loginsSignedOut':
        out.push(t('account.audit.detail.signedOut', { count: Number(v) || 0 }));
        break;
      case 'upstream':
        // The provider's name says it better when the event has it.
        if (!fields.has('provider')) out.push(t('account.audit.detail.upstream', { id: asText(v) }));
        break;
      case 'provider':
        out.push(t('account.audit.detail.provider', { name: asText(v) }));
        break;
      case 'name':
        out.push(t('account.audit.detail.name', { name: asText(v) }));
        break;
      case 'secondFactor':
        out.push(t('account.audit.detail.secondFactor', { factor: factor(v) }));
        break;
      case 'app':
        out.push(t('account.audit.detail.client', { id: asText(v) }));
        break;
      case 'firstParty':
        out.push(t(v === true ? 'account.audit.detail.firstParty' : 'account.audit.detail.thirdParty'));
        break;
      case 'minAcr':
        if (typeof v === 'string' && v) out.push(t('account.audit.detail.minLevel', { level: known(t, `account.audit.acr.${v.split(':').at(-1)}`) ?? v }));
        break;
      case 'error':
        out.push(t('account.audit.detail.providerError', { error: asText(v) }));
        break;
      case 'issuer':
        out.push(t('account.audit.detail.issuer', { issuer: asText(v) }));
        break;
      case 'password':
      case 'pin':
      case 'totp':
      case 'passkey':
        // An unlock's lifted lock, by what it guarded.
        out.push(t('account.audit.detail.lifted', { what: t(`account.audit.guards.${key}`), state: t(`account.audit.lockStates.${v === 'frozen' ? 'frozen' : 'locked'}`) }));
        break;
      case 'upstreamKept':
        out.push(t('account.audit.detail.upstreamKept', { count: Number(v) }));
        break;
      case 'kept':
        out.push(
          t('account.audit.detail.kept', {
            what: Object.keys((v ?? {}) as object)
              .map((k) => known(t, `account.audit.guards.${k}`) ?? k)
              .join(', '),
          }),
        );
        break;
      default:
        out.push(`${key}: ${asText(v)}`);
    }
  }
  return out;
}

/** The locale `Intl` formats a page language's dates in (Dutch: `1 dec 2026 14:05:03`). */
const LOCALES: Record<string, string> = { en: 'en-GB', nl: 'nl-NL' };

/** A time zone the browser said it is in, or null: only what `Intl` knows, never anything else from the request. */
export function timeZoneOf(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 64 || !/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(value)) return null;
  try {
    return new Intl.DateTimeFormat('en', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

const TIME_PARTS: Intl.DateTimeFormatOptions = {
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
  timeZoneName: 'short',
};

/** The time in the page's language, in `timeZone` (UTC by default) with its name. */
export function formatEventTime(time: Date, lang: string, timeZone: string | null): string {
  return new Intl.DateTimeFormat(LOCALES[lang] ?? lang, { ...TIME_PARTS, timeZone: timeZone ?? 'UTC' }).format(time);
}

/** How far `timeZone` is ahead of UTC at `at` (ms). */
function offsetAt(at: number, timeZone: string): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
      .formatToParts(at)
      .map((p) => [p.type, p.value]),
  );
  const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return local - Math.floor(at / 1000) * 1000;
}

/** The instant a calendar day (`2026-12-01`) starts in `timeZone`, or null for anything that is not such a day. */
export function startOfDay(day: string, timeZone: string | null): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return null;
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  const check = new Date(utc);
  if (check.getUTCFullYear() !== Number(m[1]) || check.getUTCMonth() !== Number(m[2]) - 1 || check.getUTCDate() !== Number(m[3])) return null;
  if (!timeZone) return check;
  // Twice: the offset at the guess may differ from the one at the answer across a clock change.
  let at = utc - offsetAt(utc, timeZone);
  at = utc - offsetAt(at, timeZone);
  return new Date(at);
}

/**
 * One CSV cell: quoted, and a cell a spreadsheet would run as a formula
 * (`=`, `+`, `-`, `@`, a tab or a carriage return first) gets a `'` first.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return `"${safe.replace(/"/g, '""')}"`;
}
