/**
 * "Where you're signed in" on the profile: the login's sessions
 * (`src/sessions`), each with its browser, address, times and apps; a person
 * signs out one of them, or every one but this browser's. Either ends the
 * session's single sign-on and its apps' tokens, and tells its apps by
 * back-channel logout.
 */
import type Router from '@koa/router';
import { badRequest, notFound } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { formatTime } from './labels.ts';
import { ACCOUNT_CLIENT_ID } from '../provider/account-client.ts';
import type { Translate } from '../i18n.ts';
import type { AccountKit } from './kit.ts';
import type { SessionView } from '../sessions/index.ts';

const SESSION_ID_MAX = 128;

/**
 * A login's sessions as the pages show them (`sessionsTable` in
 * `views/account/mixins.pug`): the profile's, and the owner's page of a
 * person. `thisSession`, the browser's own, comes first.
 */
export function sessionsShown(sessions: SessionView[], thisSession: string | null, t: Translate) {
  return sessions
    .map((s) => ({
      id: s.id,
      current: s.id === thisSession,
      browser: s.browser,
      ip: s.ip ?? '',
      signedInAt: formatTime(s.signedInAt),
      lastSeen: formatTime(s.lastSeenAt),
      // The account pages' own client has a name in each language.
      apps: s.apps.map((a) => (a.clientId === ACCOUNT_CLIENT_ID ? t('account.audience') : a.name)),
    }))
    .sort((a, b) => Number(b.current) - Number(a.current));
}

export function sessionRoutes(router: Router, kit: AccountKit) {
  const { sessions, audit } = kit.deps;

  router.post('/profile/sessions/end', async (ctx) => {
    const signed = await kit.signedInForm(ctx);
    if (!signed) return;
    const { session } = formFields(ctx.request.body, ['session'], ['csrf'], SESSION_ID_MAX);
    // This browser signs out with the page's own sign-out, which also clears its cookie.
    if (session === signed.session.sid) throw badRequest('errors.sessions.thisSession');
    if (!(await sessions.endSession(signed.login.id, session))) throw notFound('errors.sessions.noSuchSession');
    await audit.record({
      type: 'session.ended',
      outcome: 'success',
      tenant: signed.tenant.id,
      login: signed.login.id,
      ...kit.requestInfo(ctx),
      detail: { by: signed.login.id, sessions: 1 },
    });
    ctx.redirect('/account?notice=sessionEnded');
    ctx.status = 303;
  });

  router.post('/profile/sessions/end-others', async (ctx) => {
    const signed = await kit.signedInForm(ctx);
    if (!signed) return;
    formFields(ctx.request.body, [], ['csrf'], SESSION_ID_MAX);
    const ended = await sessions.endOtherSessions(signed.login.id, signed.session.sid);
    await audit.record({
      type: 'session.ended',
      outcome: 'success',
      tenant: signed.tenant.id,
      login: signed.login.id,
      ...kit.requestInfo(ctx),
      detail: { by: signed.login.id, sessions: ended, others: true },
    });
    ctx.redirect('/account?notice=otherSessionsEnded');
    ctx.status = 303;
  });
}
