/**
 * The account pages (docs/account.md): `/account` for every login, and the
 * owner's Security settings, Users, Audit log, Webhooks and SCIM. Signing in goes through the
 * provider's journey as the built-in account client; the pages then run on
 * their own session cookie (`./kit.ts`).
 */
import Router from '@koa/router';
import { createAccountKit, type AccountDeps } from './kit.ts';
import { signInRoutes } from './signin.ts';
import { profileRoutes } from './profile.ts';
import { ownerRoutes } from './owner.ts';
import { webhookRoutes } from './webhooks.ts';
import type { Services } from '../services.ts';
import { peopleRoutes } from './people.ts';
import { scimRoutes } from './scim.ts';
import { auditRoutes } from './audit.ts';

export function accountRouter(deps: AccountDeps & Pick<Services, 'webhooks' | 'stores' | 'scimTokens'>): Router {
  const router = new Router({ prefix: '/account' });
  const kit = createAccountKit(deps);
  signInRoutes(router, kit);
  profileRoutes(router, kit);
  peopleRoutes(router, kit);
  ownerRoutes(router, kit);
  auditRoutes(router, kit);
  webhookRoutes(router, kit, deps);
  scimRoutes(router, kit, deps);
  return router;
}
