// Both account stores' upstream handles (`Upstream.handle`): the generated
// form, the attempts before giving up, and what the start-up migration says.
import { randomBytes } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** How many handles a create tries before it fails (each after a conflict on the unique index). */
export const HANDLE_ATTEMPTS = 6;

/** `{id}-{8 random base32 characters}`: a handle for an id another upstream holds already. */
export function generatedHandle(id: string): string {
  return `${id}-${[...randomBytes(8)].map((b) => BASE32[b & 31]).join('')}`;
}

/** The handle a create tries first: the id itself, then generated ones. */
export const handleToTry = (id: string, attempt: number, idTaken: boolean) => (attempt === 0 && !idTaken ? id : generatedHandle(id));

/** Where the account store tells the operator about the migration (`createStores` passes the app's logger). */
export interface StoreLog {
  warn(detail: Record<string, unknown>, message: string): void;
}

/**
 * Said for every upstream that the migration gave a generated handle: its
 * redirect URI changed, and its owner must register the new one upstream.
 */
export function warnHandleChanged(log: StoreLog | undefined, tenant: string, id: string, handle: string): void {
  log?.warn(
    { tenant, upstream: id, handle, redirectUri: `{ISSUER}/upstream/${handle}/callback` },
    'upstream redirect URI changed: another tenant has an upstream of the same id; register the new redirect URI at the upstream (docs/upstream.md)',
  );
}
