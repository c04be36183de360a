/**
 * The "bare oidc-provider" of the token-endpoint comparison (docs/performance.md):
 * oidc-provider alone, with the same adapter backend as Latchkey
 * (createSqliteAdapterBackend / createRedisAdapterBackend), the same keys
 * (loadConfig over the same DATA_DIR / LATCHKEY_JWKS), the same provider
 * settings that touch the token endpoint (features, claims, TTLs, refresh-token
 * policy), one static client and a findAccount returning a fixed account.
 *
 * Everything Latchkey adds around oidc-provider is absent: its Koa app and
 * middleware, clients read from the account store, accounts read from the store.
 *
 * It also answers a whole authorization-code flow without a password: its one
 * interaction (`/interaction/:uid`) finishes the login for the fixed account at
 * once and the grant is made as Latchkey makes it for a first-party client. The
 * bench measures that flow to tell oidc-provider's own share of a sign-in.
 *
 * Environment: PORT, ISSUER, DATA_DIR (keys) — plus REDIS_URL/REDIS_PREFIX for
 * the Redis adapter, else BARE_SQLITE_DIR for the SQLite adapter;
 * BENCH_CLIENT (the client's metadata as JSON); BARE_REFRESH_TOKENS (how many
 * refresh tokens to mint at start). Prints one line
 * `{"bareReady":true,"refreshTokens":[…]}` when it listens; stops on SIGTERM.
 */
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider, { type Configuration } from 'oidc-provider';
import { Redis } from 'ioredis';
import { loadConfig } from '../config/index.ts';
import { openSqlite } from '../src/storage/index.ts';
import { createSqliteAdapterBackend } from '../src/storage/adapter/sqlite/index.ts';
import { createRedisAdapterBackend } from '../src/storage/adapter/redis/index.ts';
import { forProvider } from '../src/storage/adapter/port.ts';
import { builtInFactors } from '../src/factors/registry.ts';
import { AMR } from '../src/provider/acr.ts';
import { CLAIMS } from '../src/provider/index.ts';

const SCOPE = 'openid email profile offline_access';
const ACCOUNT = { id: 'bare-account', email: 'bare@bench.test', firstName: 'Bare', lastName: 'Account', tenant: 'bench', userType: 'pwd' };

async function main() {
  const env = process.env;
  const config = loadConfig(env);
  const client = JSON.parse(env.BENCH_CLIENT ?? '') as Record<string, unknown> & { client_id: string };
  const mint = Number(env.BARE_REFRESH_TOKENS ?? '4');

  let redis: Redis | null = null;
  let sqlite: ReturnType<typeof openSqlite> | null = null;
  let backend;
  if (config.redisUrl) {
    redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true });
    await redis.connect();
    backend = createRedisAdapterBackend(redis, { prefix: config.redisPrefix });
  } else {
    sqlite = openSqlite(env.BARE_SQLITE_DIR ?? config.dataDir);
    backend = createSqliteAdapterBackend(sqlite);
  }

  const configuration: Configuration = {
    adapter: (name: string) => forProvider(backend.factory(name)),
    clients: [client as unknown as NonNullable<Configuration['clients']>[number]],
    acrValues: builtInFactors.acrValues(),
    claims: CLAIMS,
    conformIdTokenClaims: false,
    cookies: {
      keys: config.keys.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    jwks: config.keys.jwks as unknown as Configuration['jwks'],
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      clientCredentials: { enabled: true },
      userinfo: { enabled: true },
    },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    issueRefreshToken: async (_ctx, c) => c.grantTypeAllowed('refresh_token'),
    // As Latchkey: every refresh consumes its token and issues the next.
    rotateRefreshToken: true,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope(String(ctx.oidc.params!.scope ?? 'openid'));
      await grant.save();
      return grant;
    },
    findAccount: async (_ctx, sub) =>
      sub === ACCOUNT.id
        ? {
            accountId: ACCOUNT.id,
            claims: async () => ({
              sub: ACCOUNT.id,
              email: ACCOUNT.email,
              email_verified: true,
              name: `${ACCOUNT.firstName} ${ACCOUNT.lastName}`,
              given_name: ACCOUNT.firstName,
              family_name: ACCOUNT.lastName,
              tenant: ACCOUNT.tenant,
              user_type: ACCOUNT.userType,
            }),
          }
        : undefined,
    ttl: {
      Interaction: config.ttl.interaction,
      Session: config.ttl.session,
      AuthorizationCode: config.ttl.authorizationCode,
      AccessToken: config.ttl.accessToken,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      Grant: config.ttl.grant,
      ClientCredentials: config.ttl.clientCredentials,
    },
    clientBasedCORS: () => false,
  };
  const provider = new Provider(config.issuer, configuration);
  // The interaction: no page, no password — the login is finished at once.
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) return next();
    const returnTo = await provider.interactionResult(
      ctx.req,
      ctx.res,
      { login: { accountId: ACCOUNT.id, amr: [AMR.password], acr: builtInFactors.info('none').acr, remember: true } },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    ctx.redirect(returnTo);
  });

  // Refresh tokens as the code exchange of a password sign-in would leave them
  // (one grant each, the same scope, acr/amr/auth_time, session ids).
  const registered = await provider.Client.find(client.client_id);
  if (!registered) throw new Error('the static client did not load');
  const refreshTokens: string[] = [];
  for (let i = 0; i < mint; i++) {
    const grant = new provider.Grant({ accountId: ACCOUNT.id, clientId: client.client_id });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: ACCOUNT.id,
      acr: builtInFactors.info('none').acr,
      amr: [AMR.password],
      authTime: Math.floor(Date.now() / 1000),
      client: registered,
      expiresWithSession: false,
      grantId,
      gty: 'authorization_code',
      rotations: 0,
      scope: SCOPE,
      sessionUid: randomBytes(16).toString('base64url'),
      sid: randomBytes(16).toString('base64url'),
    });
    refreshTokens.push(await token.save());
  }

  const server = createServer(provider.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, '127.0.0.1', () => resolve());
  });
  console.log(JSON.stringify({ bareReady: true, refreshTokens }));

  const stop = () => {
    server.close(() => {
      void backend.close().then(async () => {
        if (redis) await redis.quit().catch(() => redis!.disconnect());
        sqlite?.close();
        process.exit(0);
      });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
