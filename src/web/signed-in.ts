/**
 * Who this browser is signed in as, for the header of the pages outside
 * `/account` (the start page, the journey's pages, the demo's result): the
 * provider's session cookie, read and checked like the account pages check
 * theirs (the login is still there, enabled, and its sessions were not ended
 * since). Only names the login — it grants nothing.
 */
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountStore } from '../storage/accounts/port.ts';
import { endedBefore } from '../provider/revocation.ts';
import { loginLabel } from '../names.ts';

/** oidc-provider's session cookie (its default name), signed with the same keys as ours. */
const SESSION_COOKIE = '_session';

export function signedInHeader({ provider, accounts }: { provider: Provider; accounts: AccountStore }) {
  return async function nameTheSignIn(ctx: Context, next: Next) {
    if (ctx.method === 'GET' && !ctx.path.startsWith('/account') && !ctx.path.startsWith('/static/')) {
      const id = ctx.cookies.get(SESSION_COOKIE, { signed: true });
      if (id && id.length <= 128) {
        const session = await provider.Session.find(id);
        const login = session?.accountId ? await accounts.getLogin(session.accountId) : null;
        if (login && !login.disabled && typeof session?.loginTs === 'number' && !endedBefore(await accounts.loginSessionsNotBefore(login.id), session.loginTs)) {
          const tenant = await accounts.getTenant(login.tenant);
          if (tenant) ctx.state.signedInAs = loginLabel(login, tenant);
        }
      }
    }
    await next();
  };
}
