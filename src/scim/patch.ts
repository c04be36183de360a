/**
 * SCIM PATCH (RFC 7644 §3.5.2) over a resource's JSON: `add`, `replace` and
 * `remove`, with or without `path`, applied to a copy of the resource as the
 * directory sees it; the caller then maps the result back and changes what
 * differs, through the same rules as a full replace (PUT).
 *
 * As Microsoft Entra and Okta send them: operation names in any case
 * (`Replace`), `value` objects whose keys are paths (`name.givenName`,
 * `urn:…:User:userType`), an extension as a whole under its URN, value
 * filters in paths (`emails[type eq "work"].value`, `members[value eq "…"]`),
 * and `remove` of `members` with a `value` list instead of a filter.
 * Attributes the resource does not show are ignored, as directories send
 * whatever their mapping holds; read-only ones (`id`, `meta`, `groups`) too.
 */
import { ScimError } from '../errors.ts';
import { container, filterSize, getKey, matches, parseAttrPath, parsePatchPath, type AttrPath, type PatchPath, type SchemaContext } from './filter.ts';

export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const MAX_OPERATIONS = 1000;
/**
 * The filter nodes one PATCH may evaluate, over all its operations (each
 * operation's filter, for each value of the attribute it filters): about
 * 0.07 s of one core. A group's filtered removes of a few members at a time
 * stay far below it; a body built to make every value be tried against long
 * filters is refused before it runs.
 */
export const PATCH_WORK = 200_000;
/** Filter nodes in all of one PATCH's paths: parsing them costs too, before any is evaluated. */
const MAX_PATH_FILTER_NODES = 2_000;

export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: PatchPath | null;
  value: unknown;
}

/** What PATCH needs to know of a resource type's schema. */
export interface PatchSchema extends SchemaContext {
  /** Lower-cased names of the multi-valued attributes (`emails`, `members`). */
  multiValued: ReadonlySet<string>;
  /** Lower-cased names of the attributes a client cannot write (`id`, `meta`). */
  readOnly: ReadonlySet<string>;
  /** Lower-cased attribute name → the name the resource shows (`givenname` → `givenName`). */
  names: ReadonlyMap<string, string>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The operations of a PATCH body, checked; a malformed one is a 400 `invalidSyntax`. */
export function parsePatch(body: unknown): PatchOperation[] {
  if (!isObj(body)) throw new ScimError(400, 'invalidSyntax', 'The body is not a JSON object.');
  const schemas = getKey(body, 'schemas');
  if (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === PATCH_OP.toLowerCase())) {
    throw new ScimError(400, 'invalidSyntax', `"schemas" must hold "${PATCH_OP}".`);
  }
  const operations = getKey(body, 'Operations');
  if (!Array.isArray(operations) || !operations.length) throw new ScimError(400, 'invalidSyntax', '"Operations" must be a list of operations.');
  if (operations.length > MAX_OPERATIONS) throw new ScimError(400, 'tooMany', `At most ${MAX_OPERATIONS} operations at once.`);
  let nodes = 0;
  return operations.map((o, i) => {
    if (!isObj(o)) throw new ScimError(400, 'invalidSyntax', `Operation ${i + 1} is not an object.`);
    const op = getKey(o, 'op');
    const name = typeof op === 'string' ? op.toLowerCase() : '';
    if (name !== 'add' && name !== 'replace' && name !== 'remove') throw new ScimError(400, 'invalidSyntax', `Operation ${i + 1}: "op" must be add, replace or remove.`);
    const rawPath = getKey(o, 'path');
    if (rawPath !== undefined && rawPath !== null && typeof rawPath !== 'string') throw new ScimError(400, 'invalidPath', `Operation ${i + 1}: "path" must be a string.`);
    const path = typeof rawPath === 'string' && rawPath.trim() ? parsePatchPath(rawPath) : null;
    nodes += path?.filter ? filterSize(path.filter) : 0;
    if (nodes > MAX_PATH_FILTER_NODES) throw new ScimError(400, 'tooMany', 'The operations filter too much at once: send them in smaller parts.');
    const value = getKey(o, 'value');
    if (name === 'remove' && !path) throw new ScimError(400, 'noTarget', `Operation ${i + 1}: remove needs a "path".`);
    if (name !== 'remove' && value === undefined) throw new ScimError(400, 'invalidValue', `Operation ${i + 1}: ${name} needs a "value".`);
    if (name !== 'remove' && !path && !isObj(value)) throw new ScimError(400, 'invalidValue', `Operation ${i + 1}: without a "path", "value" must be an object of attributes.`);
    return { op: name, path, value };
  });
}

/** What is left of a PATCH's `PATCH_WORK`. */
interface Work {
  left: number;
}

function spend(work: Work, cost: number) {
  work.left -= cost;
  if (work.left < 0) throw new ScimError(400, 'tooMany', 'This PATCH asks for too many comparisons at once: send its operations in smaller parts.');
}

/** Returns a copy of `resource` with `operations` applied; 400 `tooMany` past `PATCH_WORK`. */
export function applyPatch(resource: Obj, operations: PatchOperation[], schema: PatchSchema): Obj {
  const doc = structuredClone(resource);
  const work: Work = { left: PATCH_WORK };
  for (const operation of operations) {
    if (operation.path) applyAtPath(doc, operation, operation.path, schema, work);
    else for (const [key, value] of Object.entries(operation.value as Obj)) applyKey(doc, operation.op as 'add' | 'replace', key, value, schema, work);
  }
  return doc;
}

function extensionNamed(text: string, schema: PatchSchema): string | undefined {
  return schema.extensions.find((e) => e.toLowerCase() === text.toLowerCase());
}

/** A key of a path-less operation's value: an attribute, a dotted or URN path, or an extension's URN with its object. */
function applyKey(doc: Obj, op: 'add' | 'replace', key: string, value: unknown, schema: PatchSchema, work: Work) {
  const ext = extensionNamed(key, schema);
  if (ext) {
    if (!isObj(value)) throw new ScimError(400, 'invalidValue', `"${ext}" must be an object.`);
    for (const [k, v] of Object.entries(value)) applyKey(doc, op, `${ext}:${k}`, v, schema, work);
    return;
  }
  let path: AttrPath;
  try {
    path = parseAttrPath(key);
  } catch {
    throw new ScimError(400, 'invalidPath', `"${key.slice(0, 100)}" is not an attribute.`);
  }
  applyAtPath(doc, { op, path: { path, filter: null, sub: null }, value }, { path, filter: null, sub: null }, schema, work);
}

function holderFor(doc: Obj, path: AttrPath, schema: PatchSchema, create: boolean): Obj | null {
  const ext = path.uri ? extensionNamed(`${path.uri}:${path.attr}`, schema) : undefined;
  if (ext) return null;
  const { holder, uri } = container(doc, path, schema);
  if (isObj(holder)) return holder;
  if (!create || !uri) return null;
  const made: Obj = {};
  doc[uri] = made;
  return made;
}

const canonical = (name: string, schema: PatchSchema) => schema.names.get(name.toLowerCase()) ?? name;

function keyIn(obj: Obj, name: string, schema: PatchSchema): string {
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower) ?? canonical(name, schema);
}

/**
 * What makes two values of a multi-valued attribute the same one: a complex
 * value's `value` (a member's id, an email), else the whole value. Kept in a
 * set, so adding or removing many values costs in proportion to them.
 */
const identityOf = (v: unknown): string => (isObj(v) && getKey(v, 'value') !== undefined ? `value:${String(getKey(v, 'value'))}` : `json:${JSON.stringify(v)}`);

function merge(target: Obj, value: Obj, schema: PatchSchema) {
  for (const [k, v] of Object.entries(value)) target[keyIn(target, k, schema)] = v;
}

function applyAtPath(doc: Obj, operation: PatchOperation, target: PatchPath, schema: PatchSchema, work: Work) {
  const { op, value } = operation;
  const { path, filter, sub } = target;
  // The extension as a whole (`path: "urn:…:extension:…:User"`).
  const ext = path.uri && !path.sub && !filter ? extensionNamed(`${path.uri}:${path.attr}`, schema) : undefined;
  if (ext) {
    if (op === 'remove') {
      delete doc[keyIn(doc, ext, schema)];
      return;
    }
    if (!isObj(value)) throw new ScimError(400, 'invalidValue', `"${ext}" must be an object.`);
    for (const [k, v] of Object.entries(value)) applyKey(doc, op, `${ext}:${k}`, v, schema, work);
    return;
  }
  const attr = path.attr.toLowerCase();
  if (schema.readOnly.has(attr)) return;
  const holder = holderFor(doc, path, schema, op !== 'remove');
  if (!holder) return;
  const key = keyIn(holder, path.attr, schema);
  const multi = schema.multiValued.has(attr);

  if (filter) {
    if (!multi) throw new ScimError(400, 'invalidPath', `"${path.attr}" holds one value: it takes no filter.`);
    const list = Array.isArray(holder[key]) ? (holder[key] as unknown[]) : [];
    const inner = { core: '', extensions: [], caseExact: new Set<string>() };
    spend(work, list.length * filterSize(filter));
    const hit = list.map((v) => isObj(v) && matches(v, filter, inner));
    if (op === 'remove') {
      holder[key] = sub
        ? list.map((v, i) => (hit[i] && isObj(v) ? Object.fromEntries(Object.entries(v).filter(([k]) => k.toLowerCase() !== sub.toLowerCase())) : v))
        : list.filter((_, i) => !hit[i]);
      return;
    }
    if (!hit.some(Boolean)) {
      // `emails[type eq "work"].value` on a resource without a work email adds one (Entra sends this for a first email).
      if (sub && filter.op === 'eq' && !filter.path.sub && typeof filter.value === 'string') {
        holder[key] = [...list, { [canonical(filter.path.attr, schema)]: filter.value, [canonical(sub, schema)]: value }];
        return;
      }
      if (op === 'replace') throw new ScimError(400, 'noTarget', `No value of "${path.attr}" matches the filter.`);
      return;
    }
    holder[key] = list.map((v, i) => {
      if (!hit[i] || !isObj(v)) return v;
      if (sub) return { ...v, [keyIn(v, sub, schema)]: value };
      if (!isObj(value)) throw new ScimError(400, 'invalidValue', `A value of "${path.attr}" must be an object.`);
      const copy = { ...v };
      merge(copy, value, schema);
      return copy;
    });
    return;
  }

  if (op === 'remove') {
    const part = path.sub;
    if (part) {
      const inner = holder[key];
      if (isObj(inner)) delete inner[keyIn(inner, part, schema)];
      else if (Array.isArray(inner)) holder[key] = inner.map((v) => (isObj(v) ? Object.fromEntries(Object.entries(v).filter(([k]) => k.toLowerCase() !== part.toLowerCase())) : v));
      return;
    }
    // Entra removes members by listing them in `value` rather than by a filter.
    if (multi && value !== undefined && value !== null) {
      const gone = new Set((Array.isArray(value) ? value : [value]).map(identityOf));
      const list = Array.isArray(holder[key]) ? (holder[key] as unknown[]) : [];
      holder[key] = list.filter((v) => !gone.has(identityOf(v)));
      return;
    }
    delete holder[key];
    return;
  }

  if (path.sub) {
    const current = holder[key];
    if (multi) {
      // `emails.value` without a filter: every value's sub-attribute.
      holder[key] = (Array.isArray(current) ? current : []).map((v) => (isObj(v) ? { ...v, [keyIn(v, path.sub!, schema)]: value } : v));
      return;
    }
    const inner = isObj(current) ? current : (holder[key] = {} as Obj);
    inner[keyIn(inner as Obj, path.sub, schema)] = value;
    return;
  }

  if (multi) {
    const given = Array.isArray(value) ? value : [value];
    if (op === 'replace') {
      holder[key] = given;
      return;
    }
    const list = Array.isArray(holder[key]) ? [...(holder[key] as unknown[])] : [];
    const present = new Set(list.map(identityOf));
    for (const v of given) {
      const id = identityOf(v);
      if (present.has(id)) continue;
      present.add(id);
      list.push(v);
    }
    holder[key] = list;
    return;
  }
  if (isObj(value) && isObj(holder[key])) {
    // A complex attribute: the sub-attributes given replace theirs, the others stay (RFC 7644 §3.5.2.3).
    const copy = { ...(holder[key] as Obj) };
    merge(copy, value, schema);
    holder[key] = copy;
    return;
  }
  holder[key] = value;
}
