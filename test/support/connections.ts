// Several connections to one fresh database, SQLite or MongoDB (FerretDB here),
// for contract suites whose parallel cases must run across connections, as
// separate app processes would.
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MongoClient, type Db } from 'mongodb';
import { startMongo, type TestMongo } from './mongo.ts';
import { tempDir } from './tmp.ts';

export interface Connections<T> {
  /** `n` connections to one new database. */
  open(n: number): Promise<T[]>;
  cleanup(): Promise<void>;
}

export function sqliteConnections(): Connections<Database.Database> {
  const dir = tempDir('lk-connections-');
  const dbs: Database.Database[] = [];
  return {
    async open(n) {
      const file = join(dir.path, `${randomUUID()}.db`);
      return Array.from({ length: n }, () => {
        const db = new Database(file);
        db.pragma('journal_mode = WAL');
        db.pragma('busy_timeout = 5000');
        dbs.push(db);
        return db;
      });
    },
    async cleanup() {
      for (const db of dbs) db.close();
      dir.remove();
    },
  };
}

export function mongoConnections(): Connections<Db> {
  let mongo: TestMongo | undefined;
  const clients: MongoClient[] = [];
  return {
    async open(n) {
      mongo ??= await startMongo();
      const name = `lk_conn_${randomBytes(4).toString('hex')}`;
      return Promise.all(
        Array.from({ length: n }, async () => {
          const client = await MongoClient.connect(mongo!.uri);
          clients.push(client);
          return client.db(name);
        }),
      );
    },
    async cleanup() {
      for (const c of clients) await c.close();
      await mongo?.stop();
    },
  };
}
