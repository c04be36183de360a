/**
 * The composition root: stores → services → provider → Koa app.
 */
import type { Server } from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type { Config } from '../config/index.ts';
import { createLogger, type Logger } from './log.ts';
import { createServices, routeDeps, type Services } from './services.ts';
import { factorCatalogue, type ExtraFactors } from './factors/registry.ts';
import { interactionRouter } from './interaction/router.ts';
import { createUpstreamClient } from './upstream/client.ts';
import { upstreamCallbackRouter, upstreamSignIn } from './upstream/routes.ts';
import { startRouter } from './web/start.ts';
import { accountRouter } from './account/router.ts';
import { errorHandler, storeGuard } from './web/errors.ts';
import { formBodiesOnly, requireHttps, securityHeaders } from './web/security.ts';
import { forwardedFor, issuerHost } from './web/proxy.ts';
import { languages } from './web/language.ts';
import { signedInHeader } from './web/signed-in.ts';
import { assetRouter } from './web/assets.ts';
import { passkeySignIn } from './factors/passkey/signin.ts';
import { webauthnOf } from './factors/passkey/index.ts';
import { forgotPassword, linkRouter } from './recovery/routes.ts';
import { makeDemoClientPublic, seedDemo } from './demo.ts';
import { hashPlainClientSecrets } from './provider/clients.ts';
import { createClientSecrets } from './crypto/client-secret.ts';
import { scimRouter } from './scim/router.ts';
import { apiMiddleware } from './api/router.ts';
import { inRequestScope } from './storage/accounts/request-memo.ts';

export interface Latchkey extends Services {
  app: Koa;
  /** Starts listening on `config.port` (0 picks a free port). */
  listen(port?: number): Promise<Server>;
  /** Stops accepting, waits for requests in flight, closes the stores. */
  close(): Promise<void>;
}

/** Form bodies are small; anything larger is refused before it is read. */
const FORM_LIMIT = '64kb';

const SHUTDOWN_GRACE_MS = 10_000;

/** oidc-provider's endpoints that answer machines (JSON), never a page; see `createProvider`'s defaults. */
const PROVIDER_API = new Set(['/token', '/token/introspection', '/token/revocation', '/me', '/jwks', '/.well-known/openid-configuration']);

/** What a test may replace. */
export interface LatchkeyOptions {
  /**
   * The clock (epoch milliseconds) of every security decision: sign-in times and cut-offs, locks and
   * freezes, TOTP steps, link and session ages, mail retries, the audit; default `Date.now`. oidc-provider's
   * own token times (`iat`, `exp`) keep the system clock: it offers no way to replace it.
   */
  now?: () => number;
  /** Factors beside the built-in ones (`createServices`). */
  factors?: ExtraFactors;
}

export async function createLatchkey(config: Config, log?: Logger, { now = Date.now, factors }: LatchkeyOptions = {}): Promise<Latchkey> {
  log ??= createLogger(config.logLevel, factorCatalogue(factors).fields());
  if (config.keys.development) log.warn({ dataDir: config.dataDir }, 'using development keys from DATA_DIR/dev-keys.json; set LATCHKEY_* keys for production');
  const services = await createServices(config, log, { now, ...(factors ? { factors } : {}) });
  const { stores, hasher, provider } = services;

  const hashed = await hashPlainClientSecrets(stores.accounts, createClientSecrets(config.keys.pepper));
  if (hashed) log.info({ clients: hashed }, 'client secrets stored in plain text are now stored hashed');

  if (config.demo && (await stores.accounts.isEmpty())) {
    await seedDemo(stores.accounts, hasher, config);
    log.info(`empty store: created the demo tenant; open ${config.issuer}/ to try a sign-in`);
  } else if (config.demo) {
    await makeDemoClientPublic(stores.accounts);
  }

  const behindProxy = config.trustProxy !== false;
  // Behind trusted proxies `forwardedFor` leaves one X-Forwarded-For address, the client's.
  const app = new Koa({ proxy: behindProxy, maxIpsCount: 1 });
  app.silent = true;
  app.keys = config.keys.cookieKeys;
  app.use(issuerHost(config.issuer));
  // Each request reads a client, tenant or login once, however many steps ask (src/storage/accounts/request-memo.ts).
  app.use((_ctx, next) => inRequestScope(next));
  if (config.trustProxy !== false) app.use(forwardedFor(config.trustProxy));
  app.use(errorHandler(log, stores.unavailableStore));
  app.use(securityHeaders);
  if (config.issuer.startsWith('https:')) app.use(requireHttps(config.issuer));
  // SCIM answers programs, in SCIM JSON (a store outage too), before the pages' form-only body parsing.
  const scim = scimRouter({ ...routeDeps(services), scim: stores.scim, tokens: services.scimTokens });
  app.use(scim.routes());
  app.use(storeGuard(stores.down));
  // The provider's machine-to-machine endpoints render no page and are none of our routes:
  // straight to the provider (the token endpoint is the busiest path there is).
  const providerCallback = provider.callback();
  const toProvider = async (ctx: Koa.Context) => {
    ctx.respond = false;
    await providerCallback(ctx.req, ctx.res);
  };
  app.use((ctx, next) => (PROVIDER_API.has(ctx.path) ? toProvider(ctx) : next()));
  const deps = routeDeps(services);
  // The management API (`/api/v1`): JSON and problems only, before the pages' language and form handling.
  app.use(apiMiddleware(deps));
  app.use(languages({ secure: config.issuer.startsWith('https:') }));

  const forms = new Router();
  forms.use(formBodiesOnly, bodyParser({ enableTypes: ['form'], formLimit: FORM_LIMIT, encoding: 'utf-8' }));
  forms.use(signedInHeader(deps));
  const upstreams = upstreamSignIn({ ...deps, client: createUpstreamClient({ config, log, egress: services.egress }) });
  const interaction = interactionRouter(deps, [upstreams, forgotPassword(deps), passkeySignIn({ ...deps, webauthn: webauthnOf(deps) })]);
  forms.use(interaction.routes(), interaction.allowedMethods());
  const oneTimeLinks = linkRouter(deps);
  forms.use(oneTimeLinks.routes(), oneTimeLinks.allowedMethods());
  const upstreamCallback = upstreamCallbackRouter(deps);
  forms.use(upstreamCallback.routes(), upstreamCallback.allowedMethods());
  const account = accountRouter(deps);
  forms.use(account.routes(), account.allowedMethods());
  const start = startRouter(deps);
  forms.use(start.routes(), start.allowedMethods());

  const assets = assetRouter();
  forms.use(assets.routes());
  forms.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  forms.get('/readyz', async (ctx) => {
    const stores_ = await stores.check();
    const ok = stores_.every((s) => s.ok);
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ready' : 'unavailable', stores: stores_.map(({ store, ok: up }) => ({ store, ok: up })) };
  });
  app.use(forms.routes());
  app.use(forms.allowedMethods());

  app.use(toProvider);

  let server: Server | null = null;
  return {
    ...services,
    app,
    listen(port = config.port) {
      return new Promise((resolve, reject) => {
        const s = app.listen(port, '0.0.0.0');
        s.once('listening', () => {
          server = s;
          resolve(s);
        });
        s.once('error', reject);
      });
    },
    async close() {
      if (server) {
        const s = server;
        // Stop accepting; let requests in flight finish; close keep-alive
        // connections as they fall idle; cut the rest after a grace period.
        await new Promise<void>((resolve) => {
          const idle = setInterval(() => s.closeIdleConnections(), 50);
          const grace = setTimeout(() => s.closeAllConnections(), SHUTDOWN_GRACE_MS);
          s.close(() => {
            clearInterval(idle);
            clearTimeout(grace);
            resolve();
          });
          s.closeIdleConnections();
        });
      }
      await services.close();
    },
  };
}
