// extension/completion: the ghost-text shaping rules, the typed-through cache and the adaptive debounce.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompletionCache } from '../../extension/completion/cache';
import { debounceDelay, TypingRhythm } from '../../extension/completion/debounce';
import {
  cutAtSpecialToken, cutPartialSpecialToken, dropLineSuffixOverlap, shapeCompletion, stopAtBlankLine, stopAtBlockEnd,
  stopAtExistingCode, stopSequences, wantsSingleLine,
} from '../../extension/completion/filters';

test('special tokens of every prompt format never leak', () => {
  assert.equal(cutAtSpecialToken('return x<|endoftext|>def other():'), 'return x');
  assert.equal(cutAtSpecialToken('a = 1\n<|file_sep|>src/b.py\nimport os'), 'a = 1\n');
  assert.equal(cutAtSpecialToken('x<fim_middle>y'), 'x');
  assert.equal(cutAtSpecialToken('x<｜fim▁hole｜>y'), 'x');
  assert.equal(cutAtSpecialToken('x <EOT>'), 'x ');
  assert.equal(cutAtSpecialToken('if (a < b && c > d) {}'), 'if (a < b && c > d) {}'); // comparisons are not tokens
  assert.equal(cutAtSpecialToken('const v: Array<string> = [];'), 'const v: Array<string> = [];');
  assert.equal(cutPartialSpecialToken('return 1<|fim_'), 'return 1');
  assert.equal(cutPartialSpecialToken('a <'), 'a ');
  assert.equal(cutPartialSpecialToken('x < y'), 'x < y');
});

test('single line when code sits right of the cursor, not for closers only', () => {
  assert.equal(wantsSingleLine('foo)'), true);
  assert.equal(wantsSingleLine(')'), false);
  assert.equal(wantsSingleLine('  });  '), false);
  assert.equal(wantsSingleLine(''), false);
  assert.deepEqual(stopSequences('x + 1'), ['\n']);
  assert.equal(shapeCompletion('a, b)\n  more()', { linePrefix: 'f(', lineSuffix: ')', suffixAfterLine: '' }), 'a, b');
  assert.equal(shapeCompletion('total(xs) + 1\nnext', { linePrefix: 'return ', lineSuffix: ' + 1', suffixAfterLine: '' }), 'total(xs)');
  assert.equal(dropLineSuffixOverlap('name")', '")'), 'name');
});

test('multi-line stops at a blank line, at the end of the block, and before existing code', () => {
  assert.equal(stopAtBlankLine('a = 1\nb = 2\n\nc = 3'), 'a = 1\nb = 2');
  assert.equal(stopAtBlankLine('\n\n    x = 1'), '\n\n    x = 1'); // leading blank lines are not a stop
  // Python: the body of the def, not the next top-level statement.
  const py = '\n    total = 0\n    for x in xs:\n        total += x\n    return total\nprint(f([1]))';
  assert.equal(stopAtBlockEnd(py, 'def f(xs):'), '\n    total = 0\n    for x in xs:\n        total += x\n    return total');
  // Braces: keep the closing brace of the block the cursor line opened, stop after it.
  const ts = '\n  const y = x * 2;\n  return y;\n}\n\nfunction next() {}';
  assert.equal(stopAtBlockEnd(ts, 'function f(x) {'), '\n  const y = x * 2;\n  return y;\n}');
  // Inside a block on an empty line: dedent past the cursor's level ends it.
  assert.equal(stopAtBlockEnd('x = 1\n    y = 2\nz = 3', '    '), 'x = 1\n    y = 2');
  assert.equal(stopAtExistingCode('\n    return a\n    return b', '\n    return b\n'), '\n    return a');
  const shaped = shapeCompletion('\n    if not xs:\n        return 0\n    return sum(xs)\n\nclass X:', {
    linePrefix: 'def total(xs):', lineSuffix: '', suffixAfterLine: '\n\ndef other():\n',
  });
  assert.equal(shaped, '\n    if not xs:\n        return 0\n    return sum(xs)');
  assert.equal(shapeCompletion('   \n\n', { linePrefix: 'x', lineSuffix: '', suffixAfterLine: '' }), '');
  assert.equal(shapeCompletion('foo  \nbar<|endoftext|>zzz', { linePrefix: '', lineSuffix: '', suffixAfterLine: '' }), 'foo\nbar');
});

test('typing through a suggestion reuses it; anything else misses', () => {
  const cache = new CompletionCache(3);
  const before = 'function add(a, b) {\n  return ';
  cache.put('doc1', before, '\n}\n', 'a + b;');
  assert.equal(cache.get('doc1', before, '\n}\n'), 'a + b;');
  assert.equal(cache.get('doc1', before + 'a', '\n}\n'), ' + b;');
  assert.equal(cache.get('doc1', before + 'a + ', '\n}\n'), 'b;');
  assert.equal(cache.get('doc1', before + 'a + b;', '\n}\n'), undefined); // fully typed: nothing left to offer
  assert.equal(cache.get('doc1', before + 'x', '\n}\n'), undefined); // diverged
  assert.equal(cache.get('doc2', before + 'a', '\n}\n'), undefined); // another document
  assert.equal(cache.get('doc1', before + 'a', '\n}\nmore'), undefined); // text after the cursor changed
  assert.equal(cache.get('doc1', 'function sub(a, b) {\n  return a', '\n}\n'), undefined); // same length, other text
  for (let i = 0; i < 3; i++) cache.put('doc1', `x${i}`, '', 'y');
  assert.equal(cache.size, 3);
  assert.equal(cache.get('doc1', before, '\n}\n'), undefined); // evicted (least recently used)
});

test('debounce waits about two keystroke gaps of the user, between base and 3 × base', () => {
  assert.equal(debounceDelay(150, undefined), 150);
  assert.equal(debounceDelay(150, 40), 150); // very fast typing: base
  assert.equal(debounceDelay(150, 120), 240);
  assert.equal(debounceDelay(150, 1000), 450);
  assert.equal(debounceDelay(150, 120, false), 150);
  const r = new TypingRhythm();
  for (let t = 0; t <= 1000; t += 100) r.keystroke(t);
  assert.ok(Math.abs(r.meanGap! - 100) < 1e-9);
  r.keystroke(10_000); // a pause is not a gap
  assert.ok(Math.abs(r.meanGap! - 100) < 1e-9);
});
