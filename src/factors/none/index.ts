import type { FactorDefinition } from '../types.ts';

/** No second factor: the password (or upstream sign-in) is enough. */
export const noneFactor: FactorDefinition = {
  id: 'none',
  amr: [],
  acr: 'urn:latchkey:acr:1fa',
  fields: {},
  events: [],
  create: () => ({
    enrolled: () => false,
    stage: () => 'done',
    page: () => Promise.reject(new Error('the none factor has no page')),
    submit: () => Promise.resolve({ passed: true }),
    reset: () => Promise.resolve(),
  }),
};
