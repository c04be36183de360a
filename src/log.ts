import { pino, type Logger } from 'pino';

export type { Logger };

/** Always redacted, wherever they appear at the top level or one level down. */
const SECRETS = ['password', 'secret'];

/**
 * `formFields`: the factors' form fields (`FactorRegistry.fields()`, e.g.
 * `pin`, `code`), redacted like passwords: a factor's answer never reaches a log.
 */
export function createLogger(level: string, formFields: readonly string[] = []): Logger {
  const names = [...new Set([...SECRETS, ...formFields])];
  return pino({
    level,
    redact: { paths: [...names, ...names.map((n) => `*.${n}`)], censor: '[redacted]' },
  });
}
