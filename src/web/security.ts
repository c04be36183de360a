import type { Context, Next } from 'koa';

/** Security headers on every response, the provider's included (SPEC §7: no framing). */
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
