/**
 * How one route of the management API is declared: once, with its scope and
 * the zod schemas of its path, query, body and answers. `./router.ts` serves
 * it (checking the request with those schemas) and `./openapi.ts` documents
 * it from the same declaration.
 */
import type { Context } from 'koa';
import type { ZodObject, ZodType } from 'zod';
import type { ApiScope } from './scopes.ts';

export type Method = 'get' | 'post' | 'patch' | 'delete';

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ResponseSpec {
  description: string;
  /** The JSON body's shape; none for 204. */
  schema?: ZodType;
  /** Response headers the route sets (documented). */
  headers?: Record<string, string>;
}

export interface RouteSpec<P = Record<string, string>, Q = Record<string, unknown>, B = unknown, C = unknown> {
  method: Method;
  /** In OpenAPI form, relative to `/api/v1`: `/logins/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  scope: ApiScope;
  params?: ZodObject;
  query?: ZodObject;
  body?: ZodType;
  /** Request headers the route reads (documented): name → description. */
  requestHeaders?: Record<string, string>;
  /** Successful answers and the problems particular to this route (400, 401, 403, 404, 429 are every route's). */
  responses: Record<number, ResponseSpec>;
  handle(input: HandlerInput<P, Q, B, C>): Promise<Answer>;
}

/** What a handler is given: the checked path, query and body, the caller, and the request itself (for its headers). */
export interface HandlerInput<P, Q, B, C> {
  params: P;
  query: Q;
  body: B;
  caller: C;
  ctx: Context;
  headers: { 'idempotency-key'?: string };
}

/** Declares a route (a typed identity: the generics come from the handler). */
export const route = <P, Q, B, C>(spec: RouteSpec<P, Q, B, C>): RouteSpec<P, Q, B, C> => spec;
