/**
 * The import format (docs/import.md): tenants, identities, logins,
 * clients and upstream providers from one JSON document. Validated whole before anything is written
 * (a bad file changes nothing); writing is a series of idempotent upserts.
 */
import { z } from 'zod';
import type { AccountStore, Client, LoginInput, Tenant } from '../storage/accounts/port.ts';
import { normalizeEmail } from '../storage/accounts/port.ts';
import { USER_TYPES_MAX } from '../storage/accounts/values.ts';
import type { Hasher } from '../crypto/password.ts';
import type { Config } from '../../config/index.ts';
import { isStrongArgon2Hash } from '../crypto/password.ts';
import { createSecretBox, type SecretBox } from '../crypto/secretbox.ts';
import { CLIENT_SECRET_MIN_LENGTH, createClientSecrets } from '../crypto/client-secret.ts';
import { resealUpstreamSecret } from '../upstream/secret.ts';
import { builtInFactors, type FactorCatalogue } from '../factors/registry.ts';
import { API_SCOPES, mayHoldApiScopes } from '../api/scopes.ts';
import { EMAIL_MAX } from '../email.ts';
import { releaseAddress } from '../admin/identities.ts';

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_" or "-"');
const name = z.string().trim().min(1, 'must not be empty').max(200);
const email = z.string().max(EMAIL_MAX, `must be at most ${EMAIL_MAX} characters`).email('must be an email address');
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');

const identitySchema = z
  .object({
    email,
    password: z.string().min(8, 'must be at least 8 characters').max(1024).optional(),
    passwordHash: z.string().max(1024).optional(),
  })
  .strict()
  .refine((i) => !(i.password && i.passwordHash), { message: 'give password or passwordHash, not both' });

const loginSchema = z
  .object({
    id,
    email,
    userType: id,
    firstName: z.string().trim().max(100),
    lastName: z.string().trim().max(100),
    disabled: z.boolean().optional(),
  })
  .strict();

const upstreamSchema = z
  .object({
    id,
    name,
    issuer: httpUrl.refine((u) => !/[?#]/.test(u), 'must not have a query or fragment'),
    client_id: z.string().min(1).max(512),
    client_secret: z.string().min(1).max(512),
    scopes: z.array(z.string().regex(/^[\x21-\x7e]+$/)).optional(),
  })
  .strict();

/** The file's schema for the factors `factors` knows (the user types' values, the clients' acr values). */
export function importSchemaFor(factors: FactorCatalogue) {
  const userTypeSchema = z.object({ id, name, secondFactor: z.enum(factors.ids() as [string, ...string[]]) }).strict();

  const clientSchema = z
    .object({
      client_id: id,
      client_secret: z.string().min(CLIENT_SECRET_MIN_LENGTH, `must be at least ${CLIENT_SECRET_MIN_LENGTH} random characters (e.g. openssl rand -base64 32)`).max(512).optional(),
      client_name: z.string().max(200).optional(),
      redirect_uris: z.array(httpUrl).min(1, 'needs at least one redirect URI').optional(),
      post_logout_redirect_uris: z.array(httpUrl).optional(),
      // Where the app takes back-channel logouts (OpenID Connect Back-Channel Logout 1.0; docs/relying-parties.md).
      backchannel_logout_uri: httpUrl.optional(),
      grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials'])).optional(),
      first_party: z.boolean().optional(),
      // The management API's scopes the client may ask for with client_credentials (docs/api.md).
      api_scopes: z.array(z.enum(API_SCOPES)).optional(),
      // The app's minimum level: every sign-in to it reaches one of these (the weakest is the floor).
      default_acr_values: z
        .array(z.enum(factors.acrValues() as [string, ...string[]]))
        .min(1)
        .optional(),
    })
    .strict()
    .superRefine((c, ctx) => {
      const grants = c.grant_types ?? ['authorization_code', 'refresh_token'];
      // Only a client that never signs people in (client_credentials alone) has no redirect URI.
      if (!c.redirect_uris && grants.some((g) => g !== 'client_credentials')) ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'needs at least one redirect URI' });
      if (c.api_scopes?.length && !mayHoldApiScopes({ client_secret: c.client_secret, grant_types: grants })) {
        ctx.addIssue({ code: 'custom', path: ['api_scopes'], message: 'needs a client_secret and "client_credentials" in grant_types' });
      }
    });

  const tenantSchema = z
    .object({
      id,
      name,
      owner: id.optional(),
      userTypes: z.array(userTypeSchema).min(1, 'needs at least one user type').max(USER_TYPES_MAX, `has more than ${USER_TYPES_MAX} user types`),
      stepUpEnrollment: z.boolean().optional(),
      logins: z.array(loginSchema).optional(),
      clients: z.array(clientSchema).optional(),
      upstreams: z.array(upstreamSchema).optional(),
    })
    .strict();

  return z
    .object({
      identities: z.array(identitySchema).optional(),
      tenants: z.array(tenantSchema).optional(),
    })
    .strict();
}

/** The schema for the built-in factors. */
export const importSchema = importSchemaFor(builtInFactors);

export type ImportDocument = z.infer<typeof importSchema>;

export class ImportError extends Error {
  override name = 'ImportError';
  constructor(readonly problems: string[]) {
    super(`the import file is not valid:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

export interface ImportSummary {
  identities: number;
  tenants: number;
  logins: number;
  clients: number;
}

function path(parts: (string | number | symbol)[]): string {
  return parts.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
}

/** Validates the whole document (shape, references, duplicates) against itself and the store. */
export async function validateImport(raw: unknown, accounts: AccountStore, config: Config, factors: FactorCatalogue = builtInFactors): Promise<ImportDocument> {
  const parsed = (factors === builtInFactors ? importSchema : importSchemaFor(factors)).safeParse(raw);
  if (!parsed.success) throw new ImportError(parsed.error.issues.map((i) => `${path(i.path) || '(file)'}: ${i.message}`));
  const doc = parsed.data;
  const problems: string[] = [];
  const seen = (label: string) => {
    const set = new Set<string>();
    return (value: string, where: string) => {
      if (set.has(value)) problems.push(`${where}: duplicate ${label} "${value}"`);
      set.add(value);
    };
  };

  const emails = seen('email');
  const fileEmails = new Set<string>();
  doc.identities?.forEach((identity, i) => {
    const e = normalizeEmail(identity.email);
    emails(e, `identities[${i}].email`);
    fileEmails.add(e);
    if (identity.passwordHash && !isStrongArgon2Hash(identity.passwordHash, config.argon2)) {
      problems.push(`identities[${i}].passwordHash: must be an argon2id PHC string with m>=${config.argon2.memoryCost}, t>=${config.argon2.timeCost}`);
    }
  });

  const tenantIds = seen('tenant id');
  const loginIds = seen('login id');
  const clientIds = seen('client id');
  for (const [t, tenant] of (doc.tenants ?? []).entries()) {
    const at = `tenants[${t}]`;
    tenantIds(tenant.id, `${at}.id`);
    const typeIds = seen('user type id');
    tenant.userTypes.forEach((ut, u) => typeIds(ut.id, `${at}.userTypes[${u}].id`));
    const types = new Set(tenant.userTypes.map((ut) => ut.id));
    const ownLogins = new Set<string>();
    for (const [l, login] of (tenant.logins ?? []).entries()) {
      loginIds(login.id, `${at}.logins[${l}].id`);
      ownLogins.add(login.id);
      if (!types.has(login.userType)) problems.push(`${at}.logins[${l}].userType: "${login.userType}" is not one of the tenant's user types`);
      const e = normalizeEmail(login.email);
      if (!fileEmails.has(e) && !(await accounts.findIdentityByEmail(e))) {
        problems.push(`${at}.logins[${l}].email: no identity has the email "${e}" (add it to "identities")`);
      }
      const existing = await accounts.getLogin(login.id);
      if (existing && existing.tenant !== tenant.id) problems.push(`${at}.logins[${l}].id: "${login.id}" already belongs to tenant "${existing.tenant}"`);
    }
    if (tenant.owner && !ownLogins.has(tenant.owner)) {
      const existing = await accounts.getLogin(tenant.owner);
      if (!existing || existing.tenant !== tenant.id) problems.push(`${at}.owner: "${tenant.owner}" is not a login of this tenant`);
    }
    for (const [c, client] of (tenant.clients ?? []).entries()) {
      clientIds(client.client_id, `${at}.clients[${c}].client_id`);
      const existing = await accounts.getClient(client.client_id);
      if (existing && existing.tenant !== tenant.id) problems.push(`${at}.clients[${c}].client_id: "${client.client_id}" already belongs to tenant "${existing.tenant}"`);
    }
    const upstreamIds = seen('upstream id');
    tenant.upstreams?.forEach((up, u) => {
      upstreamIds(up.id, `${at}.upstreams[${u}].id`);
      if (config.env === 'production' && !up.issuer.startsWith('https://')) problems.push(`${at}.upstreams[${u}].issuer: must be an https URL in production`);
    });
  }
  if (problems.length) throw new ImportError(problems);
  return doc;
}

/** Validates, then writes. Re-importing the same file changes nothing. */
/** `factors`: the registry of the app the file is for, when it has factors beyond the built-in ones. */
export async function importDocument(raw: unknown, deps: { accounts: AccountStore; hasher: Hasher; config: Config; factors?: FactorCatalogue }): Promise<ImportSummary> {
  const { accounts, hasher } = deps;
  const doc = await validateImport(raw, accounts, deps.config, deps.factors);

  // Hash first: a failure here must not leave half a file written.
  const identities = await Promise.all(
    (doc.identities ?? []).map(async (identity) => {
      const e = normalizeEmail(identity.email);
      if (identity.passwordHash) return { email: e, passwordHash: identity.passwordHash };
      if (!identity.password) return { email: e, passwordHash: undefined };
      const existing = await accounts.findIdentityByEmail(e);
      if (existing?.passwordHash && (await hasher.verify(existing.passwordHash, identity.password))) return { email: e, passwordHash: undefined };
      return { email: e, passwordHash: await hasher.hash(identity.password) };
    }),
  );

  for (const identity of identities) await accounts.upsertIdentity(identity);
  const box = createSecretBox(deps.config.keys.encryptionKeys);
  const secrets = createClientSecrets(deps.config.keys.pepper);
  let logins = 0;
  let clients = 0;
  // The addresses logins of the file moved away from: released once every login is written (one may move to another's).
  const left = new Set<string>();
  for (const t of doc.tenants ?? []) {
    const existing = await accounts.getTenant(t.id);
    const tenant: Tenant = {
      id: t.id,
      name: t.name,
      // The file's owner comes first; owners added on the account pages stay.
      owners: t.owner ? [t.owner, ...(existing?.owners ?? []).filter((o) => o !== t.owner)] : (existing?.owners ?? []),
      userTypes: t.userTypes,
      ...(t.stepUpEnrollment === undefined ? {} : { stepUpEnrollment: t.stepUpEnrollment }),
    };
    await accounts.upsertTenant(tenant);
    for (const l of t.logins ?? []) {
      const login: LoginInput = {
        id: l.id,
        tenant: t.id,
        email: normalizeEmail(l.email),
        userType: l.userType,
        firstName: l.firstName,
        lastName: l.lastName,
        disabled: l.disabled ?? false,
      };
      const before = await accounts.getLogin(l.id);
      await accounts.upsertLogin(login);
      if (before && before.email !== login.email) left.add(before.email);
      logins++;
    }
    for (const c of t.clients ?? []) {
      const { first_party: firstParty, client_secret: secret, ...rest } = c;
      // Stored hashed (src/crypto/client-secret.ts); the file holds the only plain copy.
      const metadata = secret === undefined ? rest : { ...rest, client_secret: secrets.hash(secret) };
      const client: Client = { clientId: c.client_id, tenant: t.id, firstParty: firstParty ?? false, metadata };
      await accounts.upsertClient(client);
      clients++;
    }
    for (const u of t.upstreams ?? []) await writeUpstream(accounts, box, t.id, u);
  }
  // An identity the file names stays, with or without logins.
  for (const email of left) if (!identities.some((i) => i.email === email)) await releaseAddress(accounts, email);
  return { identities: identities.length, tenants: doc.tenants?.length ?? 0, logins, clients };
}

/** Stores one upstream provider, its client secret sealed (src/upstream/secret.ts). */
async function writeUpstream(accounts: AccountStore, box: SecretBox, tenant: string, u: z.infer<typeof upstreamSchema>) {
  const stored = await accounts.getUpstream(tenant, u.id);
  await accounts.upsertUpstream({
    tenant,
    id: u.id,
    name: u.name,
    issuer: u.issuer,
    clientId: u.client_id,
    clientSecret: resealUpstreamSecret(box, tenant, u.id, u.client_secret, stored),
    scopes: u.scopes ?? [],
  });
}
