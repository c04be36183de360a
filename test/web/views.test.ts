// The views compiled ahead of time (`scripts/views.mjs`) are the views: the test
// build holds them, every view is there with the files it was made from, and a
// page rendered from them is the page pug renders from the source.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, sep } from 'node:path';
import pug from 'pug';
import { COMPILED_VIEWS, VIEWS_DIR } from '../../src/paths.ts';
import { renderView } from '../../src/web/views.ts';
import { COMPILED } from '../support/layout.ts';

const views = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory()
      ? views(path)
      : name.endsWith('.pug')
        ? [
            relative(VIEWS_DIR, path)
              .split(sep)
              .join('/')
              .replace(/\.pug$/, ''),
          ]
        : [];
  });

describe('views compiled ahead of time', () => {
  it('the build holds every view, each with the digests of the files it was made from', () => {
    assert.ok(COMPILED, 'the suite runs on the compiled test build (npm test)');
    assert.ok(existsSync(COMPILED_VIEWS), COMPILED_VIEWS);
    const compiled = createRequire(import.meta.url)(COMPILED_VIEWS) as Record<string, { files: Record<string, string>; template: unknown }>;
    assert.deepEqual(Object.keys(compiled).sort(), views(VIEWS_DIR).sort());
    assert.ok('layout.pug' in compiled.error!.files && 'language.pug' in compiled.error!.files, 'a page lists its layout and includes');
    assert.equal(typeof compiled.login!.template, 'function');
  });

  it('renders the same page as pug does from the source', () => {
    const locals = {
      t: (key: string, o?: object) => `${key}${o ? JSON.stringify(o) : ''}`,
      lang: 'nl',
      languages: [],
      tenantName: 'Demo <Care>',
      message: 'errors.x',
      code: 'E1',
      retryAfter: 3,
      waitText: (s: number) => `${s}s`,
    };
    for (const view of ['error', 'logged-out']) {
      const source = pug.compileFile(join(VIEWS_DIR, `${view}.pug`), { basedir: VIEWS_DIR });
      const expected = source(locals);
      assert.match(expected, /Demo &lt;Care&gt;/);
      assert.equal(renderView(view, locals), expected, view);
    }
  });
});
