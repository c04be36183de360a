import { badRequest, csrfRefused } from '../errors.ts';
import { constantTimeEqual } from '../crypto/equal.ts';

/**
 * Reads form fields as single strings. Anything else (a missing field, an
 * array, an object such as `{"$ne": null}`, an over-long value) is a 400:
 * no handler ever sees a non-string.
 */
export function formFields<R extends string, O extends string = never>(
  body: unknown,
  required: readonly R[],
  optional: readonly O[] = [],
  maxLength = 1024,
): Record<R, string> & Partial<Record<O, string>> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('errors.form.empty');
  const source = body as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [name, isRequired] of [...required.map((n) => [n, true] as const), ...optional.map((n) => [n, false] as const)]) {
    const value = Object.hasOwn(source, name) ? source[name] : undefined;
    if (value === undefined) {
      if (isRequired) throw badRequest('errors.form.missing', { field: name });
      continue;
    }
    if (typeof value !== 'string') throw badRequest('errors.form.notText', { field: name });
    if (value.length > maxLength) throw badRequest('errors.form.tooLong', { field: name });
    if (value.includes('\0')) throw badRequest('errors.form.invalidCharacters', { field: name });
    out[name] = value;
  }
  return out as Record<R, string> & Partial<Record<O, string>>;
}

/**
 * The fields a factor declared (`FormFields`: name → longest value), each
 * checked like `formFields` against its own length; anything else in the body
 * (the CSRF token included) is left out.
 */
export function declaredFields(body: unknown, fields: Readonly<Record<string, number>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, maxLength] of Object.entries(fields)) {
    const value = formFields(body, [], [name], maxLength)[name];
    if (value !== undefined) out[name] = value;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('errors.form.empty');
  return out;
}

/** Constant-time comparison of a submitted CSRF token with the expected one. */
export function checkCsrf(expected: string | undefined, body: unknown): void {
  const given = body && typeof body === 'object' && Object.hasOwn(body, 'csrf') ? (body as Record<string, unknown>).csrf : undefined;
  if (!expected || typeof given !== 'string') throw csrfRefused();
  if (!constantTimeEqual(given, expected)) throw csrfRefused();
}
