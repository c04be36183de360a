/**
 * The one list of second factors (docs/factors.md). A user type's
 * `secondFactor` names one of these by id; the list's order is the order of
 * the levels, weakest first. A factor is added with one line here.
 */
import { noneFactor } from './none/index.ts';
import { pinFactor } from './pin/index.ts';
import { totpFactor } from './totp/index.ts';
import { passkeyFactor } from './passkey/index.ts';
import { recoveryMethod } from './recovery/index.ts';
import type { Factor, FactorBaseServices, FactorDefinition, FactorInfo, FactorMethod, FactorServices, FormFields, MethodDefinition } from './types.ts';
import type { Login, Tenant } from '../storage/accounts/port.ts';
import { badRequest } from '../errors.ts';
import { userTypeOf } from '../names.ts';

export const FACTORS: readonly FactorDefinition[] = [noneFactor, pinFactor, totpFactor, passkeyFactor];
export const METHODS: readonly MethodDefinition[] = [recoveryMethod];

/** Factors and methods added at composition beside the built-in ones (a test's fake factor). */
export interface ExtraFactors {
  factors?: readonly FactorDefinition[];
  methods?: readonly MethodDefinition[];
}

const ID = /^[a-z][a-z0-9_]{0,31}$/;

/** What is known of the factors without any service: enough for the import and the user type's values. */
export interface FactorCatalogue {
  /** Every factor's id, in the order of the levels. */
  ids(): string[];
  /** Whether `id` names a factor (a user type's value from a form, a file or the store). */
  has(id: unknown): id is string;
  /**
   * Every acr value a session can carry, weakest first (for discovery): the
   * order of the list, so a factor added there takes its place in it.
   */
  acrValues(): string[];
  /** The place of `acr` in `acrValues()` (stronger is higher), -1 for a value Latchkey does not issue. */
  rank(acr: string | undefined): number;
  info(id: string): FactorInfo;
  /** Every form field any factor, method or change page takes (log redaction). */
  fields(): string[];
}

export interface FactorRegistry extends FactorCatalogue {
  get(id: string): Factor;
  all(): Factor[];
  /**
   * The factor's alternatives (its methods), in order, whether or not they
   * stand in for it for a given login (the Users page's counts, the reset's
   * void). Their `submit` refuses a factor they do not stand in for.
   */
  methods(factor: Factor): FactorMethod[];
  /**
   * The alternatives that stand in for `factor` for `login` now, in order:
   * available (codes left) and, for a method with a level
   * (`MethodBehaviour.level`), made under a level at least the factor's
   * (`rank`) — a set stored without one, for the user type's own factor only.
   * The journey offers and accepts only these.
   */
  offered(tenant: Tenant, login: Login, factor: Factor): FactorMethod[];
  method(id: string): FactorMethod | undefined;
  /** Every audit event type of the factors and their methods. */
  events(): string[];
  /** What else lets a login in without one of its factors (`FactorServices.wayInWithout`). */
  wayInWithout: FactorServices['wayInWithout'];
}

export function factorCatalogue(extra: ExtraFactors = {}): FactorCatalogue {
  const list = [...FACTORS, ...(extra.factors ?? [])];
  const byId = new Map<string, FactorInfo>();
  for (const f of list) {
    if (!ID.test(f.id)) throw new Error(`factor id "${f.id}" must be lower-case letters, digits or "_"`);
    if (byId.has(f.id)) throw new Error(`two factors with the id "${f.id}"`);
    byId.set(f.id, f);
  }
  const order = [...new Set(list.map((f) => f.acr))];
  const names = (fields: FormFields | undefined) => Object.keys(fields ?? {});
  const fields = [
    ...new Set([...list.flatMap((f) => [...names(f.fields), ...names(f.changeFields)]), ...[...METHODS, ...(extra.methods ?? [])].flatMap((m) => names(m.fields))]),
  ].sort();
  return {
    fields: () => [...fields],
    ids: () => [...byId.keys()],
    has: (id): id is string => typeof id === 'string' && byId.has(id),
    acrValues: () => [...order],
    rank: (acr) => (acr === undefined ? -1 : order.indexOf(acr)),
    info(id) {
      const f = byId.get(id);
      // An unknown id in the store (e.g. a factor removed from this list) must never mean "no factor".
      if (!f) throw new Error(`unknown second factor "${id}"`);
      return f;
    },
  };
}

/** The factors as defined by the built-in list: what the import checks a file against by default. */
export const builtInFactors: FactorCatalogue = factorCatalogue();

export function createFactorRegistry(base: FactorBaseServices, extra: ExtraFactors = {}): FactorRegistry {
  const catalogue = factorCatalogue(extra);
  const factors = new Map<string, Factor>();
  const methods = new Map<string, FactorMethod>();
  // A set stands in for no factor above the level it was made under: one made after the app never passes for a passkey.
  const standsIn = (tenant: Tenant, login: Login, factor: Factor, method: FactorMethod) => {
    if (!factor.alternatives?.includes(method.id) || !method.available(login)) return false;
    if (!method.level) return true;
    const level = method.level(login);
    if (level === null) return userTypeOf(tenant, login.userType)?.secondFactor === factor.id;
    return catalogue.rank(level) >= 0 && catalogue.rank(factor.acr) <= catalogue.rank(level);
  };
  const offered = (tenant: Tenant, login: Login, factor: Factor) => (factor.alternatives ?? []).map((id) => methods.get(id)!).filter((m) => standsIn(tenant, login, factor, m));
  // Asked only once the maps are filled (at a request, never while the factors are made).
  const wayInWithout: FactorServices['wayInWithout'] = (tenant, login, factorId) => {
    const type = userTypeOf(tenant, login.userType);
    const needed = type && factors.has(type.secondFactor) ? catalogue.rank(factors.get(type.secondFactor)!.acr) : catalogue.rank(factors.get(factorId)?.acr);
    const other = [...factors.values()].some((f) => f.id !== factorId && catalogue.rank(f.acr) >= needed && f.stage(login) !== 'enroll');
    if (other) return 'factor';
    const factor = factors.get(factorId);
    // Only what would be offered on this factor's own page, where its sign-in still comes.
    return factor && offered(tenant, login, factor).length > 0 ? 'method' : null;
  };
  const services: FactorServices = { ...base, wayInWithout };
  for (const definition of [...FACTORS, ...(extra.factors ?? [])]) {
    const { create, ...info } = definition;
    factors.set(info.id, { ...info, ...create(services) });
  }
  for (const definition of [...METHODS, ...(extra.methods ?? [])]) {
    if (methods.has(definition.id) || factors.has(definition.id)) throw new Error(`two factors or methods with the id "${definition.id}"`);
    const { create, ...info } = definition;
    const behaviour = create(services);
    const method: FactorMethod = {
      ...info,
      ...behaviour,
      submit: async (req, factor) =>
        standsIn(req.tenant, req.login, factor, method) ? behaviour.submit(req, factor) : { passed: false, error: badRequest('errors.signin.noSuchMethod') },
    };
    methods.set(info.id, method);
  }
  for (const f of factors.values()) {
    for (const m of f.alternatives ?? []) if (!methods.has(m)) throw new Error(`the ${f.id} factor names an unknown method "${m}"`);
  }
  return {
    ...catalogue,
    get(id) {
      const f = factors.get(id);
      if (!f) throw new Error(`unknown second factor "${id}"`);
      return f;
    },
    all: () => [...factors.values()],
    methods: (factor) => (factor.alternatives ?? []).map((id) => methods.get(id)!),
    method: (id) => methods.get(id),
    offered,
    wayInWithout,
    events: () => [...new Set([...[...factors.values()].flatMap((f) => f.events), ...[...methods.values()].flatMap((m) => m.events)])].sort(),
  };
}
