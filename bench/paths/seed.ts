// What the new paths need in the stores, beside bench/lib/seed.ts's tenant:
// - tenant `paths`: passkey logins and app (TOTP) logins with recovery codes,
//   and a first-party client of its own (an app's tenant is its client's);
// - tenant `people`: an owner, 10,000 logins for the Users page (written
//   straight through the account store, many at once, not 10,000 imports
//   or HTTP calls), and a management-API client.
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createServices } from '../../src/services.ts';
import type { ImportDocument } from '../../src/import/index.ts';
import { REDIRECT_URI } from '../../test/support/latchkey.ts';
import { PASSWORD } from '../lib/seed.ts';
import { runPool } from '../lib/pool.ts';
import type { PathUser } from './journey.ts';

export const PATHS_CLIENT = { id: 'bench-paths-app', secret: 'bench-paths-secret-0b7e3c9a1f5d2e8b4a6c' };
export const API_CLIENT = { id: 'bench-provisioner', secret: 'bench-provisioner-secret-5c2e8a1f9d3b7e0a4c6f' };
export const API_SCOPES: ('latchkey:logins.read' | 'latchkey:logins.write')[] = ['latchkey:logins.read', 'latchkey:logins.write'];
export const PEOPLE_TENANT = 'people';
export const PEOPLE_OWNER = { email: 'owner@people.bench.test', loginId: 'people-owner' };
/** The people's user types, by share of the logins. */
export const PEOPLE_TYPES = [
  { id: 'staff', name: 'Staff', share: 0.7 },
  { id: 'manager', name: 'Manager', share: 0.2 },
  { id: 'contractor', name: 'Contractor', share: 0.1 },
] as const;

const FIRST = ['Anna', 'Bram', 'Carla', 'Daan', 'Eva', 'Finn', 'Greta', 'Hugo', 'Iris', 'Jens', 'Kim', 'Lars', 'Maud', 'Noah', 'Olga', 'Pim', 'Quinn', 'Rosa', 'Sem', 'Tess'];
const LAST = Array.from({ length: 500 }, (_, i) => `Family${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(97 + (Math.floor(i / 26) % 26))}${i}`);

export interface PeoplePerson {
  firstName: string;
  lastName: string;
  email: string;
  userType: string;
  disabled: boolean;
}

/** Person `i` of the people tenant: 20 first names × 500 last names, so a last name is shared by 20 logins (less than a page). */
export function person(i: number): PeoplePerson {
  const firstName = FIRST[i % FIRST.length]!;
  const lastName = LAST[Math.floor(i / FIRST.length) % LAST.length]!;
  const bucket = (i * 7) % 10;
  const userType = bucket < 7 ? 'staff' : bucket < 9 ? 'manager' : 'contractor';
  return { firstName, lastName, email: `${firstName}.${lastName}.${i}@people.bench.test`.toLowerCase(), userType, disabled: i % 50 === 49 };
}

export interface PathPlan {
  passkey: PathUser[];
  recovery: PathUser[];
  /** Logins of the people tenant besides its owner. */
  people: number;
  /** Whether this checkout's registry offers passkeys (a user type may ask for them). */
  passkeys: boolean;
}

export function pathPlan(sizes: { passkey: number; recovery: number; people: number }, factors: string[]): PathPlan {
  const users = (kind: string, n: number) => Array.from({ length: n }, (_, i) => ({ email: `${kind}-${i}@paths.bench.test`, loginId: `${kind}-${i}` }));
  const passkeys = factors.includes('passkey');
  return { passkey: passkeys ? users('pk', sizes.passkey) : [], recovery: factors.includes('totp') ? users('rc', sizes.recovery) : [], people: sizes.people, passkeys };
}

/** `doc` with the paths' identities and tenants added (the people's 10,000 logins come later, from `seedPeople`). */
export function withPaths(doc: ImportDocument, plan: PathPlan): ImportDocument {
  const users = [...plan.passkey, ...plan.recovery];
  const types = [
    ...(plan.passkey.length ? [{ id: 'passkey', name: 'Passkey', secondFactor: 'passkey' }] : []),
    ...(plan.recovery.length ? [{ id: 'app', name: 'App', secondFactor: 'totp' }] : []),
  ];
  return {
    identities: [...(doc.identities ?? []), ...users.map((u) => ({ email: u.email, password: PASSWORD })), { email: PEOPLE_OWNER.email, password: PASSWORD }],
    tenants: [
      ...(doc.tenants ?? []),
      ...(types.length
        ? [
            {
              id: 'paths',
              name: 'Bench Paths',
              userTypes: types,
              logins: users.map((u) => ({ id: u.loginId, email: u.email, userType: u.loginId.startsWith('pk-') ? 'passkey' : 'app', firstName: 'Path', lastName: u.loginId })),
              clients: [
                {
                  client_id: PATHS_CLIENT.id,
                  client_secret: PATHS_CLIENT.secret,
                  redirect_uris: [REDIRECT_URI],
                  grant_types: ['authorization_code', 'refresh_token'] as ('authorization_code' | 'refresh_token')[],
                  first_party: true,
                },
              ],
            },
          ]
        : []),
      {
        id: PEOPLE_TENANT,
        name: 'Bench People',
        owner: PEOPLE_OWNER.loginId,
        userTypes: [{ id: 'owner', name: 'Owner', secondFactor: 'none' }, ...PEOPLE_TYPES.map((t) => ({ id: t.id, name: t.name, secondFactor: 'none' }))],
        logins: [{ id: PEOPLE_OWNER.loginId, email: PEOPLE_OWNER.email, userType: 'owner', firstName: 'Owen', lastName: 'Owner' }],
        clients: [{ client_id: API_CLIENT.id, client_secret: API_CLIENT.secret, grant_types: ['client_credentials'] as 'client_credentials'[], api_scopes: API_SCOPES }],
      },
    ],
  };
}

const silent = createLogger('silent');

/**
 * Writes `count` logins (each with an identity of its own, no password) into
 * the people tenant through the account store of `env`, before the server
 * starts. Returns how long it took.
 */
export async function seedPeople(env: Record<string, string>, count: number): Promise<number> {
  const started = performance.now();
  const services = await createServices(loadConfig(env), silent, { workers: false });
  try {
    const accounts = services.stores.accounts;
    await runPool(count, 8, async (_w, i) => {
      const p = person(i);
      await accounts.upsertIdentity({ email: p.email });
      await accounts.upsertLogin({ id: `people-${i}`, tenant: PEOPLE_TENANT, ...p });
    });
  } finally {
    await services.close();
  }
  return performance.now() - started;
}
