/**
 * Logins as SCIM Users and back (docs/scim.md).
 *
 * `userName` is the directory's name for a login. One the directory gave
 * (a create, a rename) is kept as given. A login made elsewhere (the pages,
 * an import) gets one the first time SCIM shows it, and keeps it: its email
 * when no other login of the tenant answers to that, else `email#userType`,
 * else `email#loginId`. So a person with one login matches a directory's
 * `userName eq "their email"`, a second login of the same email stays its own
 * User, and no name changes under a directory that has seen it (not when the
 * email or the user type changes either).
 */
import { createHash } from 'node:crypto';
import { ScimError } from '../errors.ts';
import type { Login, Tenant } from '../storage/accounts/port.ts';
import { NO_REVISION, type ScimStore, type ScimUser } from '../storage/scim/port.ts';
import { checkPerson } from '../admin/people.ts';
import { fullName, userTypeName } from '../names.ts';
import { getKey } from './filter.ts';
import { LATCHKEY_USER, USER_SCHEMA } from './schemas.ts';
import type { LoginFields, ScimLogins } from './logins.ts';
import { EMAIL_MAX } from '../email.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A login's id or a user type's, as the names given to logins made elsewhere end in one (`email#userType`, `email#loginId`). */
const ID_MAX = 256;
/** Room for the longest name a login is given: an email, `#`, and an id. */
const USER_NAME_MAX = EMAIL_MAX + 1 + ID_MAX;
/** A login has one email; a directory sends one or a few (work, home). */
const MAX_EMAILS = 100;
/** How the pages' checks name a User's fields in their errors. */
const FIELD_NAMES = { firstName: 'name.givenName', lastName: 'name.familyName', email: 'emails.value', userType: `${LATCHKEY_USER}:userType` };
const REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** A weak ETag over the resource as shown (without its own `meta.version`). */
export function etagOf(resource: Obj): string {
  const { meta, ...rest } = resource;
  const { version: _v, ...metaRest } = (meta ?? {}) as Obj;
  return `W/"${createHash('sha256')
    .update(JSON.stringify({ ...rest, meta: metaRest }))
    .digest('base64url')
    .slice(0, 27)}"`;
}

export function userResource(base: string, tenant: Tenant, login: Login, named: ScimUser): Obj {
  const resource: Obj = {
    schemas: [USER_SCHEMA, LATCHKEY_USER],
    id: login.id,
    ...(named.externalId !== null ? { externalId: named.externalId } : {}),
    userName: named.userName,
    name: { givenName: login.firstName, familyName: login.lastName, formatted: fullName(login) },
    displayName: fullName(login),
    active: !login.disabled,
    emails: [{ value: login.email, type: 'work', primary: true }],
    groups: [{ value: login.userType, display: userTypeName(tenant, login.userType), $ref: `${base}/Groups/${encodeURIComponent(login.userType)}` }],
    [LATCHKEY_USER]: { userType: login.userType },
    meta: { resourceType: 'User', location: `${base}/Users/${encodeURIComponent(login.id)}` },
  };
  (resource.meta as Obj).version = etagOf(resource);
  return resource;
}

/**
 * Each login with its userName: the one kept, or (the first time) the first
 * free one of its email's, kept from now on. In id order, so two logins of
 * one email settle their names the same way on every process.
 */
export async function namedLogins(scim: ScimStore, logins: ScimLogins, tenant: string, list: Login[]): Promise<Map<string, ScimUser>> {
  const known = new Map<string, ScimUser>();
  // In slices, so a large tenant's list stays within a query's parameter limits.
  for (let i = 0; i < list.length; i += 500)
    for (const u of await scim.getUsers(
      tenant,
      list.slice(i, i + 500).map((l) => l.id),
    ))
      known.set(u.loginId, u);
  for (const login of [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    let current = known.get(login.id);
    // Named from the values as read; when they moved on meanwhile (another request named it), from them as they are.
    for (let tries = 0; !current?.userName && tries < 3; tries++) {
      const named = await firstFreeName(logins, login, current ?? null);
      current = named ?? (await scim.getUser(tenant, login.id)) ?? undefined;
    }
    if (!current?.userName) throw new ScimError(503, null, 'The user is being named by another request; try again.');
    known.set(login.id, current);
  }
  return known;
}

/** Gives the login the first free name of its email's; null when its values moved on since `current` was read. */
async function firstFreeName(logins: ScimLogins, login: Login, current: ScimUser | null): Promise<ScimUser | null> {
  const externalId = current?.externalId ?? null;
  for (const candidate of [login.email, `${login.email}#${login.userType}`, `${login.email}#${login.id}`]) {
    try {
      const revision = await logins.name(login.tenant, login.id, current?.revision ?? NO_REVISION, candidate, externalId);
      return revision === null ? null : { tenant: login.tenant, loginId: login.id, userName: candidate, externalId, revision };
    } catch (err) {
      if (err instanceof ScimError && err.status === 409) continue;
      throw err;
    }
  }
  throw new ScimError(409, 'uniqueness', `No free userName for the login "${login.id}".`);
}

/** What a User body says, checked: the pages' rules for names, email and user type. */
export interface UserInput {
  userName: string;
  externalId: string | null;
  fields: LoginFields;
}

function text(value: unknown, field: string, max: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new ScimError(400, 'invalidValue', `"${field}" must be a string.`);
  if (value.length > max) throw new ScimError(400, 'invalidValue', `"${field}" is longer than ${max} characters.`);
  return value;
}

/** `true`/`false`, also as the strings Entra sends ("True", "False"). */
export function booleanOf(value: unknown, field: string): boolean | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw new ScimError(400, 'invalidValue', `"${field}" must be true or false.`);
}

/**
 * A User body (a create, a replace, or a patched resource) as a login.
 * Without a user type the login keeps its own (`current`), or a new one gets
 * the tenant's first; without `active` it keeps its state (a new one is active).
 */
export function userInput(body: unknown, tenant: Tenant, current: Login | null): UserInput {
  if (!isObj(body)) throw new ScimError(400, 'invalidSyntax', 'The body is not a JSON object.');
  const userName = text(getKey(body, 'userName'), 'userName', USER_NAME_MAX)?.trim();
  if (!userName) throw new ScimError(400, 'invalidValue', '"userName" is required.');
  if (REFUSED.test(userName)) throw new ScimError(400, 'invalidValue', '"userName" holds control characters.');
  const externalId = text(getKey(body, 'externalId'), 'externalId', USER_NAME_MAX);

  const name = getKey(body, 'name');
  if (name !== undefined && name !== null && !isObj(name)) throw new ScimError(400, 'invalidValue', '"name" must be an object.');
  let givenName = text(getKey(name, 'givenName'), 'name.givenName', 320);
  let familyName = text(getKey(name, 'familyName'), 'name.familyName', 320);
  if (!givenName?.trim() || !familyName?.trim()) {
    // A directory without both parts may still send the whole name.
    const whole = (text(getKey(name, 'formatted'), 'name.formatted', 320) ?? text(getKey(body, 'displayName'), 'displayName', 320) ?? '').trim().split(/\s+/);
    if (whole.length >= 2) {
      givenName = givenName?.trim() ? givenName : whole.slice(0, -1).join(' ');
      familyName = familyName?.trim() ? familyName : whole.at(-1)!;
    }
  }

  const emails = getKey(body, 'emails');
  if (emails !== undefined && emails !== null && !Array.isArray(emails)) throw new ScimError(400, 'invalidValue', '"emails" must be a list.');
  const listed = (emails ?? []) as unknown[];
  if (listed.length > MAX_EMAILS) throw new ScimError(400, 'invalidValue', `"emails" holds more than ${MAX_EMAILS} values.`);
  const chosen = listed.find((e) => isObj(e) && booleanOf(getKey(e, 'primary'), 'emails.primary') === true) ?? listed[0];
  let email = isObj(chosen) ? text(getKey(chosen, 'value'), 'emails.value', EMAIL_MAX) : null;
  if (!email && userName.includes('@')) email = userName;
  if (!email) throw new ScimError(400, 'invalidValue', 'An email is required: "emails" (its primary value), or a userName that is one.');

  const extension = getKey(body, LATCHKEY_USER);
  if (extension !== undefined && extension !== null && !isObj(extension)) throw new ScimError(400, 'invalidValue', `"${LATCHKEY_USER}" must be an object.`);
  const given = text(getKey(extension, 'userType'), 'userType', 128);
  // The id, or the type's name as a directory shows it (`Manager`).
  const userType = given
    ? (tenant.userTypes.find((t) => t.id === given) ?? tenant.userTypes.find((t) => t.name.toLowerCase() === given.toLowerCase()))?.id
    : (current?.userType ?? tenant.userTypes[0]?.id);
  if (!userType) throw new ScimError(400, 'invalidValue', `"${LATCHKEY_USER}:userType" is not a user type of the tenant: "${(given ?? '').slice(0, 100)}".`);

  const active = booleanOf(getKey(body, 'active'), 'active') ?? (current ? !current.disabled : true);
  const person = checkPerson({ firstName: givenName ?? '', lastName: familyName ?? '', email, userType }, tenant, FIELD_NAMES);
  return { userName, externalId, fields: { ...person, active } };
}
