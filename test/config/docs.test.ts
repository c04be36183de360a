// docs/configuration.md is the operator's list of settings: it must name every
// environment variable the configuration reads, and none that it does not.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/layout.ts';
import { ENVIRONMENT_VARIABLES } from '../../config/index.ts';

const doc = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');

describe('docs/configuration.md', () => {
  it('has a row for every environment variable the configuration reads', () => {
    const rows = new Set([...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
    const missing = ENVIRONMENT_VARIABLES.filter((v) => !rows.has(v));
    assert.deepEqual(missing, [], 'variables without a row');
    const unknown = [...rows].filter((v) => !ENVIRONMENT_VARIABLES.includes(v));
    assert.deepEqual(unknown, [], 'rows for variables the configuration does not read');
  });
});
