// A factor change racing an owner's reset of that factor: the request read the
// login before the reset and writes after it. The reset wins — the change is
// refused and the factor stays reset — on the embedded store and on MongoDB.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SETUPS, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { TENANT, addPerson, codeFor, currentStep, factorFixture, linkApp } from '../support/factors.ts';
import type { FactorRequest } from '../../src/factors/types.ts';

for (const setup of SETUPS) {
  describe(`a factor change racing a reset (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    before(async () => {
      server = await startServer(setup, { doc: factorFixture() });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    it("re-linking the authenticator app does not survive the owner's reset that landed while it was saved", async () => {
      const { accounts } = server.latchkey.stores;
      const totp = server.latchkey.factors.get('totp');
      const person = await addPerson(server, 'manager');
      const [login] = person.logins as [string];
      const { secret, step } = await linkApp(server, rp, person);
      const tenant = (await accounts.getTenant(TENANT))!;
      const draft: Record<string, unknown> = {};
      // Each request of the profile's re-link page reads the login afresh, as the account pages do.
      const request = async (body: Record<string, string>): Promise<FactorRequest> => ({
        tenant,
        login: (await accounts.getLogin(login))!,
        body,
        draft,
        ip: null,
        userAgent: null,
      });

      const proven = await totp.change!.submit(await request({ code: await codeFor(secret, step + 1) }));
      assert.ok(!proven.done && !proven.error, 'the current app proves the change');
      const linkPage = await totp.change!.page(await request({}));
      const newSecret = String(linkPage.locals.secretGroups).replaceAll(' ', '');
      assert.ok(newSecret.length > 0, 'the new key is shown');

      const lastRequest = await request({ code: await codeFor(newSecret, currentStep()) });
      await totp.reset(login);
      const outcome = await totp.change!.submit(lastRequest);
      assert.ok(!outcome.done && outcome.error, 'the re-link is refused');
      assert.equal((await accounts.getLogin(login))!.factors.totp ?? null, null, 'the factor stays reset');
    });
  });
}
