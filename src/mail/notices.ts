/**
 * Security notices (docs/mail.md): the person is told by mail when their
 * second factor was reset by the owner or set up or changed, when their
 * password was changed, and when failed attempts locked their login (at most
 * one such message an hour). Notices follow the audit log: every event of
 * those types that names a login sends one, whichever code recorded it, and a
 * notice never delays or fails the action it reports.
 */
import type { Audit, AuditInput } from '../audit.ts';
import type { Logger } from '../log.ts';
import type { AccountStore } from '../storage/accounts/port.ts';
import { randomUUID } from 'node:crypto';
import type { CounterStore } from '../storage/counters/port.ts';
import { DEFAULT_LANGUAGE, LANGUAGES, translator, type Language } from '../i18n.ts';
import type { Mailer, MailKind } from './mailer.ts';
import { builtInFactors, type FactorCatalogue } from '../factors/registry.ts';

type Notice = { kind: MailKind; factor?: string };

/** The audit event types that tell the person, and the message each sends: these, and each factor's (`FactorInfo.notices`). */
const NOTICES: Record<string, Notice> = {
  'password.changed': { kind: 'password_changed' },
  'signin.locked': { kind: 'notice_locked' },
  'password.locked': { kind: 'notice_locked' },
};

const FACTOR_NOTICE_KINDS = { set: 'notice_factor_set', reset: 'notice_factor_reset', locked: 'notice_locked' } as const;

function noticesOf(factors: FactorCatalogue): Record<string, Notice> {
  const out: Record<string, Notice> = { ...NOTICES };
  for (const id of factors.ids()) {
    for (const [type, kind] of Object.entries(factors.info(id).notices ?? {})) out[type] = { kind: FACTOR_NOTICE_KINDS[kind], factor: id };
  }
  return out;
}

const HOUR_MS = 3_600_000;

export function withNotices(
  audit: Audit,
  deps: { mailer: Mailer; accounts: AccountStore; counters: CounterStore; log: Logger; now?: () => Date; factors?: FactorCatalogue },
): Audit {
  const now = deps.now ?? (() => new Date());
  const notices = noticesOf(deps.factors ?? builtInFactors);

  /** The language of the login's last sign-in (kept with its audit event), else English. */
  async function lastLanguage(tenant: string, login: string): Promise<Language> {
    const [last] = await deps.accounts.listAudit({ tenant, login, type: 'signin.success', limit: 1 });
    const lang = last?.detail?.lang;
    return typeof lang === 'string' && (LANGUAGES as readonly string[]).includes(lang) ? (lang as Language) : DEFAULT_LANGUAGE;
  }

  async function notify(event: AuditInput) {
    const notice = Object.hasOwn(notices, event.type) ? notices[event.type] : undefined;
    if (!notice || !event.login) return;
    const wanted = notice.kind === 'notice_locked' ? event.outcome === 'failure' : event.outcome === 'success';
    if (!wanted) return;
    // One lock notice per login an hour: a window with room for one.
    if (notice.kind === 'notice_locked' && !(await deps.counters.windowTake(`notice:locked:${event.login}`, randomUUID(), 1, HOUR_MS, now().getTime())).allowed) return;
    const login = await deps.accounts.getLogin(event.login);
    const tenant = login ? await deps.accounts.getTenant(login.tenant) : null;
    if (!login || !tenant) return;
    const lang = await lastLanguage(login.tenant, login.id);
    const t = translator(lang);
    const when = `${now().toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' })} UTC`;
    await deps.mailer.send({
      kind: notice.kind,
      to: login.email,
      lang,
      tenant: { id: tenant.id, name: tenant.name },
      values: {
        when,
        factor: notice.factor ? t(`factor.${notice.factor}.name`) : t('mail.notice_locked.password'),
        how: t('mail.password_changed.how_changed'),
        frozen: event.detail?.frozen ? t('mail.notice_locked.frozen') : t('mail.notice_locked.wait'),
      },
    });
  }

  return {
    ...audit,
    async record(event) {
      await audit.record(event);
      notify(event).catch((err: unknown) => deps.log.warn({ err: (err as Error).message, type: event.type }, 'security notice not sent'));
    },
  };
}
