// extension/completion: the ghost-text shaping rules, the typed-through cache and the adaptive debounce.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompletionCache } from '../../extension/completion/cache';
import { debounceDelay, nextRhythm, PAUSE_MS, rhythmOf } from '../../extension/completion/debounce';
import {
  completeFirstLine, cutAtSpecialToken, cutPartialSpecialToken, dropLineSuffixOverlap, shapeCompletion, stopAtBlankLine, stopAtBlockEnd,
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

test('single line whenever anything sits right of the cursor, closers included', () => {
  assert.equal(wantsSingleLine('foo)'), true);
  assert.equal(wantsSingleLine(')'), true);
  assert.equal(wantsSingleLine('  });  '), true);
  assert.equal(wantsSingleLine(''), false);
  assert.equal(wantsSingleLine('   '), false);
  assert.deepEqual(stopSequences('x + 1'), ['\n']);
  assert.deepEqual(stopSequences(')'), ['\n']);
  assert.deepEqual(stopSequences(''), ['\n\n', '\r\n\r\n']);
  assert.equal(shapeCompletion('a, b)\n  more()', { linePrefix: 'f(', lineSuffix: ')', suffixAfterLine: '' }), 'a, b');
  assert.equal(shapeCompletion('total(xs) + 1\nnext', { linePrefix: 'return ', lineSuffix: ' + 1', suffixAfterLine: '' }), 'total(xs)');
  assert.equal(dropLineSuffixOverlap('name")', '")'), 'name');
  // Inside `def reset(self|)`: the model's body on the next lines is not offered, only the rest of this line.
  assert.equal(shapeCompletion(', force=False):\n        self.x = 0\n        self.y = 0', {
    linePrefix: '    def reset(self', lineSuffix: ')', suffixAfterLine: '\n',
  }), ', force=False):');
});

test('the first complete line of a stream is known as soon as its line break arrives', () => {
  assert.equal(completeFirstLine('return a'), undefined);
  assert.equal(completeFirstLine('return a\n'), 'return a');
  assert.equal(completeFirstLine('return a\n    more'), 'return a');
  // A completion that starts on the next line: its first line is the first with content.
  assert.equal(completeFirstLine('\n    total = 0'), undefined);
  assert.equal(completeFirstLine('\n    total = 0\n    for'), '\n    total = 0');
  assert.equal(completeFirstLine('\r\n  x = 1\r\n'), '\n  x = 1');
  assert.equal(completeFirstLine('x<|endoftext|>\nmore'), undefined); // nothing after a special token counts
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

test('debounce table: the wait for keystroke times, base 150 ms, always within [base, 2 × base]', () => {
  const base = 150;
  const steady = (gap: number, n = 12, from = 0) => Array.from({ length: n }, (_, i) => from + i * gap);
  const table: Array<[string, number[], number]> = [
    ['no keystroke yet', [], 150],
    ['one keystroke', [1000], 150],
    ['steady 200 ms a key (slower than base)', steady(200), 150],
    ['steady 150 ms a key', steady(150), 150],
    ['steady 100 ms a key', steady(100), 200],
    ['steady 40 ms a key (a burst)', steady(40), 260],
    ['steady 1 ms a key (key repeat)', steady(1), 299],
    ['one 1 s pause after fast typing', [...steady(100), 1100 + 1000], 150],
    ['fast typing, a 2.5 s pause, one key', [...steady(80), 880 + 2500], 150],
    ['fast typing, a 2.5 s pause, then 200 ms a key', [...steady(80), ...steady(200, 6, 880 + 2500)], 150],
    ['slow 1 s keys, then a pause, then 100 ms a key', [...steady(1000, 5), ...steady(100, 12, 4000 + 2100)], 200],
  ];
  for (const [what, times, want] of table) {
    assert.equal(debounceDelay(base, rhythmOf(times).meanGap), want, what);
    assert.equal(debounceDelay(base, rhythmOf(times).meanGap, false), base, `${what} (adaptive off)`);
  }
  // The gap over PAUSE_MS resets the rhythm: nothing from before it is remembered.
  assert.equal(rhythmOf([0, 50, 100, 100 + PAUSE_MS + 1]).meanGap, undefined);
  assert.equal(rhythmOf([0, 50, 50 + PAUSE_MS]).meanGap !== undefined, true); // exactly PAUSE_MS still counts
  // A keystroke in the same millisecond (or a clock step back) changes nothing.
  assert.deepEqual(nextRhythm(rhythmOf([0, 100]), 100), rhythmOf([0, 100]));
  // The bound holds for every rhythm, including random ones.
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let run = 0; run < 200; run++) {
    const times: number[] = [];
    let t = 0;
    for (let k = 0; k < 30; k++) { t += Math.floor(rnd() * (rnd() < 0.1 ? 4000 : 400)); times.push(t); }
    for (const b of [0, 25, 150, 2000]) {
      const d = debounceDelay(b, rhythmOf(times).meanGap);
      assert.ok(d >= b && d <= 2 * b, `base ${b}: ${d} for ${times.join(',')}`);
    }
  }
});
