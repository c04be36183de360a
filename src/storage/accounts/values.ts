// Checks both account stores apply to values before they reach a query, so a
// caller's object (e.g. `{ $ne: null }`) can never become part of a filter.
import { SECOND_FACTORS, type SecondFactor, type UserType } from './port.ts';

const FACTOR_ID = /^[a-z][a-z0-9_]*$/;

export function str(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  return value;
}

export function flag(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`);
  return value;
}

export function optStr(name: string, value: unknown): string | null {
  return value === null || value === undefined ? null : str(name, value);
}

export function factorId(value: unknown): string {
  if (typeof value !== 'string' || !FACTOR_ID.test(value)) throw new TypeError('invalid factor id');
  return value;
}

export function secondFactor(value: unknown): SecondFactor {
  if (!SECOND_FACTORS.includes(value as SecondFactor)) throw new TypeError('invalid second factor');
  return value as SecondFactor;
}

export function userTypes(list: readonly UserType[]): UserType[] {
  if (!Array.isArray(list)) throw new TypeError('userTypes must be an array');
  return list.map((u) => ({ id: str('userType.id', u.id), name: str('userType.name', u.name), secondFactor: secondFactor(u.secondFactor) }));
}
