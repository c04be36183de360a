/**
 * Which language a page speaks, per request:
 *
 * 1. a choice made with the language switch *during* this sign-in (after the
 *    interaction started),
 * 2. the interaction's `ui_locales` (the first language we speak),
 * 3. an earlier choice made with the switch (the `latchkey_lang` cookie),
 * 4. `Accept-Language`,
 * 5. English.
 *
 * The switch is a link to the page with `?lang=nl`: any GET with a `lang` we
 * speak sets the cookie and redirects to the same URL without it (no script).
 */
import type { Context, Next } from 'koa';
import { DEFAULT_LANGUAGE, LANGUAGES, fromUiLocales, languageOf, type Language } from '../i18n.ts';

export const LANGUAGE_COOKIE = 'latchkey_lang';
const YEAR_MS = 365 * 24 * 3600_000;

/** The switch's last choice: `nl.1700000000` (the language, when, epoch seconds). */
function choiceOf(ctx: Pick<Context, 'cookies'>): { lang: Language; at: number } | null {
  const raw = ctx.cookies.get(LANGUAGE_COOKIE);
  const m = raw ? /^([a-z]{2})\.([0-9]{1,12})$/.exec(raw) : null;
  const lang = m ? languageOf(m[1]) : null;
  return lang ? { lang, at: Number(m![2]) } : null;
}

/**
 * The language for this request. `interaction` gives a sign-in's `ui_locales`
 * and when it started (epoch seconds).
 */
export function resolveLanguage(ctx: Pick<Context, 'cookies' | 'acceptsLanguages'>, interaction?: { uiLocales?: unknown; since?: number }): Language {
  const choice = choiceOf(ctx);
  if (choice && interaction?.since !== undefined && choice.at >= interaction.since) return choice.lang;
  const requested = fromUiLocales(interaction?.uiLocales);
  if (requested) return requested;
  if (choice) return choice.lang;
  const accepted = ctx.acceptsLanguages([...LANGUAGES]);
  return (typeof accepted === 'string' && languageOf(accepted)) || DEFAULT_LANGUAGE;
}

/** The language of this request's pages (set by `languages`, refined by `useLanguage`). */
export function languageFor(ctx: Pick<Context, 'state' | 'cookies' | 'acceptsLanguages'>): Language {
  const set = languageOf((ctx.state as { lang?: unknown } | undefined)?.lang);
  return set ?? resolveLanguage(ctx);
}

/** Fixes the language of this request, e.g. once the interaction (and its `ui_locales`) is known. */
export function useLanguage(ctx: Pick<Context, 'state'>, lang: Language): void {
  ctx.state.lang = lang;
}

/** Applies the switch (`?lang=`) and resolves the request's language. */
export function languages({ secure }: { secure: boolean }) {
  return async function chooseLanguage(ctx: Context, next: Next) {
    const asked = ctx.method === 'GET' || ctx.method === 'HEAD' ? ctx.query.lang : undefined;
    const lang = typeof asked === 'string' && asked.length <= 8 ? languageOf(asked) : null;
    if (lang && asked === lang) {
      ctx.cookies.set(LANGUAGE_COOKIE, `${lang}.${Math.floor(Date.now() / 1000)}`, { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: YEAR_MS, overwrite: true });
      ctx.set('Cache-Control', 'no-store');
      ctx.redirect(withoutLang(ownPath(ctx.path), ctx.querystring));
      ctx.status = 303;
      return;
    }
    useLanguage(ctx, resolveLanguage(ctx));
    await next();
  };
}

/**
 * Where the switch on this page leads: the page itself, as a GET. A form's
 * answer (POST) and one-time callbacks go back to the page they belong to.
 */
export function switchTarget(ctx: Pick<Context, 'method' | 'path' | 'querystring'>): string {
  const interaction = /^\/interaction\/([A-Za-z0-9_-]{1,128})(\/|$)/.exec(ctx.path);
  if (interaction) return `/interaction/${interaction[1]}`;
  if (ctx.path === '/demo/callback') return '/';
  if (ctx.path === '/account/callback' || ctx.path === '/account/signout') return '/account';
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return ownPath(ctx.path);
  return withoutLang(ownPath(ctx.path), ctx.querystring);
}

/** A path on this site: never `//host` or `/\host`, which browsers read as another site. */
function ownPath(path: string): string {
  return path.startsWith('/') && !path.startsWith('//') && !path.includes('\\') ? path : '/';
}

function withoutLang(path: string, querystring: string): string {
  const params = new URLSearchParams(querystring);
  params.delete('lang');
  const rest = params.toString();
  return `${path}${rest ? `?${rest}` : ''}`;
}

export function switchHref(ctx: Pick<Context, 'method' | 'path' | 'querystring'>, lang: Language): string {
  const target = switchTarget(ctx);
  return `${target}${target.includes('?') ? '&' : '?'}lang=${lang}`;
}
