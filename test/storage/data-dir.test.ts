// DATA_DIR is private: the directory 0700, the SQLite database, its -wal and
// -shm files and the development keys 0600, also when an older version left
// them readable to others.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../support/latchkey.ts';
import { tempDir } from '../support/tmp.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('DATA_DIR', () => {
  it('is created 0700 with its files 0600, and narrows a readable one', async () => {
    const previous = process.umask(0o022);
    const parent = tempDir('lk-datadir-');
    try {
      for (const leftOpen of [false, true]) {
        const dataDir = join(parent.path, leftOpen ? 'old' : 'new');
        if (leftOpen) {
          mkdirSync(dataDir, { mode: 0o755 });
          chmodSync(dataDir, 0o755);
          writeFileSync(join(dataDir, 'latchkey.db'), '', { mode: 0o644 });
        }
        const server = await startServer('sqlite', { env: { DATA_DIR: dataDir } });
        try {
          // A write, so the WAL and its index exist.
          await server.latchkey.stores.accounts.upsertIdentity({ email: `someone-${leftOpen}@acme.test` });
          assert.equal(mode(dataDir).toString(8), '700');
          for (const file of ['latchkey.db', 'latchkey.db-wal', 'latchkey.db-shm', 'dev-keys.json']) {
            assert.equal(mode(join(dataDir, file)).toString(8), '600', `${leftOpen ? 'old' : 'new'} ${file}`);
          }
        } finally {
          await server.stop();
        }
      }
    } finally {
      process.umask(previous);
      parent.remove();
    }
  });
});
