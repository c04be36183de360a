/**
 * Where the files that ship beside the code live (`views/`, `locales/`,
 * `public/`), for every layout: the sources run by tsx (`src/paths.ts`), the
 * compiled JavaScript (`dist/src/paths.js`) and the test runner's compiled
 * copy (`.tmp/test-build-…/src/paths.js`). The one module that knows.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The nearest folder above this module that holds `package.json`: the project's root in each layout. */
function projectRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return join(from, '..');
  }
}

/** The project's root: the folder holding `package.json`, `views/`, `locales/` and `public/`. */
export const ROOT = projectRoot(import.meta.dirname);

export const VIEWS_DIR = join(ROOT, 'views');
export const LOCALES_DIR = join(ROOT, 'locales');
export const PUBLIC_DIR = join(ROOT, 'public');

/**
 * The views compiled ahead of time (`scripts/views.mjs`), at the top of a compiled tree (`dist/`, a test
 * build); absent when the sources run through tsx, where each view is compiled on first use instead.
 */
export const COMPILED_VIEWS = join(import.meta.dirname, '..', 'views.compiled.cjs');
