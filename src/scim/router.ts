/**
 * SCIM 2.0 under `/scim/v2` (RFC 7643, RFC 7644; docs/scim.md): `Users` are
 * the tenant's logins, `Groups` its user types with their logins. Every
 * request carries a tenant's bearer token and sees only that tenant; every
 * answer, errors included, is `application/scim+json`.
 */
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type { Context, Next } from 'koa';
import { LatchkeyError, ScimError } from '../errors.ts';
import type { Login, Tenant, UserType } from '../storage/accounts/port.ts';
import type { ScimUser } from '../storage/scim/port.ts';
import { LOGIN_PAGE_MAX } from '../storage/accounts/port.ts';
import { requestInfo } from '../web/request.ts';
import { takeRequestSlot } from '../limits.ts';
import { fullName } from '../names.ts';
import { getKey, matches, parseFilter, type Filter } from './filter.ts';
import { applyPatch, parsePatch } from './patch.ts';
import { ERROR_SCHEMA, GROUP_PATCH_SCHEMA, GROUP_SCHEMA, LIST_RESPONSE, MAX_PAGE, USER_PATCH_SCHEMA, resourceTypes, schemaDocuments, serviceProviderConfig } from './schemas.ts';
import { etagOf, namedLogins, userInput, userResource } from './users.ts';
import { scimActor, scimLogins, type Actor, type ScimDeps } from './logins.ts';
import type { ScimTokens } from './tokens.ts';
import type { Services } from '../services.ts';
import type { Logger } from '../log.ts';

export const SCIM_PREFIX = '/scim/v2';
const CONTENT_TYPE = 'application/scim+json; charset=utf-8';
const BODY_LIMIT = '512kb';
const ID_MAX = 256;
/** How often a change of a User is made again when the login changed between its read and its write. */
const SAVE_ATTEMPTS = 3;

type Obj = Record<string, unknown>;

function scimError(ctx: Context, err: ScimError) {
  ctx.status = err.status;
  ctx.type = CONTENT_TYPE;
  if (err.status === 401) ctx.set('WWW-Authenticate', 'Bearer realm="scim"');
  ctx.body = { schemas: [ERROR_SCHEMA], status: String(err.status), ...(err.scimType ? { scimType: err.scimType } : {}), detail: err.detail };
}

/**
 * Every answer under `/scim/v2` is SCIM JSON, errors included: a store that
 * is down is a 503 (with `Retry-After`), anything unexpected is logged and
 * answered with a plain 500 (never a stack trace).
 */
function scimErrors(log: Logger, unavailableStore: (err: unknown) => string | null) {
  return async function scimErrorJson(ctx: Context, next: Next) {
    try {
      await next();
    } catch (err) {
      if (err instanceof ScimError) return scimError(ctx, err);
      const store = unavailableStore(err);
      if (store || (err instanceof LatchkeyError && err.status === 503)) {
        ctx.set('Retry-After', '5');
        return scimError(ctx, new ScimError(503, null, 'The service is temporarily unavailable. Try again in a moment.'));
      }
      if (err instanceof LatchkeyError && typeof err.detail.retryAfterSeconds === 'number') ctx.set('Retry-After', String(err.detail.retryAfterSeconds));
      if (err instanceof LatchkeyError && err.status < 500) {
        const field = typeof err.detail.field === 'string' ? `"${err.detail.field}": ` : '';
        return scimError(ctx, new ScimError(err.status, err.status === 400 ? 'invalidValue' : null, `${field}${err.message}`));
      }
      const status = (err as { status?: unknown })?.status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        const detail = status === 413 ? 'The body is too large.' : status === 415 ? 'Send application/scim+json.' : 'The body is not valid JSON.';
        return scimError(ctx, new ScimError(status, status === 400 ? 'invalidSyntax' : null, detail));
      }
      log.error({ err, path: ctx.path, method: ctx.method }, 'unhandled error');
      scimError(ctx, new ScimError(500, null, 'Something went wrong on our side.'));
    }
  };
}

const needsBody = (ctx: Context) => ['POST', 'PUT', 'PATCH'].includes(ctx.method);

/** Levels of nesting a body may have: a SCIM body has a handful; far deeper ones only cost (and overflow the stack). */
const MAX_BODY_DEPTH = 32;
/** Members one Group change may add: each is looked up, and moved, one by one. */
const MAX_MEMBERS_ADDED = 1_000;

/** True when `value` nests deeper than `max` arrays and objects (walked without recursion). */
function nestsDeeper(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

async function notTooDeep(ctx: Context, next: Next) {
  if (nestsDeeper(ctx.request.body, MAX_BODY_DEPTH)) throw new ScimError(400, 'invalidSyntax', `The body nests deeper than ${MAX_BODY_DEPTH} levels.`);
  await next();
}

async function jsonOnly(ctx: Context, next: Next) {
  if (needsBody(ctx)) {
    const encoding = ctx.get('content-encoding').trim().toLowerCase();
    if (encoding && encoding !== 'identity') throw new ScimError(415, null, 'Compressed bodies are not accepted.');
    if (!ctx.is('application/scim+json', 'application/json')) throw new ScimError(415, null, 'Send application/scim+json (or application/json).');
  }
  await next();
}

export interface ScimRouterDeps extends ScimDeps, Pick<Services, 'log' | 'stores'> {
  tokens: ScimTokens;
}

export function scimRouter(deps: ScimRouterDeps): Router {
  const { accounts, tokens, scim, config } = deps;
  const router = new Router({ prefix: SCIM_PREFIX });
  const base = `${config.issuer}${SCIM_PREFIX}`;
  const logins = scimLogins(deps);

  router.use(
    scimErrors(deps.log, deps.stores.unavailableStore),
    jsonOnly,
    bodyParser({ enableTypes: ['json'], extendTypes: { json: ['application/json', 'application/scim+json'] }, jsonLimit: BODY_LIMIT, encoding: 'utf-8' }),
    notTooDeep,
  );

  // The tenant of the bearer token, read again on every request.
  router.use(async (ctx, next) => {
    // A store known to be down: 503 at once instead of waiting on it.
    if (deps.stores.down()) throw new LatchkeyError('temporarily_unavailable', 503, 'errors.unavailable');
    const header = ctx.get('authorization');
    const match = /^Bearer +([^ ]+) *$/i.exec(header);
    const token = match ? await tokens.verify(match[1]!) : null;
    const tenant = token ? await accounts.getTenant(token.tenant) : null;
    if (!token || !tenant) throw new ScimError(401, null, 'A valid SCIM bearer token of a tenant is required.');
    // A token counts its requests as an API client does (every process together).
    await takeRequestSlot(deps.stores.counters, `scim:${token.id}`, config.api.rateLimit, config.api.rateWindowSeconds * 1000, deps.now());
    ctx.state.actor = scimActor(tenant, token.id, requestInfo(ctx));
    ctx.set('Cache-Control', 'no-store');
    await next();
  });

  const actorOf = (ctx: Context) => ctx.state.actor as Actor;

  function send(ctx: Context, body: unknown, status = 200) {
    ctx.status = status;
    ctx.type = CONTENT_TYPE;
    ctx.body = body;
  }

  function sendResource(ctx: Context, resource: Obj, status = 200) {
    const version = (resource.meta as Obj).version as string;
    ctx.set('ETag', version);
    if (status === 201) ctx.set('Location', (resource.meta as Obj).location as string);
    send(ctx, project(ctx, resource), status);
  }

  /** `If-Match` on a change: 412 when the resource changed since the client read it. */
  function checkIfMatch(ctx: Context, resource: Obj) {
    const wanted = ctx.get('if-match');
    if (!wanted || wanted.trim() === '*') return;
    const current = (resource.meta as Obj).version as string;
    const strip = (t: string) => t.trim().replace(/^W\//, '');
    if (!wanted.split(',').some((t) => strip(t) === strip(current))) throw new ScimError(412, null, 'The resource changed since it was read (If-Match).');
  }

  // Discovery.

  router.get('/ServiceProviderConfig', (ctx) => send(ctx, serviceProviderConfig(base)));
  router.get('/ResourceTypes', (ctx) => send(ctx, listResponse(resourceTypes(base), 1, resourceTypes(base).length)));
  router.get('/ResourceTypes/:id', (ctx) => {
    const found = resourceTypes(base).find((r) => r.id === ctx.params.id);
    if (!found) throw new ScimError(404, null, 'No such resource type.');
    send(ctx, found);
  });
  router.get('/Schemas', (ctx) => send(ctx, listResponse(schemaDocuments(base), 1, schemaDocuments(base).length)));
  router.get('/Schemas/:id', (ctx) => {
    const found = schemaDocuments(base).find((s) => s.id.toLowerCase() === String(ctx.params.id).toLowerCase());
    if (!found) throw new ScimError(404, null, 'No such schema.');
    send(ctx, found);
  });

  // Users.

  async function userOf(tenant: Tenant, id: unknown): Promise<{ login: Login; named: ScimUser; resource: Obj }> {
    const login = typeof id === 'string' && id.length <= ID_MAX ? await accounts.getLogin(id) : null;
    if (!login || login.tenant !== tenant.id) throw new ScimError(404, null, 'No such user.');
    const named = (await namedLogins(scim, logins, tenant.id, [login])).get(login.id)!;
    return { login, named, resource: userResource(base, tenant, login, named) };
  }

  /**
   * The logins a filter can only match, found by an index instead of a scan
   * of the tenant (a directory looks a user up by `userName`, `externalId`
   * or email before it creates one); null when the filter needs the scan.
   */
  async function userCandidates(tenant: Tenant, filter: Filter | null): Promise<Login[] | null> {
    if (!filter) return null;
    if (filter.op === 'and') return (await userCandidates(tenant, filter.left)) ?? userCandidates(tenant, filter.right);
    if (filter.op !== 'eq' || typeof filter.value !== 'string' || (filter.path.uri && filter.path.uri.toLowerCase() !== USER_PATCH_SCHEMA.core.toLowerCase())) return null;
    const attr = `${filter.path.attr}${filter.path.sub ? `.${filter.path.sub}` : ''}`.toLowerCase();
    const value = filter.value;
    const ofTenant = (list: (Login | null)[]) => list.filter((l): l is Login => !!l && l.tenant === tenant.id);
    if (attr === 'id') return ofTenant([value.length <= ID_MAX ? await accounts.getLogin(value) : null]);
    if (attr === 'emails' || attr === 'emails.value') return accounts.listLoginsForEmail(tenant.id, value);
    if (attr === 'externalid') return ofTenant(await Promise.all((await scim.findByExternalId(tenant.id, value)).map((u) => accounts.getLogin(u.loginId))));
    if (attr === 'username') {
      const held = await scim.findByUserName(tenant.id, value);
      const email = value.split('#')[0]!;
      const [holder, ofEmail] = await Promise.all([held ? accounts.getLogin(held.loginId) : null, email.includes('@') ? accounts.listLoginsForEmail(tenant.id, email) : []]);
      return [...ofTenant([holder]).filter((l) => !ofEmail.some((o) => o.id === l.id)), ...ofEmail];
    }
    return null;
  }

  function page(ctx: Context): { startIndex: number; count: number } {
    const number = (name: string, fallback: number) => {
      const raw = ctx.query[name];
      if (raw === undefined) return fallback;
      if (typeof raw !== 'string' || !/^-?\d{1,9}$/.test(raw)) throw new ScimError(400, 'invalidValue', `"${name}" must be an integer.`);
      return Number(raw);
    };
    // RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0.
    return { startIndex: Math.max(1, number('startIndex', 1)), count: Math.min(MAX_PAGE, Math.max(0, number('count', MAX_PAGE))) };
  }

  function filterOf(ctx: Context): Filter | null {
    const raw = ctx.query.filter;
    if (raw === undefined || raw === '') return null;
    if (typeof raw !== 'string') throw new ScimError(400, 'invalidFilter', 'Give one filter.');
    return parseFilter(raw);
  }

  function listResponse(resources: unknown[], startIndex: number, total: number) {
    return { schemas: [LIST_RESPONSE], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
  }

  router.get('/Users', async (ctx) => {
    const { tenant } = actorOf(ctx);
    const filter = filterOf(ctx);
    const { startIndex, count } = page(ctx);
    const candidates = (await userCandidates(tenant, filter)) ?? (await accounts.listLogins(tenant.id));
    const named = await namedLogins(scim, logins, tenant.id, candidates);
    const all = candidates
      .map((l) => userResource(base, tenant, l, named.get(l.id)!))
      .filter((r) => !filter || matches(r, filter, USER_PATCH_SCHEMA))
      .sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
    const shown = all.slice(startIndex - 1, startIndex - 1 + count).map((r) => project(ctx, r));
    send(ctx, listResponse(shown, startIndex, all.length));
  });

  router.get('/Users/:id', async (ctx) => {
    const { resource } = await userOf(actorOf(ctx).tenant, ctx.params.id);
    if (ctx.get('if-none-match') && ctx.get('if-none-match') === (resource.meta as Obj).version) {
      ctx.status = 304;
      return;
    }
    sendResource(ctx, resource);
  });

  router.post('/Users', async (ctx) => {
    const actor = actorOf(ctx);
    const input = userInput(ctx.request.body, actor.tenant, null);
    // The email's logins answer to their names before a new one takes one.
    await namedLogins(scim, logins, actor.tenant.id, await accounts.listLoginsForEmail(actor.tenant.id, input.fields.email));
    if (input.userName.includes('@') && input.userName.split('#')[0]!.toLowerCase() !== input.fields.email) {
      await namedLogins(scim, logins, actor.tenant.id, await accounts.listLoginsForEmail(actor.tenant.id, input.userName.split('#')[0]!));
    }
    const login = await logins.create(actor, input.userName, input.externalId, input.fields);
    const { resource } = await userOf(actor.tenant, login.id);
    sendResource(ctx, resource, 201);
  });

  /**
   * A replace (PUT) or a patch, from the User as read: `wanted` gives its new
   * state, and the User (its login and its SCIM values) is written only while
   * it is still as read. When it changed meanwhile the request is made again from a fresh read — which,
   * with an `If-Match`, no longer matches (412) — so another request's change
   * is never written over: a rename racing a deactivation keeps the login
   * deactivated.
   */
  async function saveUser(ctx: Context, wanted: (login: Login, resource: Obj) => unknown): Promise<Login> {
    const actor = actorOf(ctx);
    for (let attempt = 1; ; attempt++) {
      const { login, named, resource } = await userOf(actor.tenant, ctx.params.id);
      checkIfMatch(ctx, resource);
      const input = userInput(wanted(login, resource), actor.tenant, login);
      try {
        await logins.update(actor, login, input.fields, { read: named, userName: input.userName, externalId: input.externalId });
        return login;
      } catch (err) {
        if (!(err instanceof LatchkeyError && err.status === 412) || attempt === SAVE_ATTEMPTS) throw err;
      }
    }
  }

  router.put('/Users/:id', async (ctx) => {
    const body = ctx.request.body as unknown;
    const login = await saveUser(ctx, (read) => {
      if (getKey(body, 'id') !== undefined && getKey(body, 'id') !== read.id) throw new ScimError(400, 'mutability', '"id" cannot change.');
      return body;
    });
    sendResource(ctx, (await userOf(actorOf(ctx).tenant, login.id)).resource);
  });

  router.patch('/Users/:id', async (ctx) => {
    const operations = parsePatch(ctx.request.body);
    const login = await saveUser(ctx, (_read, resource) => applyPatch(resource, operations, USER_PATCH_SCHEMA));
    sendResource(ctx, (await userOf(actorOf(ctx).tenant, login.id)).resource);
  });

  router.delete('/Users/:id', async (ctx) => {
    const actor = actorOf(ctx);
    const { login, named, resource } = await userOf(actor.tenant, ctx.params.id);
    checkIfMatch(ctx, resource);
    await logins.remove(actor, login, named);
    ctx.status = 204;
  });

  // Groups: the tenant's user types.

  function groupResource(type: UserType, members: Login[] | null): Obj {
    const resource: Obj = {
      schemas: [GROUP_SCHEMA],
      id: type.id,
      displayName: type.name,
      ...(members ? { members: members.map((l) => ({ value: l.id, display: fullName(l), $ref: `${base}/Users/${encodeURIComponent(l.id)}` })) } : {}),
      meta: { resourceType: 'Group', location: `${base}/Groups/${encodeURIComponent(type.id)}` },
    };
    (resource.meta as Obj).version = etagOf({ ...resource, members: members?.map((l) => l.id) });
    return resource;
  }

  const wantsMembers = (ctx: Context) => !listOf(ctx.query.excludedAttributes).includes('members') && (!ctx.query.attributes || listOf(ctx.query.attributes).includes('members'));

  async function membersOf(tenant: Tenant, userType: string): Promise<Login[]> {
    const members: Login[] = [];
    for (let offset = 0; ; offset += LOGIN_PAGE_MAX) {
      const { logins: page_ } = await accounts.searchLogins({ tenant: tenant.id, userType, sort: 'name', offset, limit: LOGIN_PAGE_MAX });
      members.push(...page_);
      if (page_.length < LOGIN_PAGE_MAX) return members.sort((a, b) => (a.id < b.id ? -1 : 1));
    }
  }

  async function groupOf(tenant: Tenant, id: unknown, withMembers: boolean) {
    const type = tenant.userTypes.find((t) => t.id === id);
    if (!type) throw new ScimError(404, null, 'No such group.');
    return { type, resource: groupResource(type, withMembers ? await membersOf(tenant, type.id) : null) };
  }

  router.get('/Groups', async (ctx) => {
    const { tenant } = actorOf(ctx);
    const filter = filterOf(ctx);
    const { startIndex, count } = page(ctx);
    const withMembers = wantsMembers(ctx) || (filter !== null && JSON.stringify(filter).toLowerCase().includes('"members"'));
    const everyone = withMembers ? await accounts.listLogins(tenant.id) : [];
    const all = tenant.userTypes
      .map((t) => groupResource(t, withMembers ? everyone.filter((l) => l.userType === t.id).sort((a, b) => (a.id < b.id ? -1 : 1)) : null))
      .filter((r) => !filter || matches(r, filter, GROUP_PATCH_SCHEMA));
    send(
      ctx,
      listResponse(
        all.slice(startIndex - 1, startIndex - 1 + count).map((r) => project(ctx, r)),
        startIndex,
        all.length,
      ),
    );
  });

  router.get('/Groups/:id', async (ctx) => {
    const { resource } = await groupOf(actorOf(ctx).tenant, ctx.params.id, wantsMembers(ctx));
    sendResource(ctx, resource);
  });

  /**
   * A group's new state: its name stays (user types are renamed by the
   * owner), and each login added to its members moves to this user type.
   * A login taken out of the members stays where it is: every login has one
   * user type, and only an add to another group says which (docs/scim.md).
   */
  async function saveGroup(actor: Actor, type: UserType, current: Obj, wanted: unknown) {
    const name = getKey(wanted, 'displayName');
    if (name !== undefined && name !== type.name) throw new ScimError(400, 'mutability', "A user type is renamed by the tenant's owner, not over SCIM.");
    const members = getKey(wanted, 'members') ?? [];
    if (!Array.isArray(members)) throw new ScimError(400, 'invalidValue', '"members" must be a list.');
    const before = new Set(((current.members ?? []) as Obj[]).map((m) => m.value));
    const added: string[] = [];
    for (const m of members) {
      const value = getKey(m, 'value');
      if (typeof value !== 'string' || value.length > ID_MAX) throw new ScimError(400, 'invalidValue', 'Each member needs a "value": a User id.');
      if (!before.has(value) && !added.includes(value)) added.push(value);
      if (added.length > MAX_MEMBERS_ADDED) throw new ScimError(400, 'tooMany', `At most ${MAX_MEMBERS_ADDED} members can be added at once.`);
    }
    const targets = await Promise.all(added.map((id) => accounts.getLogin(id)));
    const missing = added.filter((_, i) => !targets[i] || targets[i]!.tenant !== actor.tenant.id);
    if (missing.length) throw new ScimError(400, 'invalidValue', `No such user: "${missing[0]!.slice(0, 100)}".`);
    const moves = (targets as Login[]).map((login) => ({
      login,
      fields: { firstName: login.firstName, lastName: login.lastName, email: login.email, userType: type.id, active: !login.disabled },
    }));
    // Every new member is checked before the first moves: a refused one (the tenant's owner) moves nobody.
    for (const { login, fields } of moves) logins.check(actor, login, fields);
    for (const { login, fields } of moves) await logins.update(actor, login, fields);
  }

  router.patch('/Groups/:id', async (ctx) => {
    const actor = actorOf(ctx);
    const operations = parsePatch(ctx.request.body);
    const { type, resource } = await groupOf(actor.tenant, ctx.params.id, true);
    checkIfMatch(ctx, resource);
    await saveGroup(actor, type, resource, applyPatch(resource, operations, GROUP_PATCH_SCHEMA));
    ctx.status = 204;
  });

  router.put('/Groups/:id', async (ctx) => {
    const actor = actorOf(ctx);
    const { type, resource } = await groupOf(actor.tenant, ctx.params.id, true);
    checkIfMatch(ctx, resource);
    await saveGroup(actor, type, resource, ctx.request.body);
    sendResource(ctx, (await groupOf(actor.tenant, type.id, true)).resource);
  });

  router.post('/Groups', async (ctx) => {
    const { tenant } = actorOf(ctx);
    const name = getKey(ctx.request.body, 'displayName');
    if (typeof name === 'string' && tenant.userTypes.some((t) => t.name.toLowerCase() === name.toLowerCase())) {
      throw new ScimError(409, 'uniqueness', `The user type "${name}" exists: find it with filter=displayName eq "${name}".`);
    }
    throw new ScimError(403, null, "User types are made by the tenant's owner on the account pages; SCIM manages their members.");
  });

  router.delete('/Groups/:id', () => {
    throw new ScimError(403, null, "User types are removed by the tenant's owner on the account pages.");
  });

  router.all('/{*rest}', () => {
    throw new ScimError(404, null, 'No such SCIM endpoint.');
  });

  return router;
}

const listOf = (value: unknown): string[] =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean)
    : [];

/** `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), on top-level attributes; `id`, `schemas` and `meta` always stay. */
function project(ctx: Context, resource: Obj): Obj {
  // `name.givenName` → `name`; a core schema's URN prefix dropped; an extension's attribute names the extension.
  const CORE = /^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/;
  const top = (a: string) => (a.startsWith('urn:') && !CORE.test(a) ? a : a.replace(CORE, '').split('.')[0]!);
  const named = (list: string[], key: string) => list.some((a) => a === key || (key.startsWith('urn:') && a.startsWith(`${key}:`)));
  const only = listOf(ctx.query.attributes).map(top);
  const excluded = listOf(ctx.query.excludedAttributes).map(top);
  if (!only.length && !excluded.length) return resource;
  const always = new Set(['id', 'schemas', 'meta']);
  return Object.fromEntries(
    Object.entries(resource).filter(([k]) => {
      const key = k.toLowerCase();
      if (always.has(key)) return true;
      if (only.length) return named(only, key);
      return !excluded.includes(key);
    }),
  );
}
