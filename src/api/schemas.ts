/**
 * The management API's shapes (docs/api.md), as zod schemas: the router
 * checks every request with them, and the OpenAPI document is generated from
 * them (`./openapi.ts`), so the document cannot say what the code does not do.
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { NAME_MAX } from '../admin/people.ts';
import { LOGIN_STATES } from '../storage/accounts/port.ts';
import { EMAIL_MAX } from '../email.ts';

extendZodWithOpenApi(z);

const id = z.string().min(1).max(256);
const text = (max: number) => z.string().max(max);

export const Problem = z
  .object({
    type: z.string().openapi({ example: 'urn:latchkey:problem:bad_request' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ description: 'The stable error code (`src/errors.ts`).' }),
    errors: z
      .array(z.object({ field: z.string(), detail: z.string() }))
      .optional()
      .openapi({ description: 'The fields that were refused, in the request body’s or query’s own names.' }),
    namesakes: z.array(z.string()).optional().openapi({ description: 'With `namesake`: the ids of the logins of that email that carry the same name.' }),
    suggestion: z.string().optional().openapi({ description: 'With `namesake`: a last name that tells the logins apart.' }),
    retryAfterSeconds: z.number().int().optional(),
  })
  .openapi('Problem', { description: 'An RFC 9457 problem (`application/problem+json`).' });

export const Login = z
  .object({
    id: z.string().openapi({ description: 'The OIDC subject of the login.' }),
    email: z.string(),
    firstName: z.string(),
    lastName: z.string(),
    userType: z.string(),
    disabled: z.boolean(),
    factors: z.array(z.string()).openapi({ description: 'The second factors the person has set up (`pin`, `totp`).' }),
    invitation: z.enum(['sent', 'rate_limited']).optional().openapi({
      description:
        'Only in the answer to an add or an email change, alike whether or not the email has a password (in any tenant): `sent` when the person was mailed how to sign in (an invitation to choose a password, or a notice of the new login when the email has one), or `rate_limited` when the email was already sent 5 such mails in the past hour — the login is added or changed all the same, no mail is sent and the latest invitation link stays good.',
    }),
  })
  .openapi('Login');

export const LoginPage = z
  .object({
    items: z.array(Login),
    total: z.number().int().openapi({ description: 'Logins matching the filter, over all pages.' }),
    nextCursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null on the last.' }),
  })
  .openapi('LoginPage');

export const LoginQuery = z
  .object({
    q: text(128).optional().openapi({ description: 'Words that must each occur in the first name, last name or email.' }),
    userType: text(128).optional(),
    state: z.enum(LOGIN_STATES).optional(),
    email: text(EMAIL_MAX).optional().openapi({ description: 'Exactly this email (case-insensitive).' }),
    limit: z.coerce.number().int().min(1).max(200).optional().openapi({ description: 'Default 50.' }),
    cursor: text(512).optional().openapi({ description: 'From `nextCursor`: the next page of the same filter (the cursor carries it).' }),
  })
  .strict();

const personName = z.string().min(1).max(NAME_MAX);

export const NewLogin = z
  .object({
    email: z.string().min(1).max(EMAIL_MAX),
    firstName: personName,
    lastName: personName,
    userType: id,
    allowSameName: z.boolean().optional().openapi({ description: 'Add it even when another login of the email carries the same name (otherwise 409 `namesake`).' }),
  })
  .strict()
  .openapi('NewLogin');

export const LoginChange = z
  .object({
    email: z.string().min(1).max(EMAIL_MAX).optional(),
    firstName: personName.optional(),
    lastName: personName.optional(),
    userType: id.optional(),
    allowSameName: z.boolean().optional(),
  })
  .strict()
  .openapi('LoginChange');

const lockStates = z.record(z.string(), z.enum(['locked', 'frozen']));
export const Unlocked = z
  .object({
    lifted: lockStates.openapi({ description: 'What was locked and is lifted, by what it guarded (`password`, a factor).' }),
    kept: lockStates.openapi({ description: 'What stays locked: the identity’s, which guards logins in other tenants too (only the operator lifts it).' }),
  })
  .openapi('Unlocked');

export const UserType = z
  .object({ id: z.string(), name: z.string(), secondFactor: z.string().openapi({ description: 'A factor id of the registry: `none`, `pin`, `totp`, …' }) })
  .openapi('UserType');
export const UserTypeList = z.object({ items: z.array(UserType) }).openapi('UserTypeList');

export const AuditEvent = z
  .object({
    time: z.string().openapi({ format: 'date-time' }),
    type: z.string(),
    outcome: z.enum(['success', 'failure']),
    login: z.string().nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()),
  })
  .openapi('AuditEvent');

export const AuditPage = z
  .object({
    items: z.array(AuditEvent),
    nextCursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for older events; null on the last page.' }),
  })
  .openapi('AuditPage');

export const AuditQuery = z
  .object({
    login: text(256).optional(),
    type: z
      .string()
      .regex(/^[a-z][a-z0-9_.-]{0,63}$/)
      .optional(),
    limit: z.coerce.number().int().min(1).max(500).optional().openapi({ description: 'Default 50.' }),
    cursor: text(512).optional(),
  })
  .strict();

export const Subscription = z
  .object({ id: z.string(), url: z.string(), events: z.array(z.string()), createdAt: z.string().openapi({ format: 'date-time' }) })
  .openapi('WebhookSubscription');
export const SubscriptionList = z.object({ items: z.array(Subscription) }).openapi('WebhookSubscriptionList');
export const NewSubscription = z
  .object({
    url: z.string().min(1).max(2048).openapi({ description: 'https, or http to this machine.' }),
    events: z.array(z.string().max(128)).min(1).max(50).openapi({ description: 'Audit event types (`signin.success`), prefixes (`factor.*`) or `*`.' }),
  })
  .strict()
  .openapi('NewWebhookSubscription');
export const CreatedSubscription = Subscription.extend({ secret: z.string().openapi({ description: 'The signing secret, shown this once.' }) }).openapi(
  'CreatedWebhookSubscription',
);

export const Delivery = z
  .object({
    id: z.string(),
    subscription: z.string(),
    eventId: z.string(),
    type: z.string(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    deliveredAt: z.string().nullable().openapi({ format: 'date-time' }),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
  })
  .openapi('WebhookDelivery');
export const DeliveryList = z.object({ items: z.array(Delivery) }).openapi('WebhookDeliveryList');

export const LoginId = z.object({ id: id.openapi({ description: 'The login’s id.' }) });
export const SessionPath = z.object({ id: id.openapi({ description: 'The login’s id.' }), session: id.openapi({ description: 'The session’s id (from the list).' }) });

export const Session = z
  .object({
    id: z.string().openapi({ description: 'The session’s id: what ending one takes. Never its cookie value.' }),
    signedInAt: z.string().openapi({ description: 'When it signed in (ISO 8601).' }),
    lastSeenAt: z.string().openapi({ description: 'When it was last used (ISO 8601).' }),
    expiresAt: z.string().openapi({ description: 'When it ends at the latest (ISO 8601).' }),
    browser: z.string().nullable().openapi({ description: 'The browser, as "Firefox on Linux", when it said.' }),
    ip: z.string().nullable(),
    apps: z.array(z.object({ clientId: z.string(), name: z.string() })).openapi({ description: 'The apps it signed in to.' }),
  })
  .openapi('Session');
export const SessionList = z.object({ items: z.array(Session) }).openapi('SessionList');
export const FactorPath = z.object({
  id,
  factor: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/)
    .openapi({ description: 'A factor with an owner’s reset: `pin`, `totp`, …' }),
});
export const SubscriptionId = z.object({ id });
export const Empty = z.object({}).strict();

export const NewUserType = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/)
      .optional()
      .openapi({ description: 'Default: made from the name.' }),
    name: z.string().min(1).max(100),
    secondFactor: z.string().min(1).max(32),
  })
  .strict()
  .openapi('NewUserType');
export const UserTypeChange = z
  .object({ name: z.string().min(1).max(100).optional(), secondFactor: z.string().min(1).max(32).optional() })
  .strict()
  .openapi('UserTypeChange');
export const UserTypeId = z.object({ id });
