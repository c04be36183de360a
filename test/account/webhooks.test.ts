// The owner's Webhooks page: adding a receiver shows its signing secret once
// (a real HTTP receiver verifies a delivery with it), the page never shows it
// again, removing asks first; both are audited, owners only, CSRF-checked.
// On the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { SETUPS, startServer, type TestServer } from '../support/latchkey.ts';
import { testIds, textOf } from '../support/browser.ts';
import { accountFixture, errorOf, noticeOf, signedIn, submit } from './support.ts';
import { SIGNATURE_HEADER, verify } from '../../src/webhooks/index.ts';
import { adminPeople } from '../../src/admin/people.ts';
import { routeDeps } from '../../src/services.ts';

async function receiver() {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`,
    received,
    async next(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return received[0];
    },
    stop: () => new Promise((r) => server.close(r)),
  };
}

for (const setup of SETUPS) {
  describe(`the owner's Webhooks page (${setup})`, () => {
    let server: TestServer;

    before(async () => {
      server = await startServer(setup, { doc: accountFixture() });
    });
    after(() => server.stop());

    it('adds a receiver: the secret on the answer only, and a delivery verifies with it', async () => {
      const hook = await receiver();
      try {
        const { browser, page } = await signedIn(server, { email: 'owner@acme.test' }, '/account/webhooks');
        assert.ok(testIds(page).includes('add-webhook-form'));
        const refused = await submit(browser, page, 'add-webhook-form', { url: 'ftp://example.com/x', events: 'login.*' });
        assert.equal(refused.status, 400);
        assert.match(errorOf(refused), /receiver’s URL/);
        assert.ok(testIds(refused).includes('add-webhook-form'), 'the form again, with what was entered');

        const added = await submit(browser, page, 'add-webhook-form', { url: hook.url, events: 'login.disabled, login.enabled' });
        assert.equal(added.status, 200, errorOf(added));
        assert.equal(added.headers.get('cache-control'), 'no-store');
        const secret = textOf(added, 'webhook-secret')!;
        assert.ok(secret && secret.length >= 20, 'the secret is shown');
        const [subscription] = await server.latchkey.webhooks.list('acme');
        assert.deepEqual([subscription!.url, subscription!.events], [hook.url, ['login.disabled', 'login.enabled']]);
        const again = await browser.get('/account/webhooks');
        assert.ok(!again.html.includes(secret), 'never shown again');
        assert.ok(testIds(again).includes('webhook-subscription'));
        const audit = await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'webhook.added' });
        assert.deepEqual([audit[0]!.detail?.by, audit[0]!.detail?.url], ['acme-owner', hook.url]);

        const people = adminPeople(routeDeps(server.latchkey));
        const tenant = (await server.latchkey.stores.accounts.getTenant('acme'))!;
        const actor = { tenant, by: { login: 'acme-owner' }, ip: null, userAgent: null };
        await people.setDisabled(actor, await people.login(actor, 'jane-acme'), true);
        const got = await hook.next();
        assert.ok(got, 'the receiver got the event');
        assert.ok(verify(secret, String(got.headers[SIGNATURE_HEADER.toLowerCase()]), got.body), 'the signature verifies with the secret shown');
        assert.equal(JSON.parse(got.body).type, 'login.disabled');
        await people.setDisabled(actor, await people.login(actor, 'jane-acme'), false);

        // Removing asks first; then the subscription is gone, and that is audited.
        const confirm = await submit(browser, again, 'remove-webhook-form');
        assert.ok(testIds(confirm).includes('confirm-remove-webhook-form'), `${confirm.status} ${errorOf(confirm)}`);
        assert.equal((await server.latchkey.webhooks.list('acme')).length, 1, 'nothing removed before the confirmation');
        const removed = await submit(browser, confirm, 'confirm-remove-webhook-form');
        assert.match(noticeOf(removed), /removed/);
        assert.deepEqual(await server.latchkey.webhooks.list('acme'), []);
        assert.equal((await server.latchkey.stores.accounts.listAudit({ tenant: 'acme', type: 'webhook.removed' })).length, 1);
      } finally {
        await hook.stop();
      }
    });

    it('is the owner’s alone: another login gets 403, a forged form 403, another tenant’s subscription 403', async () => {
      const { subscription } = await server.latchkey.webhooks.subscribe('globex', 'https://globex.example/hooks', ['*']);
      try {
        const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
        assert.equal((await jane.browser.get('/account/webhooks')).status, 403);
        const { browser, page } = await signedIn(server, { email: 'owner@acme.test' }, '/account/webhooks');
        const forged = await browser.post('/account/webhooks', { url: 'https://evil.example/x', events: '*', csrf: 'forged' });
        assert.equal(forged.status, 403);
        const other = await submit(browser, page, 'add-webhook-form', {});
        assert.equal(other.status, 400, 'an empty form is refused on the form');
        const foreign = await browser.post(`/account/webhooks/${subscription.id}/remove`, { csrf: /name="csrf" value="([^"]+)"/.exec(page.html)![1]!, confirm: 'yes' });
        assert.equal(foreign.status, 403);
        assert.equal((await server.latchkey.webhooks.list('globex')).length, 1);
        assert.deepEqual(await server.latchkey.webhooks.list('acme'), []);
      } finally {
        await server.latchkey.webhooks.remove('globex', subscription.id);
      }
    });
  });
}
