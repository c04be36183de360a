// Redis for tests: REDIS_URL from outside, else the machine's 127.0.0.1:6379.
// Each caller gets a key prefix of its own so test files never collide.
import { randomBytes } from 'node:crypto';

export function testRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

export function testRedisPrefix(): string {
  return `lk-test:${randomBytes(6).toString('hex')}:`;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './net.ts';

export interface OwnRedis {
  url: string;
  port: number;
  kill(): Promise<void>;
  revive(): Promise<void>;
  stop(): Promise<void>;
}

/** True when a Redis answers PING on host:port within a second. */
export function redisAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host }, () => socket.write('PING\r\n'));
    socket.setTimeout(1000);
    socket.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      socket.destroy();
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}

/** A redis-server of the caller's own on a spare loopback port (outage and cluster tests). */
export async function startOwnRedis(extraArgs: string[] = []): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess;
  const boot = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if (await redisAnswers(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${port} did not start`);
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  await boot();
  return { url: `redis://127.0.0.1:${port}`, port, kill, revive: boot, stop: kill };
}
