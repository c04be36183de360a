// Token-endpoint requests as a confidential client (client_secret_basic):
// plain fetch, so the load generator stays light and is identical for
// Latchkey and the bare provider. Every response is checked.
import { CLIENT_ID, CLIENT_SECRET } from './seed.ts';

const basic = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`;

export type Grant = 'refresh_token' | 'client_credentials';

/** One grant; resolves with its latency in ms, rejects on anything but a 200 with the expected tokens. */
export async function tokenRequest(issuer: string, grant: Grant, refreshToken?: string): Promise<number> {
  const body = new URLSearchParams({ grant_type: grant });
  if (grant === 'refresh_token') body.set('refresh_token', refreshToken!);
  const started = performance.now();
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
  });
  const json = (await res.json()) as Record<string, unknown>;
  const ms = performance.now() - started;
  if (res.status !== 200 || typeof json.access_token !== 'string') throw new Error(`${grant} at ${issuer}: ${res.status} ${JSON.stringify(json)}`);
  if (grant === 'refresh_token' && typeof json.id_token !== 'string') throw new Error(`${grant} at ${issuer}: no id_token in ${JSON.stringify(json)}`);
  return ms;
}
