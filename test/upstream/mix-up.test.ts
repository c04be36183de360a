// The mix-up between two tenants' upstreams of the same id (docs/upstream.md,
// "Handles"): tenant Acme trusts the real upstream U as `google`; the attacker
// owns tenant Evil and adds a `google` of their own, the OpenID server X. The
// attacker starts an Acme sign-in in their own browser and keeps its
// authorization URL, then lures the victim to an Evil sign-in: X sends the
// victim on to U with Acme's client, PKCE challenge and nonce but the victim's
// Evil state, and U (no RFC 9207 `iss`) answers at Acme's redirect URI. Were
// that answer redeemed by the victim's Evil sign-in, X would learn the code,
// and the attacker would redeem it at Acme with the right PKCE verifier and
// nonce: signed in as the victim. Each upstream's redirect URI names it alone
// (its handle, unique across tenants), so the answer is refused where it
// lands and the code never reaches X. Real upstreams and a real relying party,
// on the embedded store and on MongoDB + Redis.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Browser, actionOf, csrfOf, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { listenOnFreePort } from '../support/net.ts';
import { startUpstream, visitUpstream, type TestUpstream } from '../support/upstream.ts';
import { importDocument, type ImportDocument } from '../../src/import/index.ts';

const ACME_CLIENT = 'latchkey-acme';
const ACME_SECRET = 'upstream-client-secret-acme';
const VICTIM = { sub: 'google-victim', email: 'victim@acme.test', email_verified: true };

/** The attacker's own OpenID server X: a discovery document, and an authorization endpoint that sends the browser to U with Acme's captured request and the victim's state. */
interface AttackerServer {
  issuer: string;
  /** Acme's authorization URL at U, as the attacker's own Acme sign-in got it. */
  captured: URL | null;
  /** The codes X's token endpoint was given. */
  codes: string[];
  stop(): Promise<void>;
}

async function startAttacker(): Promise<AttackerServer> {
  const http = createServer();
  const port = await listenOnFreePort(http);
  const issuer = `http://127.0.0.1:${port}`;
  const attacker: AttackerServer = { issuer, captured: null, codes: [], stop: async () => {} };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json(res, 200, { keys: [] });
    if (url.pathname === '/authorize' && attacker.captured) {
      const onward = new URL(attacker.captured);
      onward.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: onward.href });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const code = new URLSearchParams(body).get('code');
        if (code) attacker.codes.push(code);
        json(res, 400, { error: 'invalid_grant' });
      });
      return;
    }
    json(res, 404, { error: 'not_found' });
  });
  attacker.stop = () =>
    new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections();
    });
  return attacker;
}

/** Acme (the victim has a login there) and Evil (the attacker's tenant): each with an upstream `google`, Acme's first. */
function mixUpFixture(real: string, evil: string): ImportDocument {
  return {
    identities: [{ email: VICTIM.email, password: PASSWORD }],
    tenants: [
      {
        id: 'acme',
        name: 'Acme Care',
        userTypes: [{ id: 'employee', name: 'Employee', secondFactor: 'none' }],
        logins: [{ id: 'victim-emp', email: VICTIM.email, userType: 'employee', firstName: 'Vic', lastName: 'Tim' }],
        clients: [{ client_id: 'portal', client_secret: 's3cret-portal-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
        upstreams: [{ id: 'google', name: 'Google', issuer: real, client_id: ACME_CLIENT, client_secret: ACME_SECRET }],
      },
      {
        id: 'evil',
        name: 'Evil Corp',
        userTypes: [{ id: 'staff', name: 'Staff', secondFactor: 'none' }],
        clients: [{ client_id: 'evil-app', client_secret: 's3cret-evil-4f9a2c7e1b8d3f6a0c5e9b2d', redirect_uris: ['http://127.0.0.1:8080/cb'], first_party: true }],
        upstreams: [{ id: 'google', name: 'Google', issuer: evil, client_id: 'anything', client_secret: 'anything-secret' }],
      },
    ],
  };
}

const errorCodeOf = (page: Page) => textOf(page, 'error-code')?.replace('Error code: ', '');

for (const setup of SETUPS) {
  describe(`a mix-up between two tenants' upstreams of the same id (${setup})`, () => {
    let server: TestServer;
    let google: TestUpstream;
    let attackerServer: AttackerServer;
    let acme: RelyingParty;
    let evil: RelyingParty;

    before(async () => {
      server = await startServer(setup, { doc: null });
      google = await startUpstream({
        clients: [{ client_id: ACME_CLIENT, client_secret: ACME_SECRET, redirect_uris: [`${server.issuer}/upstream/google/callback`] }],
        withoutIss: true,
      });
      attackerServer = await startAttacker();
      const { stores, hasher, config } = server.latchkey;
      await importDocument(mixUpFixture(google.issuer, attackerServer.issuer), { accounts: stores.accounts, hasher, config });
      acme = await relyingParty(server.issuer);
      evil = await relyingParty(server.issuer, 'evil-app', 's3cret-evil-4f9a2c7e1b8d3f6a0c5e9b2d');
    });
    after(async () => {
      await attackerServer?.stop();
      await google?.stop();
      await server?.stop();
    });

    const accounts = () => server.latchkey.stores.accounts;

    /** A sign-in at `app` in `browser`, its `google` button pressed: the redirect to that tenant's upstream. */
    async function pressGoogle(browser: Browser, app: RelyingParty) {
      const pending = await app.authorize();
      const login = await browser.get(pending.url);
      const sent = await browser.post(actionOf(login, 'upstream-form'), { upstream: 'google', csrf: csrfOf(login) });
      assert.equal(sent.status, 303, `to the upstream: ${sent.status} ${textOf(sent, 'error-message') ?? ''}`);
      return { pending, sent: new URL(sent.url) };
    }

    it("gives the second tenant's `google` a redirect URI of its own; the first keeps /upstream/google/callback", async () => {
      const first = (await accounts().getUpstream('acme', 'google'))!;
      const second = (await accounts().getUpstream('evil', 'google'))!;
      assert.equal(first.handle, 'google');
      assert.match(second.handle, /^google-[a-z2-7]{8}$/);
      const attacker = new Browser(server.issuer);
      assert.equal((await pressGoogle(attacker, evil)).sent.searchParams.get('redirect_uri'), `${server.issuer}/upstream/${second.handle}/callback`);
      assert.equal((await pressGoogle(attacker, acme)).sent.searchParams.get('redirect_uri'), `${server.issuer}/upstream/google/callback`);
    });

    it('the victim signs in at Acme through the real upstream (the set-up works)', async () => {
      const victimId = (await accounts().findIdentityByEmail(VICTIM.email))!.id;
      await accounts().linkUpstream({ issuer: google.issuer, subject: VICTIM.sub, identityId: victimId });
      google.user = VICTIM;
      const browser = new Browser(server.issuer);
      const { pending, sent } = await pressGoogle(browser, acme);
      const page = await browser.get(await visitUpstream(google, sent.href));
      assert.ok(callbackReached(page), `${page.status} ${textOf(page, 'error-message') ?? ''}`);
      assert.equal((await acme.callback(page.url, pending)).claims()!.sub, 'victim-emp');
    });

    it("refuses the answer where it lands: the attacker's upstream never learns the code, and the attacker is not signed in as the victim", async () => {
      // The attacker's own Acme sign-in: its authorization URL at U is kept, not followed.
      const attacker = new Browser(server.issuer);
      const theirs = await pressGoogle(attacker, acme);
      assert.ok(theirs.sent.href.startsWith(`${google.issuer}/`));
      attackerServer.captured = theirs.sent;
      const attackerState = theirs.sent.searchParams.get('state')!;

      // The victim, lured to an Evil sign-in, presses its `google`: X sends them on to U with Acme's request.
      const victim = new Browser(server.issuer);
      const lured = await pressGoogle(victim, evil);
      assert.ok(lured.sent.href.startsWith(`${attackerServer.issuer}/`), "to the attacker's server");
      const atX = await new Browser(attackerServer.issuer).request(lured.sent.href);
      const toGoogle = atX.headers.get('location')!;
      assert.equal(new URL(toGoogle).searchParams.get('client_id'), ACME_CLIENT);
      google.user = VICTIM;
      const answer = new URL(await visitUpstream(google, toGoogle));
      assert.equal(answer.href.split('?')[0], `${server.issuer}/upstream/google/callback`, "U answers at Acme's redirect URI");
      assert.equal(answer.searchParams.get('iss'), null, 'U sends no iss');
      const victimPage = await victim.get(answer.href);

      // The attacker redeems whatever code X learnt in their own Acme sign-in.
      const code = attackerServer.codes[0] ?? 'nothing-learnt';
      const attackerPage = await attacker.get(`${server.issuer}/upstream/google/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(attackerState)}`);
      const takenOver = callbackReached(attackerPage) ? (await acme.callback(attackerPage.url, theirs.pending)).claims()!.sub : null;
      assert.equal(takenOver, null, 'the attacker is not signed in as the victim');
      assert.deepEqual(attackerServer.codes, [], "the attacker's upstream never got the code");

      assert.equal(victimPage.status, 400);
      assert.equal(errorCodeOf(victimPage), 'upstream_state');
      assert.ok(!callbackReached(victimPage));
      const refused = (await accounts().listAudit({ tenant: 'evil', type: 'signin.upstream', limit: 50 })).find((e) => e.detail?.reason === 'upstream_mismatch');
      assert.equal(refused?.outcome, 'failure', 'audited in the tenant whose sign-in it reached');
      assert.equal(refused?.detail?.upstream, 'google');
    });
  });
}
