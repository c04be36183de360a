// The test runner (`scripts/test.mjs`) compiles `src/`, `config/` and `test/`
// once into a folder of its own under `.tmp/` and runs the JavaScript, which saves every
// test process (and every server or CLI process a test starts) the loader
// hooks' cost of running TypeScript. A test file run by hand with tsx runs
// the sources. Either way a process a test starts runs the same layout, and
// the tests' non-code files (views of a test factor, fixtures) are beside them.
import { join } from 'node:path';
import { ROOT } from '../../src/paths.ts';

/** True when this is the compiled copy. */
export const COMPILED = import.meta.url.endsWith('.js');

/** The project's root (package.json, views/, docs/, …), in both layouts. */
export { ROOT };

/** The folder that holds `src/` and `test/` of the running layout. */
export const CODE_ROOT = join(import.meta.dirname, '..', '..');

/** `node` arguments that run a module of the running layout, e.g. `nodeArgs('src/main')`. */
export function nodeArgs(module: string): string[] {
  return COMPILED ? [join(CODE_ROOT, `${module}.js`)] : ['--import', 'tsx', join(CODE_ROOT, `${module}.ts`)];
}

/** The URL of a module of the running layout (for a worker thread), e.g. `moduleUrl('src/storage/counters/sqlite/index')`. */
export function moduleUrl(module: string): string {
  return new URL(`${module}.${COMPILED ? 'js' : 'ts'}`, `file://${CODE_ROOT}/`).href;
}
