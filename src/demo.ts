/**
 * The demo tenant created on an empty store (`npm start` on a fresh machine),
 * written through the importer like any other tenant.
 */
import type { Config } from '../config/index.ts';
import type { AccountStore } from './storage/accounts/port.ts';
import type { Hasher } from './crypto/password.ts';
import { importDocument, type ImportDocument } from './import/index.ts';

export const DEMO = {
  tenant: 'demo',
  clientId: 'latchkey-demo',
  password: 'latchkey-demo',
  people: [
    { email: 'owner@demo.test', logins: [{ id: 'demo-owner', userType: 'owner', firstName: 'Olivia', lastName: 'Owner' }] },
    {
      email: 'jane@demo.test',
      logins: [
        { id: 'jane-employee', userType: 'employee', firstName: 'Jane', lastName: 'Doe' },
        { id: 'jane-manager', userType: 'manager', firstName: 'Jane', lastName: 'Doe' },
      ],
    },
    { email: 'sam@demo.test', logins: [{ id: 'sam-employee', userType: 'employee', firstName: 'Sam', lastName: 'Smith' }] },
  ],
} as const;

export function demoDocument(issuer: string): ImportDocument {
  return {
    identities: DEMO.people.map((p) => ({ email: p.email, password: DEMO.password })),
    tenants: [
      {
        id: DEMO.tenant,
        name: 'Demo Care',
        owner: 'demo-owner',
        userTypes: [
          // One user type per policy, so the demo shows every second factor.
          { id: 'owner', name: 'Owner', secondFactor: 'pin' },
          { id: 'employee', name: 'Employee', secondFactor: 'none' },
          { id: 'manager', name: 'Manager', secondFactor: 'totp' },
        ],
        logins: DEMO.people.flatMap((p) => p.logins.map((l) => ({ ...l, email: p.email }))),
        clients: [
          {
            // Public (PKCE, no secret): the start page plays this client, and a stored secret is only a hash.
            client_id: DEMO.clientId,
            client_name: 'Latchkey demo',
            redirect_uris: [`${issuer}/demo/callback`],
            post_logout_redirect_uris: [`${issuer}/`],
            first_party: true,
          },
        ],
      },
    ],
  };
}

export async function seedDemo(accounts: AccountStore, hasher: Hasher, config: Config): Promise<void> {
  await importDocument(demoDocument(config.issuer), { accounts, hasher, config });
}

/** A demo client from before it was public had a secret the start page can no longer read: drop it. */
export async function makeDemoClientPublic(accounts: AccountStore): Promise<void> {
  const client = await accounts.getClient(DEMO.clientId);
  if (!client || client.tenant !== DEMO.tenant || client.metadata.client_secret === undefined) return;
  const { client_secret: _secret, ...metadata } = client.metadata;
  await accounts.upsertClient({ ...client, metadata });
}
