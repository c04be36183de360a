// Redis for tests: REDIS_URL from outside, else the machine's 127.0.0.1:6379.
// Each caller gets a key prefix of its own so test files never collide.
import { randomBytes } from 'node:crypto';

export function testRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

export function testRedisPrefix(): string {
  return `lk-test:${randomBytes(6).toString('hex')}:`;
}
