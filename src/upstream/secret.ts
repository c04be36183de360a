/**
 * Upstream client secrets are stored sealed (AES-256-GCM, `src/crypto/secretbox.ts`),
 * bound to their tenant and upstream id: a dump of the store alone yields no
 * usable secret, and a sealed secret copied to another upstream does not open.
 */
import type { SecretBox } from '../crypto/secretbox.ts';
import type { Upstream } from '../storage/accounts/port.ts';

const context = (tenant: string, id: string) => `upstream:${tenant}:${id}`;

export function sealUpstreamSecret(box: SecretBox, tenant: string, id: string, secret: string): string {
  return box.seal(secret, context(tenant, id));
}

/** Throws `SecretBoxError` when the sealed secret does not open (another key, another upstream, tampering). */
export function openUpstreamSecret(box: SecretBox, upstream: Upstream): string {
  return box.open(upstream.clientSecret, context(upstream.tenant, upstream.id));
}

/** The stored sealed secret when it still holds `secret` (re-imports change nothing), else a new seal. */
export function resealUpstreamSecret(box: SecretBox, tenant: string, id: string, secret: string, stored: Upstream | null): string {
  if (stored) {
    try {
      if (openUpstreamSecret(box, stored) === secret) return stored.clientSecret;
    } catch {
      // Sealed with a retired key or for another upstream: seal again.
    }
  }
  return sealUpstreamSecret(box, tenant, id, secret);
}
