import type { Login } from '../storage/accounts/port.ts';

/**
 * How the pages name things: keys of the catalogues (`locales/*.json`), which
 * the views turn into text in the page's language.
 */

/** A second factor's name: `factors.none`, `factors.pin`, `factors.totp`. */
export const factorName = (id: string) => `factors.${id}`;

export const hasPin = (login: Login) => typeof login.factors.pin?.hash === 'string';
export const hasApp = (login: Login) => typeof login.factors.totp?.secret === 'string';

/** "PIN set", "App linked", both, or "None" (as keys). */
export function factorState(login: Login): string[] {
  const parts = [hasPin(login) ? 'factorState.pin' : null, hasApp(login) ? 'factorState.app' : null].filter((p): p is string => p !== null);
  return parts.length ? parts : ['factorState.none'];
}

/** `2024-05-01 10:00:00 UTC`. */
export const formatTime = (time: Date) => `${time.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** The notices shown after a change (`?notice=`): fixed texts, nothing from the URL is shown. */
export const NOTICES = [
  'reauthenticated',
  'pin',
  'authenticator',
  'password',
  'policy',
  'stepUp',
  'reset-authenticator',
  'reset-pin',
  'unlock',
  'unlock-kept',
  'upstreamUnlinked',
  'added',
  'added-invited',
  'disable',
  'enable',
  'edited',
  'remove',
  'typeAdded',
  'typeRenamed',
  'typeRemoved',
  'ownerAdded',
  'ownerAlready',
  'ownerRemoved',
  'ownerLeft',
  'providerAdded',
  'providerSaved',
  'providerRemoved',
  'appRemoved',
] as const;

/** The notice's key (`notices.pin`), or undefined for anything else. */
export const noticeOf = (value: unknown) => (typeof value === 'string' && (NOTICES as readonly string[]).includes(value) ? `notices.${value}` : undefined);
