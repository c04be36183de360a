// Two requests of one sign-in at once (two tabs, a double click): each loads
// the sign-in, works, and writes it back whole, so they run one after the
// other (src/interaction/lease.ts). Before, a refused answer that was still
// running wrote its page back over the login a right answer had finished
// beside it, and the person, already through, was asked to sign in again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { actionOf, csrfOf } from '../support/browser.ts';
import { SETUPS, callbackReached, relyingParty, startServer, testClock, type RelyingParty, type TestServer } from '../support/latchkey.ts';
import { addPerson, errorOf, factorFixture, hasForm, reachFactor, submitFactor } from '../support/factors.ts';
import { FAKE_FACTORS, holdNextAnswer } from '../support/fake-factor/index.ts';
import type { ImportDocument } from '../../src/import/index.ts';
import { LEASE_WAIT_MS } from '../../src/interaction/lease.ts';

const WORD = 'marmalade';

function fixture(): ImportDocument {
  const doc = factorFixture();
  doc.tenants![0]!.userTypes.push({ id: 'agent', name: 'Agent', secondFactor: 'word' });
  return doc;
}

for (const setup of SETUPS) {
  describe(`one request at a time per sign-in (${setup})`, () => {
    let server: TestServer;
    let rp: RelyingParty;
    const clock = testClock();

    before(async () => {
      server = await startServer(setup, { doc: fixture(), factors: FAKE_FACTORS, now: clock.now });
      rp = await relyingParty(server.issuer);
    });
    after(() => server.stop());

    /** A person with the word set up, at the word's page of a new sign-in: the form's action, and a post of an answer to it. */
    async function atTheWord() {
      const person = await addPerson(server, 'agent');
      const first = await reachFactor(server, rp, person);
      assert.ok(callbackReached(await submitFactor(first.browser, first.page, 'word-enroll-form', { word: WORD })));
      const { browser, page } = await reachFactor(server, rp, person);
      assert.ok(hasForm(page, 'word-verify-form'), `${page.status} ${errorOf(page)}`);
      const action = actionOf(page, 'word-verify-form');
      const csrf = csrfOf(page);
      const post = (word: string) =>
        browser.request(action, { method: 'POST', body: new URLSearchParams({ word, csrf }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      return { browser, post };
    }

    it('a wrong answer still being checked cannot undo the sign-in that a right answer sent beside it finishes', async () => {
      const { browser, post } = await atTheWord();

      // The first tab's wrong answer is held at its check; the second tab sends the right one meanwhile.
      const hold = holdNextAnswer();
      const wrong = post('wrongword');
      await hold.reached;
      let answered = false;
      const right = post(WORD).then((p) => ((answered = true), p));
      await sleep(300);
      assert.equal(answered, false, 'the second request waits while the first one runs');
      hold.release();

      const refused = await wrong;
      assert.equal(refused.status, 400, 'the wrong answer is refused on its page');
      const passed = await right;
      assert.equal(passed.status, 303, `the right answer finishes the sign-in: ${passed.status} ${errorOf(passed)}`);
      // Only now does the browser follow it: the refused answer's page, written first, did not replace the login.
      const done = await browser.follow(passed);
      assert.ok(callbackReached(done), `back at the app with a code, not asked to sign in again: ${done.status} ${done.url}`);
      const code = new URL(done.url).searchParams.get('code');
      assert.ok(code, 'an authorization code');
    });

    it('a request that waited too long for another of its sign-in gets a page saying so, and changes nothing', async () => {
      const { browser, post } = await atTheWord();
      const hold = holdNextAnswer();
      const first = post('wrongword');
      await hold.reached;
      const second = post(WORD);
      await sleep(100);
      clock.advance(LEASE_WAIT_MS);
      const busy = await second;
      assert.equal(busy.status, 409);
      assert.match(busy.html, /This sign-in is busy in another tab or window/);
      hold.release();
      assert.equal((await first).status, 400);
      // The sign-in goes on as if the busy request had never come.
      const done = await browser.follow(await post(WORD));
      assert.ok(callbackReached(done), `${done.status} ${done.url}`);
    });
  });
}
