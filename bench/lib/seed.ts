// The bench's tenant, users and client, written with the project's own import
// (importDocument) into the store the server will open — before it starts.
import { loadConfig, type Config } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createStores } from '../../src/storage/index.ts';
import { createHasher } from '../../src/crypto/password.ts';
import { createAudit } from '../../src/audit.ts';
import { createFactorRegistry } from '../../src/factors/registry.ts';
import { importDocument, type ImportDocument } from '../../src/cli/import.ts';
import { clientMetadata } from '../../src/provider/clients.ts';
import { PASSWORD, REDIRECT_URI } from '../../test/support/latchkey.ts';

export { PASSWORD };

export type Policy = 'password' | 'pin' | 'totp';

/** The user type (and second factor) of each policy. */
export const USER_TYPES: Record<Policy, { id: string; secondFactor: 'none' | 'pin' | 'totp' }> = {
  password: { id: 'pwd', secondFactor: 'none' },
  pin: { id: 'pin', secondFactor: 'pin' },
  totp: { id: 'totp', secondFactor: 'totp' },
};

export const CLIENT_ID = 'bench-app';
export const CLIENT_SECRET = 'bench-secret-6f1d2c7a9e4b8d0f3a7c1e5b9d2f';

const importClient = {
  client_id: CLIENT_ID,
  client_secret: CLIENT_SECRET,
  client_name: 'Bench App',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] as ('authorization_code' | 'refresh_token' | 'client_credentials')[],
};

/** The oidc-provider metadata Latchkey serves for the bench client (the bare provider gets exactly this). */
export function benchClientMetadata(): Record<string, unknown> & { client_id: string } {
  return clientMetadata({ clientId: CLIENT_ID, tenant: 'bench', firstParty: true, metadata: { ...importClient } }) as Record<string, unknown> & { client_id: string };
}

export interface BenchUser {
  email: string;
  loginId: string;
  policy: Policy;
}

export function usersFor(policy: Policy, count: number): BenchUser[] {
  return Array.from({ length: count }, (_, i) => ({ email: `${policy}-${i}@bench.test`, loginId: `${policy}-${i}`, policy }));
}

export function benchDocument(users: BenchUser[], policies: Policy[]): ImportDocument {
  return {
    identities: users.map((u) => ({ email: u.email, password: PASSWORD })),
    tenants: [
      {
        id: 'bench',
        name: 'Bench Co',
        userTypes: policies.map((p) => ({ ...USER_TYPES[p], name: p })),
        logins: users.map((u) => ({ id: u.loginId, email: u.email, userType: USER_TYPES[u.policy].id, firstName: 'Bench', lastName: u.loginId })),
        clients: [{ ...importClient, first_party: true }],
      },
    ],
  };
}

const silent = createLogger('silent');

/**
 * Opens the stores `env` names, asks this checkout's factor registry which
 * second factors it offers (pin and totp land separately), imports the
 * document `build` makes for them, and closes the stores. Returns the
 * configuration the server will load and the factor ids.
 */
export async function seed(env: Record<string, string>, build: (factors: string[]) => ImportDocument): Promise<{ config: Config; factors: string[] }> {
  const config = loadConfig(env);
  const stores = await createStores(config, silent);
  try {
    const hasher = await createHasher(config.argon2, config.keys.pepper);
    const registry = createFactorRegistry({ config, accounts: stores.accounts, counters: stores.counters, hasher, audit: createAudit(stores.accounts, silent, { ...config.audit, sweepEveryMs: 0 }), now: Date.now });
    const factors = registry.all().map((f) => f.id);
    await importDocument(build(factors), { accounts: stores.accounts, hasher, config });
    return { config, factors };
  } finally {
    await stores.close();
  }
}
