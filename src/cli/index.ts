/**
 * `npm run cli -- import FILE.json` — see docs/import.md.
 * Uses the same environment variables as the server to choose the store.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { createLogger } from '../log.ts';
import { createStores } from '../storage/index.ts';
import { createHasher } from '../crypto/password.ts';
import { ImportError, importDocument, type ImportDocument } from './import.ts';
import { upstreamRedirectUri } from '../upstream/client.ts';

const USAGE = 'usage: npm run cli -- import FILE.json';

async function main(argv: string[]): Promise<number> {
  const [command, file] = argv;
  if (command !== 'import' || !file) {
    console.error(USAGE);
    return 2;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`cannot read ${file}: ${(err as Error).message}`);
    return 1;
  }
  const config = loadConfig();
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
