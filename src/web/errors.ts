/**
 * The one place errors become responses: a LatchkeyError (or a client error
 * from Koa, the body parser or the provider) becomes its status with a page or
 * a JSON body; anything else is logged and answered with a plain 500 page,
 * never a stack trace.
 */
import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { LatchkeyError, interactionExpired, unavailable } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sendPage } from './views.ts';

function toLatchkeyError(err: unknown): LatchkeyError | null {
  if (err instanceof LatchkeyError) return err;
  if (err instanceof oidcErrors.SessionNotFound) return interactionExpired();
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown; type?: unknown };
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 0;
  if (status === 413) return new LatchkeyError('payload_too_large', 413, 'errors.form.tooLarge');
  if (status === 415) return new LatchkeyError('unsupported_media_type', 415, 'errors.form.mediaType');
  if (status >= 400 && status < 500) return new LatchkeyError('bad_request', status, 'errors.bad_request');
  return null;
}

function wantsJson(ctx: Context): boolean {
  return ctx.accepts('html', 'json') === 'json';
}

/** Where an error page's way back leads: the account pages to My Account, anything else to the start page. */
export const backFrom = (path: string) => (path === '/account' || path.startsWith('/account/') ? 'account' : 'start');

/** How long a client is asked to wait while a store is unavailable. */
const UNAVAILABLE_RETRY_SECONDS = 5;

/** `Retry-After` for a lockout that a wait lifts; a frozen one has none (`frozenOut`). */
export function setRetryAfter(ctx: Context, err: LatchkeyError | undefined): void {
  if (err?.code === 'locked_out' && typeof err.detail.retryAfterSeconds === 'number') ctx.set('Retry-After', String(err.detail.retryAfterSeconds));
}

/**
 * Answers with `err`: a JSON error for a program (`json`, by default when the
 * request prefers JSON to HTML), else the error page in the request's language.
 */
export function respondWithError(ctx: Context, err: LatchkeyError, { json = wantsJson(ctx) }: { json?: boolean } = {}): void {
  ctx.status = err.status;
  setRetryAfter(ctx, err);
  if (err.status === 503) ctx.set('Retry-After', String(UNAVAILABLE_RETRY_SECONDS));
  if (json) {
    ctx.body = { error: err.code, error_description: err.message, ...err.detail };
    return;
  }
  sendPage(
    ctx,
    'error',
    { title: err.status === 429 ? 'error.wait' : err.status === 503 ? 'error.unavailable' : 'error.title', error: err, code: err.code, back: backFrom(ctx.path) },
    err.status,
  );
}

/** Tells whether an error means a store is unreachable (and which). */
export type UnavailableStore = (err: unknown) => string | null;

export function errorHandler(log: Logger, unavailableStore: UnavailableStore) {
  return async function handleErrors(ctx: Context, next: Next) {
    try {
      await next();
    } catch (err) {
      const store = unavailableStore(err);
      const known = store ? unavailable(store) : toLatchkeyError(err);
      if (known) {
        if (known.status >= 500) log.warn({ code: known.code, detail: known.detail, path: ctx.path }, known.message);
        return respondWithError(ctx, known);
      }
      log.error({ err, path: ctx.path, method: ctx.method }, 'unhandled error');
      respondWithError(ctx, new LatchkeyError('server_error', 500, 'errors.server'));
    }
  };
}

/** Answers 503 at once while a store is known to be down, instead of waiting on it. */
export function storeGuard(down: () => string | null) {
  return async function guardStores(ctx: Context, next: Next) {
    const store = down();
    if (store && ctx.path !== '/healthz' && ctx.path !== '/readyz' && !ctx.path.startsWith('/static/')) throw unavailable(store);
    await next();
  };
}
