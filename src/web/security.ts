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

/** Our forms are urlencoded; any other body on our POST routes is refused before parsing. */
export async function formBodiesOnly(ctx: Context, next: Next) {
  if (ctx.method === 'POST' && ctx.request.length !== 0 && !ctx.is('application/x-www-form-urlencoded')) {
    ctx.throw(415);
  }
  await next();
}
