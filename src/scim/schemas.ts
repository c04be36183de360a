/**
 * The SCIM names and discovery documents (RFC 7643 §5–7, RFC 7644 §4):
 * `ServiceProviderConfig`, `ResourceTypes` and `Schemas`, describing exactly
 * what `./router.ts` serves.
 */
import type { PatchSchema } from './patch.ts';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
/** Latchkey's extension of a User: the login's user type (`userType`, a user type id of the tenant). */
export const LATCHKEY_USER = 'urn:latchkey:params:scim:schemas:extension:2.0:User';
export const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';

/** The most resources one list answers with (`count` above it is lowered to it). */
export const MAX_PAGE = 200;

const lower = (names: string[]) => new Set(names.map((n) => n.toLowerCase()));
const nameMap = (names: string[]) => new Map(names.map((n) => [n.toLowerCase(), n]));

export const USER_PATCH_SCHEMA: PatchSchema = {
  core: USER_SCHEMA,
  extensions: [LATCHKEY_USER],
  caseExact: lower(['id', 'externalId']),
  multiValued: lower(['emails', 'groups', 'schemas']),
  readOnly: lower(['id', 'meta', 'groups', 'schemas']),
  names: nameMap(['userName', 'name', 'givenName', 'familyName', 'formatted', 'displayName', 'active', 'emails', 'value', 'type', 'primary', 'display', 'externalId', 'userType']),
};

export const GROUP_PATCH_SCHEMA: PatchSchema = {
  core: GROUP_SCHEMA,
  extensions: [],
  caseExact: lower(['id', 'externalId', 'members.value']),
  multiValued: lower(['members', 'schemas']),
  readOnly: lower(['id', 'meta', 'schemas']),
  names: nameMap(['displayName', 'members', 'value', 'display', 'type', 'externalId']),
};

type Attribute = {
  name: string;
  type: 'string' | 'boolean' | 'complex' | 'reference' | 'dateTime';
  multiValued: boolean;
  description: string;
  required: boolean;
  caseExact: boolean;
  mutability: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
  returned: 'always' | 'default' | 'never' | 'request';
  uniqueness: 'none' | 'server' | 'global';
  subAttributes?: Attribute[];
  referenceTypes?: string[];
};

const attr = (name: string, description: string, more: Partial<Attribute> = {}): Attribute => ({
  name,
  type: 'string',
  multiValued: false,
  description,
  required: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  uniqueness: 'none',
  ...more,
});

const userAttributes: Attribute[] = [
  attr('userName', "The directory's name for the login, kept as given; unique in the tenant without case.", { required: true, uniqueness: 'server' }),
  attr('name', "The login's name.", {
    type: 'complex',
    subAttributes: [attr('givenName', 'First name.'), attr('familyName', 'Last name.'), attr('formatted', 'The full name.', { mutability: 'readOnly' })],
  }),
  attr('displayName', 'The full name (first and last).', { mutability: 'readOnly' }),
  attr('active', 'False while the login is disabled: it cannot sign in, and its sessions ended when it was disabled.', { type: 'boolean' }),
  attr('emails', "The login's email: one, primary, of type work. Several logins may share it.", {
    multiValued: true,
    type: 'complex',
    subAttributes: [attr('value', 'The address.'), attr('type', 'Always work.'), attr('primary', 'Always true.', { type: 'boolean' })],
  }),
  attr('groups', "The login's user type, as a Group.", {
    multiValued: true,
    type: 'complex',
    mutability: 'readOnly',
    subAttributes: [
      attr('value', 'The user type id.', { mutability: 'readOnly' }),
      attr('display', 'The user type name.', { mutability: 'readOnly' }),
      attr('$ref', 'The Group.', { type: 'reference', referenceTypes: ['Group'], mutability: 'readOnly' }),
    ],
  }),
];

const groupAttributes: Attribute[] = [
  attr('displayName', 'The user type name.', { required: true, mutability: 'readOnly' }),
  attr('members', 'The logins of the user type. Adding a login moves it to this type; removing one leaves it in its type until it is added to another.', {
    multiValued: true,
    type: 'complex',
    subAttributes: [
      attr('value', 'The login id (the User id).', { caseExact: true, mutability: 'immutable' }),
      attr('display', "The login's name.", { mutability: 'readOnly' }),
      attr('$ref', 'The User.', { type: 'reference', referenceTypes: ['User'], mutability: 'immutable' }),
    ],
  }),
];

const extensionAttributes: Attribute[] = [attr('userType', "The id of the login's user type in the tenant (its second-factor policy).", { caseExact: true })];

const common = [attr('externalId', "The directory's own id for the resource.", { caseExact: true })];

function schemaDoc(base: string, id: string, name: string, description: string, attributes: Attribute[]) {
  return { schemas: [SCHEMA_SCHEMA], id, name, description, attributes, meta: { resourceType: 'Schema', location: `${base}/Schemas/${id}` } };
}

export function schemaDocuments(base: string) {
  return [
    schemaDoc(base, USER_SCHEMA, 'User', 'A login of the tenant.', [...userAttributes, ...common]),
    schemaDoc(base, GROUP_SCHEMA, 'Group', 'A user type of the tenant, with its logins.', groupAttributes),
    schemaDoc(base, LATCHKEY_USER, 'LatchkeyUser', "Latchkey's attributes of a login.", extensionAttributes),
  ];
}

export function resourceTypes(base: string) {
  return [
    {
      schemas: [RESOURCE_TYPE_SCHEMA],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      description: 'A login of the tenant.',
      schema: USER_SCHEMA,
      schemaExtensions: [{ schema: LATCHKEY_USER, required: false }],
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/User` },
    },
    {
      schemas: [RESOURCE_TYPE_SCHEMA],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      description: 'A user type of the tenant.',
      schema: GROUP_SCHEMA,
      meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/Group` },
    },
  ];
}

export function serviceProviderConfig(base: string) {
  return {
    schemas: [SPC_SCHEMA],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_PAGE },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: "A tenant's SCIM token, made by the tenant's owner on the account pages or by the operator CLI.",
        specUri: 'https://www.rfc-editor.org/rfc/rfc6750',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}
