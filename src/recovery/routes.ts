/**
 * A forgotten password and an invitation (docs/mail.md):
 *
 *   GET/POST /interaction/:uid/forgot   the login page's "Forgot your password?": an email address;
 *                                       always the same answer, known or not
 *   GET/POST /reset/:token              the mailed one-time link: choose a new password
 *   GET/POST /invite/:token             an invitation's one-time link: choose a first password
 *
 * Neither link signs anybody in: it sets the password, ends every session and
 * token of the person's logins in every tenant, and the next sign-in asks each
 * login's second factor as always.
 */
import type { RouteDeps } from '../services.ts';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { addressGroup, passwordKey } from '../limits.ts';
import type { Identity, Login } from '../storage/accounts/port.ts';
import { normalizeEmail } from '../storage/accounts/port.ts';
import type { LinkPurpose } from '../storage/links/port.ts';
import { LatchkeyError, badRequest, csrfRefused } from '../errors.ts';
import { formFields } from '../web/forms.ts';
import { localeOf, sendPage } from '../web/views.ts';
import { checkNewPassword, PASSWORD_RULES } from '../account/passwords.ts';
import { ANY_TENANT } from '../provider/account-client.ts';
import type { JourneyPlugin } from '../interaction/router.ts';
import { ensureProgress } from '../interaction/journey.ts';
import { upstreamLinks } from '../upstream/links.ts';
import { requestInfo } from '../web/request.ts';
import { constantTimeEqual } from '../crypto/equal.ts';
import { EMAIL_MAX } from '../email.ts';

export type RecoveryDeps = Pick<RouteDeps, 'provider' | 'sessions' | 'config' | 'accounts' | 'links' | 'counters' | 'hasher' | 'limiter' | 'audit' | 'mailer' | 'log' | 'now'>;

/** Links of one purpose (reset links, invitations) one identity may be mailed per hour; past it none is made or sent. */
export const LINKS_PER_HOUR = 5;
/** Forgot-password requests one address (an IPv6 /64) may make an hour; more are answered alike and send nothing. */
const ADDRESS_PER_HOUR = 20;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');

/** What differs between the two links: where they live, how long they work, what they say. */
const PURPOSES = {
  reset: {
    path: '/reset',
    texts: { unknown: 'errors.recovery.unknown', used: 'errors.recovery.used', expired: 'errors.recovery.expired' },
    audit: 'password.reset',
    how: 'mail.password_changed.how_reset',
    window: 'forgot-links',
  },
  invite: {
    path: '/invite',
    texts: { unknown: 'errors.invite.unknown', used: 'errors.invite.used', expired: 'errors.invite.expired' },
    audit: 'password.invitation_accepted',
    how: 'mail.password_changed.how_invite',
    window: 'invite-links',
  },
} as const;

const linkError = (purpose: LinkPurpose, problem: 'unknown' | 'used' | 'expired') => new LatchkeyError('bad_request', 400, PURPOSES[purpose].texts[problem]);

/**
 * What a link is bound to: the identity's password as stored (its hash, or none), under a key from the
 * pepper, so the links hold nothing to test a password hash against. Any change of the password — the
 * account page, another link, an import, the CLI, a sign-in's rehash — gives another value.
 */
function passwordFingerprint(pepper: string, identity: Pick<Identity, 'passwordHash'>): string {
  const key = createHmac('sha256', pepper).update('latchkey link passwords v1').digest();
  return createHmac('sha256', key)
    .update(identity.passwordHash === null ? 'none' : `hash:${identity.passwordHash}`)
    .digest('base64url');
}

/**
 * A place in the identity's sliding window of `purpose`'s links, taken atomically in the shared counter
 * store: of parallel requests (in any app process), at most `LINKS_PER_HOUR` an hour make a link.
 */
async function takeLinkSlot(counters: RecoveryDeps['counters'], identityId: string, purpose: LinkPurpose, now: Date): Promise<boolean> {
  return (await counters.windowTake(`${PURPOSES[purpose].window}:${identityId}`, randomBytes(8).toString('hex'), LINKS_PER_HOUR, 3_600_000, now.getTime())).allowed;
}

/**
 * A new one-time link of `purpose` for the identity (voiding its earlier ones), good only while the
 * identity's password is the one it has now; returns the URL to mail.
 */
export async function issueLink(deps: Pick<RecoveryDeps, 'config' | 'links'>, identity: Pick<Identity, 'id' | 'passwordHash'>, purpose: LinkPurpose, now: Date): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const ttlMs = purpose === 'reset' ? deps.config.mail.resetLinkMinutes * 60_000 : deps.config.mail.inviteLinkHours * 3_600_000;
  await deps.links.create(hashToken(token), {
    purpose,
    identityId: identity.id,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttlMs),
    passwordFingerprint: passwordFingerprint(deps.config.keys.pepper, identity),
  });
  return `${deps.config.issuer}${PURPOSES[purpose].path}/${token}`;
}

export type InvitationResult =
  /** `expiresAt`: when the invitation's link stops working (null for a new-login notice, which has none). */
  | { outcome: 'sent'; identityId: string; expiresAt: Date | null }
  /** The identity was mailed `LINKS_PER_HOUR` invitations this past hour: none is sent, its latest link stays good. */
  | { outcome: 'rate_limited'; identityId: string };

/**
 * Invites the person of `email` to choose a password (an identity without one,
 * or whose owner wants them to set a new one): a one-time link for 72 hours by
 * mail, in `tenant`'s name. Sending again voids the earlier link. At most
 * `LINKS_PER_HOUR` an hour per identity, whoever sends them; past it nothing is
 * sent and the refusal is audited. Null when the email has no login in the tenant.
 *
 * With `welcome` (a login added or given this email by an administrator), an
 * identity that has a password is sent a notice of its new login instead (sign
 * in with the password you have), counted, audited and answered like an
 * invitation: the administrator cannot tell from the answer, the audit or the
 * mail's coming whether the address had a password, anywhere.
 */
export async function sendInvitation(
  deps: Pick<RecoveryDeps, 'config' | 'links' | 'accounts' | 'mailer' | 'audit' | 'counters'>,
  /** `by`: the owner's login that invited; `client`: the application that did; `login`: the login it is for (else the email's first in the tenant). */
  input: { email: string; tenantId: string; lang?: 'en' | 'nl'; by?: string | null; client?: string; now?: Date; welcome?: boolean; login?: string },
): Promise<InvitationResult | null> {
  const email = normalizeEmail(input.email);
  const [identity, tenant, logins] = await Promise.all([
    deps.accounts.findIdentityByEmail(email),
    deps.accounts.getTenant(input.tenantId),
    deps.accounts.listLoginsForEmail(input.tenantId, email),
  ]);
  if (!identity || !tenant || logins.length === 0) return null;
  const login = logins.find((l) => l.id === input.login) ?? logins[0]!;
  const now = input.now ?? new Date();
  const who = { ...(input.by ? { by: input.by } : {}), ...(input.client ? { client: input.client } : {}) };
  if (!(await takeLinkSlot(deps.counters, identity.id, 'invite', now))) {
    await deps.audit.record({ type: 'login.invited', outcome: 'failure', tenant: tenant.id, login: login.id, detail: { ...who, reason: 'rate_limited' } });
    return { outcome: 'rate_limited', identityId: identity.id };
  }
  const lang = input.lang ?? 'en';
  const from = { id: tenant.id, name: tenant.name };
  const notice = input.welcome === true && identity.passwordHash !== null;
  if (notice) {
    await deps.mailer.send({ kind: 'login_added', to: identity.email, lang, tenant: from, link: `${deps.config.issuer}/account` });
  } else {
    const link = await issueLink(deps, identity, 'invite', now);
    await deps.mailer.send({ kind: 'invitation', to: identity.email, lang, tenant: from, link, values: { hours: String(deps.config.mail.inviteLinkHours) } });
  }
  await deps.audit.record({
    type: 'login.invited',
    outcome: 'success',
    tenant: tenant.id,
    login: login.id,
    detail: who,
  });
  return { outcome: 'sent', identityId: identity.id, expiresAt: notice ? null : new Date(now.getTime() + deps.config.mail.inviteLinkHours * 3_600_000) };
}

/** The first step's "Forgot your password?", inside the sign-in. */
export function forgotPassword(deps: RecoveryDeps): JourneyPlugin {
  const { config, accounts, counters, mailer, audit, log } = deps;
  const now = () => new Date(deps.now());

  /** Everything a known email costs beyond an unknown one happens after the answer, so both take alike. */
  async function sendLink(identity: Identity, tenant: { id: string; name: string } | null, lang: 'en' | 'nl', info: { ip: string | null; userAgent: string | null }) {
    const at = now();
    if (!(await takeLinkSlot(counters, identity.id, 'reset', at))) {
      log.info({ identity: identity.id }, 'password reset: too many links this hour; none sent');
      return;
    }
    const link = await issueLink(deps, identity, 'reset', at);
    await mailer.send({ kind: 'password_reset', to: identity.email, lang, tenant, link, values: { minutes: String(config.mail.resetLinkMinutes) } });
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
      const address = info.ip ? await counters.windowTake(`forgot:${addressGroup(info.ip)}`, randomBytes(8).toString('hex'), ADDRESS_PER_HOUR, 3_600_000, now().getTime()) : null;
      const identity = address && !address.allowed ? null : await accounts.findIdentityByEmail(email);
      if (identity) {
        const home = tenant.id === ANY_TENANT ? null : { id: tenant.id, name: tenant.name };
        // Once the answer is out: on the embedded store the link's and the mail's store calls run at once, and
        // begun here they would hold up this answer, which would then take longer for a known address.
        ctx.res.once('close', () => void sendLink(identity, home, lang, info).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'password reset link not sent')));
      }
      page(ctx, interaction.uid, progress.csrf, { sent: true, email });
    });
  };
}

/** `/reset/:token` and `/invite/:token`, the mailed links: they work without the sign-in they came from (another browser, a phone). */
export function linkRouter(deps: RecoveryDeps): Router {
  const { config, accounts, links, hasher, limiter, audit, mailer } = deps;
  const now = () => new Date(deps.now());
  const router = new Router();
  const csrfKey = config.keys.cookieKeys[0]!;
  // The form's token is bound to the link: a page elsewhere cannot post it without knowing the link.
  const csrfFor = (tokenHash: string) => createHmac('sha256', csrfKey).update(`link:${tokenHash}`).digest('base64url');

  async function current(purpose: LinkPurpose, token: string | undefined) {
    if (!token || !TOKEN.test(token)) throw linkError(purpose, 'unknown');
    const tokenHash = hashToken(token);
    const link = await links.find(tokenHash, purpose);
    if (!link) throw linkError(purpose, 'unknown');
    if (link.used) throw linkError(purpose, 'used');
    if (link.expiresAt <= now()) throw linkError(purpose, 'expired');
    const identity = await accounts.getIdentity(link.identityId);
    if (!identity) throw linkError(purpose, 'unknown');
    // The password changed since the link was sent (by any way): it was for a password that is gone.
    const password = passwordFingerprint(config.keys.pepper, identity);
    if (link.passwordFingerprint !== undefined && link.passwordFingerprint !== password) throw linkError(purpose, 'used');
    return { tokenHash, identity, password };
  }

  /** The page names the organisation the person signs in to (the first, when they have several). */
  async function nameTenant(ctx: Context, identity: Identity) {
    const [first] = await accounts.listLoginsForEmailAllTenants(identity.email);
    const tenant = first ? await accounts.getTenant(first.tenant) : null;
    if (tenant) ctx.state.tenantName = tenant.name;
  }

  const form = (ctx: Context, purpose: LinkPurpose, tokenHash: string, identity: Identity, error?: LatchkeyError) =>
    sendPage(ctx, 'reset-password', { purpose, action: ctx.path, csrf: csrfFor(tokenHash), email: identity.email, ...PASSWORD_RULES, error }, error?.status ?? 200);

  for (const purpose of ['reset', 'invite'] as const) {
    const { path } = PURPOSES[purpose];
    router.get(`${path}/:token`, async (ctx) => {
      const { tokenHash, identity } = await current(purpose, ctx.params.token);
      await nameTenant(ctx, identity);
      form(ctx, purpose, tokenHash, identity);
    });

    router.post(`${path}/:token`, async (ctx) => {
      const { tokenHash, identity, password } = await current(purpose, ctx.params.token);
      await nameTenant(ctx, identity);
      let fields: { password?: string; password_confirm?: string; csrf?: string };
      try {
        fields = formFields(ctx.request.body, [], ['csrf', 'password', 'password_confirm'], PASSWORD_RULES.maxLength);
      } catch (err) {
        if (err instanceof LatchkeyError) return form(ctx, purpose, tokenHash, identity, err);
        throw err;
      }
      if (!constantTimeEqual(fields.csrf ?? '', csrfFor(tokenHash))) throw csrfRefused();
      const problem = checkNewPassword(fields.password ?? '', fields.password_confirm ?? '', identity.email);
      if (problem) return form(ctx, purpose, tokenHash, identity, badRequest(`errors.password.${problem}`, { problem, ...PASSWORD_RULES }));
      // Checked above, used here: of two tabs posting one link, one sets the password, and only while the
      // password is still the one the link was sent for.
      if (!(await links.use(tokenHash, purpose, now(), password))) throw linkError(purpose, 'used');
      // And while the hash is made: a change that lands meanwhile is not written over (the link is spent).
      if (!(await accounts.setPasswordHashIf(identity.id, identity.passwordHash ?? null, await hasher.hash(fields.password!)))) throw linkError(purpose, 'used');
      const logins: Login[] = await accounts.listLoginsForEmailAllTenants(identity.email);
      await deps.sessions.endLoginSessions(logins.map((l) => l.id));
      // Proving the mailbox ends a lock on the password; the second factor's locks stay.
      await limiter.unlock(passwordKey(identity.email));
      const info = requestInfo(ctx);
      // A new password is a new start for the upstream accounts too: each is confirmed again with it.
      if (config.upstream.unlinkOn.includes('password')) await upstreamLinks({ accounts, audit }).unlinkAll(identity, { ...info, reason: 'password' });
      for (const tenantId of new Set(logins.map((l) => l.tenant))) {
        const inTenant = logins.filter((l) => l.tenant === tenantId);
        await audit.record({ type: PURPOSES[purpose].audit, outcome: 'success', tenant: tenantId, login: inTenant[0]!.id, ...info, detail: { loginsSignedOut: logins.length } });
      }
      const { lang, t } = localeOf(ctx);
      const when = now().toLocaleString(lang === 'nl' ? 'nl-NL' : 'en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' });
      await mailer.send({ kind: 'password_changed', to: identity.email, lang, tenant: null, values: { when: `${when} UTC`, how: t(PURPOSES[purpose].how) } });
      sendPage(ctx, 'reset-password', { purpose, done: true, email: identity.email });
    });
  }

  return router;
}
