// Code that a docs/ page shows integrators, read by the test that runs it, so the page cannot drift.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './layout.ts';

/** The fenced block after the marker comment `<!-- marker …` on `docs/<page>`. */
export function docBlock(page: string, marker: string): string {
  const text = readFileSync(join(ROOT, 'docs', page), 'utf8');
  const at = text.indexOf(`<!-- ${marker}`);
  assert.ok(at >= 0, `docs/${page} has the block "${marker}"`);
  const m = /```\w*\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, `a fenced block follows "${marker}"`);
  return m[1]!;
}
