/**
 * Server-rendered pages: pug templates under `views/`, compiled once and
 * cached. One renderer serves our routes and the provider's own pages (error,
 * logout), which render outside our Koa context.
 */
import { join } from 'node:path';
import pug from 'pug';

const VIEWS = join(import.meta.dirname, '..', '..', 'views');
const cache = new Map<string, pug.compileTemplate>();

export function renderView(view: string, locals: Record<string, unknown> = {}): string {
  let template = cache.get(view);
  if (!template) {
    template = pug.compileFile(join(VIEWS, `${view}.pug`), { basedir: VIEWS });
    cache.set(view, template);
  }
  return template(locals);
}
