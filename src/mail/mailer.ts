/**
 * Mail as a component (docs/mail.md): a message is rendered (pug, text and
 * HTML parts, in the recipient's language), written to the outbox, and sent by
 * a worker that every app process runs; a mail server that is down delays a
 * message and loses none.
 */
import nodemailer from 'nodemailer';
import type { Config } from '../../config/index.ts';
import type { Logger } from '../log.ts';
import type { OutboxStore, QueuedMail } from '../storage/outbox/port.ts';
import { translator, type Language } from '../i18n.ts';
import { renderView } from '../web/views.ts';
import { queueWorker } from '../queue-worker.ts';

/** The messages Latchkey sends; each has `mail.{kind}.*` texts in every catalogue. */
export type MailKind = 'password_reset' | 'password_changed' | 'invitation' | 'login_added' | 'notice_factor_reset' | 'notice_factor_set' | 'notice_locked';

export interface MailMessage {
  kind: MailKind;
  to: string;
  lang: Language;
  /** The tenant the message speaks for (its name is in the message), or null for the person's identity as a whole. */
  tenant: { id: string; name: string } | null;
  /** The one action link (a one-time link), if the message has one. */
  link?: string;
  /** Values the texts interpolate (never a secret). */
  values?: Record<string, string>;
}

/** Delivers one message now, or throws. */
export interface MailTransport {
  send(mail: QueuedMail): Promise<void>;
  close(): void;
}

export interface Mailer {
  /** Renders the message and queues it; the worker sends it soon after. */
  send(message: MailMessage): Promise<void>;
  /** Sends every message that is due; returns how many were delivered. */
  drain(): Promise<number>;
  /** Stops the worker. */
  close(): void;
}

const LEASE_MS = 60_000;
const KEEP_SENT_MS = 7 * 24 * 3_600_000;
const SWEEP_EVERY_MS = 10 * 60_000;
const BATCH = 10;
const FIRST_RETRY_MS = 5_000;
const LONGEST_RETRY_MS = 3_600_000;

/** The wait after a failed attempt: 5 s, doubling to an hour. */
export const retryDelayMs = (attempt: number) => Math.min(FIRST_RETRY_MS * 2 ** Math.min(attempt - 1, 20), LONGEST_RETRY_MS);

/** SMTP with `SMTP_URL`; otherwise the log (with the links: the embedded trial), or nothing at all with `MAIL=off`. */
export function createTransport(config: Config['mail'], log: Logger): MailTransport {
  if (config.smtpUrl) {
    const transporter = nodemailer.createTransport(config.smtpUrl, { from: config.from });
    return {
      async send(mail) {
        await transporter.sendMail({ from: config.from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
      },
      close: () => transporter.close(),
    };
  }
  return {
    async send(mail) {
      if (!config.enabled) return log.info({ mail: { kind: mail.kind, to: mail.to } }, 'mail is off (MAIL=off): message dropped');
      log.info({ mail: { kind: mail.kind, to: mail.to, subject: mail.subject } }, `mail to ${mail.to} (no SMTP_URL, so it is written here):\n${mail.text}`);
    },
    close() {},
  };
}

export function renderMail(message: MailMessage): { subject: string; text: string; html: string } {
  const t = translator(message.lang);
  const values = { tenant: message.tenant?.name ?? 'Latchkey', ...message.values };
  const key = (part: string) => `mail.${message.kind}.${part}`;
  const locals = {
    lang: message.lang,
    t,
    subject: t(key('subject'), values),
    intro: t(key('intro'), values),
    action: message.link ? t(key('action'), values) : null,
    link: message.link ?? null,
    outro: t(key('outro'), values),
    signature: t('mail.signature', values),
  };
  return { subject: locals.subject, text: renderView('mail/message.text', locals), html: renderView('mail/message', locals) };
}

/**
 * `worker: false` only queues (the operator CLI, which leaves at once): a
 * server's worker sends what it queued.
 */
export function createMailer({
  outbox,
  transport,
  log,
  now = () => new Date(),
  intervalMs = 2_000,
  worker = true,
}: {
  outbox: OutboxStore;
  transport: MailTransport;
  log: Logger;
  now?: () => Date;
  intervalMs?: number;
  worker?: boolean;
}): Mailer {
  async function drainOnce(): Promise<number> {
    let delivered = 0;
    for (;;) {
      const batch = await outbox.claim(now(), LEASE_MS, BATCH);
      if (batch.length === 0) return delivered;
      for (const mail of batch) {
        try {
          await transport.send(mail);
          await outbox.delivered(mail.id, mail.attempt, now());
          delivered++;
        } catch (err) {
          const retryAt = new Date(now().getTime() + retryDelayMs(mail.attempt));
          log.warn({ err: (err as Error).message, kind: mail.kind, attempt: mail.attempt, retryAt }, 'mail not delivered; will retry');
          await outbox.failed(mail.id, mail.attempt, retryAt, (err as Error).message ?? String(err));
        }
      }
    }
  }

  const loop = queueWorker({
    drainOnce,
    // Sent messages (their text already erased) are forgotten after a week.
    sweep: () => outbox.sweep(new Date(now().getTime() - KEEP_SENT_MS)),
    log,
    waiting: 'outbox unavailable; mail waits',
    running: worker,
    intervalMs,
    sweepEveryMs: SWEEP_EVERY_MS,
  });

  return {
    async send(message) {
      const rendered = renderMail(message);
      await outbox.enqueue({ kind: message.kind, to: message.to, tenant: message.tenant?.id ?? null, ...rendered }, now());
      loop.kick();
    },
    drain: loop.drain,
    close() {
      loop.close();
      transport.close();
    },
  };
}
