// The extension's MagicPIG settings accept exactly the (K, L) the engine accepts: a value VS Code's settings editor
// allows must not fail every request later (engine/attention/types.ts LSH_LIMITS is the one source).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LSH_LIMITS } from '../../engine/attention/types';

test('snout.attention.K / L ranges in package.json equal the engine\'s LSH_LIMITS', () => {
  const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties ?? pkg.contributes.configuration[0].properties;
  for (const key of ['K', 'L'] as const) {
    const p = props[`snout.attention.${key}`];
    assert.equal(p.minimum, LSH_LIMITS[key].min, `snout.attention.${key} minimum`);
    assert.equal(p.maximum, LSH_LIMITS[key].max, `snout.attention.${key} maximum`);
    assert.ok(p.default >= p.minimum && p.default <= p.maximum);
  }
});
