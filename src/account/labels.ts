import type { FactorCatalogue, FactorRegistry } from '../factors/registry.ts';
import type { FactorMethod } from '../factors/types.ts';
import type { Login } from '../storage/accounts/port.ts';

/**
 * How the pages name things: keys of the catalogues (`locales/*.json`), which
 * the views turn into text in the page's language.
 */

/** A second factor's texts are its own: `factor.<id>.<text>` (`factor.pin.name`). */
export const factorText = (id: string, text: string) => `factor.${id}.${text}`;

/** A second factor's name: `factor.pin.name`. */
export const factorName = (id: string) => factorText(id, 'name');

/** A text to show: a catalogue key and the values it interpolates. */
export interface Text {
  key: string;
  values?: Record<string, unknown>;
}

/** Each factor the login has set up ("PIN set", "App linked"), what its methods have left ("8 recovery codes"), or "None". */
export function factorState(login: Login, factors: FactorRegistry): Text[] {
  const parts: Text[] = [];
  const counted = new Set<string>();
  for (const f of factors.all().filter((f) => f.enrolled(login))) {
    parts.push({ key: factorText(f.id, 'state') });
    for (const m of factors.methods(f)) {
      const count = counted.has(m.id) ? null : (m.count?.(login) ?? null);
      counted.add(m.id);
      if (count !== null) parts.push({ key: factorText(m.id, 'count'), values: { count } });
    }
  }
  return parts.length ? parts : [{ key: 'factorState.none' }];
}

/** The methods of the factors `login` has set up (the app's recovery codes), each once, in the registry's order. */
export function enrolledMethods(login: Login, factors: FactorRegistry): FactorMethod[] {
  return [
    ...new Map(
      factors
        .all()
        .filter((f) => f.enrolled(login))
        .flatMap((f) => factors.methods(f))
        .map((m) => [m.id, m]),
    ).values(),
  ];
}

/** `2024-05-01 10:00:00 UTC`. */
export const formatTime = (time: Date) => `${time.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

/** The notices shown after a change (`?notice=`): fixed texts, nothing from the URL is shown. */
export const NOTICES = [
  'reauthenticated',
  'password',
  'policy',
  'stepUp',
  'sessionPolicy',
  'unlock',
  'unlock-kept',
  'upstreamUnlinked',
  'sessionEnded',
  'otherSessionsEnded',
  'sessionsEnded',
  'added',
  'added-invited',
  'added-not-invited',
  'disable',
  'enable',
  'edited',
  'edited-not-invited',
  'remove',
  'scimRevoked',
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
