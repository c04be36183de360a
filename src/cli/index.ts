/**
 * `npm run cli -- import FILE.json` — see docs/import.md.
 * `npm run cli -- unlock EMAIL` — see docs/security.md.
 * `npm run cli -- invite EMAIL --tenant TENANT` — see docs/mail.md.
 * Uses the same environment variables as the server to choose the store.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { createLogger } from '../log.ts';
import { createStores } from '../storage/index.ts';
import { createHasher } from '../crypto/password.ts';
import { ImportError, importDocument, type ImportDocument } from './import.ts';
import { upstreamRedirectUri } from '../upstream/client.ts';
import { createAudit } from '../audit.ts';
import { createLimiter } from '../limits.ts';
import { createFactorRegistry } from '../factors/registry.ts';
import { describeUnlock, unlockEmail } from './unlock.ts';
import { invite } from './invite.ts';
import { createMailer, createTransport } from '../mail/mailer.ts';

const USAGE = 'usage: npm run cli -- import FILE.json\n       npm run cli -- unlock EMAIL\n       npm run cli -- invite EMAIL --tenant TENANT';

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

async function main(argv: string[]): Promise<number> {
  const [command, arg] = argv;
  if (command === 'import' && arg) return importFile(arg);
  if (command === 'unlock' && arg) return unlock(arg);
  if (command === 'invite' && arg && argv[2] === '--tenant' && argv[3]) return inviteEmail(arg, argv[3]);
  console.error(USAGE);
  return 2;
}

async function unlock(email: string): Promise<number> {
  if (!email.includes('@') || email.length > 320) {
    console.error(`"${email}" is not an email address`);
    return 2;
  }
  const config = loadConfig();
  warnWithoutRedis(config);
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const stores = await createStores(config, log);
  try {
    const audit = createAudit(stores.accounts, log, { ...config.audit, sweepEveryMs: 0 });
    const hasher = await createHasher(config.argon2, config.keys.pepper);
    const factors = createFactorRegistry({ config, accounts: stores.accounts, counters: stores.counters, hasher, audit, now: Date.now });
    const report = await unlockEmail(email, { accounts: stores.accounts, limiter: createLimiter(stores.counters, config), factors, audit });
    for (const line of describeUnlock(report)) console.log(line);
    return 0;
  } finally {
    await stores.close();
  }
}

async function inviteEmail(email: string, tenantId: string): Promise<number> {
  const config = loadConfig();
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const stores = await createStores(config, log);
  // Queued only: the message is sent by a server's mail worker (this process leaves at once).
  const mailer = createMailer({ outbox: stores.outbox, transport: createTransport(config.mail, log), log, worker: false });
  try {
    console.log(await invite(email, tenantId, { config, links: stores.links, accounts: stores.accounts, mailer, audit: createAudit(stores.accounts, log, { ...config.audit, sweepEveryMs: 0 }) }));
    return 0;
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  } finally {
    mailer.close();
    await stores.close();
  }
}

async function importFile(file: string): Promise<number> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`cannot read ${file}: ${(err as Error).message}`);
    return 1;
  }
  const config = loadConfig();
  warnWithoutRedis(config);
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const stores = await createStores(config, log);
  try {
    const hasher = await createHasher(config.argon2, config.keys.pepper);
    const summary = await importDocument(raw, { accounts: stores.accounts, hasher, config });
    console.log(`imported ${summary.identities} identities, ${summary.tenants} tenants, ${summary.logins} logins, ${summary.clients} clients`);
    for (const t of (raw as ImportDocument).tenants ?? []) {
      for (const u of t.upstreams ?? []) console.log(`upstream ${t.id}/${u.id}: register the redirect URI ${upstreamRedirectUri(config.issuer, u.id)} at ${u.issuer}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof ImportError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  } finally {
    await stores.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  },
);
