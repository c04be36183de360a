/**
 * Where the files that ship beside the code live (`views/`, `locales/`,
 * `public/`), for both layouts: the sources run by tsx (`src/paths.ts`) and
 * the compiled JavaScript (`dist/src/paths.js`). The one module that knows.
 */
import { basename, dirname, join } from 'node:path';

const here = import.meta.dirname;

/** The project's root: the folder holding `package.json`, `views/`, `locales/` and `public/`. */
export const ROOT = basename(dirname(here)) === 'dist' ? join(here, '..', '..') : join(here, '..');

export const VIEWS_DIR = join(ROOT, 'views');
export const LOCALES_DIR = join(ROOT, 'locales');
export const PUBLIC_DIR = join(ROOT, 'public');
