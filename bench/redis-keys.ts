/**
 * What one password sign-in leaves in Redis: every key of the adapter's prefix,
 * its type, encoding, TTL, MEMORY USAGE and value, after one sign-in and one
 * refresh grant on an in-process MongoDB + Redis server.
 *
 *   node --import tsx bench/redis-keys.ts
 */
import { Redis } from 'ioredis';
import { describeStored, isEncodedModel } from '../src/storage/adapter/redis/codec.ts';
import { startServer } from '../test/support/latchkey.ts';
import { benchDocument, usersFor } from './lib/seed.ts';
import { benchRelyingParty, signIn } from './lib/journey.ts';

const users = usersFor('password', 2);
const server = await startServer('mongo+redis', { doc: benchDocument(users, ['password']) });
const redis = new Redis(server.env.REDIS_URL!);
const prefix = server.env.REDIS_PREFIX!;
try {
  const rp = await benchRelyingParty(server.issuer);
  await signIn(server.issuer, rp, users[0]!);
  let total = 0;
  for (const key of (await redis.keys(`${prefix}*`)).sort()) {
    const [type, encoding, ttl, bytes] = await Promise.all([redis.type(key), redis.object('ENCODING', key), redis.pttl(key), redis.memory('USAGE', key, 'SAMPLES', '0')]);
    total += Number(bytes);
    let value: unknown;
    if (type === 'string') value = await redis.getBuffer(key);
    if (Buffer.isBuffer(value) && isEncodedModel(value)) value = Buffer.from(`${value.length} B stored: ${describeStored(value).replaceAll('\x1e', '|').replaceAll('\x1f', '|')}`);
    else if (type === 'hash') value = await redis.hgetall(key);
    else if (type === 'zset') value = await redis.zrange(key, 0, -1, 'WITHSCORES');
    const shown = Buffer.isBuffer(value) ? (/^[\x20-\x7e\n]*$/.test(value.toString('latin1')) ? value.toString() : `<${value.length} bytes binary>`) : JSON.stringify(value);
    console.log(`${String(bytes).padStart(5)} B  ${type}/${encoding} ttl=${ttl}  ${key.slice(prefix.length)}\n        ${shown}`);
  }
  console.log(`total MEMORY USAGE ${total} B`);
} finally {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await server.stop();
}
