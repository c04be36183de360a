// Known browsers (src/known-browsers.ts) through Koa's own request context and
// cookie jar: the proof that a browser signed in as an identity travels in its
// cookie and verifies only for that identity, that token and that expiry.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import Koa from 'koa';
import { KNOWN_BROWSER_COOKIE, knownBrowserKey, knownBrowsers } from '../src/known-browsers.ts';
import { passwordKey } from '../src/limits.ts';

const app = new Koa();
const DAY_MS = 86_400_000;
const TTL_MS = 180 * DAY_MS;

/** A request carrying `cookie` (the value of lk_browser, if any); `sent()` is the lk_browser value its answer set. */
function request(cookie?: string) {
  const req = new IncomingMessage(new Socket());
  req.headers = cookie === undefined ? {} : { cookie: `${KNOWN_BROWSER_COOKIE}=${cookie}` };
  const res = new ServerResponse(req);
  const ctx = app.createContext(req, res);
  const sent = () => {
    const header = ([res.getHeader('set-cookie') ?? []].flat() as string[]).find((c) => c.startsWith(`${KNOWN_BROWSER_COOKIE}=`));
    return header?.slice(KNOWN_BROWSER_COOKIE.length + 1).split(';')[0];
  };
  return { ctx, sent };
}

function browsers(clock = { now: Date.now() }, pepper = 'pepper of this server') {
  return { clock, kb: knownBrowsers({ key: knownBrowserKey(pepper), secure: false, ttlMs: TTL_MS }, () => clock.now) };
}

async function signIn(kb: ReturnType<typeof browsers>['kb'], email: string, cookie?: string): Promise<string> {
  const r = request(cookie);
  await kb.remember(r.ctx, email);
  return r.sent()!;
}

async function known(kb: ReturnType<typeof browsers>['kb'], email: string, cookie?: string) {
  return (await kb.passwordCounter(request(cookie).ctx, email, '192.0.2.1')).known;
}

describe('known browsers', () => {
  it('a browser that signed in as an identity is known for it, with a key of its own and no address window', async () => {
    const { kb } = browsers();
    const cookie = await signIn(kb, 'ada@example.com');
    const counter = await kb.passwordCounter(request(cookie).ctx, 'ada@example.com', '192.0.2.1');
    assert.equal(counter.known, true);
    assert.equal(counter.keys.address, undefined, 'the address window does not apply');
    assert.match(counter.keys.targets[0]!, /^pwd-kb:/);
    assert.ok(!cookie.includes(passwordKey('ada@example.com').slice(4)), 'the cookie does not carry the identity');
    const stranger = await kb.passwordCounter(request().ctx, 'ada@example.com', '192.0.2.1');
    assert.deepEqual(stranger, { keys: { targets: [passwordKey('ada@example.com')], address: '192.0.2.1' }, known: false });
  });

  it('is unknown for another identity, with a made-up token, another token, a changed expiry, another server key, or once expired', async () => {
    const { kb, clock } = browsers();
    const cookie = await signIn(kb, 'ada@example.com');
    const [token, proof] = cookie.split('.') as [string, string];
    assert.equal(await known(kb, 'grace@example.com', cookie), false, 'another identity');
    assert.equal(await known(kb, 'ada@example.com', randomBytes(32).toString('base64url')), false, 'a made-up token without proofs');
    assert.equal(await known(kb, 'ada@example.com', `${randomBytes(32).toString('base64url')}.${proof}`), false, 'the proof on another token');
    const later = (parseInt(proof.slice(22), 36) + 365 * 86_400).toString(36);
    assert.equal(await known(kb, 'ada@example.com', `${token}.${proof.slice(0, 22)}${later}`), false, 'a changed expiry');
    assert.equal(await known(browsers(clock, 'another pepper').kb, 'ada@example.com', cookie), false, "another server key's");
    clock.now += TTL_MS + 1000;
    assert.equal(await known(kb, 'ada@example.com', cookie), false, 'expired');
  });

  it('keeps one proof per identity, at most five, the oldest dropped first, and keeps the token', async () => {
    const { kb } = browsers();
    let cookie = await signIn(kb, 'p0@example.com');
    const token = cookie.split('.')[0];
    for (let i = 1; i < 6; i++) cookie = await signIn(kb, `p${i}@example.com`, cookie);
    cookie = await signIn(kb, 'p5@example.com', cookie);
    assert.equal(cookie.split('.')[0], token, 'the same token');
    assert.equal(cookie.split('.').length, 1 + 5, 'five proofs');
    assert.equal(await known(kb, 'p0@example.com', cookie), false, 'the oldest identity was dropped');
    for (let i = 1; i < 6; i++) assert.equal(await known(kb, `p${i}@example.com`, cookie), true, `p${i} is known`);
  });
});
