// The owner connects an upstream OpenID provider from the pages: add it (the
// discovery is fetched and checked first; the redirect URI shown is this
// server's), a real sign-in through its button, edit it (the secret is never
// shown back and stays unless a new one is given), test the connection,
// remove it. The login page's buttons follow at once on a second app process
// sharing the stores. Only the owner, with CSRF and a recent sign-in.
// On the embedded store and on MongoDB + Redis, against a real upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, actionOf, csrfOf, testIds, textOf, type Page } from '../support/browser.ts';
import { PASSWORD, SETUPS, callbackReached, relyingParty, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { SHORT_LOCKS, hasForm } from '../support/factors.ts';
import { startUpstream, visitUpstream, type TestUpstream } from '../support/upstream.ts';
import { deadEndpoint } from '../support/net.ts';
import { accountFixture, errorOf, noticeOf, onAccountPage, signedIn, submit } from './support.ts';

const OWNER = { email: 'owner@acme.test' };
const CLIENT_ID = 'latchkey-acme';
const CLIENT_SECRET = 'upstream-client-secret-acme-1';
const NEW_SECRET = 'upstream-client-secret-acme-2';

const buttonsOf = (page: Page) =>
  [...page.html.matchAll(/<button[^>]*name="upstream" value="([^"]+)"[^>]*>([\s\S]*?)<\/button>/g)].map((m) => [m[1]!, m[2]!.replace(/<[^>]+>/g, '').trim()] as const);

for (const setup of SETUPS) {
  describe(`the owner's sign-in providers (${setup})`, () => {
    let server: TestServer;
    let second: TestServer;
    let corp: TestUpstream;
    let rp: RelyingParty;
    let rp2: RelyingParty;
    let down: Awaited<ReturnType<typeof deadEndpoint>>;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: accountFixture(), env: SHORT_LOCKS, now: clock.now });
      // A second app process on the same stores (docs/deployment.md): what one writes, the other shows.
      const shared = Object.fromEntries(Object.entries(server.env).filter(([k]) => ['DATA_DIR', 'MONGODB_URI', 'MONGODB_DB', 'REDIS_URL', 'REDIS_PREFIX'].includes(k)));
      second = await startServer(setup, { doc: null, env: { ...SHORT_LOCKS, ...shared } });
      corp = await startUpstream({
        clients: [
          { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${server.issuer}/upstream/corp/callback`] },
          { client_id: 'latchkey-acme-2', client_secret: NEW_SECRET, redirect_uris: [`${server.issuer}/upstream/corp/callback`] },
        ],
      });
      rp = await relyingParty(server.issuer);
      rp2 = await relyingParty(second.issuer);
      down = await deadEndpoint();
    });
    after(async () => {
      await down?.close();
      await corp?.stop();
      await second?.stop();
      await server?.stop();
    });

    const accounts = () => server.latchkey.stores.accounts;
    const tenantAudit = async (type: string) => (await accounts().listAudit({ tenant: 'acme', type })).filter((e) => e.type === type);
    const loginPage = async (app: RelyingParty, on: TestServer) => new Browser(on.issuer).get((await app.authorize()).url);

    it('adds a provider after checking its discovery; its button signs people in, on every process at once', async () => {
      assert.deepEqual(buttonsOf(await loginPage(rp2, second)), [], 'no button yet (and the second process has read the list)');
      const { browser, page } = await signedIn(server, OWNER, '/account/providers');
      assert.match(textOf(page, 'redirect-template') ?? '', new RegExp(`${server.issuer}/upstream/ID/callback`), "the server's own issuer");

      const typo = await submit(browser, page, 'add-provider-form', {
        name: 'Corp ID',
        id: 'corp',
        issuer: down.url,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      });
      assert.equal(typo.status, 400, 'an issuer that does not answer is refused');
      assert.match(errorOf(typo), /did not answer/);
      const wrong = await submit(browser, page, 'add-provider-form', {
        name: 'Corp ID',
        id: 'corp',
        issuer: `${corp.issuer}/other`,
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      });
      assert.equal(wrong.status, 400, 'an issuer without a discovery document is refused');
      for (const bad of [{ issuer: 'ftp://id.example' }, { issuer: `${corp.issuer}?x=1` }, { id: 'Bad Id' }, { name: '' }, { client_secret: '' }]) {
        const res = await submit(browser, page, 'add-provider-form', {
          name: 'Corp ID',
          id: 'corp',
          issuer: corp.issuer,
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          ...bad,
        });
        assert.equal(res.status, 400, JSON.stringify(bad));
      }
      assert.deepEqual(await accounts().listUpstreams('acme'), [], 'nothing stored');

      const done = await submit(browser, page, 'add-provider-form', { name: 'Corp ID', id: 'corp', issuer: corp.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
      assert.ok(onAccountPage(done, '/account/providers'), `${done.status} ${errorOf(done)}`);
      assert.match(noticeOf(done), /button is on the login page/);
      assert.equal(textOf(done, 'redirect-uri-corp'), `${server.issuer}/upstream/corp/callback`);
      assert.ok(!done.html.includes(CLIENT_SECRET), 'the secret is never shown');
      const stored = (await accounts().getUpstream('acme', 'corp'))!;
      assert.ok(!stored.clientSecret.includes(CLIENT_SECRET), 'sealed at rest');
      assert.deepEqual((await tenantAudit('upstream.added'))[0]?.detail, { by: 'acme-owner', upstream: 'corp', issuer: corp.issuer });
      const twice = await submit(browser, page, 'add-provider-form', { name: 'Corp 2', id: 'corp', issuer: corp.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
      assert.equal(twice.status, 409);

      const buttons = buttonsOf(await loginPage(rp, server));
      assert.deepEqual(
        buttons.map(([id]) => id),
        ['corp'],
      );
      assert.match(buttons[0]![1], /Corp ID/);
      assert.equal(buttonsOf(await loginPage(rp2, second))[0]?.[0], 'corp', 'the second process shows it at once');

      // A real sign-in through the new button: Jane's upstream account, confirmed once with her password.
      corp.user = { sub: 'corp-jane', email: 'jane@acme.test', email_verified: true };
      const person = new Browser(server.issuer);
      const pending = await rp.authorize();
      const login = await person.get(pending.url);
      const sent = await person.post(actionOf(login, 'upstream-form'), { upstream: 'corp', csrf: csrfOf(login) });
      assert.equal(sent.status, 303, `to the upstream: ${sent.status} ${errorOf(sent)}`);
      assert.ok(sent.url.startsWith(`${corp.issuer}/`));
      const back = await person.get(await visitUpstream(corp, sent.url));
      assert.ok(hasForm(back, 'upstream-confirm-form'), `the first link is confirmed: ${back.status}`);
      const signedInPage = await person.post(actionOf(back, 'upstream-confirm-form'), { password: PASSWORD, csrf: csrfOf(back) });
      assert.ok(callbackReached(signedInPage), `signed in through the provider: ${signedInPage.status} ${signedInPage.url}`);
      const tokens = await rp.callback(signedInPage.url, pending);
      assert.ok((tokens.claims()!.amr as string[]).includes('fed'));
    });

    it('edits a provider: the button follows; the secret is never shown back and stays unless a new one is given', async () => {
      const { browser } = await signedIn(server, OWNER, '/account/providers');
      const form = await browser.get('/account/providers/corp/edit');
      assert.ok(testIds(form).includes('edit-provider-form'), `${form.status}`);
      assert.match(form.html, /name="client_secret" value=""/, 'the secret field is empty');
      assert.ok(!form.html.includes(CLIENT_SECRET));
      const before = (await accounts().getUpstream('acme', 'corp'))!;
      const renamed = await submit(browser, form, 'edit-provider-form', { name: 'Corporate login', issuer: corp.issuer, client_id: CLIENT_ID, client_secret: '' });
      assert.ok(onAccountPage(renamed, '/account/providers'), `${renamed.status} ${errorOf(renamed)}`);
      const after = (await accounts().getUpstream('acme', 'corp'))!;
      assert.equal(after.name, 'Corporate login');
      assert.equal(after.clientSecret, before.clientSecret, 'the sealed secret is kept');
      assert.deepEqual((await tenantAudit('upstream.edited'))[0]?.detail, { by: 'acme-owner', upstream: 'corp', changed: ['name'] });
      assert.match(buttonsOf(await loginPage(rp2, second))[0]?.[1] ?? '', /Corporate login/, 'on the second process at once');

      // The stored secret was given for this issuer: another issuer must be given its own, or it would be sent there.
      const elsewhere = await submit(browser, form, 'edit-provider-form', { name: 'Corporate login', issuer: `${corp.issuer}/other`, client_id: CLIENT_ID, client_secret: '' });
      assert.equal(elsewhere.status, 400);
      assert.match(errorOf(elsewhere), /A new issuer needs its client secret entered again/);
      assert.deepEqual([(await accounts().getUpstream('acme', 'corp'))!.issuer, (await accounts().getUpstream('acme', 'corp'))!.clientSecret], [corp.issuer, before.clientSecret]);
      const typo = await submit(browser, form, 'edit-provider-form', { name: 'Corporate login', issuer: `${corp.issuer}/nope`, client_id: CLIENT_ID, client_secret: NEW_SECRET });
      assert.equal(typo.status, 400, "a new issuer's discovery is checked too");
      assert.match(errorOf(typo), /No OpenID configuration was found/);
      assert.equal((await accounts().getUpstream('acme', 'corp'))!.issuer, corp.issuer);

      const moved = await submit(browser, form, 'edit-provider-form', { name: 'Corporate login', issuer: corp.issuer, client_id: 'latchkey-acme-2', client_secret: NEW_SECRET });
      assert.ok(onAccountPage(moved, '/account/providers'), `${moved.status} ${errorOf(moved)}`);
      assert.notEqual((await accounts().getUpstream('acme', 'corp'))!.clientSecret, before.clientSecret, 'a new secret is sealed');
      // The new client signs in (the upstream refuses the old secret for it).
      corp.user = { sub: 'corp-jane', email: 'jane@acme.test', email_verified: true };
      const person = new Browser(server.issuer);
      const pending = await rp.authorize();
      const login = await person.get(pending.url);
      const sent = await person.post(actionOf(login, 'upstream-form'), { upstream: 'corp', csrf: csrfOf(login) });
      assert.match(sent.url, /client_id=latchkey-acme-2/);
      const done = await person.get(await visitUpstream(corp, sent.url));
      assert.ok(callbackReached(done), `signed in with the new client: ${done.status} ${errorOf(done)} ${textOf(done, 'error-message') ?? ''}`);
    });

    it('tests the connection: it works, and a provider that stopped answering says so', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/providers');
      const ok = await browser.post('/account/providers/corp/test', { csrf: csrfOf(page) });
      assert.equal(ok.status, 200);
      assert.match(ok.html, /data-testid="test-result" data-ok="yes"/);
      const gone = down.url;
      await accounts().upsertUpstream({ ...(await accounts().getUpstream('acme', 'corp'))!, id: 'gone', name: 'Gone', issuer: gone });
      const failed = await browser.post('/account/providers/gone/test', { csrf: csrfOf(page) });
      assert.match(failed.html, /data-testid="test-result" data-ok="no">[^<]*did not answer/);
      assert.equal((await browser.post('/account/providers/nope/test', { csrf: csrfOf(page) })).status, 403);
    });

    it('removes a provider: its button goes from the login page of every process at once', async () => {
      const { browser, page } = await signedIn(server, OWNER, '/account/providers');
      const confirm = await browser.post('/account/providers/gone/remove', { csrf: csrfOf(page) });
      assert.ok(testIds(confirm).includes('confirm-remove-provider-form'), `${confirm.status}`);
      assert.ok((await accounts().getUpstream('acme', 'gone')) !== null, 'asked first');
      const done = await submit(browser, confirm, 'confirm-remove-provider-form');
      assert.ok(onAccountPage(done, '/account/providers'), `${done.status} ${errorOf(done)}`);
      assert.equal(await accounts().getUpstream('acme', 'gone'), null);
      const buttons = buttonsOf(await loginPage(rp2, second)).map(([id]) => id);
      assert.deepEqual(buttons, ['corp'], 'the second process no longer shows it');
      assert.deepEqual((await tenantAudit('upstream.removed'))[0]?.detail?.upstream, 'gone');
      await submit(browser, await browser.post('/account/providers/corp/remove', { csrf: csrfOf(page) }), 'confirm-remove-provider-form');
      assert.deepEqual(buttonsOf(await loginPage(rp, server)), []);
      assert.deepEqual(buttonsOf(await loginPage(rp2, second)), []);
    });

    it("refuses non-owners (403), forged forms (403) and another tenant's owner (403), and asks an old sign-in to sign in again", async () => {
      await accounts().upsertUpstream({ tenant: 'acme', id: 'keep', name: 'Keep', issuer: corp.issuer, clientId: CLIENT_ID, clientSecret: 'v1.sealed', scopes: [] });
      const before = await accounts().listUpstreams('acme');
      const jane = await signedIn(server, { email: 'jane@acme.test', login: 'jane-acme' });
      const csrf = csrfOf(jane.page);
      for (const path of ['/account/providers', '/account/providers/keep/edit', '/account/providers/keep/remove']) assert.equal((await jane.browser.get(path)).status, 403, path);
      for (const [path, fields] of [
        ['/account/providers', { name: 'X', issuer: corp.issuer, client_id: 'x', client_secret: 'y' }],
        ['/account/providers/keep/edit', { name: 'X', issuer: corp.issuer, client_id: 'x', client_secret: '' }],
        ['/account/providers/keep/test', {}],
        ['/account/providers/keep/remove', { confirm: 'yes' }],
      ] as const) {
        assert.equal((await jane.browser.post(path, { csrf, ...fields })).status, 403, path);
      }
      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/providers');
      assert.ok(testIds(gina.page).includes('no-providers'), "Globex's own (none)");
      assert.equal((await gina.browser.post('/account/providers/keep/remove', { csrf: csrfOf(gina.page), confirm: 'yes' })).status, 403);
      assert.equal((await gina.browser.post('/account/providers/keep/test', { csrf: csrfOf(gina.page) })).status, 403);
      const { browser, page } = await signedIn(server, OWNER, '/account/providers');
      assert.equal((await browser.post('/account/providers/keep/remove', { confirm: 'yes' })).status, 403, 'no token');
      assert.equal((await browser.post('/account/providers/keep/remove', { csrf: csrfOf(page), confirm: 'yes' }, { origin: 'http://evil.example' })).status, 403);
      assert.deepEqual(await accounts().listUpstreams('acme'), before);

      clock.advance(16 * 60_000);
      const old = await browser.post('/account/providers/keep/remove', { csrf: csrfOf(page), confirm: 'yes' });
      assert.ok(testIds(old).includes('login-form'), `an old sign-in signs in again first: ${old.status}`);
      assert.deepEqual(await accounts().listUpstreams('acme'), before, 'nothing changed yet');
    });

    it("shows another tenant's provider of the same id a redirect URI of its own; the first keeps /upstream/{id}/callback, through edits", async () => {
      const fields = { name: 'Shared ID', id: 'shared', issuer: corp.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET };
      const acme = await signedIn(server, OWNER, '/account/providers');
      const first = await submit(acme.browser, acme.page, 'add-provider-form', fields);
      assert.ok(onAccountPage(first, '/account/providers'), `${first.status} ${errorOf(first)}`);
      assert.equal(textOf(first, 'redirect-uri-shared'), `${server.issuer}/upstream/shared/callback`);

      const gina = await signedIn(server, { email: 'gina@globex.test' }, '/account/providers');
      const second = await submit(gina.browser, gina.page, 'add-provider-form', fields);
      assert.ok(onAccountPage(second, '/account/providers'), `${second.status} ${errorOf(second)}`);
      const handle = (await accounts().getUpstream('globex', 'shared'))!.handle;
      assert.match(handle, /^shared-[a-z2-7]{8}$/);
      const theirs = `${server.issuer}/upstream/${handle}/callback`;
      assert.equal(textOf(second, 'redirect-uri-shared'), theirs, "Globex's page shows its own redirect URI");
      assert.match(textOf(second, 'redirect-template') ?? '', /another environment already uses that id/);
      const edit = await gina.browser.get('/account/providers/shared/edit');
      assert.equal(textOf(edit, 'redirect-uri'), theirs);
      const saved = await submit(gina.browser, edit, 'edit-provider-form', { name: 'Shared SSO', issuer: corp.issuer, client_id: CLIENT_ID, client_secret: '' });
      assert.ok(onAccountPage(saved, '/account/providers'), `${saved.status} ${errorOf(saved)}`);
      assert.equal(textOf(saved, 'redirect-uri-shared'), theirs, 'an edit keeps the redirect URI');

      const again = await acme.browser.get('/account/providers');
      assert.equal(textOf(again, 'redirect-uri-shared'), `${server.issuer}/upstream/shared/callback`, "Acme's is unchanged");
      assert.equal((await accounts().getUpstreamByHandle('shared'))?.tenant, 'acme');
    });
  });
}
