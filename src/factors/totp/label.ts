/**
 * What an authenticator app shows and files a secret under: Google's Key Uri Format with the tenant's name as
 * issuer and an account name unique among the tenant's logins, so that an app
 * never merges or overwrites two logins of one person.
 */
import type { Login, UserType } from '../../storage/accounts/port.ts';
import { TOTP } from './code.ts';
import { userTypeName } from '../../names.ts';

type Labelled = Pick<Login, 'id' | 'email' | 'userType'>;

/**
 * The account name of `login` among the `logins` of its tenant that share its
 * email (it may be among them): `email (User type)`; when two of them would
 * read the same (same type name), `email (User type, login-id)`. Emails hold
 * no spaces and login ids are unique, so the last resort, `email [login-id]`,
 * cannot clash with anything.
 */
export function authenticatorAccount(login: Labelled, logins: readonly Labelled[], userTypes: readonly Pick<UserType, 'id' | 'name'>[]): string {
  const others = logins.filter((l) => l.id !== login.id && l.email === login.email);
  const all = [login, ...others];
  const typeName = (l: Labelled) => userTypeName({ userTypes }, l.userType);
  const base = (l: Labelled) => `${l.email} (${typeName(l)})`;
  const bases = all.map(base);
  const first = all.map((l, i) => (bases.filter((b) => b === bases[i]).length > 1 ? `${l.email} (${typeName(l)}, ${l.id})` : bases[i]!));
  if (new Set(first).size === first.length) return first[0]!;
  return `${login.email} [${login.id}]`;
}

/**
 * `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`.
 * Built here rather than with otplib's `generateURI`, which leaves out
 * parameters at their default values and does not encode a ":" in the issuer.
 */
export function otpauthUri({ issuer, account, secret }: { issuer: string; account: string; secret: string }): string {
  const e = encodeURIComponent;
  const params = [`secret=${e(secret)}`, `issuer=${e(issuer)}`, `algorithm=${TOTP.algorithm.toUpperCase()}`, `digits=${TOTP.digits}`, `period=${TOTP.periodSeconds}`];
  return `otpauth://totp/${e(issuer)}:${e(account)}?${params.join('&')}`;
}
