// "Forgot your password?" mails an identity at most 5 links an hour, also
// when the requests come all at once: each link takes a place in the
// identity's sliding window of the counter store, atomically, so parallel
// requests cannot all pass a count read before any of them wrote. The answer
// stays the same past the limit; after the hour a link is mailed again. Both
// store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Browser, actionOf, csrfOf, type Page } from '../support/browser.ts';
import { SETUPS, relyingParty, startServer, testClock, type RelyingParty, type TestClock, type TestServer } from '../support/latchkey.ts';
import { addPerson, factorFixture } from '../support/factors.ts';
import { startSmtp, type TestSmtp } from '../support/smtp.ts';

const forgotHref = (page: Page) => /<a[^>]*href="([^"]+)"[^>]*data-testid="forgot-link"/.exec(page.html)![1]!.replace(/&amp;/g, '&');

for (const setup of SETUPS) {
  describe(`forgot password: at most 5 links an hour per identity (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let smtp: TestSmtp;
    let clock: TestClock;

    before(async () => {
      smtp = await startSmtp();
      clock = testClock();
      // Each request from an address of its own (TRUST_PROXY), so the per-address window is not what stops them.
      server = await startServer(setup, { doc: factorFixture(), now: clock.now, env: { SMTP_URL: smtp.url, TRUST_PROXY: '1' } });
      rp = await relyingParty(server.issuer);
    });
    after(async () => {
      await server.stop();
      await smtp.stop();
    });

    let address = 0;
    async function forgotForm() {
      const browser = new Browser(server.issuer, { 'x-forwarded-for': `198.51.100.${++address}` });
      const form = await browser.get(forgotHref(await browser.get((await rp.authorize()).url)));
      return () => browser.post(actionOf(form, 'forgot-form'), { email: person.email, csrf: csrfOf(form) });
    }
    let person: Awaited<ReturnType<typeof addPerson>>;

    /** The mails to the person once every request's work has run (it runs after each answer). */
    async function mailsSettled(expected: number) {
      for (let i = smtp.to(person.email).length; i < expected; i++) await smtp.next(person.email);
      for (let round = 0; round < 3; round++) {
        await sleep(300);
        await server.latchkey.mailer.drain();
      }
      return smtp.to(person.email).length;
    }

    it('of 8 requests at once, 5 mail a link; all 8 get the same answer; after the hour one more does', async () => {
      person = await addPerson(server, 'employee');
      const posts = await Promise.all(Array.from({ length: 8 }, () => forgotForm()));
      const answers = await Promise.all(posts.map((post) => post()));
      for (const a of answers) assert.equal(a.status, 200);
      assert.equal(new Set(answers.map((a) => a.html.replace(/name="csrf" value="[^"]*"|\/interaction\/[^/"]+/g, ''))).size, 1, 'one answer for all');
      assert.equal(await mailsSettled(5), 5, 'five links');

      await (
        await forgotForm()
      )();
      assert.equal(await mailsSettled(5), 5, 'none more within the hour');

      clock.advance(3_600_001);
      await (
        await forgotForm()
      )();
      assert.equal(await mailsSettled(6), 6, 'one more after it');
    });
  });
}
