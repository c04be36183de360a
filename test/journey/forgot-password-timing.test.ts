// "Forgot your password?" answers a known and an unknown address alike, in
// its time too: everything a known address costs beyond an unknown one (the
// link, the mail) begins only once the answer has been written, so the
// answer's time says nothing about whether the address has an account. On
// the embedded store every store call runs at once, so work begun during the
// request held its answer up. Recorded in the server's process: when each
// answer was ended and when its mail was queued. Both store set-ups.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Browser, actionOf, csrfOf, type Page } from '../support/browser.ts';
import { SETUPS, relyingParty, startServer, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, factorFixture } from '../support/factors.ts';
import { startSmtp, type TestSmtp } from '../support/smtp.ts';

const forgotHref = (page: Page) => /<a[^>]*href="([^"]+)"[^>]*data-testid="forgot-link"/.exec(page.html)![1]!.replace(/&amp;/g, '&');

for (const setup of SETUPS) {
  describe(`forgot password: the answer comes before the known address's link and mail (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    let smtp: TestSmtp;
    const answered: number[] = [];
    const queued: number[] = [];
    const end = ServerResponse.prototype.end;

    before(async () => {
      smtp = await startSmtp();
      server = await startServer(setup, { doc: factorFixture(), env: { SMTP_URL: smtp.url } });
      rp = await relyingParty(server.issuer);
      const { mailer } = server.latchkey;
      const send = mailer.send.bind(mailer);
      mailer.send = async (message) => {
        queued.push(performance.now());
        await send(message);
      };
      ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
        if (this.req?.method === 'POST' && this.req.url?.endsWith('/forgot')) answered.push(performance.now());
        return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
      } as typeof end;
    });
    after(async () => {
      ServerResponse.prototype.end = end;
      await server.stop();
      await smtp.stop();
    });

    it('writes the answer first, every time, and the mail still arrives', async () => {
      for (let i = 0; i < 6; i++) {
        const person = await addPerson(server, 'employee');
        const browser = new Browser(server.issuer);
        const form = await browser.get(forgotHref(await browser.get((await rp.authorize()).url)));
        const [answersBefore, mailsBefore] = [answered.length, queued.length];
        const page = await browser.post(actionOf(form, 'forgot-form'), { email: person.email, csrf: csrfOf(form) });
        assert.equal(page.status, 200);
        await smtp.next(person.email);
        assert.equal(queued.length, mailsBefore + 1, 'one mail');
        assert.ok(answered[answersBefore]! < queued[mailsBefore]!, `round ${i}: the mail was queued before the answer was written`);
      }
    });
  });
}
