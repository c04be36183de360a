// Builds Ory Hydra v2.3.0 — the bench's peer (`BENCH_PEERS=hydra`) — on first use, into a cache
// outside the repository (default ~/.cache/latchkey-bench/hydra-v2.3.0; LATCHKEY_BENCH_CACHE moves
// it). Only the bench needs it: `npm test`, `.ci/run` and a bench without BENCH_PEERS never call it.
//
// Why not `go install github.com/ory/hydra/v2@v2.3.0`: Hydra's go.mod has replace directives, which
// `go install pkg@version` and `go get -tool` refuse. So the module is fetched from the Go module
// proxy (`go mod download`), copied out of the read-only module cache, and built inside that copy.
// One replace has to go: it points at ./internal/httpclient, a nested module the proxy's zip leaves
// out, so hydra-client-go is taken at the version go.mod requires instead. The other replace (Ory's
// fork of pop, which Hydra's persistence code needs) is kept. `-tags sqlite` adds the SQLite driver.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const hydraVersion = 'v2.3.0';
const modulePath = 'github.com/ory/hydra/v2';
const nestedReplace = 'github.com/ory/hydra-client-go/v2';

/** Folder the build lives in; the binary is `<dir>/hydra`. */
export function hydraDir() {
  const base = process.env.LATCHKEY_BENCH_CACHE ?? join(homedir(), '.cache', 'latchkey-bench');
  return join(base, `hydra-${hydraVersion}`);
}

function makeWritable(dir) {
  chmodSync(dir, 0o755);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) makeWritable(path);
    else if (entry.isFile()) chmodSync(path, 0o644);
  }
}

/** Returns the path of a working Hydra binary, building it first when the cache has none. */
export function ensureHydra() {
  const dir = hydraDir();
  const binary = join(dir, 'hydra');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const go = (args, cwd) => execFileSync('go', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

  const started = process.hrtime.bigint();
  console.error(`building Ory Hydra ${hydraVersion} from the Go module proxy into ${dir} (several minutes) …`);
  const info = JSON.parse(go(['mod', 'download', '-json', `${modulePath}@${hydraVersion}`], dir));
  if (info.Error) throw new Error(`go mod download ${modulePath}@${hydraVersion}: ${info.Error}`);
  const src = join(dir, 'src');
  rmSync(src, { recursive: true, force: true });
  cpSync(info.Dir, src, { recursive: true });
  makeWritable(src);
  go(['mod', 'edit', `-dropreplace=${nestedReplace}`], src);
  const ldflags = `-X ${modulePath}/driver/config.Version=${hydraVersion}`;
  // -mod=mod lets go add the go.sum lines for hydra-client-go, which the local replace never needed.
  go(['build', '-mod=mod', '-trimpath', '-tags', 'sqlite,sqlite_omit_load_extension', '-ldflags', ldflags, '-o', `${binary}.tmp`, '.'], src);
  renameSync(`${binary}.tmp`, binary);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const note = `built ${new Date().toISOString()} in ${seconds.toFixed(0)} s (wall clock)\n`;
  writeFileSync(join(dir, 'BUILD.txt'), note);
  console.error(`Hydra ${hydraVersion} ${note.trim()}; binary ${(statSync(binary).size / 1e6).toFixed(0)} MB`);
  return binary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(ensureHydra());
