/**
 * The one composition of Latchkey's services: stores → hasher, mail,
 * webhooks, audit, limiter, known browsers, factors → provider. The server (`src/server.ts`)
 * puts the web app on top; the operator CLI and the test harnesses use the
 * same services, so a rule is never wired twice.
 */
import type Provider from 'oidc-provider';
import type { Config } from '../config/index.ts';
import type { Logger } from './log.ts';
import { createStores, type Stores } from './storage/index.ts';
import { createHasher, type Hasher } from './crypto/password.ts';
import { createAudit, type Audit } from './audit.ts';
import { createLimiter, type Limiter } from './limits.ts';
import { knownBrowserKey, knownBrowsers, type KnownBrowsers } from './known-browsers.ts';
import { createFactorRegistry, factorCatalogue, type ExtraFactors, type FactorRegistry } from './factors/registry.ts';
import { createProvider } from './provider/index.ts';
import { createMailer, createTransport, type Mailer } from './mail/mailer.ts';
import { withNotices } from './mail/notices.ts';
import { createWebhooks, withWebhooks, type Webhooks } from './webhooks/index.ts';
import { createSecretBox } from './crypto/secretbox.ts';
import type { AccountStore } from './storage/accounts/port.ts';
import type { LinkStore } from './storage/links/port.ts';
import type { CounterStore } from './storage/counters/port.ts';
import { createScimTokens, type ScimTokens } from './scim/tokens.ts';
import { createSessions, type Sessions } from './sessions/index.ts';
import { createEgress, type Egress } from './web/egress.ts';

export interface Services {
  config: Config;
  log: Logger;
  /** The clock (epoch milliseconds) of every security decision that a test may move. */
  now: () => number;
  stores: Stores;
  hasher: Hasher;
  mailer: Mailer;
  /** Every outgoing request to a URL a tenant or an app chose goes through it (src/web/egress.ts). */
  egress: Egress;
  webhooks: Webhooks;
  audit: Audit;
  limiter: Limiter;
  browsers: KnownBrowsers;
  factors: FactorRegistry;
  provider: Provider;
  /** The tenants' SCIM bearer tokens (docs/scim.md). */
  scimTokens: ScimTokens;
  /** A login's sessions: list and end them, and the back-channel logouts that tell the apps. */
  sessions: Sessions;
  /** Stops the workers (mail, audit sweep) and closes the stores. */
  close(): Promise<void>;
}

/** What the web routers are given: the services, with the store's ports at hand. Each router picks what it needs. */
export type RouteDeps = Services & { accounts: AccountStore; links: LinkStore; counters: CounterStore };

export const routeDeps = (services: Services): RouteDeps => ({ ...services, accounts: services.stores.accounts, links: services.stores.links, counters: services.stores.counters });

export interface ServiceOptions {
  /** The clock; default `Date.now`. */
  now?: () => number;
  /**
   * A process that serves (the default) sends mail and sweeps the audit log;
   * the operator CLI only queues and writes (a server's workers do the rest).
   */
  workers?: boolean;
  /**
   * Factors and methods beside the built-in list (`src/factors/registry.ts`),
   * for a test's fake factor; the app itself has only the list's.
   */
  factors?: ExtraFactors;
}

export async function createServices(config: Config, log: Logger, { now = Date.now, workers = true, factors: extra }: ServiceOptions = {}): Promise<Services> {
  const stores = await createStores(config, log);
  const hasher = await createHasher(config.argon2, config.keys.pepper);
  const date = () => new Date(now());
  const mailer = createMailer({ outbox: stores.outbox, transport: createTransport(config.mail, log), log, now: date, worker: workers });
  const egress = createEgress({ allow: config.outboundAllow });
  const webhooks = createWebhooks({ store: stores.webhooks, box: createSecretBox(config.keys.encryptionKeys), egress, log, now, worker: workers });
  const logged = createAudit(stores.accounts, log, { ...config.audit, now: date, ...(workers ? {} : { sweepEveryMs: 0 }) });
  // Every audit event may tell the person (a notice) and the tenant's apps (a webhook); neither holds the action up.
  const audit = withWebhooks(
    withNotices(logged, { mailer, accounts: stores.accounts, counters: stores.counters, log, now: date, factors: factorCatalogue(extra) }),
    webhooks,
    log,
    now,
  );
  const limiter = createLimiter(stores.counters, config, now);
  const browsers = knownBrowsers({ key: knownBrowserKey(config.keys.pepper), secure: config.issuer.startsWith('https:'), ttlMs: config.knownBrowser.ttlMs }, now);
  const factors = createFactorRegistry({ config, accounts: stores.accounts, counters: stores.counters, hasher, audit, limiter, now }, extra);
  const provider = createProvider({
    config,
    accounts: stores.accounts,
    adapter: stores.adapter,
    sessions: stores.sessions,
    factors,
    egress,
    log,
    unavailableStore: stores.unavailableStore,
    now,
  });
  const sessions = createSessions({ store: stores.sessions, accounts: stores.accounts, provider, adapter: stores.adapter, audit, log, now, worker: workers });
  const scimTokens = createScimTokens({ store: stores.scim, pepper: config.keys.pepper, audit, now });
  return {
    config,
    log,
    now,
    stores,
    scimTokens,
    hasher,
    mailer,
    egress,
    webhooks,
    audit,
    limiter,
    browsers,
    factors,
    provider,
    sessions,
    async close() {
      mailer.close();
      sessions.close();
      webhooks.close();
      audit.close();
      await stores.close();
      await egress.close();
    },
  };
}
