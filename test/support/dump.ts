// Every byte a test server's stores hold, for tests that prove a secret is
// never kept in the clear (a store dump yields nothing usable).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BSON, MongoClient } from 'mongodb';
import { Redis } from 'ioredis';
import { describeStored, isEncodedModel } from '../../src/storage/adapter/redis/codec.ts';
import type { TestServer } from './latchkey.ts';

/** Every byte the server's stores hold: the SQLite file and its WAL; MongoDB's documents and Redis's values. */
export async function dumpStores(server: TestServer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const env = server.env;
  if (!env.MONGODB_URI) {
    for (const file of ['latchkey.db', 'latchkey.db-wal']) {
      const path = join(env.DATA_DIR!, file);
      if (existsSync(path)) chunks.push(readFileSync(path));
    }
    return Buffer.concat(chunks);
  }
  const client = await MongoClient.connect(env.MONGODB_URI);
  try {
    const db = client.db(env.MONGODB_DB);
    for (const { name } of await db.listCollections().toArray()) {
      for (const doc of await db.collection(name).find({}).toArray()) chunks.push(Buffer.from(BSON.serialize(doc)));
    }
  } finally {
    await client.close();
  }
  const redis = new Redis(env.REDIS_URL!);
  try {
    const keys = await redis.keys(`${env.REDIS_PREFIX}*`);
    for (const key of keys) {
      chunks.push(Buffer.from(key));
      const type = await redis.type(key);
      // Provider models are stored deflated: search their text.
      if (type === 'string') {
        const value = (await redis.getBuffer(key))!;
        chunks.push(isEncodedModel(value) ? Buffer.from(describeStored(value)) : value);
      } else if (type === 'hash') chunks.push(...Object.values(await redis.hgetallBuffer(key)));
      else if (type === 'zset') chunks.push(...(await redis.zrangeBuffer(key, 0, -1)));
      else if (type === 'set') chunks.push(...(await redis.smembersBuffer(key)));
      else if (type === 'list') chunks.push(...(await redis.lrangeBuffer(key, 0, -1)));
    }
  } finally {
    redis.disconnect();
  }
  return Buffer.concat(chunks);
}
