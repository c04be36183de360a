/**
 * What SCIM changes in a tenant's logins, through the operations the owner's
 * pages and the API use (`src/admin/people.ts`): create (an existing
 * identity at once, a new email invited), edit, disable (its sessions end at
 * once), enable, move to another user type and remove — the same rules,
 * session ends, factor resets and audit events. SCIM acts as the tenant's
 * application `scim:<token id>` (the audit's `detail.client`), so, like
 * every application, it may not change the tenant owner's login (403).
 * Their `LatchkeyError`s become SCIM errors in the router.
 *
 * Besides, it keeps what the directory says of a login — its `userName`
 * and `externalId` — in the SCIM store.
 */
import type { Login } from '../storage/accounts/port.ts';
import { NO_REVISION, type ScimStore, type ScimUser } from '../storage/scim/port.ts';
import { LatchkeyError, ScimError, preconditionFailed } from '../errors.ts';
import { adminPeople, derivedLoginId, type Actor, type AdminDeps, type PersonFields } from '../admin/people.ts';

export type ScimDeps = AdminDeps & { scim: ScimStore };

export type { Actor };

/** A login as SCIM writes it. */
export interface LoginFields extends PersonFields {
  active: boolean;
}

/** The actor of a request made with the token `tokenId`. */
export const scimActor = (tenant: Actor['tenant'], tokenId: string, info: { ip: string | null; userAgent: string | null }): Actor => ({
  tenant,
  by: { client: `scim:${tokenId}` },
  ip: info.ip,
  userAgent: info.userAgent,
});

/**
 * The id of the login a SCIM create makes: derived from the tenant and the
 * userName, so two parallel creates of one user make one login, and a user
 * deleted and made again gets its old id (whose ended sessions stay ended).
 */
export const scimLoginId = (tenant: string, userName: string) => derivedLoginId(tenant, `scim\n${userName.toLowerCase()}`);

const uniqueness = (detail: string) => new ScimError(409, 'uniqueness', detail);

export function scimLogins(deps: ScimDeps) {
  const { accounts, scim } = deps;
  const people = adminPeople(deps);

  /** A name may be held by a login removed elsewhere (the pages, an import): such a claim is let go. */
  async function freeStale(tenant: string, userName: string): Promise<boolean> {
    const holder = await scim.findByUserName(tenant, userName);
    if (!holder) return true;
    const login = await accounts.getLogin(holder.loginId);
    if (login && login.tenant === tenant) return false;
    await scim.removeUser(tenant, holder.loginId);
    return true;
  }

  /**
   * Gives the login a userName (and externalId) while its SCIM values are
   * still at `revision`: their new revision, or null when they moved on
   * since (nothing written); a 409 when another login of the tenant has it.
   */
  async function name(tenant: string, loginId: string, revision: number, userName: string, externalId: string | null): Promise<number | null> {
    const user = { tenant, loginId, userName, externalId };
    let result = await scim.setUserIf(revision, user);
    if (result === 'taken' && (await freeStale(tenant, userName))) result = await scim.setUserIf(revision, user);
    if (result === 'taken') throw uniqueness(`Another user of the tenant has the userName "${userName}".`);
    return result === 'changed' ? null : result.revision;
  }

  /** Throws what a change of the login to `fields` would be refused with (the tenant's owner: 403), writing nothing. */
  const check = (actor: Actor, login: Login, fields: LoginFields) => people.checkUpdate(actor, login, !fields.active && !login.disabled);

  const person = ({ firstName, lastName, email, userType }: LoginFields): PersonFields => ({ firstName, lastName, email, userType });

  return {
    name,

    async create(actor: Actor, userName: string, externalId: string | null, fields: LoginFields): Promise<Login> {
      const id = scimLoginId(actor.tenant.id, userName);
      if (await accounts.getLogin(id)) throw uniqueness(`A user was made for the userName "${userName}" before; it is now another user's, or named otherwise.`);
      // Values kept from a login of this id removed elsewhere (the pages, an import) are written over.
      const kept = await scim.getUser(actor.tenant.id, id);
      if ((await name(actor.tenant.id, id, kept?.revision ?? NO_REVISION, userName, externalId)) === null)
        throw uniqueness(`The user "${userName}" was just made by another request.`);
      // A directory cannot answer "this name is taken by another login of the email": namesakes are made as asked.
      const made = await people.create(actor, id, person(fields), { sameName: true });
      if (made.outcome !== 'created') throw uniqueness(`The user "${userName}" was just made by another request.`);
      return fields.active ? made.login : people.setDisabled(actor, made.login, true);
    },

    check,

    /**
     * Changes what differs — names, email, user type, `active` — of the
     * login as read, and the userName and externalId of `naming` from its
     * values as read (`naming.read`): 412 when either changed since, so
     * another request's change is never written over. Every refusal comes
     * before any write.
     *
     * The SCIM values are written first, conditional on their revision, and
     * move it on even when they stay the same: of two SCIM changes of one
     * User from one read, whatever each changes, one is made and the other
     * gets 412. The login's write that follows is conditional on the login as
     * read (a change of nothing is checked too), which another writer (the
     * pages, the API) may have changed meanwhile: then the values are put
     * back, unless a later SCIM write has already moved them on.
     */
    async update(actor: Actor, login: Login, fields: LoginFields, naming: { read: ScimUser; userName: string; externalId: string | null } | null = null): Promise<void> {
      check(actor, login, fields);
      if (!naming) {
        await people.update(actor, login, person(fields), { sameName: true, disabled: !fields.active });
        return;
      }
      const { read } = naming;
      const renamed = naming.userName !== read.userName || naming.externalId !== read.externalId;
      const revision = await name(actor.tenant.id, login.id, read.revision, naming.userName, naming.externalId);
      if (revision === null) throw preconditionFailed();
      try {
        await people.update(actor, login, person(fields), { sameName: true, disabled: !fields.active, strict: true });
      } catch (err) {
        if (renamed && err instanceof LatchkeyError && err.status === 412 && read.userName !== null) {
          await scim.setUserIf(revision, { tenant: actor.tenant.id, loginId: login.id, userName: read.userName, externalId: read.externalId });
        }
        throw err;
      }
    },

    /**
     * Ends the login's sessions, deletes it and, with its email's last login
     * anywhere, the identity — only the User as read (`read`, its SCIM
     * values): 412 when it changed since, its login or its values.
     */
    async remove(actor: Actor, login: Login, read: ScimUser): Promise<void> {
      const { tenant: _t, loginId: _l, revision, ...values } = read;
      // Moved on as by any SCIM write, so a change of the values from the same read is refused, or refuses this.
      if ((await scim.setUserIf(revision, { tenant: actor.tenant.id, loginId: login.id, ...values })) === 'changed') throw preconditionFailed();
      if (!(await people.remove(actor, login))) throw new ScimError(404, null, 'No such user.');
      await scim.removeUser(actor.tenant.id, login.id);
    },
  };
}

export type ScimLogins = ReturnType<typeof scimLogins>;
