// The checks both stores apply to a passkey before it reaches a query.
import { PASSKEY_DEVICE_TYPES, type Passkey, type PasskeyDeviceType, type PasskeyUse } from './port.ts';
import { flag, str } from './values.ts';

const BASE64URL = /^[A-Za-z0-9_-]{1,1366}$/;
const MAX_COUNTER = 0xffff_ffff;

/** A credential id (or user handle): base64url, at most 1,023 bytes as WebAuthn allows. */
export function credentialId(name: string, value: unknown): string {
  const s = str(name, value);
  if (!BASE64URL.test(s)) throw new TypeError(`${name} must be base64url`);
  return s;
}

export function signCount(name: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_COUNTER) throw new TypeError(`${name} must be a 32-bit unsigned integer`);
  return value as number;
}

function date(name: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${name} must be a valid Date`);
  return new Date(value.getTime());
}

export function passkeyName(value: unknown): string {
  const s = str('passkey.name', value);
  if (s.length > 200) throw new TypeError('passkey.name is too long');
  return s;
}

/** A checked copy of `p` (its key copied into a plain Uint8Array). */
export function checkedPasskey(p: Passkey): Passkey {
  if (!(p.publicKey instanceof Uint8Array) || p.publicKey.length === 0 || p.publicKey.length > 4096) throw new TypeError('passkey.publicKey must be a non-empty Uint8Array');
  if (!PASSKEY_DEVICE_TYPES.includes(p.deviceType)) throw new TypeError('invalid passkey.deviceType');
  if (!Array.isArray(p.transports) || p.transports.length > 16) throw new TypeError('passkey.transports must be an array');
  return {
    id: credentialId('passkey.id', p.id),
    loginId: str('passkey.loginId', p.loginId),
    tenant: str('passkey.tenant', p.tenant),
    userHandle: credentialId('passkey.userHandle', p.userHandle),
    name: passkeyName(p.name),
    publicKey: new Uint8Array(p.publicKey),
    counter: signCount('passkey.counter', p.counter),
    transports: p.transports.map((t) => str('passkey.transport', t)),
    deviceType: p.deviceType as PasskeyDeviceType,
    backedUp: flag('passkey.backedUp', p.backedUp),
    createdAt: date('passkey.createdAt', p.createdAt),
    lastUsedAt: p.lastUsedAt === null ? null : date('passkey.lastUsedAt', p.lastUsedAt),
  };
}

export function checkedUse(use: PasskeyUse): PasskeyUse {
  return {
    counter: signCount('use.counter', use.counter),
    newCounter: signCount('use.newCounter', use.newCounter),
    backedUp: flag('use.backedUp', use.backedUp),
    usedAt: date('use.usedAt', use.usedAt),
  };
}

/** A use moves the count forward, or both are 0 (an authenticator that keeps no count). */
export function countAdvances(use: PasskeyUse): boolean {
  return use.newCounter > use.counter || (use.newCounter === 0 && use.counter === 0);
}
