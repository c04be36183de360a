/**
 * Server-rendered pages: pug templates under `views/`, compiled once and
 * cached. One renderer serves our routes and the provider's own pages (error,
 * logout), which render outside our Koa context.
 *
 * Every page gets, besides its own locals: `t` (the catalogues' texts in the
 * request's language, see `src/i18n.ts`), `lang`, the language switch's links
 * (`languages`), and `tenantName` when the request knows its tenant
 * (`ctx.state.tenantName`), and `signedInAs` (the header's "Jane Doe — Manager"
 * and its My Account link) when the browser has a sign-in (`./signed-in.ts`). An `error` local that is a LatchkeyError becomes
 * its text in that language, and `retryAfter` its wait.
 */
import { isAbsolute, join } from 'node:path';
import type { Context } from 'koa';
import pug from 'pug';
import { LatchkeyError } from '../errors.ts';
import { LANGUAGES, LANGUAGE_NAMES, translator, type Language, type Translate } from '../i18n.ts';
import { languageFor, switchHref } from './language.ts';
import { VIEWS_DIR as VIEWS } from '../paths.ts';

const cache = new Map<string, pug.compileTemplate>();

/** `view`: a path under `views/` without `.pug`; or an absolute one (a factor that brings its own, as a test's does). */
export function renderView(view: string, locals: Record<string, unknown> = {}): string {
  let template = cache.get(view);
  if (!template) {
    template = pug.compileFile(isAbsolute(view) ? `${view}.pug` : join(VIEWS, `${view}.pug`), { basedir: VIEWS });
    cache.set(view, template);
  }
  return template(locals);
}

/** What rendering needs of a request: ours or the provider's (both Koa contexts). */
export type PageContext = Pick<Context, 'state' | 'cookies' | 'acceptsLanguages' | 'method' | 'path' | 'querystring'>;

/** The request's language and its texts. */
export function localeOf(ctx: PageContext): { lang: Language; t: Translate } {
  const lang = languageFor(ctx);
  return { lang, t: translator(lang) };
}

/** The text of an error in `t`'s language. */
export function errorText(t: Translate, err: LatchkeyError): string {
  return t(err.key, err.detail);
}

/** "Try again in 45 seconds", or from a minute and a half on in whole minutes ("in 2 minutes", never "120 seconds"). */
export function waitText(t: Translate, seconds: number): string {
  return seconds > 90 ? t('common.retryAfterMinutes', { count: Math.ceil(seconds / 60) }) : t('common.retryAfter', { count: seconds });
}

export function renderPage(ctx: PageContext, view: string, locals: Record<string, unknown> = {}): string {
  const { lang, t } = localeOf(ctx);
  const error = locals.error instanceof LatchkeyError ? locals.error : null;
  const { tenantName, signedInAs } = ctx.state as { tenantName?: unknown; signedInAs?: unknown };
  return renderView(view, {
    ...(typeof tenantName === 'string' ? { tenantName } : {}),
    ...(typeof signedInAs === 'string' ? { signedInAs } : {}),
    ...locals,
    ...(error ? { error: errorText(t, error), retryAfter: error.detail.retryAfterSeconds } : {}),
    t,
    waitText: (seconds: number) => waitText(t, seconds),
    lang,
    languages: LANGUAGES.map((l) => ({ lang: l, name: LANGUAGE_NAMES[l], href: switchHref(ctx, l), current: l === lang })),
  });
}

/**
 * Answers with a page: its status (or the one already set), HTML, and the
 * language it speaks. Never stored by a browser or proxy cache: pages carry
 * forms with CSRF tokens, secrets being set up (an authenticator's key) and
 * personal data, none of which may be shown again from a cache.
 */
export function sendPage(ctx: PageContext & Pick<Context, 'set' | 'vary' | 'status' | 'type' | 'body'>, view: string, locals: Record<string, unknown> = {}, status?: number): void {
  const body = renderPage(ctx, view, locals);
  if (status !== undefined) ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Language', localeOf(ctx).lang);
  ctx.vary('Accept-Language');
  ctx.vary('Cookie');
  ctx.body = body;
}
