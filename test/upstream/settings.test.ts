// The owner's read-only view of the tenant's upstream providers:
// what is configured and the redirect URI to register — never the secret.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { VIEWS_DIR } from '../../src/paths.ts';
import pug from 'pug';
import { upstreamSettings } from '../../src/upstream/settings.ts';
import type { Upstream } from '../../src/storage/accounts/port.ts';
import { translator } from '../../src/i18n.ts';

const VIEWS = VIEWS_DIR;
const render = (locals: Record<string, unknown>) =>
  pug.render('include /upstream-settings\n+upstreamSettings(upstreams)', { basedir: VIEWS, filename: join(VIEWS, 'test.pug'), t: translator('en'), ...locals });

const corp: Upstream = {
  tenant: 'acme',
  id: 'corp',
  handle: 'corp',
  name: 'Corp <ID>',
  issuer: 'https://id.corp.example',
  clientId: 'latchkey',
  clientSecret: 'v1.k1.SEALED',
  scopes: [],
};

describe('upstream settings (read-only)', () => {
  it('lists each upstream with its issuer, client, scopes and redirect URI, and no secret', () => {
    const rows = upstreamSettings('https://id.example.com', [
      corp,
      { ...corp, id: 'g', handle: 'g', name: 'Google', scopes: ['email', 'profile', 'openid'] },
      { ...corp, id: 'google', handle: 'google-abcd2345', name: 'Google 2' },
    ]);
    assert.deepEqual(rows[0], {
      id: 'corp',
      name: 'Corp <ID>',
      issuer: 'https://id.corp.example',
      clientId: 'latchkey',
      scopes: ['openid', 'email'],
      redirectUri: 'https://id.example.com/upstream/corp/callback',
    });
    assert.deepEqual(rows[1]!.scopes, ['openid', 'email', 'profile']);
    assert.equal(rows[2]!.redirectUri, 'https://id.example.com/upstream/google-abcd2345/callback', "the handle's redirect URI, not the id's");
    const html = render({ upstreams: rows });
    assert.match(html, /data-testid="upstream-corp"/);
    assert.match(html, /Corp &lt;ID&gt;/);
    assert.match(html, /https:\/\/id\.example\.com\/upstream\/g\/callback/);
    assert.doesNotMatch(html, /SEALED|clientSecret/);
    assert.doesNotMatch(html, /<form|<input|<select/, 'nothing to edit');
  });

  it('says so when there are none', () => {
    assert.match(render({ upstreams: [] }), /data-testid="no-upstreams"/);
  });
});
