/**
 * What a tenant's administrators do to its people, in one place for every
 * way in: the owner's pages (`src/account/`), the management API
 * (`src/api/`) and SCIM. Each operation checks the rules, changes the store,
 * ends the sessions it must and writes the audit event; the transports only
 * read their input and show the result (docs/admin.md).
 *
 * An operation is given the `Actor` (the tenant it acts in, and who acts: an
 * owner's login or an application's client) and answers with a typed result
 * or throws a `LatchkeyError` (400 with `detail.field` for a bad value, 403
 * for a refused action, 404 for a login outside the actor's tenant).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { badRequest, forbidden, notFound, preconditionFailed } from '../errors.ts';
import { normalizeEmail, type Login, type Tenant } from '../storage/accounts/port.ts';
import type { SessionView } from '../sessions/index.ts';
import type { RouteDeps } from '../services.ts';
import { sendInvitation } from '../recovery/routes.ts';
import { upstreamLinks } from '../upstream/links.ts';
import { userTypeName } from '../names.ts';
import { EMAIL_MAX } from '../email.ts';
import { loginLocks, type Lifted } from './locks.ts';
import { releaseAddress } from './identities.ts';

export type AdminDeps = Pick<RouteDeps, 'provider' | 'sessions' | 'config' | 'accounts' | 'links' | 'counters' | 'mailer' | 'factors' | 'audit' | 'limiter' | 'now'>;

/** Who acts: an owner's login (the pages), a tenant's application (the API, SCIM), or the operator's command line. */
export type ActorBy = { login: string } | { client: string } | { operator: 'cli' };

/** The tenant an operation acts in, who acts and from where (for the audit). */
export interface Actor {
  /** As read on this request. */
  tenant: Tenant;
  by: ActorBy;
  ip: string | null;
  userAgent: string | null;
  /** The language of an invitation sent on the actor's behalf (default English). */
  lang?: 'en' | 'nl';
}

/** A person as an administrator describes them. */
export interface PersonFields {
  firstName: string;
  lastName: string;
  email: string;
  userType: string;
}

/** How a transport names `PersonFields`' fields in its errors (`detail.field`). */
export type FieldNames = Record<keyof PersonFields, string>;

const OWN_NAMES: FieldNames = { firstName: 'firstName', lastName: 'lastName', email: 'email', userType: 'userType' };

/** The audit event of a factor's reset: the factor's set-up and failed attempts are forgotten, and the login's sessions end. */
export const resetEvent = (factorId: string) => `factor.${factorId}.reset`;

export const NAME_MAX = 100;
const EMAIL = z.string().max(EMAIL_MAX).email();
// Controls and invisible format characters would make two names look alike.
const NAME_REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * The person's fields checked against the tenant: names trimmed (inner
 * space runs made one), the email lower-cased, the user type one of the
 * tenant's. A bad value is a 400 naming its field by `names`.
 */
export function checkPerson(input: Record<keyof PersonFields, string>, tenant: Tenant, names: FieldNames = OWN_NAMES): PersonFields {
  const name = (key: 'firstName' | 'lastName') => {
    const field = names[key];
    const trimmed = input[key].trim().replace(/\s+/g, ' ');
    if (!trimmed) throw badRequest('errors.people.nameMissing', { field });
    if (trimmed.length > NAME_MAX) throw badRequest('errors.form.tooLong', { field });
    if (NAME_REFUSED.test(trimmed)) throw badRequest('errors.form.invalidCharacters', { field });
    return trimmed;
  };
  const firstName = name('firstName');
  const lastName = name('lastName');
  const email = normalizeEmail(input.email);
  if (!EMAIL.safeParse(email).success) throw badRequest('errors.people.email', { field: names.email });
  if (!tenant.userTypes.some((t) => t.id === input.userType)) throw badRequest('errors.account.noSuchUserType', { field: names.userType });
  return { firstName, lastName, email, userType: input.userType };
}

/**
 * The id of the login one request to create creates: derived from the
 * tenant and a key the caller chose once (a form's nonce, an API client's
 * `Idempotency-Key`), so sending it twice — a double click, a second tab, a
 * retry, parallel requests — makes one login, and no key names a login of
 * another tenant or caller.
 */
export const derivedLoginId = (tenantId: string, key: string) => `l-${createHash('sha256').update(`${tenantId}\n${key}`).digest('hex').slice(0, 32)}`;

/** The name with the user type's name as the distinguishing word (`Doe (Manager)`). */
export const suggestedLastName = (tenant: Tenant, person: Pick<PersonFields, 'lastName' | 'userType'>) => `${person.lastName} (${userTypeName(tenant, person.userType)})`;

/** Another login of the email in the tenant carries this name: the person's logins would look alike at sign-in. */
export interface Namesakes {
  outcome: 'namesakes';
  namesakes: Login[];
  /** A last name that tells them apart. */
  suggestion: string;
}

/**
 * The mail an add or an email change sends the person, alike whether or not the address has a password
 * (in any tenant): an invitation to choose one, or a notice of the new login. `sent`, or `rate_limited` —
 * the identity was mailed its 5 of the hour already, so none was sent (the login is added or changed all the
 * same, and the latest invitation link stays good).
 */
export type Invitation = 'sent' | 'rate_limited';

export type CreateResult =
  /** `invited`: the person was mailed (`invitation`: why not). */
  | { outcome: 'created'; login: Login; invited: boolean; invitation?: Invitation }
  /** The key created this login before: nothing was made or sent again. */
  | { outcome: 'existed'; login: Login }
  | Namesakes;

export type UpdateResult = { outcome: 'updated'; login: Login; changed: (keyof PersonFields)[]; invitation?: Invitation } | Namesakes;

export interface UnlockResult {
  /** What was locked and is lifted, by what it guarded (`password`, a factor id). */
  lifted: Lifted;
  /** What stays locked: its identity's, which guards logins of other tenants too (only the operator lifts it). */
  kept: Lifted;
}

export interface AdminPeople {
  /** A login of the actor's tenant, or 404: another tenant's login is as unknown as a missing one. */
  login(actor: Actor, loginId: unknown): Promise<Login>;
  /**
   * Adds a person as login `id` (see `derivedLoginId`): an email with a
   * password signs in at once and is told of the new login; a new one (or one
   * without a password) is sent an invitation — answered alike. Unless
   * `sameName`, a namesake of the email in the tenant is answered with
   * `namesakes` and nothing is made.
   */
  create(actor: Actor, id: string, person: PersonFields, options?: { sameName?: boolean }): Promise<CreateResult>;
  /**
   * Changes name, email, user type of `target` as the caller read it — and,
   * with `disabled`, disables or enables it in the same write: when the
   * login changed since, nothing is written and it throws 412
   * (`preconditionFailed`). A new email hands the login to another person:
   * their sessions end, the factors set up are forgotten, the new address is
   * mailed as by `create`, and the old address's identity goes when no login
   * uses it any more (`releaseAddress`); a disabled
   * login's sessions and tokens end at once. Without `disabled` the login
   * stays as enabled or disabled as it is. With `strict`, a change of
   * nothing is checked against the login as read too (412 when it changed
   * since), for a caller whose change is more than the login.
   */
  update(actor: Actor, target: Login, person: PersonFields, options?: { sameName?: boolean; disabled?: boolean; strict?: boolean }): Promise<UpdateResult>;
  /** Throws what `update` (with `disabled: true`, when `disabling`) of `target` would be refused with (403, 400), writing nothing. */
  checkUpdate(actor: Actor, target: Login, disabling?: boolean): void;
  /** Disabling ends the login's sessions and tokens at once; either is audited only when it changes the login. */
  setDisabled(actor: Actor, target: Login, disabled: boolean): Promise<Login>;
  /**
   * Ends the login's sessions, deletes it and, with the email's last login
   * anywhere, its identity and upstream links. False when it was gone already.
   * Only the login as the caller read it is removed: when it changed since
   * (another tab, a PATCH that handed it to another person) nothing is
   * deleted and it throws 412 — checked before its sessions end, and again
   * in the delete itself.
   */
  remove(actor: Actor, target: Login): Promise<boolean>;
  /** Ends every session and token of the login (signed out everywhere). */
  endSessions(actor: Actor, target: Login): Promise<void>;
  /** The login's live sessions (browser, address, times, apps), most recently used first. */
  listSessions(actor: Actor, target: Login): Promise<SessionView[]>;
  /** Ends one session of the login and tells its apps; false when the login has no such session. Audited. */
  endSession(actor: Actor, target: Login, sessionId: string): Promise<boolean>;
  /**
   * Forgets a factor's set-up (a lost phone or PIN): lifts the login's locks, ends its sessions, and unlinks
   * the identity's upstream accounts when configured — only when `unlock` would lift the identity's locks too
   * (every login of the email in this tenant, none an owner's for an application); else they stay (`upstreamKept`).
   */
  resetFactor(actor: Actor, target: Login, factorId: string): Promise<UnlockResult>;
  /** Lifts the login's attempt locks (its identity's too when every login of the identity is in this tenant). Always audited. */
  unlock(actor: Actor, target: Login): Promise<UnlockResult>;
  /** The login's locks as the Users page shows them. */
  lockState(target: Login): ReturnType<ReturnType<typeof loginLocks>['state']>;
  /** `lockState` of each of a page of logins, in their order, in one counter-store call. */
  lockStates(targets: Login[]): ReturnType<ReturnType<typeof loginLocks>['states']>;
}

/** The audit detail naming who acted. */
export const actedBy = (actor: Actor): { by: string } | { client: string } =>
  'login' in actor.by ? { by: actor.by.login } : 'client' in actor.by ? { client: actor.by.client } : { by: actor.by.operator };

/** Who acted, as one string (an owner's login id, `client:ID`, or `cli`) for records that keep a single name. */
export const actorName = (by: ActorBy): string => ('login' in by ? by.login : 'client' in by ? `client:${by.client}` : by.operator);

export function adminPeople(deps: AdminDeps): AdminPeople {
  const { accounts, audit, factors } = deps;
  const locks = loginLocks(deps.limiter, factors);
  const links = upstreamLinks({ accounts, audit });
  // Ends the login's sessions and tokens, and tells its apps (src/sessions).
  const endSessions = (loginId: string) => deps.sessions.endLoginSessions([loginId]);
  const origin = (actor: Actor) => ({ tenant: actor.tenant.id, ip: actor.ip, userAgent: actor.userAgent });

  const sameName = (a: Pick<Login, 'firstName' | 'lastName'>, b: Pick<Login, 'firstName' | 'lastName'>) =>
    a.firstName.toLowerCase() === b.firstName.toLowerCase() && a.lastName.toLowerCase() === b.lastName.toLowerCase();

  async function namesakes(actor: Actor, person: PersonFields, except: string): Promise<Namesakes | null> {
    const logins = await accounts.listLoginsForEmail(actor.tenant.id, person.email);
    const alike = logins.filter((l) => l.id !== except && sameName(l, person));
    return alike.length ? { outcome: 'namesakes', namesakes: alike, suggestion: suggestedLastName(actor.tenant, person) } : null;
  }

  /** Tells the person of their login: an invitation to choose a password, or (with one) a notice to sign in with it. */
  async function invite(actor: Actor, email: string, login: string): Promise<Invitation | undefined> {
    const result = await sendInvitation(deps, { email, tenantId: actor.tenant.id, lang: actor.lang ?? 'en', ...actedBy(actor), now: new Date(deps.now()), welcome: true, login });
    return result?.outcome;
  }

  /**
   * Nobody may disable or remove one of the tenant's owners (take them off
   * the owners first; the last owner would lock everyone out of the pages),
   * and an application may not change an owner's login at all: through it, an application's secret would be a
   * way to take over the tenant's administration.
   */
  function checkAllowed(actor: Actor, target: Login, action: 'edit' | 'disable' | 'remove' | 'reset' | 'unlock' | 'signOut') {
    const isOwner = actor.tenant.owners.includes(target.id);
    if ('login' in actor.by && actor.by.login === target.id && (action === 'disable' || action === 'remove')) {
      throw badRequest(action === 'disable' ? 'errors.people.notYourself' : 'errors.people.notYourselfRemove');
    }
    // A session taken over must not be able to swap the owner's factor for the thief's: another owner (or the operator) resets it.
    if ('login' in actor.by && actor.by.login === target.id && action === 'reset') throw badRequest('errors.owners.notOwnReset');
    // The owner's own sessions end on their profile, where this browser's is kept (or signed out with its cookie).
    if ('login' in actor.by && actor.by.login === target.id && action === 'signOut') throw badRequest('errors.sessions.ownOnProfile');
    if (isOwner && (action === 'disable' || action === 'remove' || 'client' in actor.by)) throw forbidden('errors.people.ownerProtected');
  }

  function checkUpdate(actor: Actor, target: Login, disabling = false) {
    checkAllowed(actor, target, 'edit');
    if (disabling) checkAllowed(actor, target, 'disable');
  }

  /**
   * What is the identity's (its attempt locks, its upstream links) serves every login of the email: an actor
   * changes it only when every one is this tenant's, and an application only when none is an owner's, whose
   * identity it may not reach through a sibling login either.
   */
  async function actsOnIdentity(actor: Actor, target: Login): Promise<boolean> {
    const all = await accounts.listLoginsForEmailAllTenants(target.email);
    const ownersToo = 'client' in actor.by && all.some((l) => actor.tenant.owners.includes(l.id));
    return all.every((l) => l.tenant === target.tenant) && !ownersToo;
  }

  const unlockLogin = async (actor: Actor, target: Login, identityToo?: boolean): Promise<UnlockResult> =>
    locks.unlock(target, (identityToo ?? (await actsOnIdentity(actor, target))) ? 'identity' : 'login');

  async function recordUnlock(actor: Actor, target: Login, { lifted, kept }: UnlockResult, via?: string) {
    const detail = { ...actedBy(actor), ...(via ? { via } : {}), ...lifted, ...(Object.keys(kept).length ? { kept } : {}) };
    await audit.record({ type: 'login.unlocked', outcome: 'success', ...origin(actor), login: target.id, detail });
  }

  const reread = async (id: string) => {
    const login = await accounts.getLogin(id);
    if (!login) throw notFound('errors.account.noSuchUser');
    return login;
  };

  return {
    async login(actor, loginId) {
      const login = typeof loginId === 'string' && loginId.length <= 256 ? await accounts.getLogin(loginId) : null;
      if (!login || login.tenant !== actor.tenant.id) throw notFound('errors.account.noSuchUser');
      return login;
    },

    async create(actor, id, person, options = {}) {
      const existing = await accounts.getLogin(id);
      if (existing) {
        if (existing.tenant !== actor.tenant.id) throw notFound('errors.account.noSuchUser');
        return { outcome: 'existed', login: existing };
      }
      if (!options.sameName) {
        const alike = await namesakes(actor, person, id);
        if (alike) return alike;
      }
      await accounts.upsertIdentity({ email: person.email });
      if (!(await accounts.createLogin({ id, tenant: actor.tenant.id, ...person }))) {
        const made = await reread(id);
        if (made.tenant !== actor.tenant.id) throw notFound('errors.account.noSuchUser');
        return { outcome: 'existed', login: made };
      }
      await audit.record({ type: 'login.added', outcome: 'success', ...origin(actor), login: id, detail: { ...actedBy(actor), userType: person.userType, invited: true } });
      // Whether the address has a password (in any tenant) is not this tenant's to know: the person is mailed either way.
      const invitation = await invite(actor, person.email, id);
      return { outcome: 'created', login: await reread(id), invited: invitation === 'sent', ...(invitation ? { invitation } : {}) };
    },

    checkUpdate,

    async update(actor, target, person, options = {}) {
      const disabled = options.disabled ?? target.disabled;
      const toggled = disabled !== target.disabled;
      checkUpdate(actor, target, toggled && disabled);
      const before: PersonFields = { firstName: target.firstName, lastName: target.lastName, email: target.email, userType: target.userType };
      const changed = (Object.keys(person) as (keyof PersonFields)[]).filter((k) => person[k] !== before[k]);
      // From the login as the caller read it: a change made meanwhile (another tab, another client) is not overwritten,
      // and `disabled` is written only when this change asks for it.
      const { factors: _factors, ...read } = target;
      const { firstName, lastName, email, userType } = person;
      if (!changed.length && !toggled) {
        // Writing the values it has changes nothing, and tells whether the login is still as read.
        if (options.strict && !(await accounts.updateLoginIf(read, before))) throw preconditionFailed();
        return { outcome: 'updated', login: target, changed };
      }
      if (changed.length && !options.sameName) {
        const alike = await namesakes(actor, person, target.id);
        if (alike) return alike;
      }
      const moved = changed.includes('email');
      if (moved) await accounts.upsertIdentity({ email: person.email });
      if (!(await accounts.updateLoginIf(read, { firstName, lastName, email, userType, ...(toggled ? { disabled } : {}) }))) throw preconditionFailed();
      if (moved) await releaseAddress(accounts, target.email);
      if (moved) for (const factor of factors.all()) await factor.reset(target.id);
      if (moved || (toggled && disabled)) await endSessions(target.id);
      if (toggled) {
        await audit.record({ type: disabled ? 'login.disabled' : 'login.enabled', outcome: 'success', ...origin(actor), login: target.id, detail: actedBy(actor) });
      }
      if (changed.length) {
        await audit.record({
          type: 'login.edited',
          outcome: 'success',
          ...origin(actor),
          login: target.id,
          detail: { ...actedBy(actor), changed, ...(changed.includes('userType') ? { from: target.userType, to: person.userType } : {}) },
        });
      }
      const invitation = moved ? await invite(actor, person.email, target.id) : undefined;
      return { outcome: 'updated', login: await reread(target.id), changed, ...(invitation ? { invitation } : {}) };
    },

    async setDisabled(actor, target, disabled) {
      checkAllowed(actor, target, disabled ? 'disable' : 'edit');
      if (target.disabled === disabled) return target;
      if (!(await accounts.setLoginDisabled(target.id, disabled))) throw notFound('errors.account.noSuchUser');
      if (disabled) await endSessions(target.id);
      await audit.record({ type: disabled ? 'login.disabled' : 'login.enabled', outcome: 'success', ...origin(actor), login: target.id, detail: actedBy(actor) });
      return reread(target.id);
    },

    async remove(actor, target) {
      checkAllowed(actor, target, 'remove');
      const { factors: _factors, ...read } = target;
      const { firstName, lastName, email, userType } = target;
      const gone = async () => {
        if (await accounts.getLogin(target.id)) throw preconditionFailed();
        return false;
      };
      // Writing the values it has tells whether it is still as read, before its sessions end for nothing.
      if (!(await accounts.updateLoginIf(read, { firstName, lastName, email, userType }))) return gone();
      await endSessions(target.id);
      if (!(await accounts.deleteLogin(target.id, read))) return gone();
      await audit.record({ type: 'login.removed', outcome: 'success', ...origin(actor), login: target.id, detail: actedBy(actor) });
      await releaseAddress(accounts, target.email);
      return true;
    },

    async endSessions(actor, target) {
      checkAllowed(actor, target, 'signOut');
      await endSessions(target.id);
      await audit.record({ type: 'login.sessions_ended', outcome: 'success', ...origin(actor), login: target.id, detail: actedBy(actor) });
    },

    listSessions: (_actor, target) => deps.sessions.listSessions(target.id),

    async endSession(actor, target, sessionId) {
      checkAllowed(actor, target, 'signOut');
      if (!(await deps.sessions.endSession(target.id, sessionId))) return false;
      await audit.record({ type: 'session.ended', outcome: 'success', ...origin(actor), login: target.id, detail: { ...actedBy(actor), sessions: 1 } });
      return true;
    },

    async resetFactor(actor, target, factorId) {
      // Only a factor the registry offers a reset for (`FactorInfo.ownerReset`).
      if (!factors.has(factorId) || !factors.get(factorId).ownerReset) throw notFound();
      checkAllowed(actor, target, 'reset');
      const identityToo = await actsOnIdentity(actor, target);
      // A reset is for someone who lost their phone or PIN: their password's failures must not keep them out either.
      const result = await unlockLogin(actor, target, identityToo);
      const factor = factors.get(factorId);
      await factor.reset(target.id);
      // Its alternatives go with it (the recovery codes of a lost phone), unless another factor the login has set up uses them too.
      const fresh = await accounts.getLogin(target.id);
      for (const method of factors.methods(factor)) {
        const kept = fresh && factors.all().some((f) => f.id !== factor.id && f.enrolled(fresh) && f.alternatives?.includes(method.id));
        if (!kept)
          await method.void?.(target.id, {
            tenant: actor.tenant.id,
            by: actorName(actor.by),
            ip: actor.ip,
            userAgent: actor.userAgent,
          });
      }
      await endSessions(target.id);
      // A reset is for a lost factor: an upstream account linked meanwhile must be confirmed again — unless the
      // identity's links serve logins this actor may not change (another tenant's, an owner's for an application).
      const identity = deps.config.upstream.unlinkOn.includes('reset') ? await accounts.findIdentityByEmail(target.email) : null;
      const upstreamKept = identity && !identityToo ? (await accounts.listUpstreamLinks(identity.id)).length : 0;
      await audit.record({
        type: resetEvent(factorId),
        outcome: 'success',
        ...origin(actor),
        login: target.id,
        detail: { ...actedBy(actor), ...(upstreamKept ? { upstreamKept } : {}) },
      });
      if (identity && identityToo) {
        await links.unlinkAll(identity, { ip: actor.ip, userAgent: actor.userAgent, by: actorName(actor.by), reason: 'reset' });
      }
      if (Object.keys(result.lifted).length || Object.keys(result.kept).length)
        await recordUnlock(actor, target, result, factors.get(factorId).ownerReset?.alias ?? `reset/${factorId}`);
      return result;
    },

    async unlock(actor, target) {
      checkAllowed(actor, target, 'unlock');
      const result = await unlockLogin(actor, target);
      // An explicit unlock is recorded even when the lock had passed meanwhile.
      await recordUnlock(actor, target, result);
      return result;
    },

    lockState: (target) => locks.state(target),
    lockStates: (targets) => locks.states(targets),
  };
}
