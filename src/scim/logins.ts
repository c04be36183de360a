/**
 * What SCIM changes in a tenant's logins: create (an existing identity at
 * once, a new email invited), edit, disable (its sessions end at once),
 * enable, move to another user type and remove — with the account pages'
 * consequences (`src/account/people.ts`, `src/account/owner.ts`): the same
 * store calls, session ends, factor resets and audit events, each event
 * saying `by: "scim"` and which token.
 *
 * The owner's login is never disabled or removed over SCIM: the tenant would
 * lose the only person who can manage it (the pages refuse it the same way).
 */
import { createHash } from 'node:crypto';
import type { RouteDeps } from '../services.ts';
import type { Login, Tenant } from '../storage/accounts/port.ts';
import type { ScimStore } from '../storage/scim/port.ts';
import type { RequestInfo } from '../web/request.ts';
import { ScimError } from '../errors.ts';
import { endLoginSessions } from '../provider/revocation.ts';
import { sendInvitation } from '../recovery/routes.ts';

export type ScimDeps = Pick<RouteDeps, 'accounts' | 'provider' | 'factors' | 'audit' | 'config' | 'links' | 'mailer' | 'now'> & { scim: ScimStore };

/** Who is acting: the token and the request, for the audit. */
export interface Actor {
  tenant: Tenant;
  token: string;
  info: RequestInfo;
}

/** A login as SCIM writes it. */
export interface LoginFields {
  firstName: string;
  lastName: string;
  email: string;
  userType: string;
  active: boolean;
}

/**
 * The id of the login a SCIM create makes: derived from the tenant and the
 * userName, so two parallel creates of one user make one login, and a user
 * deleted and made again gets its old id (whose ended sessions stay ended).
 */
export const scimLoginId = (tenant: string, userName: string) => `l-${createHash('sha256').update(`${tenant}\nscim\n${userName.toLowerCase()}`).digest('hex').slice(0, 32)}`;

const uniqueness = (detail: string) => new ScimError(409, 'uniqueness', detail);

export function scimLogins(deps: ScimDeps) {
  const { accounts, audit, scim } = deps;
  const by = (actor: Actor) => ({ by: 'scim', token: actor.token });
  const record = (actor: Actor, type: string, login: string, detail: Record<string, unknown> = {}) =>
    audit.record({ type, outcome: 'success', tenant: actor.tenant.id, login, ip: actor.info.ip, userAgent: actor.info.userAgent, detail: { ...by(actor), ...detail } });

  /** A name may be held by a login removed elsewhere (the pages, an import): such a claim is let go. */
  async function freeStale(tenant: string, userName: string): Promise<boolean> {
    const holder = await scim.findByUserName(tenant, userName);
    if (!holder) return true;
    const login = await accounts.getLogin(holder.loginId);
    if (login && login.tenant === tenant) return false;
    await scim.removeUser(tenant, holder.loginId);
    return true;
  }

  /** Gives the login a userName (and externalId); a 409 when another login of the tenant has it. */
  async function name(tenant: string, loginId: string, userName: string, externalId: string | null) {
    if (await scim.setUser({ tenant, loginId, userName, externalId })) return;
    if ((await freeStale(tenant, userName)) && (await scim.setUser({ tenant, loginId, userName, externalId }))) return;
    throw uniqueness(`Another user of the tenant has the userName "${userName}".`);
  }

  function checkNotOwner(actor: Actor, login: Login, what: string) {
    if (actor.tenant.owner === login.id) throw new ScimError(400, 'mutability', `The tenant's owner cannot be ${what} over SCIM.`);
  }

  async function setActive(actor: Actor, login: Login, active: boolean) {
    if (login.disabled === !active) return;
    if (!active) checkNotOwner(actor, login, 'disabled');
    if (!(await accounts.setLoginDisabled(login.id, !active))) throw new ScimError(404, null, 'No such user.');
    if (!active) await endLoginSessions(accounts, deps.provider, [login.id], deps.now);
    await record(actor, active ? 'login.enabled' : 'login.disabled', login.id);
  }

  return {
    name,
    freeStale,

    async create(actor: Actor, userName: string, externalId: string | null, fields: LoginFields): Promise<Login> {
      const id = scimLoginId(actor.tenant.id, userName);
      if (await accounts.getLogin(id)) throw uniqueness(`A user was made for the userName "${userName}" before; it is now another user's, or named otherwise.`);
      await name(actor.tenant.id, id, userName, externalId);
      const identity = await accounts.upsertIdentity({ email: fields.email });
      const { active, ...profile } = fields;
      if (!(await accounts.createLogin({ id, tenant: actor.tenant.id, ...profile, disabled: !active })))
        throw uniqueness(`The user "${userName}" was just made by another request.`);
      const invite = identity.passwordHash === null && active;
      await record(actor, 'login.added', id, { userType: fields.userType, invited: invite });
      if (invite) await sendInvitation(deps, { email: fields.email, tenantId: actor.tenant.id, by: 'scim', now: new Date(deps.now()) });
      return (await accounts.getLogin(id))!;
    },

    /**
     * Changes what differs. A new email hands the login to another person:
     * their sessions end and the factors set up are forgotten, as on the pages.
     */
    async update(actor: Actor, login: Login, fields: LoginFields): Promise<void> {
      const changed = (['firstName', 'lastName', 'email', 'userType'] as const).filter((k) => fields[k] !== login[k]);
      // Disabling comes first: a login that is being turned off must not keep a session while its profile changes.
      if (!fields.active) await setActive(actor, login, false);
      if (changed.length) {
        const moved = changed.includes('email');
        const identity = moved ? await accounts.upsertIdentity({ email: fields.email }) : null;
        await accounts.upsertLogin({ id: login.id, tenant: login.tenant, firstName: fields.firstName, lastName: fields.lastName, email: fields.email, userType: fields.userType });
        if (moved) {
          for (const factor of deps.factors.all()) await factor.reset(login.id);
          await endLoginSessions(accounts, deps.provider, [login.id], deps.now);
        }
        await record(actor, 'login.edited', login.id, { changed, ...(changed.includes('userType') ? { from: login.userType, to: fields.userType } : {}) });
        if (identity && identity.passwordHash === null) await sendInvitation(deps, { email: fields.email, tenantId: actor.tenant.id, by: 'scim', now: new Date(deps.now()) });
      }
      if (fields.active) await setActive(actor, login, true);
    },

    /** Ends the login's sessions, deletes it and, with its email's last login anywhere, the identity. */
    async remove(actor: Actor, login: Login): Promise<void> {
      checkNotOwner(actor, login, 'removed');
      await endLoginSessions(accounts, deps.provider, [login.id], deps.now);
      if (!(await accounts.deleteLogin(login.id))) throw new ScimError(404, null, 'No such user.');
      await scim.removeUser(actor.tenant.id, login.id);
      await record(actor, 'login.removed', login.id);
      if ((await accounts.listLoginsForEmailAllTenants(login.email)).length) return;
      const identity = await accounts.findIdentityByEmail(login.email);
      if (identity) await accounts.deleteIdentity(identity.id);
    },
  };
}

export type ScimLogins = ReturnType<typeof scimLogins>;
