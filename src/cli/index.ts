/**
 * `npm run cli -- import FILE.json` — see docs/import.md.
 * `npm run cli -- unlock EMAIL` — see docs/security.md.
 * `npm run cli -- invite EMAIL --tenant TENANT` — see docs/mail.md.
 * `npm run cli -- webhook add|list|remove --tenant TENANT …` — see docs/webhooks.md.
 * `npm run cli -- scim token create|list|revoke --tenant TENANT …` — see docs/scim.md.
 * `npm run cli -- reset-factor EMAIL --tenant T [--user-type U]`, `add-owner …` — see docs/account.md.
 * Uses the same environment variables as the server to choose the store.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { createLogger } from '../log.ts';
import { builtInFactors } from '../factors/registry.ts';
import { createServices, routeDeps, type Services } from '../services.ts';
import { ImportError, importDocument, type ImportDocument } from '../import/index.ts';
import { upstreamRedirectUri } from '../upstream/client.ts';
import { describeUnlock, unlockEmail } from './unlock.ts';
import { invite } from './invite.ts';
import { parseWebhookCommand, runWebhookCommand } from './webhooks.ts';
import { parseScimCommand, runScimCommand } from './scim.ts';
import { parseOwnerCommand, runOwnerCommand } from './owners.ts';
import { EMAIL_MAX } from '../email.ts';

const USAGE =
  'usage: npm run cli -- import FILE.json\n       npm run cli -- unlock EMAIL\n       npm run cli -- invite EMAIL --tenant TENANT\n       npm run cli -- webhook add --tenant T --url URL --events TYPES | list --tenant T | remove --tenant T ID\n       npm run cli -- reset-factor EMAIL --tenant T [--user-type U]\n       npm run cli -- add-owner EMAIL --tenant T [--user-type U]\n       npm run cli -- scim token create --tenant T [--label NAME] | list --tenant T | revoke --tenant T ID';

/**
 * MongoDB without Redis is a set-up of its own (counters in DATA_DIR's SQLite), rarely the
 * servers': an operator who forgot REDIS_URL would unlock nothing the servers see, and the
 * servers' account caches would learn of an import only as their copies expire.
 */
function warnWithoutRedis(config: ReturnType<typeof loadConfig>): void {
  if (config.mongodbUri && !config.redisUrl && !config.redisClusterNodes) {
    console.error('warning: MONGODB_URI is set without REDIS_URL; if the servers use Redis, give it here too (attempt counters and the account cache live there; docs/storage.md)');
  }
}

/** The server's services over the stores the environment names, without the server's workers. */
async function open(): Promise<Services> {
  const config = loadConfig();
  warnWithoutRedis(config);
  return createServices(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, builtInFactors.fields()), { workers: false });
}

async function main(argv: string[]): Promise<number> {
  const [command, arg] = argv;
  if (command === 'import' && arg) return importFile(arg);
  if (command === 'unlock' && arg) return unlock(arg);
  if (command === 'invite' && arg && argv[2] === '--tenant' && argv[3]) return inviteEmail(arg, argv[3]);
  if (command === 'webhook') return webhook(argv.slice(1));
  if (command === 'scim') return scim(argv.slice(1));
  if (command === 'reset-factor' || command === 'add-owner') return ownerCommand(command, argv.slice(1));
  console.error(USAGE);
  return 2;
}

async function unlock(email: string): Promise<number> {
  if (!email.includes('@') || email.length > EMAIL_MAX) {
    console.error(`"${email}" is not an email address`);
    return 2;
  }
  const services = await open();
  try {
    const { stores, limiter, factors, audit } = services;
    const report = await unlockEmail(email, { accounts: stores.accounts, limiter, factors, audit });
    for (const line of describeUnlock(report)) console.log(line);
    return 0;
  } finally {
    await services.close();
  }
}

async function inviteEmail(email: string, tenantId: string): Promise<number> {
  // Queued only: the message is sent by a server's mail worker (this process leaves at once).
  const services = await open();
  try {
    const { config, stores, mailer, audit } = services;
    console.log(await invite(email, tenantId, { config, links: stores.links, accounts: stores.accounts, counters: stores.counters, mailer, audit }));
    return 0;
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  } finally {
    await services.close();
  }
}

async function webhook(args: string[]): Promise<number> {
  const command = parseWebhookCommand(args);
  if (typeof command === 'string') {
    console.error(command);
    return 2;
  }
  const services = await open();
  try {
    for (const line of await runWebhookCommand(command, { webhooks: services.webhooks, accounts: services.stores.accounts, egress: services.egress })) console.log(line);
    return 0;
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  } finally {
    await services.close();
  }
}

async function scim(args: string[]): Promise<number> {
  const command = parseScimCommand(args);
  if (typeof command === 'string') {
    console.error(command);
    return 2;
  }
  const services = await open();
  try {
    for (const line of await runScimCommand(command, { scimTokens: services.scimTokens, accounts: services.stores.accounts, issuer: services.config.issuer })) console.log(line);
    return 0;
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  } finally {
    await services.close();
  }
}

async function ownerCommand(name: 'reset-factor' | 'add-owner', args: string[]): Promise<number> {
  const command = parseOwnerCommand(name, args);
  if (typeof command === 'string') {
    console.error(command);
    return 2;
  }
  const services = await open();
  try {
    for (const line of await runOwnerCommand(command, routeDeps(services))) console.log(line);
    return 0;
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  } finally {
    await services.close();
  }
}

/**
 * Where to register an imported upstream: its stored handle's redirect URI
 * (the id, unless another tenant's upstream held it). The redirect URI is the
 * server's issuer's; without `ISSUER` this process only has its own default
 * (`http://localhost:PORT`), so it names the page that shows the real one.
 */
function upstreamNote(config: ReturnType<typeof loadConfig>, tenant: string, u: { id: string; handle: string; issuer: string }): string {
  const at = `upstream ${tenant}/${u.id}: register the redirect URI`;
  if (config.issuerGiven) return `${at} ${upstreamRedirectUri(config.issuer, u.handle)} at ${u.issuer}`;
  return `${at} {ISSUER}/upstream/${encodeURIComponent(u.handle)}/callback at ${u.issuer}, with the server's ISSUER: the owner's Sign-in providers page (/account/providers) shows it (give ISSUER here to print it)`;
}

async function importFile(file: string): Promise<number> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`cannot read ${file}: ${(err as Error).message}`);
    return 1;
  }
  const services = await open();
  const { config, stores, hasher } = services;
  try {
    const summary = await importDocument(raw, { accounts: stores.accounts, hasher, config });
    console.log(`imported ${summary.identities} identities, ${summary.tenants} tenants, ${summary.logins} logins, ${summary.clients} clients`);
    for (const t of (raw as ImportDocument).tenants ?? []) {
      for (const u of t.upstreams ?? []) {
        const stored = await stores.accounts.getUpstream(t.id, u.id);
        if (stored) console.log(upstreamNote(config, t.id, stored));
      }
    }
    return 0;
  } catch (err) {
    if (err instanceof ImportError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  } finally {
    await services.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  },
);
