import { ACR } from '../../provider/acr.ts';
import type { Factor, FactorFactory } from '../types.ts';

/** No second factor: the password (or upstream sign-in) is enough. */
export const noneFactor: FactorFactory = (): Factor => ({
  id: 'none',
  amr: [],
  acr: ACR.oneFactor,
  stage: () => 'done',
  page: () => Promise.reject(new Error('the none factor has no page')),
  submit: () => Promise.resolve({ passed: true }),
  reset: () => Promise.resolve(),
});
