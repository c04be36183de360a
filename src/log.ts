import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: ['password', 'pin', 'pin_confirm', 'code', 'secret', '*.password', '*.pin', '*.secret'], censor: '[redacted]' },
  });
}
