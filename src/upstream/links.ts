/**
 * The upstream accounts linked to a person's identity (docs/upstream.md):
 * recording a link once the person confirmed it, removing one or all, and the
 * audit events of both. A link belongs to the identity, which may have logins
 * in several tenants, so each event is written in every one of them: each
 * owner sees what changed for their people.
 */
import type { Audit } from '../audit.ts';
import type { AccountStore, Identity, UpstreamLink } from '../storage/accounts/port.ts';

export interface LinkEventInfo {
  ip: string | null;
  userAgent: string | null;
  /** The upstream's id in the tenant where it happened, when known. */
  upstream?: string;
  /** The login that acted: the person's own, or an owner's. */
  by?: string;
  /** Why a link was removed: `person`, `password`, `reset`. */
  reason?: string;
}

export interface UpstreamLinks {
  /**
   * Links (issuer, subject) to `identity` unless it is linked already. True
   * when the account is now the identity's (audited as `upstream.linked` by
   * the one call that made the link); false when another identity holds it.
   */
  link(identity: Identity, account: { issuer: string; subject: string }, info: LinkEventInfo): Promise<boolean>;
  /** Removes one of the identity's links; false when it has no such link. Audited as `upstream.unlinked`. */
  unlink(identity: Identity, account: { issuer: string; subject: string }, info: LinkEventInfo): Promise<boolean>;
  /** Removes every link of the identity; returns those removed. */
  unlinkAll(identity: Identity, info: LinkEventInfo): Promise<UpstreamLink[]>;
}

export function upstreamLinks({ accounts, audit }: { accounts: AccountStore; audit: Audit }): UpstreamLinks {
  async function record(type: 'upstream.linked' | 'upstream.unlinked', identity: Identity, link: { issuer: string; subject: string }, info: LinkEventInfo) {
    const tenants = [...new Set((await accounts.listLoginsForEmailAllTenants(identity.email)).map((l) => l.tenant))];
    const { ip, userAgent, ...rest } = info;
    const detail = { identity: identity.id, issuer: link.issuer, subject: link.subject, ...rest };
    for (const tenant of tenants) await audit.record({ type, outcome: 'success', tenant, ip, userAgent, detail });
  }

  async function unlink(identity: Identity, account: { issuer: string; subject: string }, info: LinkEventInfo) {
    const removed = await accounts.unlinkUpstream({ issuer: account.issuer, subject: account.subject, identityId: identity.id });
    if (removed) await record('upstream.unlinked', identity, account, info);
    return removed;
  }

  return {
    async link(identity, account, info) {
      const { identityId, created } = await accounts.linkUpstream({ issuer: account.issuer, subject: account.subject, identityId: identity.id });
      if (created) await record('upstream.linked', identity, account, info);
      return identityId === identity.id;
    },
    unlink,
    async unlinkAll(identity, info) {
      const removed: UpstreamLink[] = [];
      for (const link of await accounts.listUpstreamLinks(identity.id)) if (await unlink(identity, link, info)) removed.push(link);
      return removed;
    },
  };
}
