/**
 * The owner's Webhooks page (`/account/webhooks`, docs/webhooks.md): the
 * tenant's subscriptions (URL and event types, never the secret), adding one
 * (its signing secret shown on the answer, this once), removing one after a
 * confirmation, and the delivery log, newest first, with each delivery's last
 * answer. A subscription sends the tenant's audit events out, so adding and
 * removing one asks for a recent sign-in, like every sensitive change.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.ts';
import { adminWebhooks, type WebhookAdminDeps } from '../admin/webhooks.ts';
import { formFields } from '../web/forms.ts';
import { refusedRange } from '../web/egress.ts';
import type { AccountKit, Signed } from './kit.ts';
import { owned } from './owned.ts';
import { formatTime, noticeOf } from './labels.ts';

const DELIVERIES_SHOWN = 50;

export function webhookRoutes(router: Router, kit: AccountKit, deps: WebhookAdminDeps) {
  const hooks = adminWebhooks(deps);

  async function page(
    ctx: Context,
    signed: Signed,
    locals: { created?: { id: string; url: string; secret: string }; entered?: { url: string; events: string }; error?: LatchkeyError } = {},
  ) {
    const actor = kit.actor(ctx, signed);
    const [subscriptions, deliveries] = await Promise.all([hooks.list(actor), hooks.deliveries(actor, DELIVERIES_SHOWN)]);
    const urls = new Map(subscriptions.map((s) => [s.id, s.url]));
    kit.render(
      ctx,
      'account/webhooks',
      signed,
      {
        section: 'webhooks',
        notice: noticeOf(ctx.query.notice),
        created: locals.created ?? null,
        entered: locals.entered ?? { url: '', events: '' },
        error: locals.error,
        subscriptions: subscriptions.map((s) => ({ id: s.id, url: s.url, events: s.events.join(', '), created: formatTime(s.createdAt) })),
        deliveries: deliveries.map((d) => ({
          id: d.id,
          url: urls.get(d.subscription) ?? '—',
          type: d.type,
          eventId: d.eventId,
          created: formatTime(d.createdAt),
          state: d.deliveredAt ? 'delivered' : d.attempts > 0 ? 'retrying' : 'waiting',
          attempts: d.attempts,
          status: d.lastStatus,
          error: d.lastError,
          // A refusal of the guard, in the page's language.
          refused: refusedRange(d.lastError),
        })),
      },
      locals.error?.status ?? 200,
    );
  }

  router.get('/webhooks', async (ctx) => {
    const signed = await kit.owner(ctx);
    if (signed) await page(ctx, signed);
  });

  // The answer shows the secret (never a redirect: a URL or the history would keep it).
  router.post('/webhooks', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed || !kit.fresh(ctx, signed, '/account/webhooks')) return;
    const fields = formFields(ctx.request.body, ['url', 'events'], ['csrf'], 2048);
    const entered = { url: fields.url.trim(), events: fields.events };
    try {
      const events = fields.events.split(/[\s,]+/).filter(Boolean);
      const { subscription, secret } = await hooks.subscribe(kit.actor(ctx, signed), entered.url, events);
      ctx.set('Cache-Control', 'no-store');
      await page(ctx, signed, { created: { id: subscription.id, url: subscription.url, secret } });
    } catch (err) {
      if (err instanceof LatchkeyError && err.status === 400) return page(ctx, signed, { entered, error: err });
      throw err;
    }
  });

  // Without `confirm` the button shows what would be removed; `confirm=yes` removes it.
  router.post('/webhooks/:webhookId/remove', async (ctx) => {
    const signed = await kit.owner(ctx, true);
    if (!signed) return;
    const subscription = owned(ctx, 'webhookId');
    const id = subscription.id;
    if (!kit.fresh(ctx, signed, '/account/webhooks')) return;
    const { confirm } = formFields(ctx.request.body, [], ['csrf', 'confirm'], 128);
    if (confirm !== 'yes') {
      return kit.render(ctx, 'account/webhook-remove', signed, {
        section: 'webhooks',
        action: `/account/webhooks/${encodeURIComponent(id)}/remove`,
        subscription: { url: subscription.url, events: subscription.events.join(', ') },
      });
    }
    await hooks.remove(kit.actor(ctx, signed), id);
    ctx.redirect('/account/webhooks?notice=webhookRemoved');
    ctx.status = 303;
  });
}
