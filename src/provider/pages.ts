import type { KoaContextWithOIDC, errors } from 'oidc-provider';
import { hasText } from '../i18n.ts';
import { resolveLanguage, useLanguage } from '../web/language.ts';
import { sendPage, type PageContext } from '../web/views.ts';
import { backFrom } from '../web/errors.ts';

/** The provider's pages speak the request's `ui_locales`, else the visitor's language. */
function speak(ctx: KoaContextWithOIDC): PageContext & KoaContextWithOIDC {
  const params = ctx.oidc?.params as { ui_locales?: unknown } | undefined;
  useLanguage(ctx, resolveLanguage(ctx, { uiLocales: params?.ui_locales }));
  return ctx as PageContext & KoaContextWithOIDC;
}

/** The provider's error page (bad authorization requests and the like): its code in words, its English description as detail. */
export async function renderProviderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }, _error: errors.OIDCProviderError | Error) {
  const page = speak(ctx);
  sendPage(page, 'error', {
    title: 'error.provider',
    error: undefined,
    message: hasText('en', `provider.${out.error}`) ? `provider.${out.error}` : 'provider.default',
    detail: out.error_description,
    code: out.error,
    back: backFrom(ctx.path),
  });
}

export async function renderLogout(ctx: KoaContextWithOIDC, form: string) {
  sendPage(speak(ctx), 'logout', { form });
}

export async function renderLogoutSuccess(ctx: KoaContextWithOIDC) {
  sendPage(speak(ctx), 'logged-out', {});
}
