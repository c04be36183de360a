/**
 * The two WebAuthn ceremonies (docs/passkeys.md) with `@simplewebauthn/server`:
 * registration (a new passkey) and authentication (a sign-in with one).
 *
 * - The relying party is the issuer: RP ID its host name, the one origin its
 *   origin, so a passkey made here works nowhere else.
 * - Attestation `none` (no device make or model is asked for or kept); user
 *   verification `preferred` (a security key without a PIN still works, and
 *   the sign-in says whether the person was verified).
 * - A challenge lives in the sign-in (the Interaction) or the account session,
 *   expires after `CHALLENGE_TTL_MS`, and is *claimed* once in the shared
 *   counter store before its response is checked: a replayed or parallel
 *   second response to one challenge is refused, on every app process.
 */
import { randomBytes, createHash } from 'node:crypto';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type * as SimpleWebAuthn from '@simplewebauthn/server';
import type { CounterStore } from '../../storage/counters/port.ts';
import { PASSKEY_DEVICE_TYPES, type Passkey, type PasskeyDeviceType } from '../../storage/accounts/port.ts';

/** How long a person has to answer one ceremony. */
export const CHALLENGE_TTL_MS = 5 * 60_000;
/** The longest response JSON accepted (a registration with a large key and extensions stays well below). */
export const RESPONSE_MAX_LENGTH = 16_384;

export type CeremonyKind = 'registration' | 'authentication';

/** A challenge as kept between the options and the response (JSON-serialisable). */
export interface Challenge {
  kind: CeremonyKind;
  /** base64url, as in the options and in the response's client data. */
  value: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Why a response was refused; the caller maps it to its page and audit event. */
export type CeremonyFailure =
  /** Not a WebAuthn response at all (bad JSON, wrong shape, too long). */
  | 'malformed'
  /** The challenge is past `expiresAt`. */
  | 'expired'
  /** The challenge was answered before (a replay, or a second tab). */
  | 'replayed'
  /** The signature, origin, RP ID, challenge or flags did not verify. */
  | 'unverified'
  /** The sign count did not move forward: a cloned authenticator. */
  | 'counter';

export type CeremonyResult<T> = ({ ok: true } & T) | { ok: false; failure: CeremonyFailure };

/** A verified registration: everything `addPasskey` needs besides the login, the name and the time. */
export interface NewCredential {
  id: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  deviceType: PasskeyDeviceType;
  backedUp: boolean;
  userVerified: boolean;
}

/** A verified assertion: what `recordPasskeyUse` and the session's amr need. */
export interface Assertion {
  newCounter: number;
  deviceType: PasskeyDeviceType;
  backedUp: boolean;
  userVerified: boolean;
}

export interface WebAuthnOptions {
  /** The issuer (`config.issuer`): RP ID and origin come from it. */
  issuer: string;
  /** Where a challenge is claimed once (shared by every process). */
  counters: CounterStore;
  now: () => number;
}

export interface WebAuthn {
  readonly rpId: string;
  readonly origin: string;
  registrationOptions(user: {
    handle: string;
    name: string;
    displayName: string;
    exclude: Passkey[];
    /** The name the authenticator shows beside the person's (the tenant's). */
    rpName: string;
  }): Promise<{ options: PublicKeyCredentialCreationOptionsJSON; challenge: Challenge }>;
  verifyRegistration(challenge: unknown, response: string): Promise<CeremonyResult<{ credential: NewCredential }>>;
  /** With `allow` for a second factor (the login's passkeys); without, for a discoverable sign-in. */
  authenticationOptions(allow?: Passkey[], userVerification?: 'preferred' | 'required'): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; challenge: Challenge }>;
  /** The response's credential id and user handle, to find the passkey before verifying; null when malformed. */
  parseAuthentication(response: string): { response: AuthenticationResponseJSON; credentialId: string; userHandle: string | null } | null;
  /** `requireUserVerification` for a sign-in with the passkey alone. */
  verifyAuthentication(
    challenge: unknown,
    response: AuthenticationResponseJSON,
    passkey: Passkey,
    requireUserVerification?: boolean,
  ): Promise<CeremonyResult<{ assertion: Assertion }>>;
}

/** The RP ID and origin of an issuer: its host name and its origin. */
/**
 * RFC 8176 methods of a passkey's use: `hwk` for a key bound to one device,
 * `swk` for one synced between devices, `user` when the authenticator checked
 * the person (fingerprint, face, PIN), and `mfa`.
 */
export function passkeyAmr(use: { deviceType: PasskeyDeviceType; userVerified: boolean }): string[] {
  return [use.deviceType === 'multiDevice' ? 'swk' : 'hwk', ...(use.userVerified ? ['user'] : []), 'mfa'];
}

export function relyingPartyOf(issuer: string): { rpId: string; origin: string } {
  const url = new URL(issuer);
  return { rpId: url.hostname, origin: url.origin };
}

/** A new random WebAuthn user handle (base64url): no name, no email, nothing to link logins by. */
export function newUserHandle(): string {
  return randomBytes(32).toString('base64url');
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function isChallenge(value: unknown, kind: CeremonyKind): value is Challenge {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as Record<string, unknown>;
  return c.kind === kind && typeof c.value === 'string' && B64URL.test(c.value) && typeof c.expiresAt === 'number';
}

function parseJson(text: string): Record<string, unknown> | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > RESPONSE_MAX_LENGTH) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** The shape `@simplewebauthn/server` reads, checked before it does: a field of the wrong type is "malformed", never a crash. */
function responseShape(json: Record<string, unknown>, fields: string[]): boolean {
  const inner = json.response as Record<string, unknown> | undefined;
  if (!isString(json.id) || !B64URL.test(json.id) || json.rawId !== json.id || json.type !== 'public-key') return false;
  if (typeof inner !== 'object' || inner === null) return false;
  if (json.clientExtensionResults !== undefined && (typeof json.clientExtensionResults !== 'object' || json.clientExtensionResults === null)) return false;
  if (inner.transports !== undefined && !(Array.isArray(inner.transports) && inner.transports.every(isString))) return false;
  return fields.every((f) => isString(inner[f]) && B64URL.test(inner[f]));
}

// Loaded at the first ceremony: the library and its ASN.1 stack cost every process about 0.7 CPU-s to load,
// and most processes (the CLI, a tenant without passkeys) never run one.
let library: Promise<typeof SimpleWebAuthn> | null = null;
const simpleWebAuthn = () => (library ??= import('@simplewebauthn/server'));

const deviceType = (value: string): PasskeyDeviceType => (PASSKEY_DEVICE_TYPES.includes(value as PasskeyDeviceType) ? (value as PasskeyDeviceType) : 'singleDevice');

export function createWebAuthn({ issuer, counters, now }: WebAuthnOptions): WebAuthn {
  const { rpId, origin } = relyingPartyOf(issuer);

  const challenge = (kind: CeremonyKind): Challenge => ({ kind, value: randomBytes(32).toString('base64url'), expiresAt: now() + CHALLENGE_TTL_MS });

  /** Checks the challenge's time, then takes its one place: true for the first caller only. */
  async function claim(c: Challenge): Promise<CeremonyFailure | null> {
    const at = now();
    if (at >= c.expiresAt) return 'expired';
    const key = `webauthn:${createHash('sha256').update(c.value).digest('base64url')}`;
    const taken = await counters.windowTake(key, randomBytes(8).toString('hex'), 1, CHALLENGE_TTL_MS + 60_000, at);
    return taken.allowed ? null : 'replayed';
  }

  return {
    rpId,
    origin,
    async registrationOptions({ handle, name, displayName, exclude, rpName }) {
      const c = challenge('registration');
      const options = await (
        await simpleWebAuthn()
      ).generateRegistrationOptions({
        rpName,
        rpID: rpId,
        userName: name,
        userDisplayName: displayName,
        userID: Uint8Array.from(Buffer.from(handle, 'base64url')),
        challenge: Uint8Array.from(Buffer.from(c.value, 'base64url')),
        timeout: CHALLENGE_TTL_MS,
        attestationType: 'none',
        excludeCredentials: exclude.map((p) => ({ id: p.id, transports: p.transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
      return { options, challenge: c };
    },

    async verifyRegistration(stored, text) {
      if (!isChallenge(stored, 'registration')) return { ok: false, failure: 'expired' };
      const json = parseJson(text);
      if (!json || !responseShape(json, ['clientDataJSON', 'attestationObject'])) return { ok: false, failure: 'malformed' };
      const failure = await claim(stored);
      if (failure) return { ok: false, failure };
      let result;
      try {
        result = await (
          await simpleWebAuthn()
        ).verifyRegistrationResponse({
          response: json as unknown as RegistrationResponseJSON,
          expectedChallenge: stored.value,
          expectedOrigin: origin,
          expectedRPID: rpId,
          requireUserVerification: false,
        });
      } catch {
        return { ok: false, failure: 'unverified' };
      }
      if (!result.verified) return { ok: false, failure: 'unverified' };
      const info = result.registrationInfo;
      return {
        ok: true,
        credential: {
          id: info.credential.id,
          publicKey: Uint8Array.from(info.credential.publicKey),
          counter: info.credential.counter,
          transports: (info.credential.transports ?? []).filter(isString).slice(0, 8),
          deviceType: deviceType(info.credentialDeviceType),
          backedUp: info.credentialBackedUp,
          userVerified: info.userVerified,
        },
      };
    },

    async authenticationOptions(allow, userVerification = 'preferred') {
      const c = challenge('authentication');
      const options = await (
        await simpleWebAuthn()
      ).generateAuthenticationOptions({
        rpID: rpId,
        challenge: Uint8Array.from(Buffer.from(c.value, 'base64url')),
        timeout: CHALLENGE_TTL_MS,
        userVerification,
        ...(allow ? { allowCredentials: allow.map((p) => ({ id: p.id, transports: p.transports })) } : {}),
      });
      return { options, challenge: c };
    },

    parseAuthentication(text) {
      const json = parseJson(text);
      if (!json || !responseShape(json, ['clientDataJSON', 'authenticatorData', 'signature'])) return null;
      const handle = (json.response as Record<string, unknown>).userHandle;
      if (handle !== undefined && handle !== null && !(isString(handle) && B64URL.test(handle))) return null;
      return { response: json as unknown as AuthenticationResponseJSON, credentialId: json.id as string, userHandle: isString(handle) ? handle : null };
    },

    async verifyAuthentication(stored, response, passkey, requireUserVerification = false) {
      if (!isChallenge(stored, 'authentication')) return { ok: false, failure: 'expired' };
      const failure = await claim(stored);
      if (failure) return { ok: false, failure };
      let result;
      try {
        result = await (
          await simpleWebAuthn()
        ).verifyAuthenticationResponse({
          response,
          expectedChallenge: stored.value,
          expectedOrigin: origin,
          expectedRPID: rpId,
          credential: { id: passkey.id, publicKey: Uint8Array.from(passkey.publicKey), counter: passkey.counter, transports: passkey.transports },
          requireUserVerification,
        });
      } catch (err) {
        // The library's one word for a count that did not move forward.
        return { ok: false, failure: /counter value/i.test(String((err as Error)?.message)) ? 'counter' : 'unverified' };
      }
      if (!result.verified) return { ok: false, failure: 'unverified' };
      const info = result.authenticationInfo;
      return {
        ok: true,
        assertion: { newCounter: info.newCounter, deviceType: deviceType(info.credentialDeviceType), backedUp: info.credentialBackedUp, userVerified: info.userVerified },
      };
    },
  };
}
