// Chromium's DevTools virtual authenticator, driven through playwright-core's
// CDP session: real WebAuthn ceremonies (real keys, real signatures, real
// sign counts) without a person touching a security key. WebAuthn needs a
// secure context, and `http://localhost` is one: tests that use it run the
// server with an ISSUER on `localhost` (RP ID `localhost`), never 127.0.0.1.
import type { Browser, CDPSession, Page } from 'playwright-core';
import { launchChromium } from './chromium.ts';

/**
 * Chromium for WebAuthn tests: `localhost` always reaches the test servers,
 * which listen on 127.0.0.1 (Chromium would otherwise also try ::1, where
 * another process may hold the same port number).
 */
export function launchWebAuthnChromium(): Promise<Browser> {
  return launchChromium(['--host-resolver-rules=MAP localhost 127.0.0.1']);
}

/** A credential as the DevTools protocol describes it (`WebAuthn.Credential`). */
export interface VirtualCredential {
  /** base64 (standard, padded), as CDP spells binary values. */
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  /** The PKCS#8 private key, base64: only ever inside the virtual authenticator and the test. */
  privateKey: string;
  /** base64. */
  userHandle?: string;
  signCount: number;
  largeBlob?: string;
  backupEligibility?: boolean;
  backupState?: boolean;
  userName?: string;
  userDisplayName?: string;
}

export interface AuthenticatorOptions {
  /** Default true: a passkey (discoverable credential). */
  hasResidentKey?: boolean;
  /** Default true. */
  hasUserVerification?: boolean;
  /** Default true: the "user" passes the fingerprint / PIN check. */
  isUserVerified?: boolean;
  /** Default `internal` (a platform authenticator); `usb` for a security key. */
  transport?: 'internal' | 'usb' | 'nfc' | 'ble';
  /** The BE/BS flags of new credentials: true makes a synced (multi-device) passkey. Default false. */
  backedUp?: boolean;
}

/** One virtual authenticator attached to one page (CDP's WebAuthn domain is per target). */
export interface VirtualAuthenticator {
  readonly id: string;
  readonly cdp: CDPSession;
  credentials(): Promise<VirtualCredential[]>;
  addCredential(credential: VirtualCredential): Promise<void>;
  removeCredential(credentialId: string): Promise<void>;
  clear(): Promise<void>;
  /** Whether the next ceremonies pass user verification. */
  setUserVerified(verified: boolean): Promise<void>;
  remove(): Promise<void>;
}

async function enabled(page: Page): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(page);
  // No browser dialog: presence is simulated, so ceremonies complete on their own.
  await cdp.send('WebAuthn.enable', { enableUI: false });
  return cdp;
}

/** Adds a CTAP2 virtual authenticator to `page`; every ceremony on that page uses it. */
export async function addVirtualAuthenticator(page: Page, options: AuthenticatorOptions = {}, session?: CDPSession): Promise<VirtualAuthenticator> {
  const cdp = session ?? (await enabled(page));
  const backedUp = options.backedUp ?? false;
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      ctap2Version: 'ctap2_1',
      transport: options.transport ?? 'internal',
      hasResidentKey: options.hasResidentKey ?? true,
      hasUserVerification: options.hasUserVerification ?? true,
      isUserVerified: options.isUserVerified ?? true,
      automaticPresenceSimulation: true,
      defaultBackupEligibility: backedUp,
      defaultBackupState: backedUp,
    },
  });
  return {
    id: authenticatorId,
    cdp,
    async credentials() {
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      return credentials as VirtualCredential[];
    },
    async addCredential(credential) {
      await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
    },
    async removeCredential(credentialId) {
      await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId });
    },
    async clear() {
      await cdp.send('WebAuthn.clearCredentials', { authenticatorId });
    },
    async setUserVerified(isUserVerified) {
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified });
    },
    async remove() {
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
    },
  };
}

/**
 * A clone of `original`'s credentials on a second authenticator of `page`,
 * each with its sign count set back to `signCount` (default 0): what an
 * attacker who copied the key would present. `original` is removed, so the
 * next ceremony on the page uses the clone.
 */
export async function cloneAuthenticator(page: Page, original: VirtualAuthenticator, signCount = 0): Promise<VirtualAuthenticator> {
  const creds = await original.credentials();
  await original.remove();
  const clone = await addVirtualAuthenticator(page, {}, original.cdp);
  for (const c of creds) await clone.addCredential({ ...c, signCount });
  return clone;
}

/** CDP's base64 to the base64url that WebAuthn's JSON (and the store) use. */
export function base64url(base64: string): string {
  return Buffer.from(base64, 'base64').toString('base64url');
}
