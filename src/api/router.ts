/**
 * The management API under `/api/v1` (docs/api.md): JSON, tenant-scoped,
 * authorised by client-credentials access tokens from Latchkey's own token
 * endpoint. Every change goes through the same operations as the owner's
 * pages (`src/admin/`), so the same rules hold and the same audit is written.
 *
 * A token belongs to a client, and a client to one tenant: every id is looked
 * up in that tenant only, so another tenant's login, subscription or event is
 * a 404 like a missing one. Errors are RFC 9457 problems naming the field.
 */
import { createHash, randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';
import { z, type ZodError, type ZodType } from 'zod';
import { LatchkeyError, badRequest, insufficientScope, invalidToken, namesake, notFound, preconditionFailed, unavailable } from '../errors.ts';
import { takeRequestSlot } from '../limits.ts';
import type { RouteDeps } from '../services.ts';
import type { Client, Login, LoginProfile, Tenant } from '../storage/accounts/port.ts';
import { normalizeEmail } from '../storage/accounts/port.ts';
import { ANY_TENANT } from '../provider/account-client.ts';
import { SECRET_SINCE } from '../provider/clients.ts';
import { adminPeople, checkPerson, derivedLoginId, type Actor, type Invitation, type PersonFields } from '../admin/people.ts';
import { adminWebhooks } from '../admin/webhooks.ts';
import { createUserType, deleteUserType, planActorFactorChanges, renameUserType, setUserTypeFactors } from '../admin/user-types.ts';
import { requestInfo } from '../web/request.ts';
import { grantedApiScopes, type ApiScope } from './scopes.ts';
import { route, type Answer, type RouteSpec } from './routes.ts';
import * as S from './schemas.ts';
import { openApiDocument } from './openapi.ts';
import { EMAIL_MAX } from '../email.ts';

export const API_PREFIX = '/api/v1';
const JSON_LIMIT = '64kb';
const PAGE = 50;
/** The latest time a Date holds (ECMA-262: ±8.64e15 ms from 1970). */
const MAX_DATE_MS = 8.64e15;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const PROBLEM = 'application/problem+json';

export type ApiDeps = Pick<
  RouteDeps,
  'provider' | 'sessions' | 'config' | 'accounts' | 'links' | 'mailer' | 'factors' | 'audit' | 'limiter' | 'counters' | 'now' | 'log' | 'webhooks' | 'stores' | 'egress'
>;

/** Who calls: a live token of a tenant's client, with the scopes both the token and the client (still) have. */
export interface Caller {
  client: Client;
  tenant: Tenant;
  scopes: Set<ApiScope>;
  actor: Actor;
}

/** The problem body (RFC 9457) of a LatchkeyError. */
export function problemOf(err: LatchkeyError, instance?: string): z.infer<typeof S.Problem> {
  const { field, namesakes, suggestion, retryAfterSeconds, errors } = err.detail as Record<string, unknown>;
  const fieldErrors = Array.isArray(errors) ? (errors as { field: string; detail: string }[]) : typeof field === 'string' ? [{ field, detail: err.message }] : undefined;
  return {
    type: `urn:latchkey:problem:${err.code}`,
    title: err.code.replace(/_/g, ' '),
    status: err.status,
    detail: err.message,
    code: err.code,
    ...(instance ? { instance } : {}),
    ...(fieldErrors ? { errors: fieldErrors } : {}),
    ...(Array.isArray(namesakes) ? { namesakes: namesakes as string[] } : {}),
    ...(typeof suggestion === 'string' ? { suggestion } : {}),
    ...(typeof retryAfterSeconds === 'number' ? { retryAfterSeconds } : {}),
  };
}

/** A zod refusal as a 400 naming every refused field by its path (`firstName`, `events.0`). */
function invalid(error: ZodError, where: 'body' | 'query' | 'path'): LatchkeyError {
  const errors = error.issues.flatMap((issue) => {
    const at = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => ({ field: at ? `${at}.${k}` : k, detail: 'unknown field' }));
    return [{ field: at || where, detail: issue.message }];
  });
  return badRequest('errors.api.field', { field: errors[0]!.field, problem: errors[0]!.detail, errors });
}

function parse<T>(schema: ZodType<T> | undefined, value: unknown, where: 'body' | 'query' | 'path'): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value);
  if (!result.success) throw invalid(result.error, where);
  return result.data;
}

/** A strong entity tag of what an administrator sees of the login: any change to it gives another. */
export function etagOf(login: LoginProfile): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([login.id, login.tenant, login.email, login.userType, login.firstName, login.lastName, login.disabled]))
    .digest('base64url');
  return `"${digest.slice(0, 27)}"`;
}

/** Whether `If-Match` lets a change of `login` through (no header: yes). A malformed header is a 400. */
function ifMatch(ctx: Context, login: Login): void {
  const header = ctx.get('if-match').trim();
  if (!header) return;
  if (header === '*') return;
  const tags = header.split(',').map((t) => t.trim());
  if (!tags.every((t) => /^"[\x21\x23-\x7e]*"$/.test(t) || /^W\/"[\x21\x23-\x7e]*"$/.test(t))) throw badRequest('errors.api.ifMatch', { field: 'If-Match' });
  // If-Match compares strongly: a weak tag never matches.
  if (!tags.includes(etagOf(login))) throw preconditionFailed();
}

const loginBody = (l: Login): z.infer<typeof S.Login> => ({
  id: l.id,
  email: l.email,
  firstName: l.firstName,
  lastName: l.lastName,
  userType: l.userType,
  disabled: l.disabled,
  factors: Object.keys(l.factors).sort(),
});

const withEtag = (status: number, login: Login, headers: Record<string, string> = {}, invitation?: Invitation): Answer => ({
  status,
  body: { ...loginBody(login), ...(invitation ? { invitation } : {}) },
  headers: { ETag: etagOf(login), ...headers },
});

const cursorOf = (value: Record<string, unknown>) => Buffer.from(JSON.stringify(value)).toString('base64url');
function fromCursor<T>(cursor: string, schema: ZodType<T>): T {
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // Not JSON: refused below like any other cursor we did not give out.
  }
  throw badRequest('errors.api.cursor', { field: 'cursor' });
}

const LoginCursor = z
  .object({
    o: z.number().int().min(0).max(10_000_000),
    q: z.string().max(128),
    u: z.string().max(128).nullable(),
    s: z.enum(['active', 'disabled']).nullable(),
    e: z.string().max(EMAIL_MAX).nullable(),
  })
  .strict();
// Only what a cursor given out can hold: `b` a time a Date can be (0 for none), `l` and `t` as the query takes them.
const AuditCursor = z
  .object({
    b: z.number().int().min(0).max(MAX_DATE_MS),
    l: S.AuditQuery.shape.login.unwrap().nullable(),
    t: S.AuditQuery.shape.type.unwrap().nullable(),
  })
  .strict();

/** Every route of the API, declared once (`./routes.ts`): the router serves them, the OpenAPI document describes them. */
export function apiRoutes(deps: ApiDeps): RouteSpec<never, never, never, Caller>[] {
  const { accounts, config } = deps;
  const people = adminPeople(deps);
  const hooks = adminWebhooks(deps);
  const routes: RouteSpec<never, never, never, Caller>[] = [];
  const add = <P, Q, B>(spec: RouteSpec<P, Q, B, Caller>) => routes.push(spec as unknown as RouteSpec<never, never, never, Caller>);

  // Logins.

  add(
    route({
      method: 'get',
      path: '/logins',
      operationId: 'listLogins',
      tag: 'Logins',
      summary: 'List the tenant’s logins',
      description: 'Filtered by words, user type, state or email; ordered by name; paged with `cursor`.',
      scope: 'latchkey:logins.read',
      query: S.LoginQuery,
      responses: { 200: { description: 'One page of logins.', schema: S.LoginPage } },
      async handle({ query, caller }: { query: z.infer<typeof S.LoginQuery>; caller: Caller }) {
        const from = query.cursor
          ? fromCursor(query.cursor, LoginCursor)
          : { o: 0, q: (query.q ?? '').trim(), u: query.userType ?? null, s: query.state ?? null, e: query.email ? normalizeEmail(query.email) : null };
        if (from.u !== null && !caller.tenant.userTypes.some((t) => t.id === from.u)) throw badRequest('errors.account.noSuchUserType', { field: 'userType' });
        const limit = query.limit ?? PAGE;
        if (from.e !== null) {
          const all = await accounts.listLoginsForEmail(caller.tenant.id, from.e);
          const matching = all.filter((l) => (from.u === null || l.userType === from.u) && (from.s === null || l.disabled === (from.s === 'disabled')));
          const page = matching.slice(from.o, from.o + limit);
          const next = from.o + limit < matching.length ? cursorOf({ ...from, o: from.o + limit }) : null;
          return { status: 200, body: { items: page.map(loginBody), total: matching.length, nextCursor: next } };
        }
        const { logins, total } = await accounts.searchLogins({
          tenant: caller.tenant.id,
          text: from.q,
          ...(from.u !== null ? { userType: from.u } : {}),
          ...(from.s !== null ? { state: from.s } : {}),
          offset: from.o,
          limit,
        });
        const next = from.o + logins.length < total && logins.length > 0 ? cursorOf({ ...from, o: from.o + logins.length }) : null;
        return { status: 200, body: { items: logins.map(loginBody), total, nextCursor: next } };
      },
    }),
  );

  add(
    route({
      method: 'post',
      path: '/logins',
      operationId: 'createLogin',
      tag: 'Logins',
      summary: 'Add a login',
      description:
        'An email that has a password signs in at once and is mailed a notice of the new login; a new email is mailed an invitation to choose one. The answer is alike either way: `invitation` says `sent`, or `rate_limited` past 5 mails an hour per email (the login is added without a mail). With an `Idempotency-Key`, sending the same request again (a retry, parallel requests) answers with the one login it created (200) instead of adding another.',
      scope: 'latchkey:logins.write',
      body: S.NewLogin,
      requestHeaders: { 'Idempotency-Key': 'Up to 255 visible characters, chosen once per login to add.' },
      responses: {
        201: { description: 'Added.', schema: S.Login, headers: { ETag: 'The login’s entity tag.', Location: 'The login’s URL.' } },
        200: { description: 'Added before under this Idempotency-Key: the login it added.', schema: S.Login, headers: { ETag: 'The login’s entity tag.' } },
        409: { description: 'Another login of the email has this name (`namesake`): send another name, or `allowSameName`.', schema: S.Problem },
      },
      async handle({ body, caller, headers }: { body: z.infer<typeof S.NewLogin>; caller: Caller; headers: { 'idempotency-key'?: string } }) {
        const key = headers['idempotency-key'];
        if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw badRequest('errors.api.idempotencyKey', { field: 'Idempotency-Key' });
        const person = checkPerson(body, caller.tenant);
        // The key names the login it adds: one client's key never names another client's (or tenant's) login.
        const id = derivedLoginId(caller.tenant.id, `api\n${caller.client.clientId}\n${key ?? randomUUID()}`);
        const result = await people.create(caller.actor, id, person, { sameName: body.allowSameName === true });
        if (result.outcome === 'namesakes')
          throw namesake(
            result.namesakes.map((l) => l.id),
            result.suggestion,
          );
        if (result.outcome === 'existed') return withEtag(200, result.login);
        return withEtag(201, result.login, { Location: `${config.issuer}${API_PREFIX}/logins/${encodeURIComponent(id)}` }, result.invitation);
      },
    }),
  );

  add(
    route({
      method: 'get',
      path: '/logins/{id}',
      operationId: 'getLogin',
      tag: 'Logins',
      summary: 'Read a login',
      scope: 'latchkey:logins.read',
      params: S.LoginId,
      responses: { 200: { description: 'The login.', schema: S.Login, headers: { ETag: 'Send it back in `If-Match` to change the login only as read.' } } },
      async handle({ params, caller }: { params: { id: string }; caller: Caller }) {
        return withEtag(200, await people.login(caller.actor, params.id));
      },
    }),
  );

  add(
    route({
      method: 'patch',
      path: '/logins/{id}',
      operationId: 'updateLogin',
      tag: 'Logins',
      summary: 'Change a login’s email, names or user type',
      description:
        "A new email hands the login to another person: its sessions end and its second factors are forgotten; the new email is mailed as for an add (`invitation`), and the old one's identity (its password, its upstream links) goes when no login of any tenant has it any more. With `If-Match`, the change is made only to the login as read.",
      scope: 'latchkey:logins.write',
      params: S.LoginId,
      body: S.LoginChange,
      requestHeaders: { 'If-Match': 'The `ETag` of the login as read; another one answers 412.' },
      responses: {
        200: { description: 'Changed (or nothing to change).', schema: S.Login, headers: { ETag: 'The new entity tag.' } },
        409: { description: 'Another login of the email has this name (`namesake`).', schema: S.Problem },
        412: { description: 'The login changed since it was read.', schema: S.Problem },
      },
      async handle({ params, body, caller, ctx }: { params: { id: string }; body: z.infer<typeof S.LoginChange>; caller: Caller; ctx: Context }) {
        const target = await people.login(caller.actor, params.id);
        ifMatch(ctx, target);
        const merged: PersonFields = {
          firstName: body.firstName ?? target.firstName,
          lastName: body.lastName ?? target.lastName,
          email: body.email ?? target.email,
          userType: body.userType ?? target.userType,
        };
        const result = await people.update(caller.actor, target, checkPerson(merged, caller.tenant), { sameName: body.allowSameName === true });
        if (result.outcome === 'namesakes')
          throw namesake(
            result.namesakes.map((l) => l.id),
            result.suggestion,
          );
        return withEtag(200, result.login, {}, result.invitation);
      },
    }),
  );

  add(
    route({
      method: 'delete',
      path: '/logins/{id}',
      operationId: 'deleteLogin',
      tag: 'Logins',
      summary: 'Remove a login',
      description: 'Its sessions and tokens end; with the email’s last login anywhere, the identity goes too. The audit keeps the events under the login’s id.',
      scope: 'latchkey:logins.write',
      params: S.LoginId,
      requestHeaders: { 'If-Match': 'The `ETag` of the login as read; another one answers 412.' },
      responses: { 204: { description: 'Removed.' }, 412: { description: 'The login changed since it was read.', schema: S.Problem } },
      async handle({ params, caller, ctx }: { params: { id: string }; caller: Caller; ctx: Context }) {
        const target = await people.login(caller.actor, params.id);
        ifMatch(ctx, target);
        if (!(await people.remove(caller.actor, target))) throw notFound('errors.account.noSuchUser');
        return { status: 204 };
      },
    }),
  );

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    add(
      route({
        method: 'post',
        path: `/logins/{id}/${action}`,
        operationId: `${action}Login`,
        tag: 'Logins',
        summary: disabled ? 'Disable a login (its sessions and tokens end at once)' : 'Enable a disabled login',
        scope: 'latchkey:logins.write',
        params: S.LoginId,
        responses: { 200: { description: disabled ? 'Disabled.' : 'Enabled.', schema: S.Login, headers: { ETag: 'The new entity tag.' } } },
        async handle({ params, caller }: { params: { id: string }; caller: Caller }) {
          return withEtag(200, await people.setDisabled(caller.actor, await people.login(caller.actor, params.id), disabled));
        },
      }),
    );
  }

  add(
    route({
      method: 'post',
      path: '/logins/{id}/factors/{factor}/reset',
      operationId: 'resetFactor',
      tag: 'Logins',
      summary: 'Reset a second factor (a lost phone or PIN)',
      description: 'The factor’s set-up is forgotten and the person sets it up again at the next sign-in; the login’s locks are lifted and its sessions end.',
      scope: 'latchkey:logins.write',
      params: S.FactorPath,
      responses: { 200: { description: 'Reset; what was unlocked with it.', schema: S.Unlocked } },
      async handle({ params, caller }: { params: z.infer<typeof S.FactorPath>; caller: Caller }) {
        return { status: 200, body: await people.resetFactor(caller.actor, await people.login(caller.actor, params.id), params.factor) };
      },
    }),
  );

  add(
    route({
      method: 'post',
      path: '/logins/{id}/unlock',
      operationId: 'unlockLogin',
      tag: 'Logins',
      summary: 'Lift the locks that failed attempts put on a login',
      scope: 'latchkey:logins.write',
      params: S.LoginId,
      responses: { 200: { description: 'What was lifted, and what only the operator can lift.', schema: S.Unlocked } },
      async handle({ params, caller }: { params: { id: string }; caller: Caller }) {
        return { status: 200, body: await people.unlock(caller.actor, await people.login(caller.actor, params.id)) };
      },
    }),
  );

  add(
    route({
      method: 'delete',
      path: '/logins/{id}/sessions',
      operationId: 'endSessions',
      tag: 'Logins',
      summary: 'End every session and token of a login (sign out everywhere)',
      scope: 'latchkey:logins.write',
      params: S.LoginId,
      responses: { 204: { description: 'Ended.' } },
      async handle({ params, caller }: { params: { id: string }; caller: Caller }) {
        await people.endSessions(caller.actor, await people.login(caller.actor, params.id));
        return { status: 204 };
      },
    }),
  );

  add(
    route({
      method: 'get',
      path: '/logins/{id}/sessions',
      operationId: 'listSessions',
      tag: 'Logins',
      summary: 'List a login’s live sessions: browser, address, times and the apps each signed in to',
      scope: 'latchkey:logins.read',
      params: S.LoginId,
      responses: { 200: { description: 'The sessions, most recently used first.', schema: S.SessionList } },
      async handle({ params, caller }: { params: { id: string }; caller: Caller }) {
        const sessions = await people.listSessions(caller.actor, await people.login(caller.actor, params.id));
        const items = sessions.map((v) => ({
          id: v.id,
          signedInAt: v.signedInAt.toISOString(),
          lastSeenAt: v.lastSeenAt.toISOString(),
          expiresAt: v.expiresAt.toISOString(),
          browser: v.browser,
          ip: v.ip,
          apps: v.apps,
        }));
        return { status: 200, body: { items } };
      },
    }),
  );

  add(
    route({
      method: 'delete',
      path: '/logins/{id}/sessions/{session}',
      operationId: 'endSession',
      tag: 'Logins',
      summary: 'End one session of a login (its single sign-on and its apps’ tokens); its apps are told by back-channel logout',
      scope: 'latchkey:logins.write',
      params: S.SessionPath,
      responses: { 204: { description: 'Ended (404 when the login has no such session).' } },
      async handle({ params, caller }: { params: { id: string; session: string }; caller: Caller }) {
        if (!(await people.endSession(caller.actor, await people.login(caller.actor, params.id), params.session))) throw notFound('errors.sessions.noSuchSession');
        return { status: 204 };
      },
    }),
  );

  // User types.

  add(
    route({
      method: 'get',
      path: '/user-types',
      operationId: 'listUserTypes',
      tag: 'User types',
      summary: 'List the tenant’s user types and their second factor',
      scope: 'latchkey:logins.read',
      responses: { 200: { description: 'The user types.', schema: S.UserTypeList } },
      async handle({ caller }: { caller: Caller }) {
        return { status: 200, body: { items: caller.tenant.userTypes.map(({ id, name, secondFactor }) => ({ id, name, secondFactor })) } };
      },
    }),
  );

  /** A user-type operation's 400 names the field it refused (the operations' errors say which by their key). */
  async function naming<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof LatchkeyError) || err.status !== 400 || typeof err.detail.field === 'string') throw err;
      const field = /factor/i.test(err.key) ? 'secondFactor' : /\.id$/.test(err.key) ? 'id' : /name/i.test(err.key) ? 'name' : 'body';
      throw new LatchkeyError(err.code, err.status, err.key, { ...err.detail, field });
    }
  }
  const typeBody = (t: { id: string; name: string; secondFactor: string }) => ({ id: t.id, name: t.name, secondFactor: t.secondFactor });

  add(
    route({
      method: 'post',
      path: '/user-types',
      operationId: 'createUserType',
      tag: 'User types',
      summary: 'Add a user type',
      description: 'Without `id`, one is made from the name. A name or id the tenant has already is a 409.',
      scope: 'latchkey:types.write',
      body: S.NewUserType,
      responses: { 201: { description: 'Added.', schema: S.UserType }, 409: { description: 'The name or id is taken.', schema: S.Problem } },
      async handle({ body, caller }: { body: z.infer<typeof S.NewUserType>; caller: Caller }) {
        const type = await naming(() => createUserType(deps, caller.actor, body));
        return { status: 201, body: typeBody(type) };
      },
    }),
  );

  add(
    route({
      method: 'patch',
      path: '/user-types/{id}',
      operationId: 'updateUserType',
      tag: 'User types',
      summary: 'Rename a user type, or set its second factor',
      description: 'A new factor applies to the type’s logins at their next sign-in.',
      scope: 'latchkey:types.write',
      params: S.UserTypeId,
      body: S.UserTypeChange,
      responses: { 200: { description: 'Changed (or nothing to change).', schema: S.UserType }, 409: { description: 'Another type has that name.', schema: S.Problem } },
      async handle({ params, body, caller }: { params: { id: string }; body: z.infer<typeof S.UserTypeChange>; caller: Caller }) {
        if (!caller.tenant.userTypes.some((t) => t.id === params.id)) throw notFound('errors.account.noSuchUserType');
        const factorChoice = body.secondFactor !== undefined ? [{ userType: params.id, secondFactor: body.secondFactor }] : null;
        // A factor this caller may not set is refused before the name changes: a refusal changes nothing.
        if (factorChoice) await naming(() => planActorFactorChanges(deps, caller.actor, caller.tenant, factorChoice));
        if (body.name !== undefined) await naming(() => renameUserType(deps, caller.actor, params.id, body.name));
        if (factorChoice) await naming(() => setUserTypeFactors(deps, caller.actor, factorChoice));
        const type = (await accounts.getTenant(caller.tenant.id))?.userTypes.find((t) => t.id === params.id);
        if (!type) throw notFound('errors.account.noSuchUserType');
        return { status: 200, body: typeBody(type) };
      },
    }),
  );

  add(
    route({
      method: 'delete',
      path: '/user-types/{id}',
      operationId: 'deleteUserType',
      tag: 'User types',
      summary: 'Remove a user type no login has',
      scope: 'latchkey:types.write',
      params: S.UserTypeId,
      responses: { 204: { description: 'Removed.' }, 409: { description: 'Logins still have it, or it is the tenant’s last.', schema: S.Problem } },
      async handle({ params, caller }: { params: { id: string }; caller: Caller }) {
        await deleteUserType(deps, caller.actor, params.id);
        return { status: 204 };
      },
    }),
  );

  // The audit log.

  add(
    route({
      method: 'get',
      path: '/audit',
      operationId: 'listAudit',
      tag: 'Audit',
      summary: 'Read the tenant’s audit log, newest first',
      description: 'Filtered by login or event type; paged with `cursor` (the events of one millisecond stay on one page).',
      scope: 'latchkey:audit.read',
      query: S.AuditQuery,
      responses: { 200: { description: 'One page of events.', schema: S.AuditPage } },
      async handle({ query, caller }: { query: z.infer<typeof S.AuditQuery>; caller: Caller }) {
        const from = query.cursor ? fromCursor(query.cursor, AuditCursor) : { b: 0, l: query.login ?? null, t: query.type ?? null };
        const limit = query.limit ?? PAGE;
        const events = await accounts.listAudit({
          tenant: caller.tenant.id,
          ...(from.l !== null ? { login: from.l } : {}),
          ...(from.t !== null ? { type: from.t } : {}),
          ...(from.b ? { before: new Date(from.b) } : {}),
          limit: limit + 1,
        });
        let page = events.slice(0, limit);
        let next: string | null = null;
        if (events.length > limit) {
          const cut = events[limit]!.time.getTime();
          const whole = page.filter((e) => e.time.getTime() !== cut);
          // The next page starts at the millisecond of the first event left out, so none of that millisecond is skipped.
          if (whole.length) {
            page = whole;
            next = cursorOf({ ...from, b: cut + 1 });
          } else next = cursorOf({ ...from, b: cut });
        }
        return {
          status: 200,
          body: {
            items: page.map((e) => ({ time: e.time.toISOString(), type: e.type, outcome: e.outcome, login: e.login, ip: e.ip, userAgent: e.userAgent, detail: e.detail ?? {} })),
            nextCursor: next,
          },
        };
      },
    }),
  );

  // Webhooks.

  const subscriptionBody = (s: { id: string; url: string; events: string[]; createdAt: Date }) => ({
    id: s.id,
    url: s.url,
    events: s.events,
    createdAt: s.createdAt.toISOString(),
  });

  add(
    route({
      method: 'get',
      path: '/webhooks',
      operationId: 'listWebhooks',
      tag: 'Webhooks',
      summary: 'List the tenant’s webhook subscriptions (never their secrets)',
      scope: 'latchkey:webhooks.write',
      responses: { 200: { description: 'The subscriptions, oldest first.', schema: S.SubscriptionList } },
      async handle({ caller }: { caller: Caller }) {
        return { status: 200, body: { items: (await hooks.list(caller.actor)).map(subscriptionBody) } };
      },
    }),
  );

  add(
    route({
      method: 'post',
      path: '/webhooks',
      operationId: 'createWebhook',
      tag: 'Webhooks',
      summary: 'Subscribe a receiver to audit events',
      description: 'The answer carries the signing secret, this once (docs/webhooks.md has how to verify a delivery).',
      scope: 'latchkey:webhooks.write',
      body: S.NewSubscription,
      responses: { 201: { description: 'Subscribed.', schema: S.CreatedSubscription } },
      async handle({ body, caller }: { body: z.infer<typeof S.NewSubscription>; caller: Caller }) {
        const { subscription, secret } = await hooks.subscribe(caller.actor, body.url, body.events);
        return { status: 201, body: { ...subscriptionBody(subscription), secret } };
      },
    }),
  );

  add(
    route({
      method: 'delete',
      path: '/webhooks/{id}',
      operationId: 'deleteWebhook',
      tag: 'Webhooks',
      summary: 'Remove a subscription and what it had still to deliver',
      scope: 'latchkey:webhooks.write',
      params: S.SubscriptionId,
      responses: { 204: { description: 'Removed.' } },
      async handle({ params, caller }: { params: { id: string }; caller: Caller }) {
        await hooks.remove(caller.actor, params.id);
        return { status: 204 };
      },
    }),
  );

  add(
    route({
      method: 'get',
      path: '/webhooks/deliveries',
      operationId: 'listWebhookDeliveries',
      tag: 'Webhooks',
      summary: 'The delivery log: the tenant’s 100 most recent deliveries, newest first',
      scope: 'latchkey:webhooks.write',
      responses: { 200: { description: 'The deliveries.', schema: S.DeliveryList } },
      async handle({ caller }: { caller: Caller }) {
        const deliveries = await hooks.deliveries(caller.actor, 100);
        return {
          status: 200,
          body: {
            items: deliveries.map((d) => ({
              id: d.id,
              subscription: d.subscription,
              eventId: d.eventId,
              type: d.type,
              createdAt: d.createdAt.toISOString(),
              deliveredAt: d.deliveredAt ? d.deliveredAt.toISOString() : null,
              attempts: d.attempts,
              lastStatus: d.lastStatus,
              lastError: d.lastError,
            })),
          },
        };
      },
    }),
  );

  return routes;
}

/**
 * The API as one middleware for everything under `/api/v1`: its routes, and
 * a problem for whatever else (an unknown path or method, a refused body),
 * never a page.
 */
export function apiMiddleware(deps: ApiDeps): Middleware {
  const { accounts, provider, counters, config } = deps;
  const router = new Router({ prefix: API_PREFIX });
  const routes = apiRoutes(deps);

  /** The caller of a request: a bearer token the provider issued by client_credentials to a client of a tenant. */
  async function authenticate(ctx: Context): Promise<Caller> {
    const header = ctx.get('authorization');
    const match = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (!match) throw invalidToken();
    const token = await provider.ClientCredentials.find(match[1]!);
    // A sender-constrained token (DPoP, mTLS) would need its proof, which this API does not check: refused.
    if (!token || token.isSenderConstrained() || !token.clientId) throw invalidToken();
    const client = await accounts.getClient(token.clientId);
    const grants = client?.metadata.grant_types;
    if (!client || client.tenant === ANY_TENANT || !Array.isArray(grants) || !grants.includes('client_credentials')) throw invalidToken();
    // Got with a secret rotated since: a leaked secret's tokens end with it.
    const since = client.metadata[SECRET_SINCE];
    if (typeof since === 'number' && (token.iat ?? 0) < since) throw invalidToken();
    const tenant = await accounts.getTenant(client.tenant);
    if (!tenant) throw invalidToken();
    // The token's scopes as the client is granted them now: a scope taken away ends at once, not when the token expires.
    const granted = new Set(grantedApiScopes(client.metadata));
    const scopes = new Set(
      String(token.scope ?? '')
        .split(' ')
        .filter((s): s is ApiScope => granted.has(s as ApiScope)),
    );
    const actor: Actor = { tenant, by: { client: client.clientId }, ...requestInfo(ctx), lang: 'en' };
    return { client, tenant, scopes, actor };
  }

  /** A sliding window of requests per client, in the counters store (every process counts together). */
  async function throttle(caller: Caller): Promise<void> {
    await takeRequestSlot(counters, `api:${caller.client.clientId}`, config.api.rateLimit, config.api.rateWindowSeconds * 1000, deps.now());
  }

  function answerProblem(ctx: Context, err: LatchkeyError) {
    ctx.status = err.status;
    if (err.status === 401) ctx.set('WWW-Authenticate', 'Bearer realm="latchkey", error="invalid_token"');
    if (err.code === 'insufficient_scope') ctx.set('WWW-Authenticate', `Bearer realm="latchkey", error="insufficient_scope", scope="${String(err.detail.scope)}"`);
    const retry = err.detail.retryAfterSeconds;
    if (typeof retry === 'number') ctx.set('Retry-After', String(retry));
    if (err.status === 503) ctx.set('Retry-After', '5');
    ctx.body = problemOf(err, ctx.path);
    ctx.type = PROBLEM;
  }

  // Bodies are JSON objects, uncompressed; anything else is refused before it is read.
  const jsonBodies = bodyParser({
    enableTypes: ['json'],
    jsonLimit: JSON_LIMIT,
    encoding: 'utf-8',
    jsonStrict: true,
    onError: () => {
      throw badRequest('errors.api.bodyJson', { field: 'body' });
    },
  });
  async function jsonOnly(ctx: Context, next: Next) {
    const encoding = ctx.get('content-encoding').trim().toLowerCase();
    if (encoding && encoding !== 'identity') throw new LatchkeyError('unsupported_media_type', 415, 'errors.api.mediaType');
    if (ctx.request.length !== 0 && ctx.request.length !== undefined && !ctx.is('application/json')) throw new LatchkeyError('unsupported_media_type', 415, 'errors.api.mediaType');
    if (ctx.request.length === undefined && ctx.get('transfer-encoding') && !ctx.is('application/json'))
      throw new LatchkeyError('unsupported_media_type', 415, 'errors.api.mediaType');
    await next();
  }

  const document = openApiDocument(routes, config.issuer);
  router.get('/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = document;
  });

  // The static segments (`/webhooks/deliveries`) before the parameters that would take them (`/webhooks/{id}`).
  const ordered = [...routes].sort((a, b) => Number(a.path.includes('{')) - Number(b.path.includes('{')));
  for (const spec of ordered) {
    const koaPath = spec.path.replace(/\{(\w+)\}/g, ':$1');
    const handlers = [
      async (ctx: Context) => {
        const caller = await authenticate(ctx);
        if (!caller.scopes.has(spec.scope)) throw insufficientScope(spec.scope);
        await throttle(caller);
        const params = parse(spec.params, ctx.params, 'path');
        const query = parse(spec.query, ctx.query, 'query');
        const raw = (ctx.request as { body?: unknown }).body;
        const body = spec.body ? parse(spec.body, raw === undefined ? {} : raw, 'body') : undefined;
        if (!spec.body && raw !== undefined && !(typeof raw === 'object' && raw !== null && Object.keys(raw).length === 0))
          throw badRequest('errors.api.field', { field: 'body', problem: 'no body expected', errors: [{ field: 'body', detail: 'no body expected' }] });
        const headers = { 'idempotency-key': ctx.get('idempotency-key') || undefined };
        const answer = await (spec.handle as (input: unknown) => Promise<Answer>)({ params, query, body, caller, ctx, headers });
        ctx.status = answer.status;
        for (const [name, value] of Object.entries(answer.headers ?? {})) ctx.set(name, value);
        if (answer.body !== undefined) ctx.body = answer.body;
      },
    ];
    if (spec.method === 'get') router.get(koaPath, ...handlers);
    else router[spec.method](koaPath, jsonOnly, jsonBodies, ...handlers);
  }
  const served = compose([router.routes(), router.allowedMethods()]) as unknown as Middleware;

  // Every answer of the API, a problem included: JSON, never cached, never a page.
  return async function api(ctx: Context, next: Next) {
    if (ctx.path !== API_PREFIX && !ctx.path.startsWith(`${API_PREFIX}/`)) return next();
    ctx.set('Cache-Control', 'no-store');
    try {
      await served(ctx, async () => {});
      if (ctx.status === 404 && ctx.body == null) throw notFound();
      if (ctx.status === 405 && !ctx.body) {
        ctx.body = problemOf(new LatchkeyError('bad_request', 405, 'errors.bad_request'), ctx.path);
        ctx.type = PROBLEM;
      }
    } catch (err) {
      const e = err as { status?: unknown };
      const store = deps.stores.unavailableStore(err);
      const known =
        err instanceof LatchkeyError
          ? err
          : store
            ? unavailable(store)
            : e?.status === 413
              ? new LatchkeyError('payload_too_large', 413, 'errors.form.tooLarge')
              : typeof e?.status === 'number' && e.status >= 400 && e.status < 500
                ? badRequest('errors.api.bodyJson', { field: 'body' })
                : null;
      if (!known) deps.log.error({ err, path: ctx.path, method: ctx.method }, 'unhandled error in the API');
      answerProblem(ctx, known ?? new LatchkeyError('server_error', 500, 'errors.server'));
    }
  };
}
