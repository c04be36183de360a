/**
 * SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2): parsed once
 * into a tree and evaluated over a resource's JSON, so every attribute a
 * resource shows can be filtered on, the same way for Users and Groups.
 *
 * Supported: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (…)`,
 * parentheses, value filters (`emails[type eq "work"]`) and attribute names
 * with or without their schema URN. Attribute names never depend on case;
 * string values compare without case except where the schema says
 * `caseExact` (`id`, `externalId`).
 */
import { ScimError } from '../errors.ts';

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type Value = string | number | boolean | null;

/** An attribute path: `name`, `name.givenName`, or with a schema URN before it. */
export interface AttrPath {
  /** The schema URN the path named, as given (null: none). */
  uri: string | null;
  attr: string;
  sub: string | null;
}

export type Filter =
  | { op: 'and' | 'or'; left: Filter; right: Filter }
  | { op: 'not'; filter: Filter }
  | { op: 'pr'; path: AttrPath }
  | { op: CompareOp; path: AttrPath; value: Value }
  | { op: '[]'; path: AttrPath; filter: Filter };

/** A PATCH target: an attribute, optionally narrowed by a value filter, then a sub-attribute (`emails[type eq "work"].value`). */
export interface PatchPath {
  path: AttrPath;
  filter: Filter | null;
  /** The sub-attribute after a value filter. */
  sub: string | null;
}

const COMPARE: ReadonlySet<string> = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
const MAX_LENGTH = 4096;
const MAX_DEPTH = 32;
/** Comparisons in one filter: what a directory sends has one to a few; each is evaluated for every value or User it is tried on. */
export const MAX_COMPARISONS = 50;

type Token = { kind: 'word'; text: string } | { kind: 'string'; text: string } | { kind: '(' | ')' | '[' | ']' };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      tokens.push({ kind: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < input.length && input[j] !== '"') j += input[j] === '\\' ? 2 : 1;
      if (j >= input.length) throw invalid('an unterminated string');
      let text: unknown;
      try {
        text = JSON.parse(input.slice(i, j + 1));
      } catch {
        throw invalid('a malformed string');
      }
      tokens.push({ kind: 'string', text: text as string });
      i = j + 1;
    } else {
      let j = i;
      while (j < input.length && !' \t\n\r()[]"'.includes(input[j]!)) j++;
      tokens.push({ kind: 'word', text: input.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

const invalid = (what: string) => new ScimError(400, 'invalidFilter', `The filter has ${what}.`);

const ATTR = /^[A-Za-z][\w$-]*$/;

/**
 * An attribute path. A URN prefix is everything up to the last `:` (a schema
 * URN's own parts hold dots, as in `2.0`); what follows is `attr[.sub]`.
 */
export function parseAttrPath(text: string): AttrPath {
  let uri: string | null = null;
  let rest = text;
  if (/^urn:/i.test(text)) {
    const cut = text.lastIndexOf(':');
    uri = text.slice(0, cut);
    rest = text.slice(cut + 1);
  }
  const parts = rest.split('.');
  if (parts.length > 2 || !parts.every((p) => ATTR.test(p))) throw invalid(`an attribute name that is not one: "${text.slice(0, 100)}"`);
  return { uri, attr: parts[0]!, sub: parts[1] ?? null };
}

function literal(token: Token | undefined): Value {
  if (!token) throw invalid('a comparison without a value');
  if (token.kind === 'string') return token.text;
  if (token.kind !== 'word') throw invalid('a comparison without a value');
  const word = token.text.toLowerCase();
  if (word === 'true') return true;
  if (word === 'false') return false;
  if (word === 'null') return null;
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(token.text)) return Number(token.text);
  throw invalid(`a value that is neither a string, a number, true, false nor null: "${token.text.slice(0, 100)}"`);
}

class Parser {
  private at = 0;
  private comparisons = 0;
  constructor(private readonly tokens: Token[]) {}

  private peekWord(): string | null {
    const t = this.tokens[this.at];
    return t?.kind === 'word' ? t.text.toLowerCase() : null;
  }

  private expect(kind: ')' | ']') {
    if (this.tokens[this.at]?.kind !== kind) throw invalid(`a missing "${kind}"`);
    this.at++;
  }

  done(): boolean {
    return this.at >= this.tokens.length;
  }

  next(): Token | undefined {
    return this.tokens[this.at++];
  }

  peek(): Token | undefined {
    return this.tokens[this.at];
  }

  or(depth: number): Filter {
    if (depth > MAX_DEPTH) throw invalid('too many levels');
    let left = this.and(depth);
    while (this.peekWord() === 'or') {
      this.at++;
      left = { op: 'or', left, right: this.and(depth) };
    }
    return left;
  }

  and(depth: number): Filter {
    let left = this.unary(depth);
    while (this.peekWord() === 'and') {
      this.at++;
      left = { op: 'and', left, right: this.unary(depth) };
    }
    return left;
  }

  unary(depth: number): Filter {
    if (this.peekWord() === 'not') {
      this.at++;
      if (this.peek()?.kind !== '(') throw invalid('"not" without "("');
      return { op: 'not', filter: this.unary(depth + 1) };
    }
    if (this.peek()?.kind === '(') {
      this.at++;
      const inner = this.or(depth + 1);
      this.expect(')');
      return inner;
    }
    return this.comparison(depth);
  }

  comparison(depth: number): Filter {
    if (++this.comparisons > MAX_COMPARISONS) throw invalid(`more than ${MAX_COMPARISONS} comparisons`);
    const token = this.next();
    if (token?.kind !== 'word') throw invalid('a missing attribute name');
    const path = parseAttrPath(token.text);
    if (this.peek()?.kind === '[') {
      if (path.sub) throw invalid('a value filter after a sub-attribute');
      this.at++;
      const filter = this.or(depth + 1);
      this.expect(']');
      return { op: '[]', path, filter };
    }
    const op = this.peekWord();
    if (op === 'pr') {
      this.at++;
      return { op: 'pr', path };
    }
    if (!op || !COMPARE.has(op)) throw invalid(`no operator after "${token.text.slice(0, 100)}"`);
    this.at++;
    return { op: op as CompareOp, path, value: literal(this.next()) };
  }
}

export function parseFilter(input: string): Filter {
  if (input.length > MAX_LENGTH) throw invalid('more than 4096 characters');
  const parser = new Parser(tokenize(input));
  if (parser.done()) throw invalid('nothing in it');
  const filter = parser.or(0);
  if (!parser.done()) throw invalid('something left over after the expression');
  return filter;
}

/** A PATCH operation's `path` (RFC 7644 §3.5.2). */
export function parsePatchPath(input: string): PatchPath {
  if (input.length > MAX_LENGTH) throw new ScimError(400, 'invalidPath', 'The path is too long.');
  try {
    const open = input.indexOf('[');
    if (open < 0) return { path: parseAttrPath(input.trim()), filter: null, sub: null };
    const close = input.lastIndexOf(']');
    if (close < open) throw invalid('a missing "]"');
    const path = parseAttrPath(input.slice(0, open).trim());
    if (path.sub) throw invalid('a value filter after a sub-attribute');
    const filter = parseFilter(input.slice(open + 1, close));
    const after = input.slice(close + 1).trim();
    if (after && !/^\.[A-Za-z][\w$-]*$/.test(after)) throw invalid('something after "]" that is not a sub-attribute');
    return { path, filter, sub: after ? after.slice(1) : null };
  } catch (err) {
    if (err instanceof ScimError && err.scimType === 'invalidFilter') throw new ScimError(400, 'invalidPath', err.message.replace('The filter', 'The path'));
    throw err;
  }
}

// Evaluation.

/** The resource's schemas: the core one (its attributes at the top) and extensions (each under its URN). */
export interface SchemaContext {
  core: string;
  extensions: string[];
  /** Lower-cased attribute paths (`id`, `externalid`) whose strings compare with case. */
  caseExact: ReadonlySet<string>;
}

type Json = unknown;

/** The value of `key` in `obj`, the key matched without case. */
export function getKey(obj: Json, key: string): Json {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** The object an attribute path lives in (the resource, or an extension's object), or an error for an unknown schema. */
export function container(resource: Json, path: AttrPath, ctx: SchemaContext): { holder: Json; uri: string | null } {
  if (!path.uri || path.uri.toLowerCase() === ctx.core.toLowerCase()) return { holder: resource, uri: null };
  const ext = ctx.extensions.find((e) => e.toLowerCase() === path.uri!.toLowerCase());
  if (!ext) throw new ScimError(400, 'invalidPath', `Unknown schema "${path.uri.slice(0, 200)}".`);
  return { holder: getKey(resource, ext), uri: ext };
}

const flat = (v: Json): Json[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

function values(resource: Json, path: AttrPath, ctx: SchemaContext): Json[] {
  let holder: Json;
  try {
    holder = container(resource, path, ctx).holder;
  } catch {
    return [];
  }
  const top = flat(getKey(holder, path.attr));
  if (!path.sub) return top;
  // A multi-valued complex attribute matches when any of its values does (`emails.value`).
  return top.flatMap((v) => flat(getKey(v, path.sub!)));
}

const exactKey = (path: AttrPath) => (path.sub ? `${path.attr}.${path.sub}` : path.attr).toLowerCase();

function compare(actual: Json, op: CompareOp, expected: Value, caseExact: boolean): boolean {
  if (expected === null) return op === 'ne' ? actual !== null && actual !== undefined : false;
  if (typeof expected === 'boolean') {
    const b = typeof actual === 'boolean' ? actual : typeof actual === 'string' ? (actual.toLowerCase() === 'true' ? true : actual.toLowerCase() === 'false' ? false : null) : null;
    if (b === null) return false;
    if (op === 'eq') return b === expected;
    if (op === 'ne') return b !== expected;
    return false;
  }
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return false;
    return {
      eq: actual === expected,
      ne: actual !== expected,
      gt: actual > expected,
      ge: actual >= expected,
      lt: actual < expected,
      le: actual <= expected,
      co: false,
      sw: false,
      ew: false,
    }[op];
  }
  if (typeof actual !== 'string') return false;
  const a = caseExact ? actual : actual.toLowerCase();
  const e = caseExact ? expected : expected.toLowerCase();
  switch (op) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'co':
      return a.includes(e);
    case 'sw':
      return a.startsWith(e);
    case 'ew':
      return a.endsWith(e);
    case 'gt':
      return a > e;
    case 'ge':
      return a >= e;
    case 'lt':
      return a < e;
    case 'le':
      return a <= e;
  }
}

/** True when `resource` (its SCIM JSON) matches `filter`. */
/** How many nodes `filter` has: about what one evaluation of it costs. */
export function filterSize(filter: Filter): number {
  switch (filter.op) {
    case 'and':
    case 'or':
      return 1 + filterSize(filter.left) + filterSize(filter.right);
    case 'not':
    case '[]':
      return 1 + filterSize(filter.filter);
    default:
      return 1;
  }
}

export function matches(resource: Json, filter: Filter, ctx: SchemaContext): boolean {
  switch (filter.op) {
    case 'and':
      return matches(resource, filter.left, ctx) && matches(resource, filter.right, ctx);
    case 'or':
      return matches(resource, filter.left, ctx) || matches(resource, filter.right, ctx);
    case 'not':
      return !matches(resource, filter.filter, ctx);
    case 'pr':
      return values(resource, filter.path, ctx).some((v) => v !== '' && !(typeof v === 'object' && v !== null && !Array.isArray(v) && !Object.keys(v).length));
    case '[]': {
      // Inside the brackets, attribute names are the values' own sub-attributes.
      const inner: SchemaContext = {
        core: '',
        extensions: [],
        caseExact: new Set([...ctx.caseExact].filter((k) => k.startsWith(`${filter.path.attr.toLowerCase()}.`)).map((k) => k.split('.')[1]!)),
      };
      return values(resource, filter.path, ctx).some((v) => matches(v, filter.filter, inner));
    }
    default: {
      const found = values(resource, filter.path, ctx);
      const caseExact = ctx.caseExact.has(exactKey(filter.path));
      if (filter.op === 'ne') return !found.some((v) => compare(v, 'eq', filter.value, caseExact));
      return found.some((v) => compare(v, filter.op as CompareOp, filter.value, caseExact));
    }
  }
}
