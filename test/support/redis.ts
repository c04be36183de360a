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
import { onSomePort } from './net.ts';

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

/** The process id of the Redis answering on loopback `port` (INFO's `process_id`), or null when none answers within a second. */
export function redisPid(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = createConnection({ port, host: '127.0.0.1' }, () => socket.write('INFO server\r\n'));
    const done = (pid: number | null) => {
      resolve(pid);
      socket.destroy();
    };
    socket.setTimeout(1000);
    socket.on('data', (d) => {
      reply += d.toString();
      const m = /process_id:(\d+)\r\n/.exec(reply);
      if (m) done(Number(m[1]));
      else if (!reply.startsWith('$')) done(null);
    });
    socket.on('error', () => done(null));
    socket.on('timeout', () => done(null));
  });
}

/** A redis-server that could not listen on its port: another server was given it after it was picked. */
const PORT_TAKEN = 'redis-server could not listen on its port';
const portTaken = (err: Error) => err.message.startsWith(PORT_TAKEN);

/**
 * Starts `redis-server` on `port` and resolves once the Redis answering there
 * is that process (a Redis cannot listen on port 0 and say which it got, so
 * the port is picked first, and another server may have been given it since).
 */
export async function spawnRedis(port: number, args: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${PORT_TAKEN} (${port}): it exited with ${child.exitCode}`);
    if ((await redisPid(port)) === child.pid) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

/** `spawnRedis` on a port free when picked, and on another when that one was taken meanwhile; `accept` may refuse a port. */
export function spawnRedisOnSomePort(args: (port: number) => string[], accept: (port: number) => boolean = () => true): Promise<{ port: number; child: ChildProcess }> {
  return onSomePort(
    async (port) => {
      if (!accept(port)) throw new Error(`${PORT_TAKEN} (${port}): not a port this Redis can use`);
      return { port, child: await spawnRedis(port, args(port)) };
    },
    portTaken,
    20,
  );
}

/** A redis-server of the caller's own on a spare loopback port (outage and cluster tests). */
export async function startOwnRedis(extraArgs: string[] = []): Promise<OwnRedis> {
  const started = await spawnRedisOnSomePort(() => extraArgs);
  const port = started.port;
  let child = started.child;
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    // On the same port: what the caller's clients reconnect to.
    revive: async () => {
      child = await spawnRedis(port, extraArgs);
    },
    stop: kill,
  };
}
