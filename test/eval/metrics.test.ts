// Metric port vs reference numbers produced once by CPython's difflib (test/fixtures/eval-metrics/make_fixtures.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SequenceMatcher, codePoints } from '../../engine/eval/difflib';
import { fuzzRatio, exactMatch, codeSim, firstLineNotComment, pyRound } from '../../engine/eval/metrics';

const fixture = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/eval-metrics/metrics.json'), 'utf8')) as {
  ratio: Array<{ a: string; b: string; matches: number; fuzz_ratio: number; no_autojunk_matches: number }>;
  exact_match: Array<{ pred: string; gt: string; em: number }>;
  code_sim: Array<{ pred: string; gt: string; code_sim: number }>;
  first_line_not_comment: Array<{ code: string; line: string }>;
};

test('difflib: matched characters equal CPython SequenceMatcher (autojunk on) for every fixture pair', () => {
  assert.ok(fixture.ratio.length > 100);
  for (const c of fixture.ratio) {
    const m = new SequenceMatcher(codePoints(c.a), codePoints(c.b)).matches();
    assert.equal(m, c.matches, `a=${JSON.stringify(c.a.slice(0, 40))} b=${JSON.stringify(c.b.slice(0, 40))}`);
  }
  // The fixture must actually exercise the popular-element heuristic.
  assert.ok(fixture.ratio.filter((c) => c.matches !== c.no_autojunk_matches).length >= 10);
});

test('fuzz ratio (Edit Similarity) equals fuzzywuzzy on difflib, including half-even rounding', () => {
  for (const c of fixture.ratio) assert.equal(fuzzRatio(c.a, c.b), c.fuzz_ratio, `${JSON.stringify(c.a.slice(0, 40))} vs ${JSON.stringify(c.b.slice(0, 40))}`);
  assert.equal(pyRound(62.5), 62);
  assert.equal(pyRound(87.5), 88);
  assert.equal(pyRound(-1.5), -2);
  assert.equal(pyRound(2.5000001), 3);
});

test('exact match follows Python str.split() whitespace', () => {
  for (const c of fixture.exact_match) assert.equal(exactMatch(c.pred, c.gt), c.em, JSON.stringify(c));
});

test('code_sim follows LongBench; first_line_not_comment follows RepoBench', () => {
  for (const c of fixture.code_sim) assert.equal(codeSim(c.pred, c.gt), c.code_sim, JSON.stringify(c));
  for (const c of fixture.first_line_not_comment) assert.equal(firstLineNotComment(c.code), c.line, JSON.stringify(c));
});

test('completionDecided: once true for a prefix, both scored lines of the prefix equal those of the full text', async () => {
  const { completionDecided, codeSimLine } = await import('../../engine/eval/metrics');
  const texts = ['\n# c\n\nx = 1  # note\ny = 2\nz', '"""doc\n"""\nreturn a\n', 'foo(`x`)\n# y\nbar()\nbaz()\n', '\n\n    pass\n', '# a\n# b\n'];
  for (const full of texts) {
    for (let i = 0; i <= full.length; i++) {
      const p = full.slice(0, i);
      if (!completionDecided(p)) continue;
      assert.equal(firstLineNotComment(p), firstLineNotComment(full), JSON.stringify(p));
      assert.equal(codeSimLine(p), codeSimLine(full), JSON.stringify(p));
    }
  }
  assert.equal(completionDecided('x = 1'), false);
  assert.equal(completionDecided('x = 1\n'), true);
  assert.equal(completionDecided('x = 1  # c\n'), false);
});
