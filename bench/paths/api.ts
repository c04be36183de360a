// The management API's two busiest calls (docs/api.md): listing one page of
// 50 logins (half of them with a `q` filter) and adding a login with a new
// email (an identity, the login, `login.added`, an invitation queued). Shared
// by `npm run bench` (its `api` phase) and `npm run bench:api`.
import { randomBytes } from 'node:crypto';
import { API_CLIENT, API_SCOPES } from './seed.ts';

export interface ApiCalls {
  list: (worker: number, index: number) => Promise<number>;
  create: (worker: number, index: number) => Promise<number>;
}

/** A client-credentials token of the bench's provisioning client, with both scopes. */
export async function apiToken(issuer: string, client = API_CLIENT): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: API_SCOPES.join(' ') }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`the API client's token request answered ${res.status}: ${JSON.stringify(body)}`);
  return body.access_token;
}

/**
 * The two calls, each resolving with its latency (ms) and throwing on any
 * answer but the expected one. `q`: the list's filter on every other call;
 * `userType`: the new logins' type.
 */
export function apiCalls(issuer: string, token: string, opts: { q: string; userType: string }): ApiCalls {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const run = randomBytes(3).toString('hex');
  let added = 0;
  return {
    async create() {
      const n = added++;
      const started = performance.now();
      const res = await fetch(`${issuer}/api/v1/logins`, {
        method: 'POST',
        headers: { ...headers, 'idempotency-key': `bench-${run}-${n}` },
        body: JSON.stringify({ email: `new-${run}-${n}@bench.test`, firstName: 'Bench', lastName: `Person ${n}`, userType: opts.userType }),
      });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`API create answered ${res.status}`);
      return performance.now() - started;
    },
    async list(_w, i) {
      const started = performance.now();
      const res = await fetch(`${issuer}/api/v1/logins?limit=50${i % 2 ? `&q=${encodeURIComponent(opts.q)}` : ''}`, { headers });
      const body = (await res.json()) as { items?: unknown[] };
      if (res.status !== 200 || !Array.isArray(body.items) || !body.items.length) throw new Error(`API list answered ${res.status} with ${body.items?.length ?? 'no'} logins`);
      return performance.now() - started;
    },
  };
}
