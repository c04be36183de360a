// Builds oauth2-proxy (the reverse proxy of docs/relying-parties.md's tested
// set-up) into .cache/ from the Go module proxy, once per version: a binary
// named after its version is kept, so a clean clone pays the build once and a
// new version is built beside the old one. Used by `npm test` and `.ci/run`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const OAUTH2_PROXY_VERSION = 'v7.15.6';
const MODULE = 'github.com/oauth2-proxy/oauth2-proxy/v7';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const oauth2ProxyBinary = join(root, '.cache', `oauth2-proxy-${OAUTH2_PROXY_VERSION}`);

function goVersion() {
  try {
    return execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

export function ensureOauth2Proxy() {
  if (existsSync(oauth2ProxyBinary)) return oauth2ProxyBinary;
  const go = goVersion();
  if (!go) {
    throw new Error(
      `oauth2-proxy ${OAUTH2_PROXY_VERSION} is built from source for test/journey/oauth2-proxy.test.ts, and that needs Go (1.26 or newer) on the PATH: install it (e.g. the golang package) and run \`npm run build:oauth2-proxy\``,
    );
  }
  mkdirSync(dirname(oauth2ProxyBinary), { recursive: true });
  // Built into a folder of its own and moved into place whole, so a parallel run never starts a half-written binary.
  const bin = mkdtempSync(join(dirname(oauth2ProxyBinary), 'oauth2-proxy-build-'));
  const started = Date.now();
  console.error(`building oauth2-proxy ${OAUTH2_PROXY_VERSION} with ${go} (once; kept in .cache/) …`);
  try {
    // `go install module@version` builds that release with its own go.sum, checked against the checksum database.
    execFileSync('go', ['install', `${MODULE}@${OAUTH2_PROXY_VERSION}`], { env: { ...process.env, GOBIN: bin }, stdio: 'inherit' });
    renameSync(join(bin, 'oauth2-proxy'), oauth2ProxyBinary);
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
  console.error(`oauth2-proxy built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return oauth2ProxyBinary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureOauth2Proxy();
