/**
 * `npm run cli -- scim token create --tenant T [--label NAME]`,
 * `scim token list --tenant T`, `scim token revoke --tenant T ID`
 * (docs/scim.md): a tenant's SCIM bearer tokens. `create` prints the token,
 * once; the store keeps only its hash. Both changes are audited (`by: cli`).
 */
import type { AccountStore } from '../storage/accounts/port.ts';
import { checkLabel, type ScimTokens } from '../scim/tokens.ts';

export type ScimCommand = { verb: 'create'; tenant: string; label: string } | { verb: 'list'; tenant: string } | { verb: 'revoke'; tenant: string; id: string };

const USAGE = 'usage: scim token create --tenant T [--label NAME] | scim token list --tenant T | scim token revoke --tenant T ID';

/** The command in `args` (after `scim`), or an error message. */
export function parseScimCommand(args: string[]): ScimCommand | string {
  const [noun, verb, ...rest] = args;
  if (noun !== 'token') return USAGE;
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg.startsWith('--') && rest[i + 1] !== undefined) flags.set(arg.slice(2), rest[++i]!);
    else positional.push(arg);
  }
  const tenant = flags.get('tenant');
  if (!tenant) return 'give --tenant TENANT';
  if (verb === 'list') return { verb, tenant };
  if (verb === 'revoke' && positional[0]) return { verb, tenant, id: positional[0] };
  if (verb === 'create') {
    const label = checkLabel(flags.get('label') ?? 'SCIM');
    if (!label) return 'give --label a name of at most 64 printable characters';
    return { verb, tenant, label };
  }
  return USAGE;
}

export async function runScimCommand(command: ScimCommand, deps: { scimTokens: ScimTokens; accounts: AccountStore; issuer: string }): Promise<string[]> {
  if (!(await deps.accounts.getTenant(command.tenant))) throw new Error(`no tenant "${command.tenant}"`);
  if (command.verb === 'create') {
    const { token, record } = await deps.scimTokens.create(command.tenant, command.label, 'cli');
    return [`token ${record.id} (${record.label}) for ${deps.issuer}/scim/v2`, `bearer token (shown once): ${token}`];
  }
  if (command.verb === 'list') {
    const tokens = await deps.scimTokens.list(command.tenant);
    return tokens.length
      ? tokens.map((t) => `${t.id}  ${t.label}  made ${t.createdAt.toISOString()} by ${t.createdBy}${t.revokedAt ? `  revoked ${t.revokedAt.toISOString()}` : ''}`)
      : ['no tokens'];
  }
  if (!(await deps.scimTokens.revoke(command.tenant, command.id, 'cli'))) throw new Error(`no valid token "${command.id}" in tenant "${command.tenant}"`);
  return [`token ${command.id} revoked`];
}
