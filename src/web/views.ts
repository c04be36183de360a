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
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';
import type { Context } from 'koa';
import type pug from 'pug';
import { LatchkeyError } from '../errors.ts';
import { LANGUAGES, LANGUAGE_NAMES, translator, type Language, type Translate } from '../i18n.ts';
import { languageFor, switchHref } from './language.ts';
import { COMPILED_VIEWS, VIEWS_DIR as VIEWS } from '../paths.ts';

const require = createRequire(import.meta.url);
const cache = new Map<string, pug.compileTemplate>();

interface CompiledView {
  /** The SHA-256 (base64url) of each file the view was compiled from, by its path under `views/`. */
  files: Record<string, string>;
  template: pug.compileTemplate;
}

/**
 * The views compiled at build time (`scripts/views.mjs`) whose files are unchanged since: read once, so
 * a process renders without loading pug. A view edited since the build is compiled on first use instead.
 */
function precompiled(): Map<string, pug.compileTemplate> {
  const usable = new Map<string, pug.compileTemplate>();
  if (!existsSync(COMPILED_VIEWS)) return usable;
  const digests = new Map<string, string | null>();
  const digest = (file: string) => {
    if (!digests.has(file)) {
      const path = join(VIEWS, file);
      digests.set(file, existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('base64url') : null);
    }
    return digests.get(file);
  };
  const views = require(COMPILED_VIEWS) as Record<string, CompiledView>;
  for (const [view, { files, template }] of Object.entries(views)) {
    if (Object.entries(files).every(([file, sha]) => digest(file) === sha)) usable.set(view, template);
  }
  return usable;
}

let ready: Map<string, pug.compileTemplate> | null = null;

/** `view`: a path under `views/` without `.pug`; or an absolute one (a factor that brings its own, as a test's does). */
export function renderView(view: string, locals: Record<string, unknown> = {}): string {
  ready ??= precompiled();
  let template = ready.get(view) ?? cache.get(view);
  if (!template) {
    const { compileFile } = require('pug') as typeof pug;
    template = compileFile(isAbsolute(view) ? `${view}.pug` : join(VIEWS, `${view}.pug`), { basedir: VIEWS });
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
