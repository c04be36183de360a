/**
 * Ory Hydra v2.3.0 as a peer in the bench (`BENCH_PEERS=hydra`; method and figures in
 * docs/performance.md, section "Hydra"). This module starts one Hydra — on PostgreSQL (the
 * machine's server, a database of its own) or on its SQLite build — configures it like Latchkey's
 * bench client, and mints refresh tokens through real login and consent flows.
 *
 * Two variants:
 *  - `defaults`: Hydra as shipped — PBKDF2-SHA256 with 25,000 iterations for client secrets and
 *    the RSA-4096 signing key it generates itself;
 *  - `like`: like for like with Latchkey — Hydra's cheapest client-secret hasher (PBKDF2 with one
 *    iteration; Latchkey keeps a keyed SHA-256 of the secret) and Latchkey's own RSA-2048 key,
 *    imported into Hydra's ID-token key set.
 * Both rotate refresh tokens on every use (Hydra's default; Latchkey's too) and log at `warn`.
 *
 * The binary is built on first use by scripts/hydra.mjs; only loopback addresses are used.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureHydra, hydraVersion } from '../scripts/hydra.mjs';
import { freePort } from './lib/processes.ts';
import { CLIENT_ID, CLIENT_SECRET } from './lib/seed.ts';

export type HydraStore = 'postgres' | 'sqlite';
export type HydraVariant = 'defaults' | 'like';

export { hydraVersion };

/** Where Hydra's PostgreSQL is: HYDRA_PG (a libpq URL without a database), else the local server as `postgres`. */
const PG_URL = process.env.HYDRA_PG ?? 'postgres://postgres@127.0.0.1:5432';
/** A fixed pool, so that the backends serving Hydra stay the same processes the bench reads /proc of. */
const PG_POOL = 'max_conns=4&max_idle_conns=4&max_conn_lifetime=0&max_conn_idle_time=0';
const SCOPE = 'openid offline_access email profile';
export const HYDRA_TOKEN_PATH = '/oauth2/token';
/** Never fetched: Hydra redirects the browser there, and the bench reads the challenge off the Location. */
const LOGIN_URL = 'http://127.0.0.1:9/login';
const CONSENT_URL = 'http://127.0.0.1:9/consent';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
/** The claims Latchkey puts into the bench logins' ID tokens, so that both sign the same amount. */
const ID_TOKEN_CLAIMS = { email: 'hydra@bench.test', email_verified: true, name: 'Bench Hydra', given_name: 'Bench', family_name: 'Hydra', tenant: 'bench', user_type: 'pwd' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface HydraServer {
  store: HydraStore;
  variant: HydraVariant;
  pid: number;
  /** The public issuer (token endpoint `${issuer}/oauth2/token`). */
  issuer: string;
  tokenEndpoint: string;
  admin: string;
  /** The database the PostgreSQL store uses (null on SQLite). */
  database: string | null;
  /** Last lines Hydra wrote, for errors. */
  output(): string;
  stop(): Promise<void>;
}

function psql(sql: string, database = 'postgres'): string {
  return execFileSync('psql', [`${PG_URL}/${database}`, '-v', 'ON_ERROR_STOP=1', '-Atqc', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** True when the PostgreSQL server Hydra would use answers (psql present, server up). */
export function postgresAvailable(): { ok: true } | { ok: false; why: string } {
  try {
    psql('SELECT 1');
    return { ok: true };
  } catch (err) {
    return { ok: false, why: `psql ${PG_URL}: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** The pids of the PostgreSQL backends connected to `database` (this query's own excluded). */
export function postgresBackends(database: string): number[] {
  const out = psql(`SELECT pid FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid() AND backend_type = 'client backend'`);
  return out ? out.split('\n').map(Number) : [];
}

/**
 * The server's own processes that are not backends (postmaster, WAL writer, background writer,
 * checkpointer …): they flush what Hydra's transactions write, so their CPU is Hydra's too while
 * nothing else uses the server.
 */
export function postgresAuxiliaries(): number[] {
  const out = psql(`SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'`);
  const pids = out ? out.split('\n').map(Number) : [];
  // The postmaster is no row of pg_stat_activity: it is its children's parent.
  const postmaster = pids.length ? parentPid(pids[0]!) : null;
  return postmaster ? [postmaster, ...pids] : pids;
}

function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) || null;
  } catch {
    return null;
  }
}

/** `VACUUM ANALYZE` of Hydra's database: autovacuum may be off, and the tables grow by thousands of rows a phase. */
export function vacuum(server: HydraServer): void {
  if (server.database) psql('VACUUM ANALYZE', server.database);
}

interface StartOptions {
  store: HydraStore;
  variant: HydraVariant;
  /** Latchkey's RSA signing key (a private JWK), imported for the `like` variant. */
  rsaKey: Record<string, unknown>;
}

/** Starts Hydra (migrating a fresh database first), registers the bench client and, for `like`, imports the key. */
export async function startHydra(opts: StartOptions): Promise<HydraServer> {
  const binary = ensureHydra();
  const dir = mkdtempSync(join(tmpdir(), 'lk-bench-hydra-'));
  const [publicPort, adminPort] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${publicPort}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  let database: string | null = null;
  let dsn: string;
  if (opts.store === 'postgres') {
    database = `lk_bench_hydra_${randomBytes(4).toString('hex')}`;
    psql(`CREATE DATABASE ${database}`);
    dsn = `${PG_URL}/${database}?sslmode=disable&${PG_POOL}`;
  } else {
    // WAL and synchronous=NORMAL, as Latchkey opens its own SQLite file; foreign keys as Hydra requires.
    dsn = `sqlite://${join(dir, 'hydra.sqlite')}?_fk=true&_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000`;
  }
  const config = {
    dsn,
    log: { level: 'warn', leak_sensitive_values: false },
    serve: { public: { host: '127.0.0.1', port: publicPort }, admin: { host: '127.0.0.1', port: adminPort } },
    urls: { self: { issuer }, login: LOGIN_URL, consent: CONSENT_URL, error: `${LOGIN_URL}/error` },
    secrets: { system: [randomBytes(24).toString('hex')] },
    sqa: { opt_out: true },
    oauth2: { hashers: opts.variant === 'like' ? { algorithm: 'pbkdf2', pbkdf2: { iterations: 1 } } : { algorithm: 'pbkdf2' } },
  };
  const configFile = join(dir, 'hydra.json');
  writeFileSync(configFile, JSON.stringify(config));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TMPDIR: tmpdir() };
  execFileSync(binary, ['migrate', 'sql', 'up', '--read-from-env', '--yes', '--config', configFile], { env: { ...env, DSN: dsn }, stdio: ['ignore', 'pipe', 'pipe'] });

  const proc = spawn(binary, ['serve', 'all', '--dev', '--sqa-opt-out', '--config', configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error('hydra did not start');
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 60) lines.shift();
  };
  createInterface({ input: proc.stdout! }).on('line', keep);
  createInterface({ input: proc.stderr! }).on('line', keep);
  const pid = proc.pid;
  const server: HydraServer = {
    store: opts.store,
    variant: opts.variant,
    pid,
    issuer,
    tokenEndpoint: `${issuer}${HYDRA_TOKEN_PATH}`,
    admin,
    database,
    output: () => lines.join('\n'),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((r) => proc.once('exit', () => r()));
        process.kill(pid, 'SIGTERM');
        const timer = setTimeout(() => proc.exitCode === null && proc.signalCode === null && process.kill(pid, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (database) {
        try {
          psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        } catch {
          // left behind: named lk_bench_hydra_*, safe to drop by hand
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitReady(`${admin}/health/ready`, proc, server);
    await adminCall(server, 'POST', '/admin/clients', {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      client_name: 'Bench App',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      scope: SCOPE,
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    if (opts.variant === 'like') {
      const { kty, n, e, d, p, q, dp, dq, qi, kid } = opts.rsaKey;
      if (kty !== 'RSA') throw new Error('Latchkey has no RSA signing key to give Hydra');
      // Replaces the set Hydra generated at start: ID tokens are then signed with Latchkey's key.
      await adminCall(server, 'PUT', '/admin/keys/hydra.openid.id-token', { keys: [{ kty, n, e, d, p, q, dp, dq, qi, kid, alg: 'RS256', use: 'sig' }] });
    }
    return server;
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function waitReady(url: string, proc: ReturnType<typeof spawn>, server: HydraServer, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`hydra exited (${proc.exitCode}):\n${server.output()}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`hydra did not answer ${url} within ${timeoutMs} ms:\n${server.output()}`);
}

async function adminCall(server: HydraServer, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.admin}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`hydra admin ${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/**
 * One authorization-code flow through Hydra, as a browser and a login/consent app would make it:
 * the browser follows Hydra's redirects with its cookies; where Hydra sends it to the login or the
 * consent page, the bench plays that app (accepts the challenge through the admin API with the
 * bench login's subject and claims) and follows the `redirect_to` it gets back. Ends with the code
 * exchange (PKCE, client_secret_basic); returns the refresh token and the `kid` the ID token was
 * signed with. Set-up: not measured.
 */
export async function hydraRefreshToken(server: HydraServer, subject: string): Promise<{ refreshToken: string; idTokenKid: string }> {
  const jar = new Map<string, string>();
  const verifier = randomBytes(32).toString('base64url');
  const query = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    scope: SCOPE,
    redirect_uri: REDIRECT_URI,
    state: randomBytes(12).toString('base64url'),
    nonce: randomBytes(12).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  let url = `${server.issuer}/oauth2/auth?${query}`;
  let code: string | null = null;
  for (let hop = 0; hop < 12 && !code; hop++) {
    const res = await fetch(url, { redirect: 'manual', headers: jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {} });
    await res.arrayBuffer();
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair!.indexOf('=');
      jar.set(pair!.slice(0, at).trim(), pair!.slice(at + 1).trim());
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) throw new Error(`hydra flow: ${res.status} at ${url}`);
    const next = new URL(location, url);
    if (location.startsWith(LOGIN_URL)) {
      const challenge = next.searchParams.get('login_challenge')!;
      const accepted = await adminCall(server, 'PUT', `/admin/oauth2/auth/requests/login/accept?login_challenge=${encodeURIComponent(challenge)}`, {
        subject,
        remember: false,
        acr: 'pwd',
        amr: ['pwd'],
      });
      url = String(accepted.redirect_to);
    } else if (location.startsWith(CONSENT_URL)) {
      const challenge = next.searchParams.get('consent_challenge')!;
      const request = await adminCall(server, 'GET', `/admin/oauth2/auth/requests/consent?consent_challenge=${encodeURIComponent(challenge)}`);
      const accepted = await adminCall(server, 'PUT', `/admin/oauth2/auth/requests/consent/accept?consent_challenge=${encodeURIComponent(challenge)}`, {
        grant_scope: request.requested_scope,
        grant_access_token_audience: request.requested_access_token_audience,
        remember: false,
        session: { id_token: ID_TOKEN_CLAIMS },
      });
      url = String(accepted.redirect_to);
    } else if (location.startsWith(REDIRECT_URI)) {
      code = next.searchParams.get('code');
      if (!code) throw new Error(`hydra flow ended without a code: ${location}`);
    } else {
      url = next.href;
    }
  }
  if (!code) throw new Error('hydra flow: too many redirects');
  const res = await fetch(server.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200 || typeof json.refresh_token !== 'string' || typeof json.id_token !== 'string')
    throw new Error(`hydra code exchange: ${res.status} ${JSON.stringify(json)}`);
  const header = JSON.parse(Buffer.from(json.id_token.split('.')[0]!, 'base64url').toString('utf8')) as { kid?: string };
  return { refreshToken: json.refresh_token, idTokenKid: String(header.kid) };
}
