import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { OutboxStore, QueuedMail } from '../port.ts';

interface Row {
  id: string;
  kind: string;
  recipient: string;
  subject: string;
  text: string;
  html: string;
  tenant: string | null;
  attempts: number;
  created_at: number;
}

/**
 * The outbox in the SQLite table `outbox` of the database the caller opened.
 * `claim` runs in a BEGIN IMMEDIATE transaction, so two processes sharing the
 * file never lease one message at once.
 */
export function createSqliteOutboxStore(db: Database.Database): OutboxStore {
  db.exec(`
    CREATE TABLE IF NOT EXISTS outbox (
      id TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      recipient TEXT NOT NULL,
      subject TEXT NOT NULL,
      text TEXT NOT NULL,
      html TEXT NOT NULL,
      tenant TEXT,
      attempts INTEGER NOT NULL DEFAULT 0,
      due_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      sent_at INTEGER,
      last_error TEXT
    );
    CREATE INDEX IF NOT EXISTS outbox_due ON outbox (sent_at, due_at);
  `);
  const stmt = {
    insert: db.prepare<[string, string, string, string, string, string, string | null, number, number]>(
      'INSERT INTO outbox (id, kind, recipient, subject, text, html, tenant, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    due: db.prepare<[number, number], Row>(
      'SELECT id, kind, recipient, subject, text, html, tenant, attempts, created_at FROM outbox WHERE sent_at IS NULL AND due_at <= ? ORDER BY due_at, created_at LIMIT ?',
    ),
    lease: db.prepare<[number, string, number]>('UPDATE outbox SET attempts = attempts + 1, due_at = ? WHERE id = ? AND attempts = ? AND sent_at IS NULL'),
    delivered: db.prepare<[number, string, number]>("UPDATE outbox SET sent_at = ?, text = '', html = '', last_error = NULL WHERE id = ? AND attempts = ?"),
    failed: db.prepare<[number, string, string, number]>('UPDATE outbox SET due_at = ?, last_error = ? WHERE id = ? AND attempts = ? AND sent_at IS NULL'),
    pending: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL'),
    sweep: db.prepare<[number]>('DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?'),
  };

  const claim = db.transaction((now: number, leaseMs: number, limit: number): QueuedMail[] => {
    const claimed: QueuedMail[] = [];
    for (const row of stmt.due.all(now, limit)) {
      if (stmt.lease.run(now + leaseMs, row.id, row.attempts).changes !== 1) continue;
      claimed.push({
        id: row.id,
        kind: row.kind,
        to: row.recipient,
        subject: row.subject,
        text: row.text,
        html: row.html,
        tenant: row.tenant,
        attempt: row.attempts + 1,
        createdAt: new Date(row.created_at),
      });
    }
    return claimed;
  });

  return {
    async init() {},
    async enqueue(mail, now) {
      const id = randomUUID();
      stmt.insert.run(id, mail.kind, mail.to, mail.subject, mail.text, mail.html, mail.tenant, now.getTime(), now.getTime());
      return id;
    },
    async claim(now, leaseMs, limit) {
      return claim.immediate(now.getTime(), leaseMs, limit);
    },
    async delivered(id, attempt, now) {
      stmt.delivered.run(now.getTime(), id, attempt);
    },
    async failed(id, attempt, retryAt, error) {
      stmt.failed.run(retryAt.getTime(), error.slice(0, 500), id, attempt);
    },
    async pending() {
      return stmt.pending.get()!.n;
    },
    async sweep(before) {
      return stmt.sweep.run(before.getTime()).changes;
    },
  };
}
