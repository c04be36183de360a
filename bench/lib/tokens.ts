// Token-endpoint requests as a confidential client (client_secret_basic):
// plain fetch, so the load generator stays light and is identical for
// Latchkey and the bare provider. Every response is checked.
import { CLIENT_ID, CLIENT_SECRET } from './seed.ts';

const basic = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`;

export type Grant = 'refresh_token' | 'client_credentials';

/**
 * Refresh tokens rotate on every use (each is consumed once): a chain holds
 * the latest token of one grant and serves one request at a time, since a
 * second use of a spent token revokes the grant.
 */
export class RefreshChains {
  private readonly free: { token: string }[];
  private readonly waiting: ((chain: { token: string }) => void)[] = [];

  constructor(tokens: string[]) {
    this.free = tokens.map((token) => ({ token }));
  }

  async use<T>(fn: (chain: { token: string }) => Promise<T>): Promise<T> {
    const chain = this.free.pop() ?? (await new Promise<{ token: string }>((resolve) => this.waiting.push(resolve)));
    try {
      return await fn(chain);
    } finally {
      const next = this.waiting.shift();
      if (next) next(chain);
      else this.free.push(chain);
    }
  }
}

/**
 * One grant; resolves with its latency in ms, rejects on anything but a 200 with the expected tokens.
 * `tokenPath`: where the issuer's token endpoint is (Hydra, the bench's peer, has it at /oauth2/token).
 */
export async function tokenRequest(issuer: string, grant: Grant, chains?: RefreshChains, tokenPath = '/token'): Promise<number> {
  if (grant === 'refresh_token') return chains!.use((chain) => send(issuer, tokenPath, grant, chain));
  return send(issuer, tokenPath, grant);
}

async function send(issuer: string, tokenPath: string, grant: Grant, chain?: { token: string }): Promise<number> {
  const body = new URLSearchParams({ grant_type: grant });
  if (chain) body.set('refresh_token', chain.token);
  const started = performance.now();
  const res = await fetch(`${issuer}${tokenPath}`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
  });
  const json = (await res.json()) as Record<string, unknown>;
  const ms = performance.now() - started;
  if (res.status !== 200 || typeof json.access_token !== 'string') throw new Error(`${grant} at ${issuer}: ${res.status} ${JSON.stringify(json)}`);
  if (grant === 'refresh_token' && typeof json.id_token !== 'string') throw new Error(`${grant} at ${issuer}: no id_token in ${JSON.stringify(json)}`);
  if (chain && typeof json.refresh_token === 'string') chain.token = json.refresh_token;
  return ms;
}
