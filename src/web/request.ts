import type { Context } from 'koa';

/** Who asked, for the audit log and the limits: the client's address (after `TRUST_PROXY`) and its user agent. */
export interface RequestInfo {
  ip: string | null;
  userAgent: string | null;
}

export const requestInfo = (ctx: Pick<Context, 'ip' | 'get'>): RequestInfo => ({ ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null });
