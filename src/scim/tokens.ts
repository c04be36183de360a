/**
 * A tenant's SCIM bearer tokens (docs/scim.md): made by the owner (account
 * pages) or the operator (CLI), shown once, kept only as a keyed hash, and
 * revoked by either. Every creation and revocation is audited.
 *
 * The hash is an HMAC keyed from the pepper, as client secrets are
 * (`src/crypto/client-secret.ts`): a token is 256 random bits, beyond
 * guessing, so a slow hash buys nothing, and a store dump without the
 * server's configuration cannot even test a guess. Being deterministic, the
 * hash is also the lookup key.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Audit } from '../audit.ts';
import type { RequestInfo } from '../web/request.ts';
import type { ScimStore, ScimToken } from '../storage/scim/port.ts';

/** Tokens start with this, so a leaked one is recognisable (secret scanners) and never taken for another kind. */
export const TOKEN_PREFIX = 'lk_scim_';
const HASH_PREFIX = 'hmac-sha256.';
const TOKEN_PATTERN = /^lk_scim_[A-Za-z0-9_-]{43}$/;
export const LABEL_MAX = 64;
/** Labels are shown on the owner's page: printable text only. */
const LABEL_REFUSED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

export interface ScimTokens {
  /** Makes a token for the tenant; returns it (the only time it is seen) and its record. */
  create(tenant: string, label: string, by: string, info?: RequestInfo): Promise<{ token: string; record: ScimToken }>;
  /** The token's record while it is valid, else null (malformed, unknown or revoked). */
  verify(presented: string): Promise<ScimToken | null>;
  list(tenant: string): Promise<ScimToken[]>;
  /** False when the tenant has no such valid token. */
  revoke(tenant: string, id: string, by: string, info?: RequestInfo): Promise<boolean>;
}

/** A label as the owner typed it, trimmed; null when it is empty, too long or holds control characters. */
export function checkLabel(label: unknown): string | null {
  if (typeof label !== 'string') return null;
  const trimmed = label.trim().replace(/\s+/g, ' ');
  return trimmed && trimmed.length <= LABEL_MAX && !LABEL_REFUSED.test(trimmed) ? trimmed : null;
}

/** The audit's words for who acted: an owner's login id (`by`), or the operator (`via: cli`, as the CLI's unlock says). */
const actedBy = (by: string) => (by === 'cli' ? { via: 'cli' } : { by });

export function createScimTokens(deps: { store: ScimStore; pepper: string; audit: Audit; now: () => number }): ScimTokens {
  const key = createHmac('sha256', deps.pepper).update('latchkey scim token v1').digest();
  const hash = (token: string) => HASH_PREFIX + createHmac('sha256', key).update(token).digest('base64url');
  return {
    async create(tenant, label, by, info) {
      const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const record: ScimToken = { id: randomUUID(), tenant, label, hash: hash(token), createdAt: new Date(deps.now()), createdBy: by, revokedAt: null };
      await deps.store.addToken(record);
      await deps.audit.record({
        type: 'scim.token.created',
        outcome: 'success',
        tenant,
        login: by === 'cli' ? null : by,
        ip: info?.ip ?? null,
        userAgent: info?.userAgent ?? null,
        detail: { ...actedBy(by), token: record.id, label },
      });
      return { token, record };
    },
    async verify(presented) {
      if (typeof presented !== 'string' || !TOKEN_PATTERN.test(presented)) return null;
      return deps.store.findToken(hash(presented));
    },
    list: (tenant) => deps.store.listTokens(tenant),
    async revoke(tenant, id, by, info) {
      if (typeof id !== 'string' || id.length > 64 || !(await deps.store.revokeToken(tenant, id, new Date(deps.now())))) return false;
      await deps.audit.record({
        type: 'scim.token.revoked',
        outcome: 'success',
        tenant,
        login: by === 'cli' ? null : by,
        ip: info?.ip ?? null,
        userAgent: info?.userAgent ?? null,
        detail: { ...actedBy(by), token: id },
      });
      return true;
    },
  };
}
