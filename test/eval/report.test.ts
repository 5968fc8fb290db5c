// Report writers: tables carry every method; plots carry one line per method plus the dense reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markdownScores, scoreVsBudgetSvg, errorVsEntropySvg } from '../../engine/eval/report';
import { spread } from '../../engine/cli/eval';
import type { HeadRow } from '../../engine/eval/fidelity';

const s = (es: number, f: number) => ({ n: 10, em: es / 4, es, code_sim: es - 1, sampled_fraction: f });

test('markdownScores and scoreVsBudgetSvg', () => {
  const md = markdownScores({ dense: s(50, 1), 'magicpig 10x150': s(48, 0.034) });
  assert.match(md, /\| dense \| 10 \| 12\.50 \| 50\.00 \| 49\.00 \| 100\.00% \|/);
  assert.match(md, /\| magicpig 10x150 \| 10 \| 12\.00 \| 48\.00 \| 47\.00 \| 3\.40% \|/);
  const points = [
    { method: 'magicpig', K: 10, L: 150, scores: s(48, 0.034) }, { method: 'magicpig', K: 6, L: 50, scores: s(49, 0.23) },
    { method: 'topk', K: 10, L: 150, scores: s(47, 0.034) }, { method: 'topk', K: 6, L: 50, scores: s(49.5, 0.23) },
  ];
  const svg = scoreVsBudgetSvg(points, s(50, 1), 'es', 'ES vs budget');
  assert.equal((svg.match(/<polyline /g) ?? []).length, 3);
  for (const name of ['dense (100%)', 'magicpig', 'topk']) assert.ok(svg.includes(`data-name="${name}"`), name);
});

test('errorVsEntropySvg bins rows by flatness; spread picks evenly', () => {
  const rows: HeadRow[] = Array.from({ length: 100 }, (_, i) => ({
    prompt: 'p', step: 0, layer: 0, head: 0, n: 100, entropy: 0, flatness: i / 100, top20Mass: 0.5, error: { a: 0.01 + i / 100, b: 0.02 },
  }));
  const svg = errorVsEntropySvg(rows, ['a', 'b'], 't', 10);
  assert.equal((svg.match(/<circle /g) ?? []).length, 20);
  assert.deepEqual(spread([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 4), [0, 2, 5, 7]);
  assert.deepEqual(spread([1, 2], 5), [1, 2]);
});
