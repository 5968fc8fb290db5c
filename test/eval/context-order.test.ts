// The eval's simulated edit histories for the context-order comparison: deterministic, a permutation of the
// snippets, the builder's order when nothing changed, and per repository file (not per item).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulatedChange, stabilityOrdered } from '../../engine/eval/context-order';
import type { RepoBenchItem } from '../../engine/eval/repobench';

const item = (paths: string[], gold = 1): RepoBenchItem => ({
  repo_name: 'r', file_path: 'f.py', import_statement: '', cropped_code: '', next_line: '', level: '2k', gold_snippet_index: gold,
  context: paths.map((p, i) => ({ path: p, identifier: `x${i}`, snippet: `def x${i}(): pass` })),
});

test('stabilityOrdered: a permutation, deterministic per seed, the builder order when nothing changed', () => {
  const paths = Array.from({ length: 12 }, (_, i) => `pkg/m${i % 5}.py`);
  const it = item(paths);
  assert.deepEqual(stabilityOrdered(it, 1, 0).context, it.context);
  const a = stabilityOrdered(it, 1, 0.5), b = stabilityOrdered(it, 1, 0.5), c = stabilityOrdered(it, 2, 0.5);
  assert.deepEqual(a, b);
  assert.deepEqual([...a.context].sort((x, y) => x.identifier.localeCompare(y.identifier)), it.context.slice().sort((x, y) => x.identifier.localeCompare(y.identifier)));
  assert.equal(a.context[a.gold_snippet_index!], it.context[1], 'the gold index follows its snippet');
  // Snippets of one file keep their relative order (ties by selection order).
  for (const p of new Set(paths)) {
    const ids = a.context.filter((s) => s.path === p).map((s) => Number(s.identifier.slice(1)));
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
  }
  // With every file changed, some seed reorders.
  assert.ok([1, 2, 3].some((s) => JSON.stringify(stabilityOrdered(it, s, 1).context) !== JSON.stringify(it.context)));
  assert.ok(JSON.stringify(a.context) !== JSON.stringify(c.context) || JSON.stringify(a.context) === JSON.stringify(it.context));
  // A file's simulated time depends on the repository and path only; about `recent` of the files changed.
  assert.equal(simulatedChange(7, 'r', 'a.py', 0.3), simulatedChange(7, 'r', 'a.py', 0.3));
  const changed = Array.from({ length: 2000 }, (_, i) => simulatedChange(7, 'r', `f${i}.py`, 0.3)).filter((t) => t > 0).length;
  assert.ok(changed > 500 && changed < 700, `${changed} of 2000 changed`);
});
