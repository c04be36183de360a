/**
 * Levels: the `acr` values Latchkey issues are its factors' (each factor
 * declares its own, `src/factors/<id>/`), ordered weakest first by the factor
 * registry (`FactorRegistry.acrValues`); a level satisfies a request for
 * itself and for every weaker one.
 */

/**
 * The interaction's reason when a session is below the level the request or
 * its client asks for: the journey then asks for the missing factor only.
 */
export const STEP_UP_REASON = 'latchkey_acr';

/** RFC 8176 `amr` values for the first step. */
export const AMR = { password: 'pwd', federated: 'fed' } as const;

/** What an authorization request asks for, as stored in its parameters. */
export interface AcrRequestParams {
  acr_values?: unknown;
  /** The `claims` parameter: a JSON string, or already parsed. */
  claims?: unknown;
}

/**
 * The lowest rank (index in `order`, weakest first) that satisfies what the
 * request and the app ask for: -1 when nothing is asked, `order.length` when
 * an essential `acr` names only values Latchkey does not issue (nothing can
 * meet it).
 *
 * - `acr_values` (oidc-provider puts the client's `default_acr_values` here
 *   when the request has none) and an essential `acr` in `claims.id_token`
 *   each name acceptable levels: since levels are ordered, the weakest known
 *   one is the floor; unknown values are ignored.
 * - The client's `default_acr_values` are the app's minimum: a request cannot
 *   ask for less.
 */
export function requiredRank(params: AcrRequestParams, clientDefaults: readonly string[] | undefined, order: readonly string[]): number {
  const floor = (values: readonly unknown[]): number | null => {
    const ranks = values.map((v) => (typeof v === 'string' ? order.indexOf(v) : -1)).filter((r) => r >= 0);
    return ranks.length ? Math.min(...ranks) : null;
  };
  const ranks: number[] = [-1];
  if (typeof params.acr_values === 'string' && params.acr_values.trim()) ranks.push(floor(params.acr_values.trim().split(/\s+/)) ?? -1);
  const essential = essentialAcr(params.claims);
  if (essential) ranks.push(floor(essential) ?? order.length);
  if (clientDefaults?.length) ranks.push(floor(clientDefaults) ?? -1);
  return Math.max(...ranks);
}

/** The values of an essential `acr` in the `claims` parameter's `id_token` member, or null. */
function essentialAcr(claims: unknown): unknown[] | null {
  let parsed = claims;
  if (typeof claims === 'string') {
    try {
      parsed = JSON.parse(claims);
    } catch {
      return null;
    }
  }
  const acr = (parsed as { id_token?: { acr?: unknown } } | null | undefined)?.id_token?.acr;
  if (!acr || typeof acr !== 'object') return null;
  const { essential, value, values } = acr as { essential?: unknown; value?: unknown; values?: unknown };
  if (essential !== true) return null;
  if (Array.isArray(values)) return values;
  return value === undefined ? null : [value];
}
