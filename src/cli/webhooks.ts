/**
 * `npm run cli -- webhook add --tenant T --url URL --events TYPE[,TYPE…]`,
 * `webhook list --tenant T`, `webhook remove --tenant T ID` (docs/webhooks.md):
 * a tenant's webhook subscriptions. `add` prints the signing secret, once.
 */
import type { AccountStore } from '../storage/accounts/port.ts';
import type { Egress } from '../web/egress.ts';
import { checkEvents, checkUrl, receiverRefusal, type Webhooks } from '../webhooks/index.ts';

export type WebhookCommand = { verb: 'add'; tenant: string; url: string; events: string[] } | { verb: 'list'; tenant: string } | { verb: 'remove'; tenant: string; id: string };

/** The command in `args` (after `webhook`), or an error message. */
export function parseWebhookCommand(args: string[]): WebhookCommand | string {
  const [verb, ...rest] = args;
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
  if (verb === 'remove' && positional[0]) return { verb, tenant, id: positional[0] };
  if (verb === 'add') {
    const url = flags.get('url') ?? '';
    const events = (flags.get('events') ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    if (!checkUrl(url)) return `"${url}" is not a receiver URL: https://…, or http:// to this machine`;
    if (!checkEvents(events)) return 'give --events with audit event types (signin.success), prefixes (factor.*) or *';
    return { verb, tenant, url, events };
  }
  return 'usage: webhook add --tenant T --url URL --events TYPES | webhook list --tenant T | webhook remove --tenant T ID';
}

export async function runWebhookCommand(command: WebhookCommand, deps: { webhooks: Webhooks; accounts: AccountStore; egress: Pick<Egress, 'refusedUrl'> }): Promise<string[]> {
  if (!(await deps.accounts.getTenant(command.tenant))) throw new Error(`no tenant "${command.tenant}"`);
  if (command.verb === 'add') {
    const refused = receiverRefusal(command.url, deps.egress);
    if (refused) throw new Error(`"${command.url}" is at a ${refused} address, which deliveries do not reach: open it with OUTBOUND_ALLOW (docs/configuration.md)`);
    const { subscription, secret } = await deps.webhooks.subscribe(command.tenant, command.url, command.events);
    return [`subscription ${subscription.id}: ${subscription.url} receives ${subscription.events.join(', ')}`, `signing secret (shown once): ${secret}`];
  }
  if (command.verb === 'list') {
    const subs = await deps.webhooks.list(command.tenant);
    return subs.length ? subs.map((s) => `${s.id}  ${s.url}  ${s.events.join(',')}`) : ['no subscriptions'];
  }
  if (!(await deps.webhooks.remove(command.tenant, command.id))) throw new Error(`no subscription "${command.id}" in tenant "${command.tenant}"`);
  return [`subscription ${command.id} removed`];
}
