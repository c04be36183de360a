import type { Login } from '../storage/accounts/port.ts';

/** How the pages name each second factor. */
export const FACTOR_NAMES: Record<string, string> = { none: 'None', pin: 'PIN code', totp: 'Authenticator app' };

export const factorName = (id: string) => FACTOR_NAMES[id] ?? id;

export const fullName = (login: Pick<Login, 'firstName' | 'lastName'>) => `${login.firstName} ${login.lastName}`.trim();

export const hasPin = (login: Login) => typeof login.factors.pin?.hash === 'string';
export const hasApp = (login: Login) => typeof login.factors.totp?.secret === 'string';

/** "PIN set", "App linked", both, or "None". */
export function factorState(login: Login): string {
  const parts = [hasPin(login) ? 'PIN set' : null, hasApp(login) ? 'App linked' : null].filter(Boolean);
  return parts.length ? parts.join(', ') : 'None';
}

/** `2024-05-01 10:00:00 UTC`. */
export const formatTime = (time: Date) => `${time.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** Messages for `?notice=` after a change (fixed texts: nothing from the URL is shown). */
export const NOTICES: Record<string, string> = {
  reauthenticated: 'You signed in again. You can make the change now.',
  pin: 'Your PIN has been changed.',
  authenticator: 'Your authenticator app has been linked again. Codes from the old key no longer work: remove it from the app.',
  password: 'Your password has been changed.',
  policy: 'The second factor has been saved. It applies from the next sign-in of each login of that type.',
  'reset-authenticator': 'The authenticator app has been reset. The user links an app again at their next sign-in; their sessions have been ended.',
  'reset-pin': 'The PIN has been reset. The user chooses a new PIN at their next sign-in; their sessions have been ended.',
};

export const noticeOf = (value: unknown) => (typeof value === 'string' ? NOTICES[value] : undefined);
