// The SCIM filter parser and PATCH interpreter on their own: the grammar of
// RFC 7644 §3.4.2.2 and §3.5.2, and the shapes Microsoft Entra and Okta send.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ScimError } from '../../src/errors.ts';
import { MAX_COMPARISONS, matches, parseFilter, parsePatchPath } from '../../src/scim/filter.ts';
import { PATCH_WORK, applyPatch, parsePatch } from '../../src/scim/patch.ts';
import { GROUP_PATCH_SCHEMA, LATCHKEY_USER, USER_PATCH_SCHEMA } from '../../src/scim/schemas.ts';

const user = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', LATCHKEY_USER],
  id: 'jane-mgr',
  externalId: 'AbC',
  userName: 'Jane@Acme.test#manager',
  name: { givenName: 'Jane', familyName: 'Doe', formatted: 'Jane Doe' },
  displayName: 'Jane Doe',
  active: true,
  emails: [{ value: 'jane@acme.test', type: 'work', primary: true }],
  [LATCHKEY_USER]: { userType: 'manager' },
  meta: { resourceType: 'User' },
};

const test = (filter: string) => matches(user, parseFilter(filter), USER_PATCH_SCHEMA);
const refused = (fn: () => unknown, scimType: string) => assert.throws(fn, (err: unknown) => err instanceof ScimError && err.status === 400 && err.scimType === scimType, scimType);

describe('SCIM filters', () => {
  it('compares with eq, ne, co, sw, ew, pr; strings without case except caseExact ones (id, externalId)', () => {
    assert.ok(test('userName eq "jane@acme.test#MANAGER"'));
    assert.ok(test('USERNAME Eq "jane@acme.test#manager"'), 'attribute names and operators in any case');
    assert.ok(test('userName sw "jane@"'));
    assert.ok(test('userName ew "#manager"'));
    assert.ok(test('displayName co "ne do"'));
    assert.ok(test('userName ne "bob@acme.test"'));
    assert.ok(test('externalId eq "AbC"'));
    assert.ok(!test('externalId eq "abc"'), 'externalId is caseExact');
    assert.ok(!test('id eq "JANE-MGR"'), 'id is caseExact');
    assert.ok(test('title pr') === false && test('name pr') && test('emails pr'));
    assert.ok(test('name.givenName eq "jane"'));
    assert.ok(test('emails.value eq "JANE@acme.test"'), 'a multi-valued attribute matches when any value does');
    assert.ok(test('emails eq "jane@acme.test"') === false, 'a complex value is not a string');
  });

  it("reads booleans, numbers and null, and Entra's string booleans on the resource side", () => {
    assert.ok(test('active eq true'));
    assert.ok(!test('active eq false'));
    assert.ok(test('active ne false'));
    assert.ok(!test('active eq "true"'), 'a string is not a boolean in a filter');
    assert.ok(!test('externalId eq null'));
    assert.ok(matches({ active: 'True' }, parseFilter('active eq true'), USER_PATCH_SCHEMA));
  });

  it('combines with and, or, not and parentheses, and, or in the usual precedence', () => {
    assert.ok(test('userName sw "jane" and active eq true'));
    assert.ok(!test('userName sw "bob" and active eq true'));
    assert.ok(test('userName sw "bob" or active eq true'));
    assert.ok(test('userName sw "bob" and active eq false or displayName co "Jane"'), 'and binds tighter than or');
    assert.ok(!test('userName sw "bob" and (active eq false or displayName co "Jane")'));
    assert.ok(test('not (userName sw "bob")'));
    assert.ok(!test('not (userName sw "jane")'));
  });

  it('filters values (emails[…]) and names attributes with their schema URN', () => {
    assert.ok(test('emails[type eq "work" and value co "@acme"]'));
    assert.ok(!test('emails[type eq "home"]'));
    assert.ok(test('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "jane"'));
    assert.ok(test(`${LATCHKEY_USER}:userType eq "manager"`));
    assert.ok(!test('urn:example:unknown:2.0:User:userType eq "manager"'), 'an unknown schema matches nothing');
    assert.ok(test('userName eq "with \\"quotes\\" and \\u00e9"') === false, 'JSON string escapes');
  });

  it('refuses what is not a filter with invalidFilter', () => {
    for (const bad of [
      '',
      'userName',
      'userName eq',
      'userName zz "x"',
      '(userName eq "x"',
      'userName eq "x")',
      'userName eq "x" and',
      'userName eq x',
      'not userName eq "x"',
      'a.b.c eq "x"',
      '"x" eq "y"',
      'userName eq "unterminated',
      'emails[type eq "work"',
      `${'('.repeat(40)}a pr${')'.repeat(40)}`,
      'a eq "x" '.repeat(500),
    ]) {
      refused(() => parseFilter(bad), 'invalidFilter');
    }
  });
});

const entraDisable = { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] };
const patch = (resource: Record<string, unknown>, body: unknown, schema = USER_PATCH_SCHEMA) => applyPatch(resource, parsePatch(body), schema);
const ops = (...Operations: unknown[]) => ({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations });

describe('SCIM PATCH', () => {
  it("applies Entra's operations: capitalised ops, a string boolean, dotted and filtered paths, the extension by URN", () => {
    assert.equal(patch(user, entraDisable).active, 'False', 'kept as sent; the User mapping reads it as false');
    const changed = patch(
      user,
      ops(
        { op: 'Replace', path: 'name.givenName', value: 'Janet' },
        { op: 'Add', path: 'emails[type eq "work"].value', value: 'janet@acme.test' },
        { op: 'Replace', path: `${LATCHKEY_USER}:userType`, value: 'employee' },
        { op: 'Replace', path: 'urn:ietf:params:scim:schemas:core:2.0:User:externalId', value: 'X1' },
      ),
    );
    assert.deepEqual(changed.name, { givenName: 'Janet', familyName: 'Doe', formatted: 'Jane Doe' });
    assert.deepEqual(changed.emails, [{ value: 'janet@acme.test', type: 'work', primary: true }]);
    assert.deepEqual(changed[LATCHKEY_USER], { userType: 'employee' });
    assert.equal(changed.externalId, 'X1');
    assert.equal(user.name.givenName, 'Jane', 'the resource given is not changed');
    const noWork = patch({ ...user, emails: [] }, ops({ op: 'replace', path: 'emails[type eq "work"].value', value: 'new@acme.test' }));
    assert.deepEqual(noWork.emails, [{ type: 'work', value: 'new@acme.test' }], 'a first work email is added');
  });

  it("applies Okta's operations: no path, a value of attributes (a complex one merged), URN keys", () => {
    const changed = patch(
      user,
      ops({ op: 'replace', value: { id: 'other', active: false, name: { familyName: 'Dough' }, 'name.givenName': 'J', [LATCHKEY_USER]: { userType: 'employee' } } }),
    );
    assert.equal(changed.id, 'jane-mgr', 'id is read-only');
    assert.equal(changed.active, false);
    assert.deepEqual(changed.name, { givenName: 'J', familyName: 'Dough', formatted: 'Jane Doe' });
    assert.deepEqual(changed[LATCHKEY_USER], { userType: 'employee' });
    const added = patch(user, ops({ op: 'add', value: { emails: [{ value: 'jane@acme.test', type: 'work', primary: true }, { value: 'other@acme.test' }] } }));
    assert.equal((added.emails as unknown[]).length, 2, 'add appends to a multi-valued attribute, without duplicates');
    const removed = patch(user, ops({ op: 'remove', path: 'externalId' }, { op: 'remove', path: 'name.familyName' }));
    assert.equal(removed.externalId, undefined);
    assert.deepEqual(removed.name, { givenName: 'Jane', formatted: 'Jane Doe' });
    assert.equal(patch(user, ops({ op: 'add', value: { title: 'Boss' } })).title, 'Boss', 'an attribute the resource lacks is carried (and ignored by the mapping)');
  });

  it('adds and removes group members as Entra (value lists) and Okta (a filter path) send them', () => {
    const group = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], id: 'manager', displayName: 'Manager', members: [{ value: 'a' }, { value: 'b' }] };
    const members = (g: Record<string, unknown>) => (g.members as { value: string }[]).map((m) => m.value);
    assert.deepEqual(members(patch(group, ops({ op: 'Add', path: 'members', value: [{ value: 'c' }, { value: 'a' }] }), GROUP_PATCH_SCHEMA)), ['a', 'b', 'c']);
    assert.deepEqual(members(patch(group, ops({ op: 'Remove', path: 'members', value: [{ value: 'a' }] }), GROUP_PATCH_SCHEMA)), ['b']);
    assert.deepEqual(members(patch(group, ops({ op: 'remove', path: 'members[value eq "b"]' }), GROUP_PATCH_SCHEMA)), ['a']);
    assert.deepEqual(members(patch(group, ops({ op: 'replace', path: 'members', value: [{ value: 'z' }] }), GROUP_PATCH_SCHEMA)), ['z']);
    assert.equal(patch(group, ops({ op: 'remove', path: 'members' }), GROUP_PATCH_SCHEMA).members, undefined, 'all of them');
  });

  it('refuses malformed bodies and operations with the RFC scimTypes', () => {
    refused(() => parsePatch(null), 'invalidSyntax');
    refused(() => parsePatch({ Operations: [{ op: 'add', value: {} }] }), 'invalidSyntax');
    refused(() => parsePatch(ops()), 'invalidSyntax');
    refused(() => parsePatch(ops({ op: 'copy', path: 'active' })), 'invalidSyntax');
    refused(() => parsePatch(ops({ op: 'remove' })), 'noTarget');
    refused(() => parsePatch(ops({ op: 'add', path: 'active' })), 'invalidValue');
    refused(() => parsePatch(ops({ op: 'replace', value: 'x' })), 'invalidValue');
    refused(() => parsePatch(ops({ op: 'replace', path: 42, value: 'x' })), 'invalidPath');
    refused(() => parsePatchPath('emails[type eq "work"'), 'invalidPath');
    refused(() => parsePatchPath('emails[type eq "work"].value.more'), 'invalidPath');
    refused(() => patch(user, ops({ op: 'replace', path: 'active[value eq "x"]', value: 1 })), 'invalidPath');
    refused(() => patch(user, ops({ op: 'replace', path: 'emails[type eq "home"]', value: { value: 'x' } })), 'noTarget');
    refused(() => patch(user, ops({ op: 'replace', path: 'urn:example:other:2.0:User:x', value: 1 })), 'invalidPath');
  });

  it('bounds the work one request may ask for: comparisons in a filter, filters in a PATCH, values tried against them', () => {
    const or = (n: number) => Array.from({ length: n }, (_, i) => `value eq "z${i}"`).join(' or ');
    assert.ok(parseFilter(or(MAX_COMPARISONS)), 'a filter of the most comparisons is read');
    refused(() => parseFilter(or(MAX_COMPARISONS + 1)), 'invalidFilter');
    refused(() => parsePatchPath(`emails[${or(MAX_COMPARISONS + 1)}]`), 'invalidPath');
    // Many operations, each with a filter, are refused as a whole before any is evaluated.
    refused(() => parsePatch(ops(...Array.from({ length: 1000 }, () => ({ op: 'remove', path: `emails[${or(3)}]` })))), 'tooMany');
    // A resource with many values, each tried against long filters: refused once the work passes its bound.
    const values = Math.ceil(PATCH_WORK / (2 * MAX_COMPARISONS - 1)) + 1;
    const wide = { ...user, emails: Array.from({ length: values }, (_, i) => ({ value: `e${i}@acme.test` })) };
    refused(() => patch(wide, ops({ op: 'remove', path: `emails[${or(MAX_COMPARISONS)}]` })), 'tooMany');
    // Within the bound the same PATCH is made.
    const narrow = { ...user, emails: wide.emails.slice(0, 100) };
    assert.equal((patch(narrow, ops({ op: 'remove', path: `emails[${or(MAX_COMPARISONS - 1)} or value eq "e7@acme.test"]` })).emails as unknown[]).length, 99);
  });

  it('adds and removes many values at once, each once: added values already there are not added again', () => {
    const group = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], id: 'manager', displayName: 'Manager', members: [{ value: 'a' }, { value: 'b', display: 'B' }] };
    const many = Array.from({ length: 5000 }, (_, i) => ({ value: `m${i}` }));
    const added = patch(group, ops({ op: 'add', path: 'members', value: [...many, { value: 'b' }, { value: 'm1' }] }), GROUP_PATCH_SCHEMA).members as { value: string }[];
    assert.equal(added.length, 5002);
    assert.deepEqual(added[1], { value: 'b', display: 'B' }, 'a value already there stays as it was');
    const removed = patch({ ...group, members: added }, ops({ op: 'remove', path: 'members', value: many.slice(0, 4999) }), GROUP_PATCH_SCHEMA).members as { value: string }[];
    assert.deepEqual(
      removed.map((m) => m.value),
      ['a', 'b', 'm4999'],
    );
  });
});
