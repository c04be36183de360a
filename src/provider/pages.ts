import type { KoaContextWithOIDC, errors } from 'oidc-provider';
import { renderView } from '../web/views.ts';

/** The provider's error page (bad authorization requests and the like). */
export async function renderProviderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }, _error: errors.OIDCProviderError | Error) {
  ctx.type = 'html';
  ctx.body = renderView('error', {
    title: 'Sign-in could not continue',
    message: out.error_description ?? 'The request could not be completed.',
    code: out.error,
  });
}

export async function renderLogout(ctx: KoaContextWithOIDC, form: string) {
  ctx.type = 'html';
  ctx.body = renderView('logout', { form });
}

export async function renderLogoutSuccess(ctx: KoaContextWithOIDC) {
  ctx.type = 'html';
  ctx.body = renderView('logged-out', {});
}
