// Passkey sign-ins for the bench: each login registers a passkey once on the
// software authenticator (at its first sign-in, as the enrol page asks), then
// signs in with the password and the passkey, or with the passkey alone.
import { actionOf, csrfOf } from '../../test/support/browser.ts';
import { builtInFactors } from '../../src/factors/registry.ts';
import { passkeyAmr } from '../../src/factors/passkey/ceremony.ts';
import { AMR } from '../../src/provider/acr.ts';
import { SoftAuthenticator, type CreationOptions, type RequestOptions } from '../lib/authenticator.ts';
import { savedRecoveryCodes } from '../lib/factors.ts';
import { has, passkeyOptions, unexpected } from './pages.ts';
import type { Expected, PathDriver, PathUser } from './journey.ts';

/** The software authenticator's passkeys are bound to one device and verify the person. */
const USE = { deviceType: 'singleDevice', userVerified: true } as const;

export const PASSKEY_EXPECTED: { second: Expected; alone: Expected } = {
  second: { acr: builtInFactors.info('passkey').acr, amr: [AMR.password, ...passkeyAmr(USE)] },
  alone: { acr: builtInFactors.info('passkey').acr, amr: passkeyAmr(USE) },
};

/** The bench's passkey logins and the one software authenticator ("the device") that holds their passkeys. */
export class PasskeyLogins {
  readonly authenticator: SoftAuthenticator;
  private readonly credentials = new Map<string, string>();

  constructor(issuer: string) {
    this.authenticator = new SoftAuthenticator(new URL(issuer).origin);
  }

  readonly credentialOf = (user: PathUser): string => {
    const id = this.credentials.get(user.loginId);
    if (!id) throw new Error(`${user.loginId} has registered no passkey`);
    return id;
  };

  /** The first sign-in: the enrol page's registration, named; then the recovery codes, when they are shown. */
  readonly enrol: PathDriver = async (browser, page, user) => {
    if (!has(page, 'passkey-enroll-form')) throw unexpected(page, 'the passkey enrol page');
    const response = this.authenticator.create(passkeyOptions<CreationOptions>(page, 'passkey-enroll-form'));
    const done = await browser.post(actionOf(page, 'passkey-enroll-form'), { response: JSON.stringify(response), name: 'Bench key', csrf: csrfOf(page) });
    this.credentials.set(user.loginId, response.id as string);
    return (await savedRecoveryCodes(browser, done)).page;
  };

  /** Later sign-ins: the verify page's assertion with the login's passkey. */
  readonly verify: PathDriver = async (browser, page, user) => {
    if (!has(page, 'passkey-verify-form')) throw unexpected(page, 'the passkey verify page');
    const response = this.authenticator.get(passkeyOptions<RequestOptions>(page, 'passkey-verify-form'), this.credentialOf(user));
    return browser.post(actionOf(page, 'passkey-verify-form'), { response: JSON.stringify(response), csrf: csrfOf(page) });
  };
}
