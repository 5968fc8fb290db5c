// RepoBench-style builder: deterministic output, and items that mean what their setting says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { buildJsonl, repoFiles } from '../../engine/eval/build';
import { repoBenchPromptText } from '../../engine/eval/repobench';

const repo = path.join(__dirname, '../fixtures/eval-repo');

test('build: the same repository gives byte-identical JSONL twice', async () => {
  const a = await buildJsonl([repo]);
  const b = await buildJsonl([repo]);
  assert.ok(a.items.length >= 6);
  assert.equal(a.text, b.text);
  const c = await buildJsonl([repo], { seed: 7 });
  assert.equal(c.items.length, a.items.length); // same candidates, possibly other picks
});

test('build: items follow RepoBench v1.1 fields and settings', async () => {
  const { items } = await buildJsonl([repo]);
  assert.deepEqual(repoFiles(repo).files, ['pkg/__init__.py', 'pkg/geometry.py', 'pkg/shapes.py', 'pkg/units.py', 'src/calc.ts', 'src/stack.ts']);
  const settings = new Set(items.map((it) => it.setting));
  assert.deepEqual([...settings].sort(), ['cross_file_first', 'cross_file_random', 'in_file']);
  for (const it of items) {
    const lines = it.cropped_code.split('\n');
    assert.ok(lines.length <= 120);
    // Imports are lifted out of the code; the target is never an import, blank or comment line.
    for (const imp of it.import_statement.split('\n').filter(Boolean)) assert.ok(!it.cropped_code.includes(imp), imp);
    assert.ok(it.next_line.trim().length >= 6 && !it.next_line.trim().startsWith('#'));
    if (it.setting === 'in_file') {
      assert.equal(it.gold_snippet_index, -1);
      for (const c of it.context) assert.ok(!new RegExp(`(?<![\\w.])${c.identifier}\\b`).test(it.next_line), `${c.identifier} in ${it.next_line}`);
    } else {
      const gold = it.context[it.gold_snippet_index!];
      assert.ok(gold, JSON.stringify(it));
      assert.match(it.next_line, new RegExp(`\\b${gold.identifier}\\b`));
      const earlier = new RegExp(`(?<![\\w.])${gold.identifier}\\b`).test(it.cropped_code);
      assert.equal(earlier, it.setting === 'cross_file_random', `${it.setting}: ${gold.identifier} before ${it.next_line}`);
    }
  }
  const shapes = items.find((it) => it.file_path === 'pkg/shapes.py')!;
  assert.deepEqual(shapes.context.map((c) => `${c.identifier}@${c.path}`), ['Point@pkg/geometry.py', 'midpoint@pkg/geometry.py', 'units@pkg/units.py']);
  assert.match(shapes.context[0].snippet, /^class Point:/);
  assert.equal(shapes.import_statement, 'from pkg.geometry import Point, midpoint\nfrom . import units');
});

test('prompt: RepoBench construct_prompt layout, cross-file lines dropped from the end when over the limit', async () => {
  const { items } = await buildJsonl([repo]);
  const it = items.find((x) => x.file_path === 'pkg/shapes.py' && x.setting === 'cross_file_first')!;
  const full = repoBenchPromptText(it, undefined, undefined);
  assert.ok(full.startsWith('# Repo Name: eval-repo\n# Path: pkg/geometry.py\nclass Point:'));
  assert.ok(full.endsWith(`# Path: pkg/shapes.py\n${it.import_statement}\n${it.cropped_code}\n`.replace(/\n{4,}/g, '\n\n')));
  assert.ok(!/\n{4,}/.test(full));
  // A whitespace "tokenizer" makes the token arithmetic checkable by hand.
  const tok = { encode: (s: string) => s.split(/\s+/).filter(Boolean).map(() => 0) } as never;
  const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
  const inFile = `# Path: ${it.file_path}\n${it.import_statement}\n${it.cropped_code}\n`;
  const limit = words(inFile) + 20;
  const cut = repoBenchPromptText(it, tok, limit);
  assert.ok(words(cut) <= limit, `${words(cut)} > ${limit}`);
  assert.ok(cut.startsWith('# Repo Name: eval-repo\n') && cut.endsWith(inFile.replace(/\n{4,}/g, '\n\n')));
  assert.ok(words(cut) > words(inFile));
});
