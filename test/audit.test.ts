// The audit log stays bounded: events without a login (anyone can cause them)
// are capped per kind and minute with a summary of the rest, and events older
// than the retention are swept, on both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAudit } from '../src/audit.ts';
import { createLogger } from '../src/log.ts';
import type { AuditEvent } from '../src/storage/accounts/port.ts';
import { Browser } from './support/browser.ts';
import { SETUPS, relyingParty, startServer, submitLogin, type RelyingParty, type TestServer } from './support/latchkey.ts';

const DAY_MS = 86_400_000;
const suppressed = (e: AuditEvent) => (typeof e.detail?.suppressed === 'number' ? e.detail.suppressed : 0);

for (const setup of SETUPS) {
  describe(`audit log bounds (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup);
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    const acmeAudit = () => server.latchkey.stores.accounts.listAudit({ tenant: 'acme', limit: 500 });

    it('200 failed passwords for unknown emails write a bounded number of rows, and count the rest', async () => {
      const { anonymousPerMinute } = server.latchkey.config.audit;
      const browser = new Browser(server.issuer);
      const statuses: number[] = [];
      for (let batch = 0; batch < 20; batch++) {
        // Ten sign-ins at once, each in a sign-in of its own (one sign-in's requests run one at a time).
        const pages = await Promise.all(Array.from({ length: 10 }, async () => browser.get((await rp.authorize()).url)));
        const answers = await Promise.all(pages.map((page, i) => submitLogin(browser, page, `nobody-${batch}-${i}@acme.test`, 'wrong password')));
        statuses.push(...answers.map((a) => a.status));
      }
      assert.ok(
        statuses.every((s) => s === 400 || s === 429),
        JSON.stringify(statuses),
      );

      const rows = await acmeAudit();
      const kinds = new Set(rows.map((r) => r.type));
      assert.ok(rows.length <= kinds.size * anonymousPerMinute, `${rows.length} rows for ${kinds.size} kinds`);
      assert.ok(rows.length < 200);

      // Once the minute is over, the sweep writes what was held back: every failure is accounted for.
      await server.latchkey.audit.sweep(new Date(Date.now() + 61_000));
      const after = await acmeAudit();
      const summaries = after.filter((r) => suppressed(r) > 0);
      assert.ok(summaries.length >= 1 && summaries.length <= kinds.size);
      const held = summaries.reduce((n, r) => n + suppressed(r), 0);
      assert.equal(after.length - summaries.length + held, 200);
      for (const s of summaries) assert.equal(s.ip, null);
    });

    it('keeps every event of a known login', async () => {
      const { accounts } = server.latchkey.stores;
      const audit = createAudit(accounts, createLogger('silent'), { retentionDays: 30, anonymousPerMinute: 2, sweepEveryMs: 0 });
      for (let i = 0; i < 10; i++) await audit.record({ type: 'factor.pin.failed', outcome: 'failure', tenant: 'acme', login: 'bob-emp' });
      assert.equal((await accounts.listAudit({ tenant: 'acme', login: 'bob-emp', type: 'factor.pin.failed' })).length, 10);
    });

    it('sweeps events older than the retention and keeps the rest', async () => {
      const { accounts } = server.latchkey.stores;
      const now = new Date('2031-06-01T12:00:00Z');
      const audit = createAudit(accounts, createLogger('silent'), { retentionDays: 30, anonymousPerMinute: 20, now: () => now, sweepEveryMs: 0 });
      const at = (daysAgo: number): AuditEvent => ({
        tenant: 'globex',
        login: 'gina-staff',
        type: 'retention.probe',
        time: new Date(now.getTime() - daysAgo * DAY_MS),
        ip: null,
        userAgent: null,
        outcome: 'success',
        detail: { daysAgo },
      });
      for (const days of [400, 31, 30.5, 29, 1]) await accounts.appendAudit(at(days));
      // More than one delete batch of old events.
      for (let i = 0; i < 1_050; i++) await accounts.appendAudit(at(60));
      await audit.sweep();
      const left = await accounts.listAudit({ tenant: 'globex', type: 'retention.probe', limit: 500 });
      assert.deepEqual(
        left.map((e) => e.detail?.daysAgo),
        [1, 29],
      );
    });
  });
}
