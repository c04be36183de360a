/**
 * The Redis adapter's cost per model, in process: CPU-ms of this process and of
 * redis-server (INFO's used_cpu_*) per sign-in's worth of adapter calls, for the
 * adapter given as a module path against this tree's, in alternating blocks.
 *
 *   node --import tsx bench/adapter-micro.ts /path/to/other/redis/index.ts [rounds]
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { withHashedIds } from '../src/storage/adapter/hashed-ids.ts';
import { createRedisAdapterBackend } from '../src/storage/adapter/redis/index.ts';
import type { AdapterBackend } from '../src/storage/adapter/port.ts';

const other = (await import(process.argv[2]!)) as { createRedisAdapterBackend: typeof createRedisAdapterBackend };
const rounds = Number(process.argv[3] ?? 6);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url);
// One client each: both define scripts under the same names.
const otherRedis = new Redis(url);
const key = randomBytes(32);
const tag = randomBytes(3).toString('hex');
const backends: Record<string, AdapterBackend> = {
  before: withHashedIds(other.createRedisAdapterBackend(otherRedis, { prefix: `b${tag}:` }), key),
  after: withHashedIds(createRedisAdapterBackend(redis, { prefix: `a${tag}:` }), key),
};
const id = () => randomBytes(32).toString('base64url');
const epoch = () => Math.floor(Date.now() / 1000);

// The adapter calls of one password sign-in (bench/round-trips.ts), with payloads of their real shape.
async function signIn(b: AdapterBackend) {
  const m = (name: string) => b.factory(name);
  const uid = id();
  const grantId = id();
  const interaction = id();
  const ip = {
    iat: epoch(),
    exp: epoch() + 3600,
    returnTo: 'https://idp.example/auth/x',
    prompt: { name: 'login', reasons: ['no_session'], details: {} },
    params: {
      client_id: 'bench-app',
      redirect_uri: 'https://rp.example/cb',
      response_type: 'code',
      scope: 'openid email profile offline_access',
      state: id(),
      code_challenge: id(),
      code_challenge_method: 'S256',
    },
    kind: 'Interaction',
    jti: interaction,
    uid,
    trusted: [],
  };
  await m('Interaction').upsert(interaction, ip, 3600);
  await m('Interaction').find(interaction);
  await m('Interaction').upsert(interaction, { ...ip, lastSubmission: { login: { accountId: 'password-0' } } }, 3600);
  await m('Interaction').find(interaction);
  await m('Interaction').upsert(interaction, { ...ip, result: { login: { accountId: 'password-0' } } }, 3600);
  await m('Interaction').find(interaction);
  const session = id();
  await m('Session').upsert(
    session,
    {
      iat: epoch(),
      exp: epoch() + 1209600,
      kind: 'Session',
      jti: session,
      uid,
      accountId: 'password-0',
      loginTs: epoch(),
      amr: ['pwd'],
      acr: 'urn:latchkey:acr:1fa',
      authorizations: { 'bench-app': { sid: id(), grantId, persistsLogout: true } },
    },
    1209600,
  );
  await m('Grant').upsert(
    grantId,
    {
      iat: epoch(),
      exp: epoch() + 1209600,
      clientId: 'bench-app',
      accountId: 'password-0',
      kind: 'Grant',
      jti: grantId,
      rejected: {},
      openid: { scope: 'openid email profile offline_access' },
    },
    1209600,
  );
  await m('Interaction').destroy(interaction);
  const code = id();
  const common = { accountId: 'password-0', grantId, sessionUid: uid, clientId: 'bench-app', scope: 'openid email profile offline_access' };
  await m('AuthorizationCode').upsert(
    code,
    {
      iat: epoch(),
      exp: epoch() + 60,
      ...common,
      acr: 'urn:latchkey:acr:1fa',
      amr: ['pwd'],
      authTime: epoch(),
      codeChallenge: id(),
      codeChallengeMethod: 'S256',
      redirectUri: 'https://rp.example/cb',
      kind: 'AuthorizationCode',
      jti: code,
    },
    60,
  );
  await m('AuthorizationCode').find(code);
  await m('Grant').find(grantId);
  await m('AuthorizationCode').consume(code);
  const at = id();
  await m('AccessToken').upsert(
    at,
    {
      iat: epoch(),
      exp: epoch() + 3600,
      ...common,
      gty: 'authorization_code',
      kind: 'AccessToken',
      jti: at,
      extra: { acr: 'urn:latchkey:acr:1fa', amr: ['pwd'], auth_time: epoch() },
    },
    3600,
  );
  const rt = id();
  await m('RefreshToken').upsert(
    rt,
    {
      iat: epoch(),
      exp: epoch() + 1209600,
      ...common,
      acr: 'urn:latchkey:acr:1fa',
      amr: ['pwd'],
      authTime: epoch(),
      gty: 'authorization_code',
      rotations: 0,
      kind: 'RefreshToken',
      jti: rt,
      iiat: epoch(),
    },
    1209600,
  );
  await m('Session').findByUid(uid);
}

async function redisCpu(): Promise<number> {
  const info = await redis.info('cpu');
  const v = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)![1]);
  return (v('used_cpu_sys') + v('used_cpu_user')) * 1000;
}

const N = 400;
const totals: Record<string, { app: number; redis: number; n: number }> = { before: { app: 0, redis: 0, n: 0 }, after: { app: 0, redis: 0, n: 0 } };
for (let i = 0; i < 50; i++) for (const b of Object.values(backends)) await signIn(b);
const order = ['before', 'after', 'after', 'before'];
for (let r = 0; r < rounds; r++) {
  for (const name of order) {
    const r0 = await redisCpu();
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) await signIn(backends[name]!);
    const t = process.cpuUsage(t0);
    const r1 = await redisCpu();
    totals[name]!.app += (t.user + t.system) / 1000;
    totals[name]!.redis += r1 - r0;
    totals[name]!.n += N;
  }
}
for (const [name, t] of Object.entries(totals))
  console.log(`${name}: app ${(t.app / t.n).toFixed(3)} CPU-ms, redis-server ${(t.redis / t.n).toFixed(3)} CPU-ms per sign-in's adapter calls (${t.n})`);
for (const p of [`b${tag}:*`, `a${tag}:*`]) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', p, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}
await redis.quit();
await otherRedis.quit();
