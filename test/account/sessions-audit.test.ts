// The audit log's sentences for the session events: a changed session
// policy, sessions a person signed out, and each back-channel logout attempt
// read as sentences in English and Dutch, never as raw fields.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { detailTexts } from '../../src/account/audit-text.ts';
import { LANGUAGES, translator } from '../../src/i18n.ts';
import type { AuditEvent } from '../../src/storage/accounts/port.ts';

const event = (type: string, detail: Record<string, unknown>, outcome: 'success' | 'failure' = 'success'): AuditEvent => ({
  tenant: 'acme',
  login: 'bob-emp',
  type,
  time: new Date('2026-03-01T10:00:00Z'),
  ip: null,
  userAgent: null,
  outcome,
  detail,
});

describe('audit texts of session events', () => {
  for (const lang of LANGUAGES) {
    const ctx = { t: translator(lang), lang, tenant: { userTypes: [] }, nameOf: (id: string) => (id === 'bob-emp' ? 'Bob Baker' : undefined) };
    const texts = (e: AuditEvent) => detailTexts(e, ctx);
    const raw = (lines: string[]) => lines.filter((l) => /^(client|attempt|retryAt|sessions|others|error|reason|from|to|lifetimeHours): |\{\{|account\.audit|\[object/.test(l));

    it(`reads as sentences (${lang})`, () => {
      const policy = texts(
        event('policy.sessions_changed', { from: { lifetimeHours: 336, idleMinutes: 0, staySignedIn: true }, to: { lifetimeHours: 8, idleMinutes: 30, staySignedIn: false } }),
      );
      assert.equal(policy.length, 1);
      assert.match(policy[0]!, /8/);
      assert.match(policy[0]!, /30/);
      const ended = texts(event('session.ended', { by: 'bob-emp', sessions: 2, others: true }));
      assert.equal(ended.length, 3);
      assert.match(ended.join(' '), /Bob Baker/);
      const failed = texts(event('session.backchannel_logout', { client: 'portal', attempt: 2, error: 'expected 200 OK', retryAt: '2026-03-01T10:00:10.000Z' }, 'failure'));
      assert.equal(failed.length, 4);
      assert.match(failed.join(' '), /portal/);
      assert.match(failed.join(' '), /2026-03-01 10:00:10 UTC/);
      const gone = texts(event('session.backchannel_logout', { client: 'portal', attempt: 1, reason: 'no_logout_uri' }, 'failure'));
      for (const lines of [policy, ended, failed, gone]) assert.deepEqual(raw(lines), [], lines.join(' | '));
    });
  }
});
