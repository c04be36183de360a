// A tenant owner cannot point webhooks into the operator's network: with
// nothing opened (`OUTBOUND_ALLOW=none`, production's default), a receiver
// named by a literal special-use address is refused when it is subscribed (the
// API, the owner's page in English and Dutch, the CLI), and one behind a name
// that resolves to such an address is refused at every delivery — a real
// receiver on that address gets nothing, not even a connection — and the
// delivery log says why. On both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SETUPS, startServer, type TestServer } from '../support/latchkey.ts';
import { runCli } from '../support/cli.ts';
import { Browser } from '../support/browser.ts';
import { accountSignIn, errorOf, signedIn, submit } from '../account/support.ts';
import { PROVISIONER, apiClient, apiFixture, tokenFor } from '../api/support.ts';
import { adminPeople } from '../../src/admin/people.ts';
import { routeDeps } from '../../src/services.ts';

const LITERALS = [
  'https://169.254.169.254/latest/meta-data/',
  'http://[::ffff:127.0.0.1]:8080/hooks',
  'https://10.0.0.5/hooks',
  'https://[fd00::5]/hooks',
  'http://127.0.0.1:9/hooks',
];

/** A receiver on 127.0.0.1 that counts connections as well as requests. */
async function internalReceiver() {
  const requests: string[] = [];
  let connections = 0;
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.end('ok');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    requests,
    connections: () => connections,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const setup of SETUPS) {
  describe(`webhooks into the operator's network are refused (${setup})`, () => {
    let server: TestServer;
    let receiver: Awaited<ReturnType<typeof internalReceiver>>;

    before(async () => {
      receiver = await internalReceiver();
      server = await startServer(setup, { doc: apiFixture(), env: { OUTBOUND_ALLOW: 'none' } });
    });
    after(async () => {
      await server.stop();
      await receiver.stop();
    });

    it('refuses a literal special-use address at subscribe time: the API and the owner’s page, in English and Dutch', async () => {
      const call = apiClient(server.issuer);
      const token = await tokenFor(server.issuer, PROVISIONER);
      for (const url of LITERALS) {
        const r = await call(token, 'POST', '/webhooks', { body: { url, events: ['*'] } });
        assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.body)}`);
        assert.match(r.headers.get('content-type')!, /^application\/problem\+json/);
        assert.ok(
          r.body.errors?.some((e: { field: string }) => e.field === 'url'),
          `names the url: ${JSON.stringify(r.body)}`,
        );
      }
      const metadata = await call(token, 'POST', '/webhooks', { body: { url: LITERALS[0], events: ['*'] } });
      assert.match(JSON.stringify(metadata.body), /link-local address/);
      assert.deepEqual(await server.latchkey.webhooks.list('acme'), [], 'nothing was subscribed');

      const { browser, page } = await signedIn(server, { email: 'owner@acme.test' }, '/account/webhooks');
      const english = await submit(browser, page, 'add-webhook-form', { url: 'https://10.0.0.5/hooks', events: '*' });
      assert.equal(english.status, 400);
      assert.match(errorOf(english), /private network address/);
      assert.ok(english.html.includes('value="https://10.0.0.5/hooks"'), 'the form again, with what was entered');
      const nl = await accountSignIn(server, { email: 'owner@acme.test' }, '/account/webhooks', new Browser(server.issuer, { 'accept-language': 'nl' }));
      const dutch = await submit(nl.browser, nl.page, 'add-webhook-form', { url: 'http://[::ffff:127.0.0.1]:8080/hooks', events: '*' });
      assert.equal(dutch.status, 400);
      assert.match(errorOf(dutch), /loopbackadres/);
      assert.deepEqual(await server.latchkey.webhooks.list('acme'), []);
    });

    it('refuses a name that resolves to a loopback address at delivery: nothing reaches the receiver, the log says why, no tight retries', async () => {
      // `localhost` is a name: it passes the subscribe check and is judged where the socket would be made.
      const url = `http://localhost:${receiver.port}/hooks`;
      const { browser, page } = await signedIn(server, { email: 'owner@acme.test' }, '/account/webhooks');
      const added = await submit(browser, page, 'add-webhook-form', { url, events: 'login.disabled' });
      assert.equal(added.status, 200, errorOf(added));
      const [subscription] = await server.latchkey.webhooks.list('acme');
      assert.equal(subscription!.url, url);
      // The literal address itself, put in the store behind the checks' back, is refused when connecting too.
      const literal = await server.latchkey.webhooks.subscribe('acme', `http://127.0.0.1:${receiver.port}/literal`, ['login.disabled']);

      const people = adminPeople(routeDeps(server.latchkey));
      const tenant = (await server.latchkey.stores.accounts.getTenant('acme'))!;
      const actor = { tenant, by: { login: 'acme-owner' }, ip: null, userAgent: null };
      await people.setDisabled(actor, await people.login(actor, 'bob-emp'), true);
      await people.setDisabled(actor, await people.login(actor, 'bob-emp'), false);

      const refused = await until('both refusals in the delivery log', async () => {
        const log = await server.latchkey.stores.webhooks.listDeliveries('acme', 20);
        const tried = log.filter((d) => d.lastError !== null);
        return tried.length >= 2 ? tried : undefined;
      });
      for (const d of refused) {
        assert.equal(d.deliveredAt, null);
        assert.equal(d.lastStatus, null);
        assert.equal(d.attempts, 1, 'tried once, the retry waits');
      }
      assert.deepEqual(
        refused.map((d) => [d.subscription, d.lastError]).sort(),
        [
          [subscription!.id, 'refused: loopback address'],
          [literal.subscription.id, 'refused: loopback address'],
        ].sort(),
      );
      // Another second: still one attempt each, and nothing reached the receiver, not even a connection.
      await new Promise((r) => setTimeout(r, 1000));
      const later = (await server.latchkey.stores.webhooks.listDeliveries('acme', 20)).filter((d) => d.lastError !== null);
      assert.ok(
        later.every((d) => d.attempts === 1),
        'no tight retry loop',
      );
      assert.deepEqual(receiver.requests, []);
      assert.equal(receiver.connections(), 0);

      const call = apiClient(server.issuer);
      const log = await call(await tokenFor(server.issuer, PROVISIONER), 'GET', '/webhooks/deliveries');
      assert.ok(
        log.body.items.some((d: { lastError: string | null }) => d.lastError === 'refused: loopback address'),
        'the API shows it',
      );
      const shown = await browser.get('/account/webhooks');
      assert.match(shown.html, /data-testid="delivery-refused" data-range="loopback"/);
      assert.match(shown.html, /the receiver’s name leads to a loopback address/);
      const dutch = await browser.request('/account/webhooks', { headers: { 'accept-language': 'nl' } });
      assert.match(dutch.html, /de naam van de ontvanger leidt naar een loopbackadres/);

      for (const s of await server.latchkey.webhooks.list('acme')) await server.latchkey.webhooks.remove('acme', s.id);
    });
  });
}

describe('the webhook CLI refuses a literal special-use address too', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer('sqlite', { env: { OUTBOUND_ALLOW: 'none' } });
  });
  after(() => server.stop());

  it('says which range, and how to open it', async () => {
    const env = { ...server.env, LOG_LEVEL: 'warn' };
    const refused = await runCli(['webhook', 'add', '--tenant', 'acme', '--url', 'https://169.254.169.254/hooks', '--events', '*'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /link-local address.*OUTBOUND_ALLOW/);
    const opened = await runCli(['webhook', 'add', '--tenant', 'acme', '--url', 'https://10.1.2.3/hooks', '--events', '*'], { ...env, OUTBOUND_ALLOW: '10.1.2.0/24' });
    assert.equal(opened.code, 0, opened.stderr);
  });
});
