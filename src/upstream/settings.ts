/**
 * The read-only view of a tenant's upstream providers for the owner's Security
 * settings page (`views/upstream-settings.pug`): what is configured and the
 * redirect URI to register at each — never the client secret.
 */
import type { Upstream } from '../storage/accounts/port.ts';
import { upstreamRedirectUri, upstreamScopes } from './client.ts';

export interface UpstreamSetting {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  scopes: string[];
  redirectUri: string;
}

export function upstreamSettings(issuer: string, upstreams: readonly Upstream[]): UpstreamSetting[] {
  return upstreams.map((u) => ({
    id: u.id,
    name: u.name,
    issuer: u.issuer,
    clientId: u.clientId,
    scopes: upstreamScopes(u),
    redirectUri: upstreamRedirectUri(issuer, u.handle),
  }));
}
