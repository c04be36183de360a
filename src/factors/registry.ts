/**
 * The one list of second factors. A user type's `secondFactor` names one of
 * these by id.
 */
import { noneFactor } from './none/index.ts';
import { pinFactor } from './pin/index.ts';
import { totpFactor } from './totp/index.ts';
import { passkeyFactor } from './passkey/index.ts';
import type { Factor, FactorFactory, FactorServices } from './types.ts';

const FACTORS: FactorFactory[] = [noneFactor, pinFactor, totpFactor, passkeyFactor];

export interface FactorRegistry {
  get(id: string): Factor;
  all(): Factor[];
  /**
   * Every acr value a session can carry, weakest first (for discovery): the
   * order of the list above, so a factor added there takes its place in it.
   */
  acrValues(): string[];
  /** The place of `acr` in `acrValues()` (stronger is higher), -1 for a value Latchkey does not issue. */
  rank(acr: string | undefined): number;
}

export function createFactorRegistry(services: FactorServices): FactorRegistry {
  const factors = new Map(
    FACTORS.map((make) => {
      const f = make(services);
      return [f.id, f] as const;
    }),
  );
  const order = [...new Set([...factors.values()].map((f) => f.acr))];
  return {
    get(id) {
      const f = factors.get(id);
      // An unknown id in the store (e.g. a factor removed from this list) must never mean "no factor".
      if (!f) throw new Error(`unknown second factor "${id}"`);
      return f;
    },
    all: () => [...factors.values()],
    acrValues: () => [...order],
    rank: (acr) => (acr === undefined ? -1 : order.indexOf(acr)),
  };
}
