/**
 * A tenant's owners, without a transport: list them, make a login of the
 * tenant an owner, take one off (never the last: the store refuses it, also
 * when two owners remove each other at once), and find the login an operator
 * or an owner means by an email (and a user type when the email has several
 * logins in the tenant). The account pages and the operator CLI call these.
 *
 * Audit events: `owner.added` and `owner.removed`, the login being the one
 * made or no longer an owner, with `by`.
 */
import type { Audit } from '../audit.ts';
import { badRequest, conflict, notFound } from '../errors.ts';
import { normalizeEmail, type AccountStore, type Login, type Tenant } from '../storage/accounts/port.ts';
import { recordChange } from './record.ts';
import type { Actor } from './people.ts';

export interface OwnerDeps {
  accounts: AccountStore;
  audit: Audit;
}

/** The tenant's owners in the order they became owners (a login id the store no longer has is left out). */
export async function listOwners(deps: Pick<OwnerDeps, 'accounts'>, tenant: Tenant): Promise<Login[]> {
  const logins = await Promise.all(tenant.owners.map((id) => deps.accounts.getLogin(id)));
  return logins.filter((l): l is Login => l !== null && l.tenant === tenant.id);
}

export const isOwner = (tenant: Pick<Tenant, 'owners'>, loginId: string) => tenant.owners.includes(loginId);

/**
 * The login of `email` in the tenant; with several, the one of `userType`
 * (a 400 that names the types when it is not given). 404 when there is none.
 */
export async function loginByEmail(accounts: AccountStore, tenant: Tenant, email: string, userType?: string): Promise<Login> {
  const logins = await accounts.listLoginsForEmail(tenant.id, normalizeEmail(email));
  const matching = userType ? logins.filter((l) => l.userType === userType) : logins;
  if (!matching.length) throw notFound('errors.owners.noLogin');
  if (matching.length > 1) throw badRequest('errors.owners.chooseType', { userTypes: matching.map((l) => l.userType).join(', ') });
  return matching[0]!;
}

/**
 * Makes a login of the tenant an owner; a disabled login cannot be one (400),
 * nor one gone (404). `already`: it was one.
 *
 * `login` was read before this call, so the login is read again after the
 * owner is written: one disabled or removed meanwhile (another tab, an
 * application) is taken off again. Without that, an owner id could outlive its
 * login, and a login later created with that id (the API derives ids from
 * idempotency keys) would be an owner nobody made.
 */
export async function addOwner(deps: OwnerDeps, actor: Actor, login: Login): Promise<'added' | 'already'> {
  if (login.tenant !== actor.tenant.id) throw notFound('errors.account.noSuchUser');
  if (login.disabled) throw badRequest('errors.owners.disabled');
  const result = await deps.accounts.addOwner(actor.tenant.id, login.id);
  if (result === 'not_found') throw notFound();
  if (result === 'added') {
    const now = await deps.accounts.getLogin(login.id);
    if (!now || now.tenant !== actor.tenant.id || now.disabled) {
      await deps.accounts.removeOwner(actor.tenant.id, login.id);
      throw now && now.tenant === actor.tenant.id ? badRequest('errors.owners.disabled') : notFound('errors.account.noSuchUser');
    }
    await recordChange(deps.audit, actor, 'owner.added', {}, login.id);
  }
  return result;
}

/** Takes a login off the owners; the last owner stays (409). */
export async function removeOwner(deps: OwnerDeps, actor: Actor, loginId: string): Promise<void> {
  const result = await deps.accounts.removeOwner(actor.tenant.id, loginId);
  if (result === 'not_owner') throw notFound('errors.owners.notOwner');
  if (result === 'last') throw conflict('errors.owners.last');
  await recordChange(deps.audit, actor, 'owner.removed', {}, loginId);
}
