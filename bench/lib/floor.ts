// The floor: CPU time of one argon2id verification with the configured
// parameters, through the project's own hasher (what POST /login runs), in
// this process while no server is under load. process.cpuUsage() covers every
// thread of the process, so the libuv pool thread argon2 runs on is included.
import type { Config } from '../../config/index.ts';
import { createHasher } from '../../src/crypto/password.ts';
import { PASSWORD } from './seed.ts';

export interface FloorSample {
  /** CPU-ms per verification. */
  cpuMs: number;
  /** Wall ms per verification. */
  wallMs: number;
  samples: number;
  /** Verifications in flight at once. */
  parallel: number;
}

export async function measureFloor(config: Config, samples: number, parallel = 1): Promise<FloorSample> {
  const hasher = await createHasher(config.argon2, config.keys.pepper);
  const hash = await hasher.hash(PASSWORD);
  for (let i = 0; i < 2; i++) if (!(await hasher.verify(hash, PASSWORD))) throw new Error('argon2 verification failed');
  const before = process.cpuUsage();
  const started = performance.now();
  let left = samples;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (left > 0) {
        left--;
        if (!(await hasher.verify(hash, PASSWORD))) throw new Error('argon2 verification failed');
      }
    }),
  );
  const wall = performance.now() - started;
  const used = process.cpuUsage(before);
  return { cpuMs: (used.user + used.system) / 1000 / samples, wallMs: wall / samples, samples, parallel };
}
