// Signed webhooks end to end, on both store set-ups: a real HTTP receiver
// verifies each delivery's signature; a receiver that is down gets every event
// after it comes back, in order, none lost; two app processes sending from one
// queue deliver each event once; the CLI manages subscriptions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Browser, testIds } from '../support/browser.ts';
import { signedIn } from '../account/support.ts';
import { SETUPS, callbackReached, relyingParty, signIn, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { runCli } from '../support/cli.ts';
import { createLogger } from '../../src/log.ts';
import { createSecretBox } from '../../src/crypto/secretbox.ts';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, createWebhooks, verify } from '../../src/webhooks/index.ts';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** An app's webhook endpoint on a loopback port: answers 200, or 503 while `failing`; can go down and come back. */
async function startReceiver() {
  const received: Received[] = [];
  let failing = false;
  let server: Server;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (failing) {
        res.statusCode = 503;
        res.end();
        return;
      }
      received.push({ headers: req.headers, body });
      res.end('ok');
    });
  };
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    fail: (on: boolean) => (failing = on),
    async down() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
    async up() {
      server = createServer(handler);
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    },
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(r);
      }),
    async waitFor(n: number, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return received;
    },
  };
}

const events = (rs: Received[]) =>
  rs.map((r) => JSON.parse(r.body) as { id: string; type: string; tenant: string; login: string | null; outcome: string; detail: Record<string, unknown> });

for (const setup of SETUPS) {
  describe(`webhooks (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      server = await startServer(setup);
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it("delivers a tenant's sign-in, signed, to the app that subscribed — and nothing of another tenant", async () => {
      const receiver = await startReceiver();
      try {
        const { subscription, secret } = await server.latchkey.webhooks.subscribe('acme', receiver.url, ['signin.success']);
        const done = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' });
        assert.ok(callbackReached(done.page));
        const globex = await relyingParty(server.issuer, 'globex-app', 's3cret-globex-4f9a2c7e1b8d3f6a0c5e9b2d');
        assert.ok(callbackReached((await signIn(new Browser(server.issuer), globex, { email: 'gina@globex.test' })).page));
        const [got] = await receiver.waitFor(1);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(receiver.received.length, 1, "only the subscribed tenant's event");
        const [event] = events([got!]);
        assert.equal(event!.type, 'signin.success');
        assert.equal(event!.tenant, 'acme');
        assert.equal(event!.login, 'bob-emp');
        assert.equal(got!.headers[EVENT_ID_HEADER.toLowerCase()], event!.id);
        assert.ok(verify(secret, String(got!.headers[SIGNATURE_HEADER.toLowerCase()]), got!.body), 'the signature verifies with the secret');
        assert.ok(!verify('another secret', String(got!.headers[SIGNATURE_HEADER.toLowerCase()]), got!.body));
        assert.ok(!verify(secret, String(got!.headers[SIGNATURE_HEADER.toLowerCase()]), got!.body.replace('bob-emp', 'eve')), 'a changed body does not verify');
        const log = await server.latchkey.stores.webhooks.listDeliveries('acme', 10);
        assert.equal(log.find((d) => d.subscription === subscription.id)?.lastStatus, 200, 'the delivery log shows it');

        const owner = await signedIn(server, { email: 'owner@acme.test' }, '/account/webhooks');
        assert.ok(testIds(owner.page).includes('webhook-subscription'), 'the owner sees the subscription');
        assert.match(owner.page.html, new RegExp(`data-testid="webhook-delivery" data-state="delivered" data-event="${event!.id}"`));
        assert.ok(!owner.page.html.includes(secret), 'never the secret');
        const bob = await signedIn(server, { email: 'bob@acme.test' });
        assert.equal((await bob.browser.get('/account/webhooks')).status, 403, 'owners only');
        await server.latchkey.webhooks.remove('acme', subscription.id);
      } finally {
        await receiver.stop();
      }
    });

    it('a receiver that is down gets every event after it comes back, in order, none lost; two processes send each once', async () => {
      const receiver = await startReceiver();
      const { MONGODB_DB, REDIS_PREFIX, DATA_DIR } = server.env;
      const second = await startServer(setup, {
        doc: null,
        env: { DATA_DIR: DATA_DIR!, ...(MONGODB_DB ? { MONGODB_URI: server.env.MONGODB_URI!, MONGODB_DB, REDIS_PREFIX: REDIS_PREFIX! } : {}) },
      });
      try {
        const { subscription } = await server.latchkey.webhooks.subscribe('acme', receiver.url, ['signin.*']);
        receiver.fail(true);
        for (let i = 0; i < 3; i++) {
          const page = await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test', password: 'not the password' });
          assert.equal(page.page.status, 400);
        }
        assert.ok(callbackReached((await signIn(new Browser(server.issuer), rp, { email: 'bob@acme.test' })).page));
        await receiver.down();
        await new Promise((r) => setTimeout(r, 200));
        const queued = (await server.latchkey.stores.webhooks.listDeliveries('acme', 50)).filter((d) => d.subscription === subscription.id);
        assert.equal(queued.length, 4, 'every event is queued');
        assert.ok(
          queued.every((d) => d.deliveredAt === null),
          'none delivered while the receiver is down',
        );

        // The servers' own senders run on the real clock, ten minutes behind the two below, to which any
        // lease they still held would look long expired (a queue's claims hold only between clocks less
        // than a lease apart, docs/storage.md): let them finish what they are sending, then stop them.
        await Promise.all([server, second].map((s) => s.latchkey.webhooks.drain()));
        for (const s of [server, second]) s.latchkey.webhooks.close();
        await receiver.up();
        receiver.fail(false);
        // Past the retry time, both processes send at once.
        const later = () => Date.now() + 10 * 60_000;
        const log = createLogger('silent');
        const senders = [server, second].map((s) =>
          createWebhooks({ store: s.latchkey.stores.webhooks, box: createSecretBox(s.latchkey.config.keys.encryptionKeys), egress: s.latchkey.egress, log, now: later }),
        );
        try {
          await Promise.all(senders.flatMap((w) => [w.drain(), w.drain()]));
        } finally {
          for (const w of senders) w.close();
        }
        await receiver.waitFor(4);
        await new Promise((r) => setTimeout(r, 300));
        const got = events(receiver.received);
        assert.equal(got.length, 4, 'each event once');
        assert.deepEqual(
          got.map((e) => e.type),
          ['signin.password', 'signin.password', 'signin.password', 'signin.success'],
          'in the order they happened',
        );
        assert.equal(new Set(got.map((e) => e.id)).size, 4);
        await server.latchkey.webhooks.remove('acme', subscription.id);
      } finally {
        await second.stop();
        await receiver.stop();
      }
    });
  });
}

// The CLI runs the same store code on either set-up: once, on the embedded store.
describe('webhook CLI', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer('sqlite');
  });
  after(() => server.stop());

  it('adds, lists and removes a subscription, printing the secret once', async () => {
    const env = { ...server.env, LOG_LEVEL: 'warn' };
    const added = await runCli(['webhook', 'add', '--tenant', 'acme', '--url', 'https://app.example/hooks', '--events', 'signin.*,factor.*'], env);
    assert.equal(added.code, 0, added.stderr);
    const id = /subscription ([0-9a-f-]{36})/.exec(added.stdout)![1]!;
    assert.match(added.stdout, /signing secret \(shown once\): [A-Za-z0-9_-]{43}/);
    const listed = await runCli(['webhook', 'list', '--tenant', 'acme'], env);
    assert.match(listed.stdout, new RegExp(`${id}  https://app.example/hooks  signin\\.\\*,factor\\.\\*`));
    assert.doesNotMatch(listed.stdout, /secret/);
    for (const [args, code] of [
      [['webhook', 'add', '--tenant', 'acme', '--url', 'http://evil.example/hooks', '--events', '*'], 2],
      [['webhook', 'add', '--tenant', 'acme', '--url', 'https://app.example/hooks', '--events', 'Bad Type'], 2],
      [['webhook', 'add', '--tenant', 'nope', '--url', 'https://app.example/hooks', '--events', '*'], 1],
      [['webhook', 'remove', '--tenant', 'globex', id], 1],
    ] as const) {
      assert.equal((await runCli([...args], env)).code, code, args.join(' '));
    }
    assert.equal((await runCli(['webhook', 'remove', '--tenant', 'acme', id], env)).code, 0);
    assert.match((await runCli(['webhook', 'list', '--tenant', 'acme'], env)).stdout, /no subscriptions/);
  });
});
