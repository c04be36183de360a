import type { FactorCatalogue, FactorRegistry } from '../factors/registry.ts';
import type { Login } from '../storage/accounts/port.ts';

/**
 * How the pages name things: keys of the catalogues (`locales/*.json`), which
 * the views turn into text in the page's language.
 */

/** A second factor's texts are its own: `factor.<id>.<text>` (`factor.pin.name`). */
export const factorText = (id: string, text: string) => `factor.${id}.${text}`;

/** A second factor's name: `factor.pin.name`. */
export const factorName = (id: string) => factorText(id, 'name');

/** Each factor the login has set up ("PIN set", "App linked"), or "None" (as keys). */
export function factorState(login: Login, factors: FactorRegistry): string[] {
  const parts = factors
    .all()
    .filter((f) => f.enrolled(login))
    .map((f) => factorText(f.id, 'state'));
  return parts.length ? parts : ['factorState.none'];
}

/** `2024-05-01 10:00:00 UTC`. */
export const formatTime = (time: Date) => `${time.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** The notices shown after a change (`?notice=`): fixed texts, nothing from the URL is shown. */
export const NOTICES = [
  'reauthenticated',
  'password',
  'policy',
  'stepUp',
  'unlock',
  'unlock-kept',
  'upstreamUnlinked',
  'added',
  'added-invited',
  'disable',
  'enable',
  'edited',
  'remove',
  'scimRevoked',
  'webhookRemoved',
] as const;

/** A factor's notices: after the person changed it, after the owner reset it. */
const FACTOR_NOTICES = { changed: 'changed', reset: 'resetDone' } as const;

/** The notice value after a factor's change or reset (`?notice=reset.pin`). */
export const factorNotice = (kind: keyof typeof FACTOR_NOTICES, id: string) => `${kind}.${id}`;

/** The notice's key (`notices.password`, `factor.pin.changed`), or undefined for anything else. */
export function noticeOf(value: unknown, factors?: FactorCatalogue): string | undefined {
  if (typeof value !== 'string') return undefined;
  if ((NOTICES as readonly string[]).includes(value)) return `notices.${value}`;
  const [kind, id, ...rest] = value.split('.');
  if (!factors || rest.length || !Object.hasOwn(FACTOR_NOTICES, kind!) || !factors.has(id)) return undefined;
  return factorText(id, FACTOR_NOTICES[kind as keyof typeof FACTOR_NOTICES]);
}
