/**
 * A tenant's user types, without a transport: list them with how many logins
 * each has, create, rename and delete one (only while no login has it), and
 * change the second factor of several at once. The account pages, the
 * management API and SCIM (`Groups`) call these; each checks its input, changes
 * the one tenant of its `Actor` and writes the audit event.
 *
 * Audit events: `user_type.added` (`userType`, `name`, `secondFactor`),
 * `user_type.renamed` (`userType`, `from`, `to`), `user_type.removed`
 * (`userType`), `policy.changed` (`userType`, `from`, `to`) — each with `by`.
 */
import type { Audit } from '../audit.ts';
import type { FactorRegistry } from '../factors/registry.ts';
import { badRequest, conflict, forbidden, notFound } from '../errors.ts';
import type { AccountStore, SecondFactor, Tenant, UserType } from '../storage/accounts/port.ts';
import { USER_TYPES_MAX, userTypeNameTaken } from '../storage/accounts/values.ts';
import { recordChange } from './record.ts';
import type { Actor } from './people.ts';
import { slugOf } from './slug.ts';

export interface UserTypeDeps {
  accounts: AccountStore;
  audit: Audit;
  factors: FactorRegistry;
}

/** A user type as the owner sees it: with how many of the tenant's logins have it. */
export interface UserTypeSummary extends UserType {
  logins: number;
}

/** One user type's factor to change (`setUserTypeFactors`): its id and the factor's id from the registry. */
export interface FactorChoice {
  userType: string;
  secondFactor: string;
}

/** A change `setUserTypeFactors` makes (or would make): from, to, and how many logins it applies to. */
export interface FactorChange {
  userType: string;
  name: string;
  from: SecondFactor;
  to: SecondFactor;
  logins: number;
}

/** Lower-case letters, digits, `-` and `_`, starting with a letter or digit; at most 64. */
export const USER_TYPE_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const NAME_MAX = 100;
// Controls and invisible format characters would make two names look alike.
const NAME_REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** A user type's name: trimmed, inner spaces folded, 1–100 characters, no control or invisible characters; else a 400. */
export function userTypeName(value: unknown): string {
  if (typeof value !== 'string') throw badRequest('errors.form.notText', { field: 'name' });
  const name = value.trim().replace(/\s+/g, ' ');
  if (!name) throw badRequest('errors.userTypes.nameMissing');
  if (name.length > NAME_MAX) throw badRequest('errors.form.tooLong', { field: 'name' });
  if (NAME_REFUSED.test(name)) throw badRequest('errors.form.invalidCharacters', { field: 'name' });
  return name;
}

/** A factor id of the registry (the one list of factors), else a 400. */
export function factorChoice(factors: FactorRegistry, value: unknown): SecondFactor {
  const ids = factors.all().map((f) => f.id);
  if (typeof value !== 'string' || !ids.includes(value)) throw badRequest('errors.account.chooseFactor', { factors: ids.join(', ') });
  return value as SecondFactor;
}

/** An id for a new type from its name (`Night nurse` → `night-nurse`), `type` when nothing is left. */
export const userTypeIdFrom = (name: string) => slugOf(name, 'type');

async function tenantOf(accounts: AccountStore, actor: Actor): Promise<Tenant> {
  const tenant = await accounts.getTenant(actor.tenant.id);
  if (!tenant) throw notFound();
  return tenant;
}

function typeOf(tenant: Tenant, id: unknown): UserType {
  const type = typeof id === 'string' ? tenant.userTypes.find((t) => t.id === id) : undefined;
  if (!type) throw notFound('errors.account.noSuchUserType');
  return type;
}

/** How many of the tenant's logins have the type (the store counts; no login is read). */
export async function loginsOfType(accounts: AccountStore, tenantId: string, userType: string): Promise<number> {
  return (await accounts.searchLogins({ tenant: tenantId, userType, limit: 1 })).total;
}

/** The tenant's user types in their order, each with its number of logins. */
export async function listUserTypes(deps: Pick<UserTypeDeps, 'accounts'>, tenantId: string): Promise<UserTypeSummary[]> {
  const tenant = await deps.accounts.getTenant(tenantId);
  if (!tenant) throw notFound();
  return Promise.all(tenant.userTypes.map(async (t) => ({ ...t, logins: await loginsOfType(deps.accounts, tenant.id, t.id) })));
}

/**
 * Creates a user type at the end of the list. Without `id`, one is made from
 * the name (`-2`, `-3`… when taken); a given `id` that is taken is a 409.
 */
export async function createUserType(deps: UserTypeDeps, actor: Actor, input: { id?: string; name: unknown; secondFactor: unknown }): Promise<UserType> {
  const name = userTypeName(input.name);
  const secondFactor = factorChoice(deps.factors, input.secondFactor);
  if (input.id !== undefined && (typeof input.id !== 'string' || !USER_TYPE_ID.test(input.id))) throw badRequest('errors.userTypes.id');
  const tenant = await tenantOf(deps.accounts, actor);
  const nameTaken = () => conflict('errors.userTypes.nameTaken', { name });
  const tooMany = () => conflict('errors.userTypes.tooMany', { max: USER_TYPES_MAX });
  if (userTypeNameTaken(tenant.userTypes, name)) throw nameTaken();
  if (tenant.userTypes.length >= USER_TYPES_MAX) throw tooMany();
  const base = input.id ?? userTypeIdFrom(name);
  for (let n = 1; n <= 20; n++) {
    const id = n === 1 ? base : `${base}-${n}`;
    const type: UserType = { id, name, secondFactor };
    if (await deps.accounts.addUserType(tenant.id, type)) {
      await recordChange(deps.audit, actor, 'user_type.added', { userType: id, name, secondFactor });
      return type;
    }
    // Refused for its id, its name or the bound: a parallel request may have just added a type of this name, or the last one allowed.
    const now = (await tenantOf(deps.accounts, actor)).userTypes;
    if (userTypeNameTaken(now, name)) throw nameTaken();
    if (now.length >= USER_TYPES_MAX) throw tooMany();
    if (input.id !== undefined) break;
  }
  throw conflict('errors.userTypes.idTaken', { id: base });
}

/** Renames a user type; another type of the same name (case-insensitive) is a 409. Recorded only when the name changes. */
export async function renameUserType(deps: UserTypeDeps, actor: Actor, id: string, rawName: unknown): Promise<UserType> {
  const name = userTypeName(rawName);
  const tenant = await tenantOf(deps.accounts, actor);
  const type = typeOf(tenant, id);
  if (type.name === name) return type;
  if (userTypeNameTaken(tenant.userTypes, name, id)) throw conflict('errors.userTypes.nameTaken', { name });
  if (!(await deps.accounts.renameUserType(tenant.id, id, name))) {
    // Gone, or a parallel request gave another type this name.
    if (userTypeNameTaken((await tenantOf(deps.accounts, actor)).userTypes, name, id)) throw conflict('errors.userTypes.nameTaken', { name });
    throw notFound('errors.account.noSuchUserType');
  }
  await recordChange(deps.audit, actor, 'user_type.renamed', { userType: id, from: type.name, to: name });
  return { ...type, name };
}

/** Deletes a user type no login has (409 with `logins` otherwise), never the tenant's last. */
export async function deleteUserType(deps: UserTypeDeps, actor: Actor, id: string): Promise<void> {
  const tenant = await tenantOf(deps.accounts, actor);
  typeOf(tenant, id);
  const result = await deps.accounts.deleteUserType(tenant.id, id);
  if (result === 'not_found') throw notFound('errors.account.noSuchUserType');
  if (result === 'last') throw conflict('errors.userTypes.last');
  if (result === 'in_use') {
    const logins = await loginsOfType(deps.accounts, tenant.id, id);
    throw conflict('errors.userTypes.inUse', { logins, count: logins });
  }
  await recordChange(deps.audit, actor, 'user_type.removed', { userType: id });
}

/**
 * What `choices` would change: one entry per type whose factor differs, with
 * the number of its logins (who see the change at their next sign-in). Every
 * choice is checked first: an unknown type or factor, or a type named twice,
 * is a 400 and nothing is changed.
 */
export async function planFactorChanges(deps: UserTypeDeps, tenant: Tenant, choices: readonly FactorChoice[]): Promise<FactorChange[]> {
  const seen = new Set<string>();
  const checked = choices.map((c) => {
    const type = tenant.userTypes.find((t) => t.id === c.userType);
    if (!type) throw badRequest('errors.account.noSuchUserType');
    if (seen.has(type.id)) throw badRequest('errors.userTypes.twice', { userType: type.id });
    seen.add(type.id);
    return { type, to: factorChoice(deps.factors, c.secondFactor) };
  });
  const changed = checked.filter((c) => c.type.secondFactor !== c.to);
  return Promise.all(
    changed.map(async ({ type, to }) => ({ userType: type.id, name: type.name, from: type.secondFactor, to, logins: await loginsOfType(deps.accounts, tenant.id, type.id) })),
  );
}

/**
 * `planFactorChanges` for `actor`: an application may not change an owner's login (src/admin/people.ts),
 * nor so the factor its user type asks of it (403), or its secret would be a way past the owner's factor.
 */
export async function planActorFactorChanges(deps: UserTypeDeps, actor: Actor, tenant: Tenant, choices: readonly FactorChoice[]): Promise<FactorChange[]> {
  const changes = await planFactorChanges(deps, tenant, choices);
  if ('client' in actor.by && changes.length) {
    const ownersTypes = new Set((await Promise.all(tenant.owners.map((id) => deps.accounts.getLogin(id)))).flatMap((l) => (l ? [l.userType] : [])));
    const owners = changes.find((c) => ownersTypes.has(c.userType));
    if (owners) throw forbidden('errors.userTypes.ownersType', { userType: owners.name });
  }
  return changes;
}

/** Applies `choices` (see `planActorFactorChanges`) and records `policy.changed` for each type that changed; returns the changes. */
export async function setUserTypeFactors(deps: UserTypeDeps, actor: Actor, choices: readonly FactorChoice[]): Promise<FactorChange[]> {
  const tenant = await tenantOf(deps.accounts, actor);
  const changes = await planActorFactorChanges(deps, actor, tenant, choices);
  for (const change of changes) {
    if (!(await deps.accounts.setUserTypeFactor(tenant.id, change.userType, change.to))) throw notFound('errors.account.noSuchUserType');
    await recordChange(deps.audit, actor, 'policy.changed', { userType: change.userType, from: change.from, to: change.to });
  }
  return changes;
}
