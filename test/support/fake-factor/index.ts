// A factor that exists only in the tests: a secret word, with a one-time
// backup word as its alternative method. It is one folder (this one) with its
// definition and views, given to the app at composition
// (`startServer(setup, { factors: FAKE_FACTORS })`): the factor contract test
// shows that the registry is the one place that makes a factor known.
import { join } from 'node:path';
import { z } from 'zod';
import { factorSetupExpired, invalidFactorAnswer } from '../../../src/errors.ts';
import type { FactorDefinition, FactorRequest, FactorServices, MethodDefinition } from '../../../src/factors/types.ts';
import type { ExtraFactors } from '../../../src/factors/registry.ts';
import type { Login } from '../../../src/storage/accounts/port.ts';
import { ROOT } from '../../../src/paths.ts';

// From the project's root: the compiled test run has no copy of the views beside this file.
const VIEWS = join(ROOT, 'test', 'support', 'fake-factor', 'views');
export const FAKE_ACR = 'urn:latchkey:acr:fake';

const state = z.object({ word: z.string().min(1), backup: z.string().nullable() });
type WordState = z.infer<typeof state>;
const stateOf = (login: Login): WordState | null => {
  const parsed = state.safeParse(login.factors.word);
  return parsed.success ? parsed.data : null;
};

/** The next answer to hold at its check, set by `holdNextAnswer`. */
let held: { reached: () => void; released: Promise<void> } | null = null;

/**
 * Holds the next answer to the word (set-up excepted) at its check until
 * `release()`; `reached` resolves once it waits there. For tests of two
 * requests of one sign-in at once: what the second does while the first runs.
 */
export function holdNextAnswer(): { reached: Promise<void>; release(): void } {
  let release!: () => void;
  let reached!: () => void;
  const arrived = new Promise<void>((resolve) => (reached = resolve));
  held = { reached, released: new Promise<void>((resolve) => (release = resolve)) };
  return { reached: arrived, release };
}

const record = (services: FactorServices, req: FactorRequest, type: string, outcome: 'success' | 'failure') =>
  services.audit.record({ type, outcome, tenant: req.tenant.id, login: req.login.id, ip: req.ip, userAgent: req.userAgent });

export const wordFactor: FactorDefinition = {
  id: 'word',
  amr: ['kba'],
  acr: FAKE_ACR,
  state,
  fields: { word: 32 },
  changeFields: { word: 32 },
  events: ['factor.word.set', 'factor.word.verified', 'factor.word.failed', 'factor.word.reset'],
  alternatives: ['backup_word'],
  ownerReset: {},
  create: (services) => ({
    enrolled: (login) => stateOf(login) !== null,
    stage: (login) => (stateOf(login) ? 'verify' : 'enroll'),
    page: async (stage) => ({ view: join(VIEWS, stage), locals: {} }),
    async submit(stage, req) {
      const word = req.body.word ?? '';
      if (!/^[a-z]{3,32}$/.test(word)) return { passed: false, error: invalidFactorAnswer('errors.bad_request') };
      if (stage === 'enroll') {
        // The backup word is derived here only to keep the test short; a real factor draws it at random.
        if (!(await services.accounts.compareAndSetFactorState(req.login.id, 'word', null, { word, backup: `${word}-backup` }))) {
          return { passed: false, error: factorSetupExpired('errors.bad_request') };
        }
        await record(services, req, 'factor.word.set', 'success');
        return { passed: true };
      }
      if (held) {
        const { reached, released } = held;
        held = null;
        reached();
        await released;
      }
      const passed = stateOf(req.login)?.word === word;
      await record(services, req, passed ? 'factor.word.verified' : 'factor.word.failed', passed ? 'success' : 'failure');
      return passed ? { passed: true } : { passed: false, error: invalidFactorAnswer('errors.bad_request') };
    },
    async reset(loginId) {
      await services.accounts.setFactorState(loginId, 'word', null);
    },
    change: {
      page: async () => ({ view: join(VIEWS, 'change'), locals: {} }),
      async submit() {
        return { done: true };
      },
    },
  }),
};

/** The backup word: works once — spent by compare-and-set, so of parallel uses exactly one passes. */
export const backupWordMethod: MethodDefinition = {
  id: 'backup_word',
  amr: ['kba', 'backup'],
  fields: { backup: 64 },
  events: ['factor.backup_word.used'],
  create: (services) => ({
    available: (login) => typeof stateOf(login)?.backup === 'string',
    page: async () => ({ view: join(VIEWS, 'backup'), locals: {} }),
    async submit(req) {
      const current = stateOf(req.login);
      const spent = !!current?.backup && req.body.backup === current.backup;
      if (!spent || !(await services.accounts.compareAndSetFactorState(req.login.id, 'word', req.login.factors.word ?? null, { ...current, backup: null }))) {
        return { passed: false, error: invalidFactorAnswer('errors.bad_request') };
      }
      await record(services, req, 'factor.backup_word.used', 'success');
      return { passed: true };
    },
  }),
};

export const FAKE_FACTORS: ExtraFactors = { factors: [wordFactor], methods: [backupWordMethod] };
