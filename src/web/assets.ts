/**
 * The static files the pages load, served from memory under `/static/`:
 * the style sheet, the audit log's local-time script, the passkey pages' script and the WebAuthn browser library
 * (`@simplewebauthn/browser`'s own bundle, read from the installed package, so
 * the source tree, `dist/` and the container image serve the version the
 * lock file names and nothing is copied by hand). Scripts come from this
 * origin only, as the CSP (`script-src 'self'`) demands.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Router from '@koa/router';
import { PUBLIC_DIR } from '../paths.ts';

export interface Asset {
  path: string;
  type: string;
  body: Buffer;
}

/** The UMD bundle of the installed `@simplewebauthn/browser` (the package exports no path to it, so it is found beside its entry point). */
export function webauthnBrowserBundle(): string {
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return join(dirname(dirname(entry)), 'dist', 'bundle', 'index.umd.min.js');
}

export function loadAssets(): Asset[] {
  return [
    { path: '/static/app.css', type: 'text/css', body: readFileSync(join(PUBLIC_DIR, 'app.css')) },
    { path: '/static/local-time.js', type: 'text/javascript', body: readFileSync(join(PUBLIC_DIR, 'local-time.js')) },
    { path: '/static/passkey.js', type: 'text/javascript', body: readFileSync(join(PUBLIC_DIR, 'passkey.js')) },
    { path: '/static/recovery-codes.js', type: 'text/javascript', body: readFileSync(join(PUBLIC_DIR, 'recovery-codes.js')) },
    { path: '/static/webauthn.js', type: 'text/javascript', body: readFileSync(webauthnBrowserBundle()) },
  ];
}

export function assetRouter(assets: Asset[] = loadAssets()): Router {
  const router = new Router();
  for (const asset of assets) {
    router.get(asset.path, (ctx) => {
      ctx.type = asset.type;
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.body = asset.body;
    });
  }
  return router;
}
