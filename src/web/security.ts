import type { Context, Next } from 'koa';

/**
 * Security headers on every response, the provider's included (login pages cannot be framed).
 * Set before the provider runs, with `script-src` spelled out: oidc-provider's
 * form_post page appends its one inline script's hash to that directive
 * (docs/security.md); under `default-src` alone the page would stay blank.
 */
export async function securityHeaders(ctx: Context, next: Next) {
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; base-uri 'none'; frame-ancestors 'none'");
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  await next();
}

/**
 * Our forms are urlencoded and uncompressed (browsers never compress a form);
 * any other body on our POST routes is refused before parsing. A compressed
 * body would otherwise reach the parser's inflater, whose errors (a body that
 * is not gzip) carry no HTTP status.
 */
export async function formBodiesOnly(ctx: Context, next: Next) {
  if (ctx.method === 'POST') {
    const encoding = ctx.get('content-encoding').trim().toLowerCase();
    if (encoding && encoding !== 'identity') ctx.throw(415);
    if (ctx.request.length !== 0 && !ctx.is('application/x-www-form-urlencoded')) ctx.throw(415);
  }
  await next();
}

/** One year, the figure browsers' preload lists ask for. */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * With an https issuer, a request that arrived over plain http (and no trusted
 * proxy said otherwise) is never served: cookies would travel in the clear.
 * GETs are redirected to the issuer's origin; anything else is refused.
 * Health checks stay reachable over http for load balancers. Every https
 * response says so for the future (`Strict-Transport-Security`), so a browser
 * never tries plain http again.
 */
export function requireHttps(issuer: string) {
  const origin = new URL(issuer).origin;
  return async function httpsOnly(ctx: Context, next: Next) {
    if (ctx.secure) {
      ctx.set('Strict-Transport-Security', HSTS);
      return next();
    }
    if (ctx.path === '/healthz' || ctx.path === '/readyz') return next();
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      ctx.status = 308;
      ctx.redirect(`${origin}${ctx.originalUrl}`);
      ctx.status = 308;
      return;
    }
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: 'use https' };
  };
}
