// A 3-master Redis Cluster of the caller's own on loopback ports, for the
// adapter and counter contract suites and one end-to-end journey.
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnRedisOnSomePort } from './redis.ts';

const run = promisify(execFile);

export interface TestRedisCluster {
  nodes: { host: string; port: number }[];
  /** `host:port,host:port,…` as REDIS_CLUSTER_NODES takes it. */
  spec: string;
  stop(): Promise<void>;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout;
}

export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'lk-cluster-'));
  const children: ChildProcess[] = [];
  const nodes: { host: string; port: number }[] = [];
  const stop = async () => {
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null
          ? null
          : new Promise((r) => {
              c.once('exit', r);
              c.kill('SIGKILL');
            }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    while (nodes.length < masters) {
      const node = await spawnRedisOnSomePort(
        (port) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir],
        // A node's cluster bus listens on its port + 10000 (a node whose bus port is taken exits, and another is picked).
        (port) => port <= 55000,
      );
      children.push(node.child);
      nodes.push({ host: '127.0.0.1', port: node.port });
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (let i = 0; ; i++) {
      const infos = await Promise.all(nodes.map((n) => cli(n.port, 'cluster', 'info')));
      if (infos.every((info) => info.includes('cluster_state:ok'))) break;
      if (i > 200) throw new Error('the cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, spec: nodes.map((n) => `${n.host}:${n.port}`).join(','), stop };
}
