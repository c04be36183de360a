// Compiles every pug view under views/ ahead of time into one CommonJS module
// (`views.compiled.cjs` at the top of a compiled tree: dist/, a test build), so a
// process renders its first page without loading pug and compiling the view: that
// cost each server start about a second of CPU, and each test process several.
// Each entry keeps the SHA-256 of the files it was made from (the view, its layout
// and includes); `src/web/views.ts` uses an entry only while those files are
// unchanged and compiles the view itself otherwise.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import pug from 'pug';

const root = join(import.meta.dirname, '..');
const views = join(root, 'views');

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.pug') ? [path] : [];
  });
}

const digest = (path) => createHash('sha256').update(readFileSync(path)).digest('base64url');
const name = (path) => relative(views, path).split(sep).join('/');

/** Writes the compiled views to `outFile`; answers how many. */
export function compileViews(outFile) {
  const entries = find(views)
    .sort()
    .map((file) => {
      // The same options as `renderView`'s own compile, so both give the same page.
      const { body, dependencies } = pug.compileClientWithDependenciesTracked(readFileSync(file, 'utf8'), { filename: file, basedir: views, name: 'template' });
      const files = Object.fromEntries([file, ...dependencies].map((f) => [name(f), digest(f)]));
      return `  ${JSON.stringify(name(file).replace(/\.pug$/, ''))}: { files: ${JSON.stringify(files)}, template: (function () {\n${body}\nreturn template;\n})() },`;
    });
  writeFileSync(outFile, `'use strict';\n// Made by scripts/views.mjs from views/: do not edit.\nmodule.exports = {\n${entries.join('\n')}\n};\n`);
  return entries.length;
}
