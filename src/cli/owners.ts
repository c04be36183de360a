/**
 * `npm run cli -- reset-factor EMAIL --tenant T [--user-type U]` and
 * `npm run cli -- add-owner EMAIL --tenant T [--user-type U]` (docs/account.md):
 * the operator's way out for an owner who lost their own factor (an owner
 * cannot reset their own from the pages) or a tenant whose owners are gone.
 * Both find the login like the owner pages do (`src/admin/owners.ts`) and
 * are audited in the tenant with `by: "cli"`.
 */
import { LatchkeyError } from '../errors.ts';
import { addOwner, loginByEmail } from '../admin/owners.ts';
import { adminPeople, type Actor, type AdminDeps } from '../admin/people.ts';
import type { Tenant } from '../storage/accounts/port.ts';
import { EMAIL_MAX } from '../email.ts';

export interface OwnerCommand {
  command: 'reset-factor' | 'add-owner';
  email: string;
  tenant: string;
  userType?: string;
}

/** The command line after the command's name, or a usage message. */
export function parseOwnerCommand(command: 'reset-factor' | 'add-owner', args: string[]): OwnerCommand | string {
  const [email, ...rest] = args;
  const usage = `usage: npm run cli -- ${command} EMAIL --tenant TENANT [--user-type USER_TYPE]`;
  if (!email || email.startsWith('--') || !email.includes('@') || email.length > EMAIL_MAX) return usage;
  const flags: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i]!, rest[i + 1]];
    if ((flag !== '--tenant' && flag !== '--user-type') || !value || value.startsWith('--') || flags[flag] !== undefined) return usage;
    flags[flag] = value;
  }
  if (!flags['--tenant']) return usage;
  return { command, email, tenant: flags['--tenant'], ...(flags['--user-type'] ? { userType: flags['--user-type'] } : {}) };
}

const cliActor = (tenant: Tenant): Actor => ({ tenant, by: { operator: 'cli' }, ip: null, userAgent: null });

/** Runs the command; its lines to print. Throws an Error with the message to show when it cannot. */
export async function runOwnerCommand(cmd: OwnerCommand, deps: AdminDeps): Promise<string[]> {
  const tenant = await deps.accounts.getTenant(cmd.tenant);
  if (!tenant) throw new Error(`no tenant "${cmd.tenant}"`);
  try {
    const login = await loginByEmail(deps.accounts, tenant, cmd.email, cmd.userType);
    const at = `login ${tenant.id}/${login.id}`;
    if (cmd.command === 'add-owner') {
      const result = await addOwner(deps, cliActor(tenant), login);
      return [`${at}: ${result === 'added' ? 'is now an owner' : 'was already an owner'}`];
    }
    // Every factor with an owner's reset that the login has set up (its state in the store).
    const enrolled = deps.factors
      .all()
      .filter((f) => f.ownerReset && login.factors[f.id] !== undefined)
      .map((f) => f.id);
    if (!enrolled.length) return [`${at}: no second factor set up, nothing to reset`];
    const people = adminPeople(deps);
    for (const factor of enrolled) await people.resetFactor(cliActor(tenant), login, factor);
    return [`${at}: reset ${enrolled.join(', ')}; its sessions ended, it sets a factor up again at its next sign-in`];
  } catch (err) {
    if (err instanceof LatchkeyError) throw new Error(`${cmd.email} in tenant "${tenant.id}": ${err.message}`);
    throw err;
  }
}
