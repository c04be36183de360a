/** How people and their user types are named, in one place for every page, token and label. */
import type { Login, Tenant, UserType } from './storage/accounts/port.ts';

/** "First Last" (either may be empty). */
export const fullName = (login: Pick<Login, 'firstName' | 'lastName'>) => `${login.firstName} ${login.lastName}`.trim();

/** The tenant's user type of that id, or undefined when the tenant has none such. */
export const userTypeOf = <T extends Pick<UserType, 'id'>>(tenant: { userTypes: readonly T[] }, userTypeId: string): T | undefined =>
  tenant.userTypes.find((t) => t.id === userTypeId);

/** The user type's name, or its id when the tenant has no such type. */
export const userTypeName = (tenant: { userTypes: readonly Pick<UserType, 'id' | 'name'>[] }, userTypeId: string) => userTypeOf(tenant, userTypeId)?.name ?? userTypeId;

/** "Jane Doe — Manager", with "(Tenant)" when `withTenant`: how the header and the login switch name a login. */
export const loginLabel = (login: Pick<Login, 'firstName' | 'lastName' | 'userType'>, tenant: Pick<Tenant, 'name' | 'userTypes'>, withTenant = false) =>
  `${fullName(login)} — ${userTypeName(tenant, login.userType)}${withTenant ? ` (${tenant.name})` : ''}`;
