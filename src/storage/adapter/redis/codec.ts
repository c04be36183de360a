/**
 * How the Redis adapter stores one model: a short text header, then the
 * payload's JSON deflated against a fixed dictionary of oidc-provider's own
 * field names and Latchkey's usual values.
 *
 *   `1␟<flags>␟<consumed>␟<grantId>␟<lookup>[␟<a grant's index>]␞<deflated JSON>`   (␟ = 0x1f, ␞ = 0x1e)
 *
 * The header holds what the scripts must read without JSON (the grant the
 * model belongs to, its uid or user code, whether it was consumed) and the
 * body leaves those out, so nothing is stored twice. Flags: `j` the payload's
 * `jti` is the stored id, `k` its `kind` is the model's name; both are then
 * left out of the body and put back on reading. `p`: the `jti` begins with
 * the stored id (a Session's is its id's whole hash, of which the key holds
 * the first 32 characters), and the body keeps only the rest. A payload of ~400 bytes of
 * JSON takes ~150 here, which is most of the difference between ~3.6 KB and
 * under 2 KB of Redis per signed-in session.
 *
 * The leading `1` names this format and its dictionary: the dictionary must
 * never change under it (a new one needs a new version, read beside the old).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';

const VERSION = '1';
const FIELD = 0x1f;
const END = 0x1e;

// oidc-provider's payloads as Latchkey writes them, ids and times left out: rarer fields first, then one
// of each model most frequent last, where deflate reaches them with the shortest distances.
export const DICTIONARY = Buffer.from(
  [
    '"nonce":"',
    '"resource":"',
    '"claims":{"id_token":{},"userinfo":{}},',
    '"resources":{},"rules":{},',
    '"gty":"refresh_token",',
    '"gty":"client_credentials",',
    '"acr":"urn:latchkey:acr:totp","amr":["otp","mfa"],',
    '"acr":"urn:latchkey:acr:pin","amr":["pwd","pin"],',
    '{"iat":17,"exp":17,"uid":"","returnTo":"https://","prompt":{"name":"login","reasons":["no_session"],"details":{}},"lastSubmission":{},"params":{"client_id":"","redirect_uri":"https://","response_type":"code","scope":"openid email profile offline_access","state":"","code_challenge":"","code_challenge_method":"S256"},"trusted":[],"cid":""}',
    '{"iat":17,"exp":17,"clientId":"","accountId":"","rejected":{},"openid":{"scope":"openid email profile offline_access"}}',
    '{"iat":17,"exp":17,"accountId":"","acr":"urn:latchkey:acr:1fa","amr":["pwd"],"authTime":17,"codeChallenge":"","codeChallengeMethod":"S256","redirectUri":"https://","scope":"openid email profile offline_access","sessionUid":"","clientId":""}',
    '{"iat":17,"exp":17,"jti":"v1.adapter.","accountId":"","loginTs":17,"amr":["pwd"],"acr":"urn:latchkey:acr:1fa","authorizations":{"":{"sid":"","grantId":"","persistsLogout":true}}}',
    '{"iat":17,"exp":17,"accountId":"","acr":"urn:latchkey:acr:1fa","amr":["pwd"],"authTime":17,"gty":"authorization_code","rotations":0,"scope":"openid email profile offline_access","sessionUid":"","clientId":"","iiat":17}',
    '{"iat":17,"exp":17,"accountId":"","gty":"authorization_code","sessionUid":"","clientId":"","scope":"openid email profile offline_access","extra":{"acr":"urn:latchkey:acr:1fa","amr":["pwd"],"auth_time":17}}',
  ].join(''),
);
// A window that holds the dictionary (2 KiB): a payload is a few hundred bytes.
const ZLIB = { dictionary: DICTIONARY, windowBits: 11, memLevel: 9, level: 9 } as const;
const INFLATE = { dictionary: DICTIONARY, windowBits: 11 } as const;

export interface StoredModel {
  payload: Record<string, unknown>;
  /** The stored id, for the `j` flag. */
  id: string;
  /** The model's name, for the `k` flag. */
  model: string;
  /** The field kept in the header besides grantId (`uid` of a Session, `userCode` of a DeviceCode). */
  lookup?: 'uid' | 'userCode';
  /** Whether grantId goes in the header. */
  grantable: boolean;
}

/** What of a lookup or grant id goes in the header ('' none); the scripts are given the same. */
export function headerField(value: unknown): string {
  if (typeof value !== 'string' || value === '') return '';
  // Provider ids, uids and user codes are printable; a control character here would break the header.
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) < 0x20) return '';
  return value;
}

export function encodeModel({ payload, id, model, lookup, grantable }: StoredModel): Buffer {
  let flags = '';
  let consumed = '';
  const grantId = grantable ? headerField(payload.grantId) : '';
  const found = lookup ? headerField(payload[lookup]) : '';
  // A copy without what the header holds (built, not deleted from: V8 serialises it faster).
  const body: Record<string, unknown> = {};
  for (const name in payload) {
    const value = payload[name];
    if (name === 'jti' && value === id) flags += 'j';
    else if (name === 'jti' && typeof value === 'string' && value.length > id.length && value.startsWith(id)) {
      flags += 'p';
      body.jti = value.slice(id.length);
    } else if (name === 'kind' && value === model) flags += 'k';
    else if (name === 'consumed' && Number.isSafeInteger(value) && (value as number) >= 0) consumed = String(value);
    else if (name === 'grantId' && grantId) continue;
    else if (name === lookup && found) continue;
    else body[name] = value;
  }
  const header = Buffer.from(`${VERSION}\x1f${flags}\x1f${consumed}\x1f${grantId}\x1f${found}\x1e`);
  return Buffer.concat([header, deflateRawSync(JSON.stringify(body), ZLIB)]);
}

/** The payload back, as it was given to `encodeModel` (consumed included). */
export function decodeModel(value: Buffer, id: string, model: string, lookup?: 'uid' | 'userCode'): Record<string, unknown> {
  const end = value.indexOf(END);
  const [version, flags = '', consumed = '', grantId = '', found = ''] = value.toString('utf8', 0, end).split('\x1f');
  if (version !== VERSION || end < 0) throw new Error(`Redis adapter: unknown stored format in a ${model}`);
  const payload = JSON.parse(inflateRawSync(value.subarray(end + 1), INFLATE).toString()) as Record<string, unknown>;
  if (flags.includes('j')) payload.jti = id;
  if (flags.includes('p') && typeof payload.jti === 'string') payload.jti = id + payload.jti;
  if (flags.includes('k')) payload.kind = model;
  if (consumed) payload.consumed = Number(consumed);
  if (grantId) payload.grantId = grantId;
  if (found && lookup) payload[lookup] = found;
  return payload;
}

/** Whether a stored value is in this format (for dumps: tests, tools). */
export function isEncodedModel(value: Buffer): boolean {
  return value.length > 1 && value[0] === VERSION.charCodeAt(0) && value[1] === FIELD;
}

/** A stored value as readable text (header and JSON), for dumps that look for what must not be stored. */
export function describeStored(value: Buffer): string {
  if (!isEncodedModel(value)) return value.toString();
  const end = value.indexOf(END);
  // A grant's record may hold its index alone (see index.ts), with no body.
  const body = end === value.length - 1 ? '' : inflateRawSync(value.subarray(end + 1), INFLATE).toString();
  return `${value.toString('utf8', 0, end)}\n${body}`;
}
