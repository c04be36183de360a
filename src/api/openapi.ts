/**
 * The OpenAPI 3.1 document of the management API, generated from the routes'
 * declarations and their zod schemas (`./routes.ts`, `./schemas.ts`) with
 * zod-to-openapi: nothing in it is written by hand.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { ResponseSpec, RouteSpec } from './routes.ts';
import { Problem } from './schemas.ts';
import { API_SCOPES, API_SCOPE_TEXT } from './scopes.ts';

/** The problems every route may answer with, besides its own. */
export const COMMON_PROBLEMS: Record<number, string> = {
  400: 'A refused value: `errors` names each field (`application/problem+json`).',
  401: 'No token, or not a live client-credentials token of a tenant’s client.',
  403: 'The token lacks the route’s scope (`insufficient_scope`), or the action is refused.',
  404: 'No such record in the token’s tenant.',
  413: 'The body is larger than 64 KiB.',
  415: 'The body is not `application/json`, or is compressed.',
  429: 'Over the client’s request rate: wait `Retry-After` seconds.',
  503: 'A store is unavailable: try again after `Retry-After` seconds.',
};

export function openApiDocument(routes: readonly RouteSpec<never, never, never, unknown>[], issuer: string): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  registry.register('Problem', Problem);
  const auth = registry.registerComponent('securitySchemes', 'clientCredentials', {
    type: 'oauth2',
    description: 'An access token from Latchkey’s token endpoint, `grant_type=client_credentials`, for a tenant’s confidential client granted these scopes.',
    flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes: Object.fromEntries(API_SCOPES.map((s) => [s, API_SCOPE_TEXT[s]])) } },
  });
  const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: Problem } } });
  for (const r of routes) {
    const responses: Record<string, unknown> = {};
    const common: Record<string, ResponseSpec> = Object.fromEntries(Object.entries(COMMON_PROBLEMS).map(([s, d]) => [s, { description: d, schema: Problem }]));
    const all: Record<string, ResponseSpec> = { ...common, ...r.responses };
    for (const [status, spec] of Object.entries(all)) {
      const headers = spec.headers
        ? Object.fromEntries(Object.entries(spec.headers).map(([name, description]) => [name, { description, schema: { type: 'string' as const } }]))
        : undefined;
      if (Number(status) >= 400) responses[status] = { ...problem(spec.description), ...(headers ? { headers } : {}) };
      else
        responses[status] = {
          description: spec.description,
          ...(spec.schema ? { content: { 'application/json': { schema: spec.schema } } } : {}),
          ...(headers ? { headers } : {}),
        };
    }
    registry.registerPath({
      method: r.method,
      path: r.path,
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [r.tag],
      security: [{ [auth.name]: [r.scope] }],
      request: {
        ...(r.params ? { params: r.params } : {}),
        ...(r.query ? { query: r.query } : {}),
        ...(r.requestHeaders
          ? { headers: z.object(Object.fromEntries(Object.entries(r.requestHeaders).map(([name, description]) => [name, z.string().optional().openapi({ description })]))) }
          : {}),
        ...(r.body ? { body: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
      },
      responses: responses as never,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Latchkey management API',
      version: '1',
      description: 'A tenant’s logins, user types, audit log and webhooks (docs/api.md). Every change follows the same rules, and is audited alike, as on the owner’s pages.',
    },
    servers: [{ url: `${issuer}/api/v1` }],
  }) as unknown as Record<string, unknown>;
}
