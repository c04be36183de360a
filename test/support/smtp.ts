// A real SMTP server for tests (the smtp-server package) on a loopback port,
// reading what arrives with mailparser. It can go down and come back on the
// same port, as a mail server does.
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface TestSmtp {
  url: string;
  messages: ParsedMail[];
  /** The next message to `to` (already arrived or arriving within `timeoutMs`). */
  next(to: string, timeoutMs?: number): Promise<ParsedMail>;
  /** Messages to `to` so far. */
  to(to: string): ParsedMail[];
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

const recipients = (m: ParsedMail) => (Array.isArray(m.to) ? m.to : m.to ? [m.to] : []).flatMap((a) => a.value.map((v) => v.address?.toLowerCase()));

export async function startSmtp(): Promise<TestSmtp> {
  // The first time on a port the OS picks; started again on that same port.
  let port = 0;
  const messages: ParsedMail[] = [];
  const taken = new Set<ParsedMail>();
  const waiting: (() => void)[] = [];
  let server: SMTPServer | null = null;

  const up = () =>
    new Promise<void>((resolve, reject) => {
      server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS', 'AUTH'],
        logger: false,
        onData(stream, _session, callback) {
          simpleParser(stream)
            .then((parsed) => {
              messages.push(parsed);
              for (const wake of waiting.splice(0)) wake();
              callback();
            })
            .catch(callback);
        },
      });
      const s = server;
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.server.address() as { port: number }).port;
        resolve();
      });
    });
  const down = () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await up();

  const smtp: TestSmtp = {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    to: (to) => messages.filter((m) => recipients(m).includes(to.toLowerCase())),
    async next(to, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = smtp.to(to).find((m) => !taken.has(m));
        if (found) {
          taken.add(found);
          return found;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no mail to ${to} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiting.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    down,
    up,
    stop: down,
  };
  return smtp;
}

/** The first https?:// link of a message's text part. */
export function linkOf(mail: ParsedMail): string {
  const m = /https?:\/\/\S+/.exec(mail.text ?? '');
  if (!m) throw new Error(`no link in: ${mail.text}`);
  return m[0];
}
