// Upstream providers in the import format (docs/upstream.md):
// stored per tenant with the client secret sealed, idempotent, validated with
// the rest of the file; and the CLI names the redirect URI to register.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createStores, type Stores } from '../../src/storage/index.ts';
import { createHasher, type Hasher } from '../../src/crypto/password.ts';
import { createSecretBox, SecretBoxError } from '../../src/crypto/secretbox.ts';
import { ImportError, importDocument, type ImportDocument } from '../../src/import/index.ts';
import { openUpstreamSecret } from '../../src/upstream/secret.ts';
import { fixture } from '../support/latchkey.ts';
import { tempDir } from '../support/tmp.ts';
import { writeDevKeys } from '../support/keys.ts';
import { runCli } from '../support/cli.ts';

const SECRET = 'upstream-Σ-plain-marker-5d1e';

function withUpstreams(): ImportDocument {
  const doc = fixture();
  doc.tenants![0]!.upstreams = [
    { id: 'corp', name: 'Corp ID', issuer: 'https://id.corp.example', client_id: 'latchkey', client_secret: SECRET },
    { id: 'google', name: 'Google', issuer: 'https://accounts.google.com', client_id: 'g-123', client_secret: 'g-secret', scopes: ['email', 'profile'] },
  ];
  doc.tenants![1]!.upstreams = [{ id: 'google', name: 'Google', issuer: 'https://accounts.google.com', client_id: 'g-globex', client_secret: 'g-globex-secret' }];
  return doc;
}

describe('upstream providers in the import', () => {
  const dir = tempDir('lk-upstream-import-');
  let config: Config;
  let stores: Stores;
  let hasher: Hasher;

  before(async () => {
    writeDevKeys(dir.path);
    config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dir.path });
    stores = await createStores(config, createLogger('silent'));
    hasher = await createHasher(config.argon2, config.keys.pepper);
  });
  after(async () => {
    await stores.close();
    dir.remove();
  });

  const run = (doc: unknown, cfg = config) => importDocument(doc, { accounts: stores.accounts, hasher, config: cfg });
  const box = () => createSecretBox(config.keys.encryptionKeys);

  it("stores each tenant's upstreams, with the client secret sealed to its tenant and id", async () => {
    await run(withUpstreams());
    const { accounts } = stores;
    const corp = (await accounts.getUpstream('acme', 'corp'))!;
    assert.deepEqual(
      { ...corp, clientSecret: '…' },
      { tenant: 'acme', id: 'corp', handle: 'corp', name: 'Corp ID', issuer: 'https://id.corp.example', clientId: 'latchkey', clientSecret: '…', scopes: [] },
    );
    assert.ok(!corp.clientSecret.includes(SECRET), 'not stored in plain text');
    assert.equal(openUpstreamSecret(box(), corp), SECRET);
    assert.deepEqual(
      (await accounts.listUpstreams('acme')).map((u) => [u.id, u.scopes]),
      [
        ['corp', []],
        ['google', ['email', 'profile']],
      ],
    );
    const globex = (await accounts.getUpstream('globex', 'google'))!;
    assert.equal(globex.clientId, 'g-globex');
    assert.equal((await accounts.getUpstream('acme', 'google'))?.handle, 'google', 'the first of an id keeps it as its handle');
    assert.match(globex.handle, /^google-[a-z2-7]{8}$/, "another tenant's of the same id gets a handle of its own");
    assert.throws(() => openUpstreamSecret(box(), { ...globex, tenant: 'acme' }), SecretBoxError, 'a sealed secret moved to another tenant does not open');

    const files = ['latchkey.db', 'latchkey.db-wal'].map((f) => join(dir.path, f)).filter(existsSync);
    assert.ok(!Buffer.concat(files.map((f) => readFileSync(f))).includes(Buffer.from(SECRET)), 'the store holds no plain secret');
  });

  it('changes nothing when the same file is imported again (the handles too), and seals a changed secret anew', async () => {
    const before = await stores.accounts.listUpstreams('acme');
    const globexBefore = await stores.accounts.listUpstreams('globex');
    await run(withUpstreams());
    assert.deepEqual(await stores.accounts.listUpstreams('acme'), before);
    assert.deepEqual(await stores.accounts.listUpstreams('globex'), globexBefore);

    const doc = withUpstreams();
    doc.tenants![0]!.upstreams![0]!.client_secret = 'rotated-secret';
    doc.tenants![0]!.upstreams![0]!.name = 'Corp Login';
    await run(doc);
    const corp = (await stores.accounts.getUpstream('acme', 'corp'))!;
    assert.equal(corp.name, 'Corp Login');
    assert.equal(openUpstreamSecret(box(), corp), 'rotated-secret');
  });

  it('refuses duplicate ids, an issuer with a query, a missing secret, and in production an http issuer', async () => {
    const before = await stores.accounts.listUpstreams('acme');
    const problems = async (doc: unknown, cfg = config) => {
      const err = await run(doc, cfg).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof ImportError, `expected an ImportError, got ${String(err)}`);
      return err.problems.join('\n');
    };
    const dup = withUpstreams();
    dup.tenants![0]!.upstreams!.push({ ...dup.tenants![0]!.upstreams![0]! });
    assert.match(await problems(dup), /tenants\[0\]\.upstreams\[2\]\.id: duplicate upstream id "corp"/);
    const query = withUpstreams();
    query.tenants![0]!.upstreams![0]!.issuer = 'https://id.corp.example/?tenant=x';
    assert.match(await problems(query), /tenants\[0\]\.upstreams\[0\]\.issuer: must not have a query or fragment/);
    const noSecret = withUpstreams() as unknown as { tenants: { upstreams: Record<string, unknown>[] }[] };
    delete noSecret.tenants[0]!.upstreams[0]!.client_secret;
    assert.match(await problems(noSecret), /tenants\[0\]\.upstreams\[0\]\.client_secret/);
    const http = withUpstreams();
    http.tenants![0]!.upstreams![0]!.issuer = 'http://id.corp.example';
    assert.match(await problems(http, { ...config, env: 'production' }), /tenants\[0\]\.upstreams\[0\]\.issuer: must be an https URL in production/);
    assert.deepEqual(await stores.accounts.listUpstreams('acme'), before, 'nothing written');
  });

  it('the CLI imports upstreams and names the redirect URI to register at each', async () => {
    const cliDir = tempDir('lk-upstream-cli-');
    try {
      const path = join(cliDir.path, 'tenants.json');
      writeFileSync(path, JSON.stringify(withUpstreams()));
      const res = await runCli(['import', path], { DATA_DIR: cliDir.path, NODE_ENV: 'test', LOG_LEVEL: 'silent', ISSUER: 'https://id.example.com' });
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stderr, /not stored/);
      const [acmeCorp, acmeGoogle, globexGoogle, ...rest] = res.stdout.trim().split('\n').slice(1);
      assert.equal(acmeCorp, 'upstream acme/corp: register the redirect URI https://id.example.com/upstream/corp/callback at https://id.corp.example');
      assert.equal(acmeGoogle, 'upstream acme/google: register the redirect URI https://id.example.com/upstream/google/callback at https://accounts.google.com');
      assert.match(
        globexGoogle ?? '',
        /^upstream globex\/google: register the redirect URI https:\/\/id\.example\.com\/upstream\/google-[a-z2-7]{8}\/callback at https:\/\/accounts\.google\.com$/,
      );
      assert.deepEqual(rest, []);
      // Without ISSUER the CLI does not know the server's: it names the page that shows it, never its own default.
      const guess = await runCli(['import', path], { DATA_DIR: cliDir.path, NODE_ENV: 'test', LOG_LEVEL: 'silent' });
      assert.equal(guess.code, 0, guess.stderr);
      assert.doesNotMatch(guess.stdout, /localhost/);
      assert.match(
        guess.stdout,
        /upstream acme\/corp: register the redirect URI \{ISSUER\}\/upstream\/corp\/callback at https:\/\/id\.corp\.example, with the server's ISSUER: the owner's Sign-in providers page \(\/account\/providers\) shows it/,
      );
    } finally {
      cliDir.remove();
    }
  });
});
