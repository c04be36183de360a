/** `npm start`: loads the configuration, starts Latchkey, stops cleanly on SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from '../config/index.ts';
import { createLogger } from './log.ts';
import { builtInFactors } from './factors/registry.ts';
import { createLatchkey } from './server.ts';

async function main() {
  const config = loadConfig();
  const log = createLogger(config.logLevel, builtInFactors.fields());
  const latchkey = await createLatchkey(config, log);
  const server = await latchkey.listen();
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info({ port, issuer: config.issuer, stores: latchkey.stores.kinds }, `Latchkey listening on port ${port}; issuer ${config.issuer}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    try {
      await latchkey.close();
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
