// What the new paths need in the stores, beside bench/lib/seed.ts's tenant:
// - tenant `paths`: passkey logins and app (TOTP) logins with recovery codes,
//   and a first-party client of its own (an app's tenant is its client's);
// - tenant `people`: an owner, 10,000 logins for the Users page (written
//   straight into the store, not 10,000 imports
//   or HTTP calls) once the sign-in phases are done, and a management-API
//   client.
import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
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
const BATCH = 1_000;

/**
 * Writes `count` logins, each with an identity of its own and no password,
 * into the people tenant of `env`'s stores; returns how long it took (ms).
 * SQLite: through the account store. MongoDB: with `insertMany`, in the
 * store's document shapes (`upsertIdentity`, `createLogin`), because FerretDB
 * 1.24 looks an email up by scanning the collection — 10,000 upserts by email
 * take tens of minutes there. Either way the store is then asked to read
 * them back, so a change of its layout fails the bench instead of fooling it.
 */
export async function seedPeople(env: Record<string, string>, count: number): Promise<number> {
  const started = performance.now();
  const people = Array.from({ length: count }, (_, i) => ({ id: `people-${i}`, ...person(i) }));
  if (env.MONGODB_URI) {
    const client = await MongoClient.connect(env.MONGODB_URI);
    try {
      const db = client.db(env.MONGODB_DB);
      for (let i = 0; i < count; i += BATCH) {
        const batch = people.slice(i, i + BATCH);
        await db.collection('identities').insertMany(batch.map((p) => ({ _id: randomUUID(), email: p.email, passwordHash: null })) as never[], { ordered: false });
        await db.collection('logins').insertMany(
          batch.map((p) => ({
            _id: p.id,
            tenant: PEOPLE_TENANT,
            email: p.email,
            userType: p.userType,
            firstName: p.firstName,
            lastName: p.lastName,
            disabled: p.disabled,
            factors: {},
          })) as never[],
          {
            ordered: false,
          },
        );
      }
    } finally {
      await client.close();
    }
  }
  const services = await createServices(loadConfig(env), silent, { workers: false });
  try {
    const accounts = services.stores.accounts;
    if (!env.MONGODB_URI)
      await runPool(count, 4, async (_w, i) => {
        const { id, ...p } = people[i]!;
        await accounts.upsertIdentity({ email: p.email });
        if (!(await accounts.createLogin({ id, tenant: PEOPLE_TENANT, ...p }))) throw new Error(`login ${id} existed already`);
      });
    const { total } = await accounts.searchLogins({ tenant: PEOPLE_TENANT, limit: 1 });
    const last = people.at(-1);
    const read = last ? await accounts.getLogin(last.id) : null;
    const identity = last ? await accounts.findIdentityByEmail(last.email) : null;
    if (total !== count + 1 || (last && (read?.lastName !== last.lastName || read.disabled !== last.disabled || identity?.email !== last.email)))
      throw new Error(`seedPeople: the store reads back ${total} logins of the people tenant, expected ${count + 1} (and login ${last?.id} as written)`);
  } finally {
    await services.close();
  }
  return performance.now() - started;
}
