/**
 * The one guard of every id in an owner page's path: a route parameter named
 * here (`/users/:loginId/…`, `/applications/:clientId/…`) is looked up in the
 * signed-in owner's tenant before the route runs. Anything else — another
 * tenant's record, a record that does not exist, a value that could not be an
 * id — is the same 403 (`notInTenant`), so no page tells another tenant's owner
 * what exists outside their tenant. A route only reads what the guard found
 * (`owned`); a new route with one of these parameters is guarded without a
 * line of its own.
 */
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { LatchkeyError, notInTenant } from '../errors.ts';
import type { Login, UserType } from '../storage/accounts/port.ts';
import type { ScimToken } from '../storage/scim/port.ts';
import type { Subscription } from '../storage/webhooks/port.ts';
import type { Services } from '../services.ts';
import { getClientSummary, type ClientSummary } from '../admin/clients.ts';
import { listUpstreams } from '../admin/upstreams.ts';
import type { UpstreamSetting } from '../upstream/settings.ts';
import { adminWebhooks } from '../admin/webhooks.ts';
import type { AccountDeps, AccountKit, Signed } from './kit.ts';

/** What each guarded parameter names, as the route reads it. */
export interface Owned {
  loginId: Login;
  clientId: ClientSummary;
  typeId: UserType;
  providerId: UpstreamSetting;
  webhookId: Subscription;
  tokenId: ScimToken;
}

export type OwnedParam = keyof Owned;

type Lookups = { [P in OwnedParam]: (signed: Signed, id: string, ctx: Context) => Promise<Owned[P] | null | undefined> };

const ID_MAX = 256;
const FOUND = 'latchkeyOwned';

/** The record the guard found for `param` on this request. */
export function owned<P extends OwnedParam>(ctx: Context, param: P): Owned[P] {
  const found = (ctx.state[FOUND] as Partial<Owned> | undefined)?.[param];
  if (!found) throw new Error(`the route reads "${param}", which no guard looked up`);
  return found as Owned[P];
}

/** A lookup's "not in this tenant" (a 404 of `src/admin/`) is the guard's null. */
async function orNull<T>(lookup: Promise<T>): Promise<T | null> {
  try {
    return await lookup;
  } catch (err) {
    if (err instanceof LatchkeyError && err.code === 'not_found') return null;
    throw err;
  }
}

/** Registers the guard of every parameter of `Owned` on the account router (before or after its routes). */
export function tenantGuards(router: Router, kit: AccountKit, deps: AccountDeps & Pick<Services, 'webhooks' | 'stores' | 'scimTokens'>): OwnedParam[] {
  const hooks = adminWebhooks(deps);
  const lookups: Lookups = {
    loginId: (signed, id, ctx) => orNull(kit.people.login(kit.actor(ctx, signed), id)),
    clientId: (signed, id) => orNull(getClientSummary(deps, signed.tenant.id, id)),
    typeId: async (signed, id) => signed.tenant.userTypes.find((t) => t.id === id),
    providerId: async (signed, id) => (await listUpstreams(deps, signed.tenant.id)).find((u) => u.id === id),
    webhookId: async (signed, id, ctx) => (await hooks.list(kit.actor(ctx, signed))).find((s) => s.id === id),
    tokenId: async (signed, id) => (await deps.scimTokens.list(signed.tenant.id)).find((t) => t.id === id),
  };
  const params = Object.keys(lookups) as OwnedParam[];
  for (const param of params) {
    router.param(param, async (value: string, ctx: Context, next: Next) => {
      // The route's own check, done first: who is signed in, the form's origin and CSRF token, an owner.
      const signed = await kit.owner(ctx, ctx.method !== 'GET' && ctx.method !== 'HEAD');
      if (!signed) return;
      const found = typeof value === 'string' && value.length <= ID_MAX ? await lookups[param](signed, value, ctx) : null;
      if (!found) throw notInTenant();
      ctx.state[FOUND] = { ...(ctx.state[FOUND] as Partial<Owned> | undefined), [param]: found };
      await next();
    });
  }
  return params;
}
