// An upstream OpenID provider in the operator's network is never called: with
// nothing opened (`OUTBOUND_ALLOW=none`, production's default), the owner's
// Providers page refuses an issuer at a literal special-use address when it is
// saved, says so when a name leads to one (save and "test the connection"), in
// English and Dutch, and a sign-in through such an upstream ends on the
// "cannot be reached" page with the way back — while the HTTP server at that
// address sees no connection at all. With the address opened, the same server
// is asked. On both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Browser, actionOf, csrfOf, textOf, type Page } from '../support/browser.ts';
import { SETUPS, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { accountFixture, accountSignIn, errorOf, signedIn, submit } from '../account/support.ts';
import type { ImportDocument } from '../../src/import/index.ts';

/** An HTTP server on 127.0.0.1 standing in for an internal service: it counts every connection. */
async function internalService() {
  let connections = 0;
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function fixture(port: number): ImportDocument {
  const doc = accountFixture();
  // Put in by the operator's import, past the owner's checks: the guard still stands where the socket is made.
  doc.tenants![0]!.upstreams = [
    { id: 'named', name: 'Named Internal', issuer: `http://localhost:${port}`, client_id: 'latchkey', client_secret: 'internal-secret-1' },
    { id: 'literal', name: 'Literal Internal', issuer: `http://127.0.0.1:${port}`, client_id: 'latchkey', client_secret: 'internal-secret-2' },
  ];
  return doc;
}

const errorCodeOf = (page: Page) => textOf(page, 'error-code')?.replace('Error code: ', '');

for (const setup of SETUPS) {
  describe(`upstream providers in the operator's network are refused (${setup})`, () => {
    let internal: Awaited<ReturnType<typeof internalService>>;
    let server: TestServer;
    let rp: RelyingParty;

    before(async () => {
      internal = await internalService();
      server = await startServer(setup, { doc: fixture(internal.port), env: { OUTBOUND_ALLOW: 'none' } });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server?.stop();
      await internal?.stop();
    });

    it('the Providers page refuses a literal address on save and a name leading to one on save and on test, in English and Dutch', async () => {
      const { browser, page } = await signedIn(server, { email: 'owner@acme.test' }, '/account/providers');
      const add = (issuer: string, on = page, by = browser) =>
        submit(by, on, 'add-provider-form', { name: 'Internal', id: 'internal', issuer, client_id: 'x', client_secret: 'y' });
      for (const [issuer, text] of [
        ['http://169.254.169.254', /link-local address/],
        ['https://10.0.0.5/realms/x', /private network address/],
        ['http://[::ffff:127.0.0.1]:8080', /loopback address/],
        [`http://localhost:${internal.port}`, /leads to a loopback address/],
      ] as const) {
        const refused = await add(issuer);
        assert.equal(refused.status, 400, `${issuer}: ${errorOf(refused)}`);
        assert.match(errorOf(refused), text, issuer);
      }
      assert.equal(await server.latchkey.stores.accounts.getUpstream('acme', 'internal'), null, 'nothing saved');

      const tested = await browser.post('/account/providers/named/test', { csrf: csrfOf(page) });
      assert.equal(tested.status, 200);
      assert.match(tested.html, /data-testid="test-result" data-ok="no">[^<]*leads to a loopback address/);

      const nl = await accountSignIn(server, { email: 'owner@acme.test' }, '/account/providers', new Browser(server.issuer, { 'accept-language': 'nl' }));
      const dutch = await add('https://10.0.0.5', nl.page, nl.browser);
      assert.match(errorOf(dutch), /een adres in een privénetwerk/);
      const dutchTest = await nl.browser.post('/account/providers/named/test', { csrf: csrfOf(nl.page) });
      assert.match(dutchTest.html, /data-ok="no">[^<]*leidt naar een loopbackadres/);
      assert.equal(internal.connections(), 0, 'the internal service saw nothing');
    });

    it('a sign-in through an upstream at a refused address ends on the "cannot be reached" page with the way back', async () => {
      for (const [id, name] of [
        ['named', 'Named Internal'],
        ['literal', 'Literal Internal'],
      ] as const) {
        const browser = new Browser(server.issuer);
        const login = await browser.get((await rp.authorize()).url);
        const sent = await browser.post(actionOf(login, 'upstream-form'), { upstream: id, csrf: csrfOf(login) });
        assert.equal(sent.status, 502, id);
        assert.equal(errorCodeOf(sent), 'upstream_unavailable');
        assert.match(textOf(sent, 'error-message') ?? '', new RegExp(`${name} cannot be reached`));
        const back = /<a[^>]*href="([^"]+)"[^>]*data-testid="back-to-login"/.exec(sent.html)?.[1];
        assert.ok(back, 'the way back to the login page');
        assert.equal((await browser.get(back)).status, 200);
      }
      assert.equal(internal.connections(), 0, 'the internal service saw nothing');
    });
  });
}

describe('an upstream at an address the operator opened is asked', () => {
  let internal: Awaited<ReturnType<typeof internalService>>;
  let server: TestServer;
  before(async () => {
    internal = await internalService();
    server = await startServer('sqlite', { doc: fixture(internal.port), env: { OUTBOUND_ALLOW: '127.0.0.1/32' } });
  });
  after(async () => {
    await server?.stop();
    await internal?.stop();
  });

  it('the test reaches the service (which has no discovery document), and says that instead', async () => {
    const { browser, page } = await signedIn(server, { email: 'owner@acme.test' }, '/account/providers');
    const tested = await browser.post('/account/providers/literal/test', { csrf: csrfOf(page) });
    assert.match(tested.html, /data-testid="test-result" data-ok="no">[^<]*No OpenID configuration was found/);
    assert.ok(internal.connections() > 0, 'the opened address was connected to');
  });
});
