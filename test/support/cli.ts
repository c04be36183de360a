// `npm run cli -- ARGS` as an operator runs it: a process of its own, with
// only the environment given (PATH and HOME added), so nothing from the test
// run (MONGODB_URI, REDIS_URL, …) leaks in.
import { spawn } from 'node:child_process';

import { ROOT, nodeArgs } from './layout.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const full = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, ...env };
    const child = spawn(process.execPath, [...nodeArgs('src/cli/index'), ...args], { cwd: ROOT, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
