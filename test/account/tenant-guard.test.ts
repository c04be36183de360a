// Every owner page, walked from the account router itself (a route added
// later is walked too): a login that is no owner gets 403 on each; another
// tenant's owner gets 403 on each page that names an id of this tenant, and
// the very same answer for an id that exists nowhere, so no page tells them
// what exists outside their tenant. Nothing changes. The tenant's own owner
// reaches each of those pages with the same ids (the ids are real). On the
// embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import { csrfOf, type Browser, type Page } from '../support/browser.ts';
import { SETUPS, startServer, type TestServer } from '../support/latchkey.ts';
import { accountRouter } from '../../src/account/router.ts';
import { routeDeps } from '../../src/services.ts';
import { accountFixture, signedIn } from './support.ts';

/** The pages every signed-in login (or anyone) may open; every other route under /account is an owner's. */
const PERSON_ROUTES = [/^\/account\/?$/, /^\/account\/profile(\/|$)/, /^\/account\/(signin|callback|switch|signout|signed-out)$/];

interface Route {
  method: 'GET' | 'POST';
  path: string;
  params: string[];
}

function ownerRoutes(router: Router): Route[] {
  const routes: Route[] = [];
  for (const layer of router.stack) {
    const path = String(layer.path);
    if (PERSON_ROUTES.some((re) => re.test(path))) continue;
    const params = layer.paramNames.map((p) => String(p.name));
    for (const method of layer.methods) if (method === 'GET' || method === 'POST') routes.push({ method, path, params });
  }
  return routes;
}

const fill = (route: Route, ids: Record<string, string>) => route.path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(ids[name]!));

for (const setup of SETUPS) {
  describe(`every owner page refuses what is not the owner's (${setup})`, () => {
    let server: TestServer;
    let routes: Route[];
    /** An id of Acme for each parameter of an owner route. */
    let acme: Record<string, string>;

    before(async () => {
      const doc = accountFixture();
      doc.tenants![0]!.upstreams = [{ id: 'corp', name: 'Corp ID', issuer: 'http://127.0.0.1:9', client_id: 'latchkey', client_secret: 'upstream-secret' }];
      server = await startServer(setup, { doc });
      const { subscription } = await server.latchkey.webhooks.subscribe('acme', 'https://hooks.example/acme', ['login.*']);
      const { record } = await server.latchkey.scimTokens.create('acme', 'Directory', 'acme-owner');
      acme = { loginId: 'jane-acme', clientId: 'portal', typeId: 'employee', providerId: 'corp', webhookId: subscription.id, tokenId: record.id };
      routes = ownerRoutes(accountRouter(routeDeps(server.latchkey)));
    });
    after(() => server.stop());

    const snapshot = async () => {
      const accounts = server.latchkey.stores.accounts;
      return JSON.stringify([
        await accounts.getTenant('acme'),
        await accounts.listLogins('acme'),
        await accounts.listClients('acme'),
        await accounts.listUpstreams('acme'),
        await server.latchkey.webhooks.list('acme'),
        (await server.latchkey.scimTokens.list('acme')).map((t) => [t.id, t.revokedAt]),
      ]);
    };

    /** What a form of every kind might carry: the CSRF token, a confirmation, the fields of the forms. */
    const formOf = (csrf: string) => ({ csrf, confirm: 'yes', name: 'X', email: 'x@acme.test', first_name: 'X', last_name: 'Y', user_type: 'employee', session: 'x' });

    const send = (browser: Browser, route: Route, path: string, csrf: string): Promise<Page> =>
      route.method === 'GET'
        ? browser.request(path)
        : browser.request(path, { method: 'POST', body: new URLSearchParams(formOf(csrf)), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

    it('walks the owner routes of the router, each id kind among them', () => {
      assert.ok(routes.length > 40, `${routes.length} owner routes`);
      const kinds = new Set(routes.flatMap((r) => r.params));
      for (const kind of kinds) assert.ok(acme[kind], `an Acme id for ":${kind}" (and a guard for it in src/account/owned.ts)`);
      for (const kind of ['loginId', 'clientId', 'typeId', 'providerId', 'webhookId', 'tokenId']) assert.ok(kinds.has(kind), kind);
    });

    it('a login that is not an owner gets 403 on every owner route', async () => {
      const before = await snapshot();
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
      const csrf = csrfOf(jane.page);
      for (const route of routes) {
        const res = await send(jane.browser, route, fill(route, acme), csrf);
        assert.equal(res.status, 403, `${route.method} ${route.path}`);
      }
      assert.equal(await snapshot(), before, 'nothing changed');
    });

    it("another tenant's owner gets 403 for every id of this tenant, the same answer as for an id that exists nowhere", async () => {
      const before = await snapshot();
      const gina = await signedIn(server, { email: 'gina@globex.test' });
      const csrf = csrfOf(gina.page);
      const nowhere = Object.fromEntries(Object.keys(acme).map((k) => [k, `x${randomBytes(6).toString('hex')}`]));
      for (const route of routes.filter((r) => r.params.length)) {
        const [foreignPath, missingPath] = [fill(route, acme), fill(route, nowhere)];
        const foreign = await send(gina.browser, route, foreignPath, csrf);
        const missing = await send(gina.browser, route, missingPath, csrf);
        const what = `${route.method} ${route.path}`;
        assert.equal(foreign.status, 403, what);
        assert.equal(missing.status, 403, what);
        // Only the path asked for differs (the language switch links to it).
        assert.equal(foreign.html.replaceAll(foreignPath, 'PATH'), missing.html.replaceAll(missingPath, 'PATH'), `${what}: the same page for an id of Acme and for none`);
        assert.match(foreign.html, /data-testid="error-back"/, `${what}: with a way back`);
      }
      assert.equal(await snapshot(), before, 'nothing changed');
    });

    it("the tenant's own owner reaches each of those routes with the same ids", async () => {
      const olga = await signedIn(server, { email: 'owner@acme.test' });
      const csrf = csrfOf(olga.page);
      for (const route of routes.filter((r) => r.params.length)) {
        const path = fill(route, acme);
        // No confirmation and no fields: a form shows its confirmation or says what is missing, and changes nothing.
        const res = route.method === 'GET' ? await olga.browser.request(path) : await olga.browser.post(path, { csrf });
        assert.notEqual(res.status, 403, `${route.method} ${route.path}`);
        assert.ok(res.status < 500, `${route.method} ${route.path}: ${res.status}`);
      }
    });
  });
}
