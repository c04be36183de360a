/**
 * A forgotten password (docs/mail.md):
 *
 *   GET/POST /interaction/:uid/forgot   the login page's "Forgot your password?": an email address;
 *                                       always the same answer, known or not
 *   GET/POST /reset/:token              the mailed one-time link: choose a new password
 *
 * A reset signs nobody in: it sets the password, ends every session and token
 * of the person's logins in every tenant, and the next sign-in asks each
 * login's second factor as always.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../../config/index.ts';
import type { Audit } from '../audit.ts';
import type { Hasher } from '../crypto/password.ts';
import type { Logger } from '../log.ts';
import type { Limiter } from '../limits.ts';
import { passwordKey } from '../limits.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { AccountStore, Identity, Login } from '../storage/accounts/port.ts';
import { normalizeEmail } from '../storage/accounts/port.ts';
import type { CounterStore, LockPolicy } from '../storage/counters/port.ts';
import type { LinkStore } from '../storage/links/port.ts';
import { LatchkeyError, badRequest, csrfRefused } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { localeOf, sendPage } from '../web/views.ts';
import { endLoginSessions } from '../account/revocation.ts';
import { checkNewPassword, PASSWORD_RULES } from '../account/passwords.ts';
import { ANY_TENANT } from '../account/client.ts';
import type { JourneyPlugin } from '../interaction/router.ts';
import { ensureProgress } from '../interaction/journey.ts';

export interface RecoveryDeps {
  provider: Provider;
  config: Config;
  accounts: AccountStore;
  links: LinkStore;
  counters: CounterStore;
  hasher: Hasher;
  limiter: Limiter;
  audit: Audit;
  mailer: Mailer;
  log: Logger;
  now?: () => Date;
}

const EMAIL_MAX = 320;
/** Reset links one identity may be sent per hour; more requests are answered alike and send nothing. */
const LINKS_PER_HOUR = 5;
/** Forgot-password requests one address may make before it is slowed down (for an hour at most). */
const ADDRESS_POLICY: LockPolicy = { threshold: 20, baseLockMs: 15 * 60_000, maxLockMs: 3_600_000, maxFailures: Infinity, idleResetMs: 3_600_000 };
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');

const linkUnknown = () => new LatchkeyError('bad_request', 400, 'errors.recovery.unknown');
const linkUsed = () => new LatchkeyError('bad_request', 400, 'errors.recovery.used');
const linkExpired = () => new LatchkeyError('bad_request', 400, 'errors.recovery.expired');

/** The first step's "Forgot your password?", inside the sign-in. */
export function forgotPassword(deps: RecoveryDeps): JourneyPlugin {
  const { config, accounts, links, counters, mailer, audit, log } = deps;
  const now = deps.now ?? (() => new Date());

  /** Everything a known email costs beyond an unknown one happens after the answer, so both take alike. */
  async function sendLink(identity: Identity, tenant: { id: string; name: string } | null, lang: 'en' | 'nl', info: { ip: string | null; userAgent: string | null }) {
    const at = now();
    if ((await links.countSince(identity.id, 'reset', new Date(at.getTime() - 3_600_000))) >= LINKS_PER_HOUR) {
      log.info({ identity: identity.id }, 'password reset: too many links this hour; none sent');
      return;
    }
    const token = randomBytes(32).toString('base64url');
    await links.create(hashToken(token), { purpose: 'reset', identityId: identity.id, createdAt: at, expiresAt: new Date(at.getTime() + config.mail.resetLinkMinutes * 60_000) });
    await mailer.send({ kind: 'password_reset', to: identity.email, lang, tenant, link: `${config.issuer}/reset/${token}`, values: { minutes: String(config.mail.resetLinkMinutes) } });
    const logins = await accounts.listLoginsForEmailAllTenants(identity.email);
    for (const tenantId of new Set(logins.map((l) => l.tenant))) {
      await audit.record({ type: 'password.reset_requested', outcome: 'success', tenant: tenantId, login: logins.find((l) => l.tenant === tenantId)!.id, ...info });
    }
  }

  return (router, steps) => {
    const page = (ctx: Context, uid: string, csrf: string, locals: Record<string, unknown>, status = 200) =>
      sendPage(ctx, 'forgot-password', { uid, csrf, minutes: config.mail.resetLinkMinutes, email: '', ...locals }, status);

    router.get('/forgot', async (ctx) => {
      const { interaction } = await steps.load(ctx, 'login');
      const progress = await ensureProgress(interaction);
      page(ctx, interaction.uid, progress.csrf, {});
    });

    router.post('/forgot', async (ctx) => {
      const { interaction, tenant, progress } = await steps.loadForPost(ctx, 'login');
      let email = '';
      try {
        email = normalizeEmail(formFields(ctx.request.body, ['email'], ['csrf'], EMAIL_MAX).email);
        if (!email || !email.includes('@')) throw badRequest('errors.signin.missing');
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'bad_request') return page(ctx, interaction.uid, progress.csrf, { error: err, email: email.slice(0, EMAIL_MAX) }, 400);
        throw err;
      }
      const info = steps.requestInfo(ctx);
      const lang = localeOf(ctx).lang;
      const address = info.ip ? await counters.take(`forgot:ip:${info.ip}`, ADDRESS_POLICY, now().getTime()) : null;
      const identity = address && !address.allowed ? null : await accounts.findIdentityByEmail(email);
      if (identity) {
        const home = tenant.id === ANY_TENANT ? null : { id: tenant.id, name: tenant.name };
        void sendLink(identity, home, lang, info).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'password reset link not sent'));
      }
      page(ctx, interaction.uid, progress.csrf, { sent: true, email });
    });
  };
}

/** `/reset/:token`, the mailed link: works without the sign-in it came from (another browser, a phone). */
export function resetRouter(deps: RecoveryDeps): Router {
  const { config, accounts, links, hasher, limiter, provider, audit, mailer } = deps;
  const now = deps.now ?? (() => new Date());
  const router = new Router();
  const csrfKey = config.keys.cookieKeys[0]!;
  // The form's token is bound to the link: a page elsewhere cannot post it without knowing the link.
  const csrfFor = (tokenHash: string) => createHmac('sha256', csrfKey).update(`reset:${tokenHash}`).digest('base64url');

  async function current(token: string | undefined) {
    if (!token || !TOKEN.test(token)) throw linkUnknown();
    const tokenHash = hashToken(token);
    const link = await links.find(tokenHash, 'reset');
    if (!link) throw linkUnknown();
    if (link.used) throw linkUsed();
    if (link.expiresAt <= now()) throw linkExpired();
    const identity = await accounts.getIdentity(link.identityId);
    if (!identity) throw linkUnknown();
    return { tokenHash, identity };
  }

  const form = (ctx: Context, tokenHash: string, identity: Identity, error?: LatchkeyError) =>
    sendPage(ctx, 'reset-password', { action: ctx.path, csrf: csrfFor(tokenHash), email: identity.email, ...PASSWORD_RULES, error }, error?.status ?? 200);

  router.get('/reset/:token', async (ctx) => {
    const { tokenHash, identity } = await current(ctx.params.token);
    form(ctx, tokenHash, identity);
  });

  router.post('/reset/:token', async (ctx) => {
    const { tokenHash, identity } = await current(ctx.params.token);
    let fields: { password?: string; password_confirm?: string; csrf?: string };
    try {
      fields = formFields(ctx.request.body, [], ['csrf', 'password', 'password_confirm'], PASSWORD_RULES.maxLength);
    } catch (err) {
      if (err instanceof LatchkeyError) return form(ctx, tokenHash, identity, err);
      throw err;
    }
    const expected = Buffer.from(csrfFor(tokenHash));
    const given = Buffer.from(fields.csrf ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw csrfRefused();
    const problem = checkNewPassword(fields.password ?? '', fields.password_confirm ?? '', identity.email);
    if (problem) return form(ctx, tokenHash, identity, badRequest(`errors.password.${problem}`, { problem, ...PASSWORD_RULES }));
    // Checked above, used here: of two tabs posting one link, one sets the password.
    if (!(await links.use(tokenHash, 'reset', now()))) throw linkUsed();
    await accounts.setPasswordHash(identity.id, await hasher.hash(fields.password!));
    const logins: Login[] = await accounts.listLoginsForEmailAllTenants(identity.email);
    await endLoginSessions(accounts, provider, logins.map((l) => l.id));
    // Proving the mailbox ends a lock on the password; the second factor's locks stay.
    await limiter.unlock(passwordKey(identity.email));
    const info = { ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null };
    for (const tenantId of new Set(logins.map((l) => l.tenant))) {
      const inTenant = logins.filter((l) => l.tenant === tenantId);
      await audit.record({ type: 'password.reset', outcome: 'success', tenant: tenantId, login: inTenant[0]!.id, ...info, detail: { loginsSignedOut: logins.length } });
    }
    const when = now().toLocaleString(localeOf(ctx).lang === 'nl' ? 'nl-NL' : 'en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' });
    const lang = localeOf(ctx).lang;
    await mailer.send({ kind: 'password_changed', to: identity.email, lang, tenant: null, values: { when: `${when} UTC`, how: localeOf(ctx).t('mail.password_changed.how_reset') } });
    sendPage(ctx, 'reset-password', { done: true });
  });

  return router;
}
