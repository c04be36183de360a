// Provider state and attempt counters on a 3-master Redis Cluster
// (REDIS_CLUSTER_NODES), end to end: a sign-in, a refresh, and a lockout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Cluster } from 'ioredis';
import { Browser } from '../support/browser.ts';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.ts';
import { callbackReached, relyingParty, signIn, startServer, submitLogin, type TestServer } from '../support/latchkey.ts';

describe('a journey on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let server: TestServer;

  before(async () => {
    cluster = await startRedisCluster();
    server = await startServer('mongo+redis', { env: { REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.spec, REDIS_PREFIX: 'lkc:', LOCK_THRESHOLD: '3' } });
  });
  after(async () => {
    await server.stop();
    await cluster.stop();
  });

  it('uses the cluster for provider state', () => {
    assert.equal(server.latchkey.stores.kinds.provider, 'redis-cluster');
  });

  it('signs in, refreshes, and keeps its provider keys in one hash slot', async () => {
    const rp = await relyingParty(server.issuer);
    const { page, pending } = await signIn(new Browser(server.issuer), rp, { email: 'jane@acme.test', login: 'jane-mgr' });
    assert.ok(callbackReached(page));
    const tokens = await rp.callback(page.url, pending);
    assert.equal(tokens.claims()!.sub, 'jane-mgr');
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    assert.equal(refreshed.claims()!.sub, 'jane-mgr');

    const client = new Cluster(cluster.nodes);
    await new Promise((resolve) => client.once('ready', resolve));
    try {
      const keys = (await Promise.all(client.nodes('master').map((n) => n.keys('*')))).flat();
      const adapterKeys = keys.filter((k) => k.startsWith('{lkc}:'));
      assert.ok(
        adapterKeys.some((k) => k.startsWith('{lkc}:s:')),
        'sessions stored under the hash-tagged prefix',
      );
      assert.ok(adapterKeys.some((k) => k.startsWith('{lkc}:rt:')));
      assert.ok(!keys.some((k) => k.startsWith('lkc:s:')), 'no untagged adapter keys');
    } finally {
      await client.quit();
    }
  });

  it('counts password failures on the cluster and locks after the threshold', async () => {
    const rp = await relyingParty(server.issuer);
    const browser = new Browser(server.issuer);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const page = await browser.get((await rp.authorize()).url);
      statuses.push((await submitLogin(browser, page, 'bob@acme.test', `wrong-${i}`)).status);
    }
    assert.deepEqual(statuses, [400, 400, 400, 429]);
  });
});
