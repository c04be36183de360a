// A software WebAuthn authenticator for the bench: what a phone's screen lock
// or a security key does, in a few lines of node:crypto, so that passkey
// sign-ins can be driven without a browser. It answers the options Latchkey
// puts on its pages (`data-options`) with the JSON that @simplewebauthn/browser
// would post: an ES256 key per credential, attestation `none`, authenticator
// data with the RP ID hash, flags (user present and verified) and a sign
// count that moves forward on every use, CBOR for the attestation object and
// the COSE key (the CBOR encoder the server's own WebAuthn library uses).
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

/** The options of a registration, as the page hands them to the browser (PublicKeyCredentialCreationOptionsJSON). */
export interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
  excludeCredentials?: { id: string }[];
}

/** The options of an authentication (PublicKeyCredentialRequestOptionsJSON). */
export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
  userVerification?: string;
}

interface Credential {
  id: string;
  rpId: string;
  userHandle: string;
  privateKey: KeyObject;
  signCount: number;
}

const FLAG = { userPresent: 0x01, userVerified: 0x04, attestedData: 0x40 } as const;
/** COSE (RFC 9053): key type EC2, algorithm ES256, curve P-256. */
const COSE = { kty: 1, alg: 3, crv: -1, x: -2, y: -3, EC2: 2, ES256: -7, P256: 1 } as const;

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest();
const b64url = (data: Uint8Array) => Buffer.from(data).toString('base64url');

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export class SoftAuthenticator {
  private readonly credentials = new Map<string, Credential>();

  /** `origin`: the page's origin, as a browser puts it in the client data. */
  constructor(readonly origin: string) {}

  /** The credentials made so far for `rpId`. */
  ids(rpId: string): string[] {
    return [...this.credentials.values()].filter((c) => c.rpId === rpId).map((c) => c.id);
  }

  /** navigator.credentials.create(): a new discoverable credential; the response JSON to post. */
  create(options: CreationOptions): Record<string, unknown> {
    const rpId = options.rp.id ?? new URL(this.origin).hostname;
    const excluded = new Set((options.excludeCredentials ?? []).map((c) => c.id));
    if (this.ids(rpId).some((id) => excluded.has(id))) throw new Error('this authenticator already holds a credential the options exclude');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [COSE.kty, COSE.EC2],
        [COSE.alg, COSE.ES256],
        [COSE.crv, COSE.P256],
        [COSE.x, Buffer.from(jwk.x!, 'base64url')],
        [COSE.y, Buffer.from(jwk.y!, 'base64url')],
      ]),
    );
    const rawId = randomBytes(32);
    const credential: Credential = { id: b64url(rawId), rpId, userHandle: options.user.id, privateKey, signCount: 0 };
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(rawId.length);
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([FLAG.userPresent | FLAG.userVerified | FLAG.attestedData]),
      uint32(credential.signCount),
      Buffer.alloc(16), // AAGUID: none (attestation `none`)
      idLength,
      rawId,
      coseKey,
    ]);
    const attestationObject = isoCBOR.encode(
      new Map<string, string | Uint8Array | Map<string, string>>([
        ['fmt', 'none'],
        ['attStmt', new Map<string, string>()],
        ['authData', authData],
      ]),
    );
    const clientData = JSON.stringify({ type: 'webauthn.create', challenge: options.challenge, origin: this.origin, crossOrigin: false });
    this.credentials.set(credential.id, credential);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: { clientDataJSON: b64url(Buffer.from(clientData)), attestationObject: b64url(attestationObject), transports: ['internal'] },
    };
  }

  /**
   * navigator.credentials.get(): an assertion by `credentialId` (the one the
   * person picks), which must be allowed by the options when they list any;
   * the response JSON to post.
   */
  get(options: RequestOptions, credentialId: string): Record<string, unknown> {
    const credential = this.credentials.get(credentialId);
    if (!credential) throw new Error(`this authenticator holds no credential ${credentialId}`);
    const rpId = options.rpId ?? new URL(this.origin).hostname;
    if (credential.rpId !== rpId) throw new Error(`credential ${credentialId} is for ${credential.rpId}, not ${rpId}`);
    const allowed = options.allowCredentials ?? [];
    if (allowed.length && !allowed.some((c) => c.id === credentialId)) throw new Error(`the options do not allow credential ${credentialId}`);
    credential.signCount++;
    const authData = Buffer.concat([sha256(rpId), Buffer.from([FLAG.userPresent | FLAG.userVerified]), uint32(credential.signCount)]);
    const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: options.challenge, origin: this.origin, crossOrigin: false }));
    // ES256: ECDSA over authenticatorData ‖ SHA-256(clientDataJSON), DER-encoded, as authenticators sign.
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), credential.privateKey);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: { clientDataJSON: b64url(clientData), authenticatorData: b64url(authData), signature: b64url(signature), userHandle: credential.userHandle },
    };
  }
}
