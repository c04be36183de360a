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
import { sessionRoutes } from './sessions.ts';
import { userTypeRoutes } from './user-types.ts';
import { ownerListRoutes } from './owners.ts';
import { providerRoutes } from './providers.ts';
import { applicationRoutes } from './applications.ts';
import { auditRoutes } from './audit.ts';
import { personPageRoutes } from './person-page.ts';
import { tenantGuards } from './owned.ts';

export function accountRouter(deps: AccountDeps & Pick<Services, 'webhooks' | 'stores' | 'scimTokens'>): Router {
  const router = new Router({ prefix: '/account' });
  const kit = createAccountKit(deps);
  // Before any route: every owner page's id is looked up in the owner's tenant first.
  tenantGuards(router, kit, deps);
  signInRoutes(router, kit);
  profileRoutes(router, kit);
  sessionRoutes(router, kit);
  peopleRoutes(router, kit);
  personPageRoutes(router, kit);
  ownerRoutes(router, kit);
  userTypeRoutes(router, kit);
  ownerListRoutes(router, kit);
  providerRoutes(router, kit);
  applicationRoutes(router, kit);
  auditRoutes(router, kit);
  webhookRoutes(router, kit, deps);
  scimRoutes(router, kit, deps);
  return router;
}
