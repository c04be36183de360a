/**
 * The texts a factor needs in both catalogues (`locales/*.json`), all under
 * `factor.<id>.`: the generic pages (Security settings, Users, the profile,
 * the audit log, mail) look these up by the factor's id. Its own pages may
 * use more keys there; those are the i18n test's to find in its views.
 */
import type { FactorInfo, MethodInfo } from './types.ts';

export function factorTextKeys(factor: FactorInfo): string[] {
  const key = (text: string) => `factor.${factor.id}.${text}`;
  const keys = [key('name')];
  // A factor that keeps state is shown on the Users page as set up, and may be reset by the owner.
  if (factor.state) keys.push(key('state'));
  if (factor.ownerReset) keys.push(key('resetButton'), key('reset.title'), key('reset.text'), key('reset.confirm'), key('resetDone'));
  if (factor.changeFields) keys.push(key('changeLink'), key('changed'), key('notSetUp'));
  if (factor.alternatives?.length) keys.push(key('useInstead'));
  for (const type of factor.events) keys.push(key(`events.${type.slice(`factor.${factor.id}.`.length)}`));
  return keys;
}

/** A method's: the button that offers it on its factor's page (`factor.<method id>.use`) and its audit events. */
export function methodTextKeys(method: MethodInfo): string[] {
  const key = (text: string) => `factor.${method.id}.${text}`;
  return [key('use'), ...method.events.map((type) => key(`events.${type.slice(`factor.${method.id}.`.length)}`))];
}
