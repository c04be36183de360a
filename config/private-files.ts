/**
 * `DATA_DIR` holds the embedded store and the development keys: only the
 * account Latchkey runs as may read it (0700, its files 0600), whatever the
 * umask, and also when an older version left it readable.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';

export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Creates `path` empty (0600) when missing, else narrows its mode to 0600. */
export function privateFile(path: string, create = false): void {
  if (create && !existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  if (existsSync(path)) chmodSync(path, 0o600);
}
