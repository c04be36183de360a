// Checks both account stores apply to values before they reach a query, so a
// caller's object (e.g. `{ $ne: null }`) can never become part of a filter.
import {
  AUDIT_PERSON_LOGINS,
  LOGIN_PAGE_MAX,
  LOGIN_SORTS,
  LOGIN_STATES,
  type AuditQuery,
  type FactorState,
  type LoginSearch,
  type LoginSort,
  type LoginState,
  type SessionPolicy,
  type SecondFactor,
  type UserType,
  normalizeEmail,
} from './port.ts';

const FACTOR_ID = /^[a-z][a-z0-9_]*$/;

export function str(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  return value;
}

/** `listLoginsForEmails`'s emails: strings, at most `LOGIN_PAGE_MAX` of them, normalized, each once. */
export function emailList(name: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length > LOGIN_PAGE_MAX) throw new TypeError(`${name} must be an array of at most ${LOGIN_PAGE_MAX} emails`);
  return [...new Set(value.map((e, i) => normalizeEmail(str(`${name}[${i}]`, e))))];
}

export function flag(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return value;
}

/** A session policy with whole, positive numbers only (the store keeps exactly these three fields). */
export function sessionPolicy(value: SessionPolicy): SessionPolicy {
  const { lifetimeHours, idleMinutes, staySignedIn } = value ?? ({} as SessionPolicy);
  if (!Number.isInteger(lifetimeHours) || lifetimeHours < 1) throw new TypeError('sessionPolicy.lifetimeHours must be a positive integer');
  if (!Number.isInteger(idleMinutes) || idleMinutes < 0) throw new TypeError('sessionPolicy.idleMinutes must be a non-negative integer');
  return { lifetimeHours, idleMinutes, staySignedIn: flag('sessionPolicy.staySignedIn', staySignedIn) };
}

export function optStr(name: string, value: unknown): string | null {
  return value === null || value === undefined ? null : str(name, value);
}

export function factorId(value: unknown): string {
  if (typeof value !== 'string' || !FACTOR_ID.test(value)) throw new TypeError('invalid factor id');
  return value;
}

/** A user type's factor: the shape of a factor id (which ids exist is the factor registry's to check, at the edges). */
export function secondFactor(value: unknown): SecondFactor {
  if (typeof value !== 'string' || value.length > 32 || !FACTOR_ID.test(value)) throw new TypeError('invalid second factor');
  return value;
}

/** A factor state (or null) for a compare-and-set: a plain JSON object. */
export function factorStateValue(name: string, value: unknown): FactorState | null {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${name} must be an object or null`);
  return value as FactorState;
}

/** JSON with object keys sorted: two equal states read the same whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export function userTypes(list: readonly UserType[]): UserType[] {
  if (!Array.isArray(list)) throw new TypeError('userTypes must be an array');
  return list.map((u) => ({ id: str('userType.id', u.id), name: str('userType.name', u.name), secondFactor: secondFactor(u.secondFactor) }));
}

/** A `LoginSearch` checked and completed with its defaults; `words` are lower-cased. */
export interface CheckedLoginSearch {
  tenant: string;
  words: string[];
  userType: string | null;
  state: LoginState | null;
  sort: LoginSort;
  descending: boolean;
  offset: number;
  limit: number;
}

export function loginSearch(search: LoginSearch): CheckedLoginSearch {
  const text = optStr('text', search.text) ?? '';
  const state = search.state ?? null;
  if (state !== null && !LOGIN_STATES.includes(state)) throw new TypeError('invalid login state');
  const sort = search.sort ?? 'name';
  if (!LOGIN_SORTS.includes(sort)) throw new TypeError('invalid login sort');
  const descending = search.descending ?? false;
  if (typeof descending !== 'boolean') throw new TypeError('descending must be a boolean');
  const offset = search.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new TypeError('offset must be a non-negative integer');
  const limit = search.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > LOGIN_PAGE_MAX) throw new TypeError(`limit must be an integer in 1..${LOGIN_PAGE_MAX}`);
  return {
    tenant: str('tenant', search.tenant),
    words: text.toLowerCase().split(/\s+/).filter(Boolean).slice(0, 8),
    userType: optStr('userType', search.userType),
    state,
    sort,
    descending,
    offset,
    limit,
  };
}

export function ownerList(list: unknown): string[] {
  if (!Array.isArray(list)) throw new TypeError('owners must be an array');
  return [...new Set(list.map((o) => str('owner', o)))];
}

export function userType(u: UserType): UserType {
  if (!u || typeof u !== 'object') throw new TypeError('userType must be an object');
  return userTypes([u])[0]!;
}

/**
 * The most user types a tenant has. Each is a row of the owner's pages, a
 * count of logins on the User types page and a part of the tenant's record,
 * which every sign-in reads: without a bound, one owner's script could make
 * that record as large as it liked.
 */
export const USER_TYPES_MAX = 100;

/** Whether `added` may join `types`: its id and name (case aside) are new, and the tenant has fewer than `USER_TYPES_MAX`. */
export const userTypeAddable = (types: readonly UserType[], added: UserType): boolean =>
  types.length < USER_TYPES_MAX && !types.some((u) => u.id === added.id) && !userTypeNameTaken(types, added.name);

/** Whether another type of `types` than `exceptId` has `name`, case aside: a tenant's user type names are unique. */
export const userTypeNameTaken = (types: readonly UserType[], name: string, exceptId?: string): boolean =>
  types.some((u) => u.id !== exceptId && u.name.toLowerCase() === name.toLowerCase());

/** An `AuditQuery` checked: strings are strings, times are valid Dates, the person's list is bounded. */
export interface CheckedAuditQuery {
  tenant: string;
  login: string | null;
  person: { logins: string[]; email: string | null } | null;
  type: string | null;
  before: Date | null;
  since: Date | null;
  limit: number;
}

function optTime(name: string, value: unknown): Date | null {
  if (value === undefined) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${name} must be a valid Date`);
  return value;
}

export function auditQuery(query: AuditQuery): CheckedAuditQuery {
  const n = Math.trunc(query.limit ?? 50);
  let person: CheckedAuditQuery['person'] = null;
  if (query.person !== undefined) {
    const { logins, email } = query.person;
    if (!Array.isArray(logins) || logins.length > AUDIT_PERSON_LOGINS) throw new TypeError(`person.logins must be an array of at most ${AUDIT_PERSON_LOGINS}`);
    person = { logins: logins.map((l) => str('person.logins[]', l)), email: email === undefined ? null : str('person.email', email).toLowerCase() };
  }
  return {
    tenant: str('tenant', query.tenant),
    login: query.login === undefined ? null : str('login', query.login),
    person,
    type: query.type === undefined ? null : str('type', query.type),
    before: optTime('before', query.before),
    since: optTime('since', query.since),
    limit: Number.isFinite(n) ? Math.min(Math.max(n, 1), 500) : 50,
  };
}
