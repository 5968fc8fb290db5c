// Prompt rendering with the shared models' real tokenizers, checked against golden.json's prompts (written by an
// independent Python reference) and against the budget rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { detectPromptFormat, layoutStops, renderChat, renderCompletion } from '../../engine/prompt';
import { StopMatcher, StreamDecoder } from '../../engine/generate/text-stream';
import { loadTokenizer } from '../../engine/model/tokenizer';
import type { TokenizerLike } from '../../engine/generate/types';
import { loadTestTokenizer, modelDir } from './tokenizer';

const coderDir = modelDir('tiny-coder-hf');
const coder = loadTestTokenizer(coderDir);
const stories = loadTestTokenizer(modelDir('stories260K-hf'));
const golden = JSON.parse(readFileSync(path.join(coderDir, 'golden.json'), 'utf8'));
const goldenCase = (name: string) => golden.cases.find((c: any) => c.name === name);

/** Splits a golden Qwen-format text back into structured parts (an independent parse of the reference string). */
function partsOf(text: string) {
  const [, repoName, rest] = /^<\|repo_name\|>(.*?)\n(.*)$/s.exec(text)!;
  const blocks = rest.split('<|file_sep|>').slice(1);
  const last = blocks.pop()!;
  const files = blocks.map((b) => ({ path: b.slice(0, b.indexOf('\n')), text: b.slice(b.indexOf('\n') + 1) }));
  const filePath = last.slice(0, last.indexOf('\n'));
  const body = last.slice(last.indexOf('\n') + 1);
  const fim = /^<\|fim_prefix\|>(.*)<\|fim_suffix\|>(.*)<\|fim_middle\|>$/s.exec(body);
  return { repoName, files, path: filePath, prefix: fim ? fim[1] : body, suffix: fim ? fim[2] : '' };
}

test('tiny-coder is detected as the Qwen format, stories260K as plain', () => {
  assert.equal(detectPromptFormat(coder).name, 'qwen');
  assert.equal(detectPromptFormat(stories).name, 'plain');
});

for (const name of ['python_fim', 'typescript_repo']) {
  test(`structured ${name} renders to golden.json's input_ids`, () => {
    const c = goldenCase(name);
    const r = renderCompletion(coder, detectPromptFormat(coder), partsOf(c.text), 1024);
    assert.deepEqual(r.ids, c.input_ids);
    assert.equal(r.truncatedTokens, 0);
  });
}

const files = Array.from({ length: 6 }, (_, i) => ({
  path: `pkg/mod${i}.py`,
  text: Array.from({ length: 20 }, (_, j) => `def f${i}_${j}(x):\n    return x * ${j} + ${i}\n`).join(''),
}));
const prefix = 'import pkg\n\n' + Array.from({ length: 30 }, (_, j) => `value_${j} = pkg.mod${j % 6}.f${j % 6}_${j % 20}(${j})\n`).join('');
const parts = { repoName: 'demo', files, path: 'main.py', prefix, suffix: '\nprint(value_1)\n' };

test('over budget: whole files are dropped from the end of the list first, and the drop is reported', () => {
  const fmt = detectPromptFormat(coder);
  const full = renderCompletion(coder, fmt, parts, 100000);
  assert.equal(full.filesKept, 6);
  const budget = full.ids.length - 200;
  const r = renderCompletion(coder, fmt, parts, budget);
  assert.ok(r.ids.length <= budget);
  assert.ok(r.filesKept < 6 && r.filesKept > 0, `kept ${r.filesKept}`);
  const text = coder.decode(r.ids);
  for (let i = 0; i < 6; i++) assert.equal(text.includes(`pkg/mod${i}.py\n`), i < r.filesKept);
  assert.ok(text.includes(prefix), 'the current file is kept whole');
  assert.equal(r.truncatedTokens, full.ids.length - r.ids.length);
  assert.equal(r.overflowTokens, r.truncatedTokens); // dropped files are an overflow
  assert.equal(full.overflowTokens, 0);
});

test('when the current file alone is too long, the prefix loses its start at a line boundary and the suffix its end', () => {
  const fmt = detectPromptFormat(coder);
  const long = { ...parts, files: [], suffix: 'x = 1\n'.repeat(200) };
  const r = renderCompletion(coder, fmt, long, 300);
  assert.ok(r.ids.length <= 300, `${r.ids.length}`);
  const text = coder.decode(r.ids);
  const pre = /<\|fim_prefix\|>(.*)<\|fim_suffix\|>(.*)<\|fim_middle\|>$/s.exec(text)!;
  assert.ok(long.prefix.endsWith(pre[1]) && pre[1].length < long.prefix.length && pre[1].startsWith('value_'));
  assert.ok(long.suffix.startsWith(pre[2]) && pre[2].length < long.suffix.length && pre[2].endsWith('\n'));
  assert.ok(r.truncatedTokens > 0);
  assert.ok(r.overflowTokens > 0 && r.overflowTokens <= r.truncatedTokens); // the prefix lost its start: an overflow
});

test('typing at the end of a trimmed prefix keeps the prompt start stable (prefix-cache friendly)', () => {
  const fmt = detectPromptFormat(coder);
  let stableStarts = 0;
  let prev: number[] | undefined;
  for (let k = 0; k < 10; k++) {
    const r = renderCompletion(coder, fmt, { ...parts, files: [], suffix: '', prefix: prefix + 'y = '.slice(0, k % 4) + 'z'.repeat(k) }, 256);
    if (prev && r.ids.slice(0, 64).every((id, i) => id === prev![i])) stableStarts++;
    prev = r.ids;
  }
  assert.ok(stableStarts >= 8, `start stable on ${stableStarts}/9 keystrokes`);
});

test('rendering is deterministic', () => {
  const fmt = detectPromptFormat(coder);
  assert.deepEqual(renderCompletion(coder, fmt, parts, 700).ids, renderCompletion(coder, fmt, parts, 700).ids);
});

test('plain layout for a model without FIM tokens: "# Path:" comments, BOS first, suffix ignored', () => {
  const r = renderCompletion(stories, detectPromptFormat(stories), { files: [{ path: 'a.txt', text: 'Once upon a time' }], path: 'b.txt', prefix: 'Lily', suffix: 'end' }, 512);
  assert.equal(r.ids[0], stories.bosId);
  assert.deepEqual(r.ids, [stories.bosId, ...stories.encode('# Path: a.txt\nOnce upon a time\n\n# Path: b.txt\nLily')]);
});

test('ask without a chat template: plain layout, files first; with a template: the template decides', async () => {
  const msgs = [{ role: 'user' as const, content: 'What does f do?' }];
  const plain = await renderChat(coder, msgs, [{ path: 'f.py', text: 'def f(): pass' }], 1024);
  const text = coder.decode(plain.ids);
  assert.ok(text.indexOf('# Path: f.py') < text.indexOf('User: What does f do?'));
  assert.ok(text.endsWith('Assistant:'));
  const chatml = "{% for m in messages %}<|file_sep|>{{ m.role }}\n{{ m.content }}<|endoftext|>\n{% endfor %}{% if add_generation_prompt %}<|file_sep|>assistant\n{% endif %}";
  const templated: TokenizerLike = { ...coder, chatTemplate: chatml };
  const t = await renderChat(templated, msgs, [], 1024);
  assert.deepEqual(t.ids, coder.encode('<|file_sep|>user\nWhat does f do?<|endoftext|>\n<|file_sep|>assistant\n'));
});

test('ask over budget drops files, then old turns, never the last question', async () => {
  const msgs = [
    { role: 'user' as const, content: 'old question '.repeat(50) },
    { role: 'assistant' as const, content: 'old answer '.repeat(50) },
    { role: 'user' as const, content: 'new question?' },
  ];
  const r = await renderChat(coder, msgs, files, 120);
  assert.ok(r.ids.length <= 120);
  const text = coder.decode(r.ids);
  assert.ok(text.includes('new question?') && !text.includes('pkg/mod0.py') && !text.includes('old answer'));
  assert.ok(r.truncatedTokens > 0);
});

test('the memoising tokenizer gives the real tokenizer\'s ids (line-split only where that is exact)', async () => {
  const { CachedTokenizer } = await import('../../engine/prompt');
  const c = new CachedTokenizer(coder);
  const s = new CachedTokenizer(stories);
  assert.equal(c.lineSeparable, true);
  assert.equal(s.lineSeparable, false, 'SentencePiece with a prepended ▁ per call is not line-separable');
  const source = readFileSync(path.join(__dirname, '../../engine/prompt/completion.ts'), 'utf8');
  for (const text of [source, ...golden.cases.map((x: any) => x.text), ...golden.tokenizer_cases.map((x: any) => x.text)]) {
    assert.deepEqual(c.encode(text), coder.encode(text));
    assert.deepEqual(c.encode(text), coder.encode(text), 'second (cached) encode');
    assert.deepEqual(s.encode(text), stories.encode(text));
  }
});

test('warming tokenizes in slices (the event loop gets turns) and long lines cut before words keep the ids', async () => {
  const { CachedTokenizer } = await import('../../engine/prompt');
  const c = new CachedTokenizer(coder, undefined, 1);
  assert.equal(c.wordSeparable, true);
  assert.equal(new CachedTokenizer(stories).wordSeparable, false, 'not line-separable, so not word-separable either');
  const source = readFileSync(path.join(__dirname, '../../engine/prompt/completion.ts'), 'utf8');
  // One 90 K-character line (minified code does this), words, punctuation, numbers and non-ASCII mixed.
  const longLine = Array.from({ length: 2000 }, (_, i) => `w${i} x;y = z.f(a, b) café 中文 ${i}.5 it's`).join(' ');
  const text = `${source}${longLine}\n${source.replace(/const/g, 'let')}`;
  let turns = 0;
  let done = false;
  const tick = () => { if (!done) { turns++; setImmediate(tick); } };
  setImmediate(tick);
  await c.warm([text]);
  done = true;
  assert.ok(turns >= 2, `${turns} event-loop turns while warming`);
  assert.deepEqual(c.encode(text), coder.encode(text));
  // A text warmed whole is skipped the next time (a keystroke resends every unchanged file): nothing to await even
  // with slices of 0 ms; a changed text is warmed again.
  assert.equal(c.warm([text], undefined, 0), undefined);
  assert.ok(c.warm([`${text}x = 1\n`], undefined, 0) instanceof Promise);
  const aborted = new CachedTokenizer(coder, undefined, 0);
  const ac = new AbortController();
  ac.abort();
  await aborted.warm([text], ac.signal);
  assert.ok(aborted.warm([text], undefined, 0) instanceof Promise, 'a warm stopped early does not count as done');
  assert.deepEqual(aborted.encode(text), coder.encode(text), 'a warm stopped early leaves a correct (partly cold) cache');
});

test('the suffix is capped (it is re-prefilled on every keystroke), cut after a whole line', async () => {
  const { DEFAULT_MAX_SUFFIX_TOKENS } = await import('../../engine/prompt/completion');
  const fmt = detectPromptFormat(coder);
  const suffix = Array.from({ length: 80 }, (_, i) => `line_${i} = ${i}\n`).join('');
  const r = renderCompletion(coder, fmt, { path: 'a.py', prefix: 'x = 0\n', suffix }, 1000);
  const kept = /<\|fim_suffix\|>(.*)<\|fim_middle\|>$/s.exec(coder.decode(r.ids))![1];
  assert.ok(suffix.startsWith(kept) && kept.endsWith('\n') && kept.length < suffix.length);
  assert.ok(coder.encode(kept).length <= DEFAULT_MAX_SUFFIX_TOKENS);
  assert.equal(r.truncatedTokens, coder.encode(suffix).length - coder.encode(kept).length);
  // The cap is not an overflow: the extension must not re-rank its context for it.
  assert.equal(r.overflowTokens, 0);
});

test('hostile sizes are cut by characters before tokenizing (megabytes render in seconds at most)', async () => {
  const { CachedTokenizer } = await import('../../engine/prompt');
  const fmt = detectPromptFormat(coder);
  const tok = new CachedTokenizer(coder);
  const big = 'q = 1\n'.repeat(300000); // 1.8 MB
  const t0 = performance.now();
  const r = renderCompletion(tok, fmt, { path: 'big.py', prefix: big, suffix: big, files: [{ path: 'f.py', text: big }, { path: 'g.py', text: big }] }, 1000);
  const a = await renderChat(tok, [{ role: 'user', content: big }], [{ path: 'f.py', text: big }], 1000);
  const ms = performance.now() - t0;
  assert.ok(r.ids.length <= 1000 && a.ids.length <= 1000);
  assert.equal(r.filesKept, 0);
  assert.ok(r.truncatedTokens > 100000 && a.truncatedTokens > 100000);
  assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
});

test('a structured completion ends where the model writes a layout marker (next file, repo header, FIM token)', () => {
  const stops = layoutStops(detectPromptFormat(coder));
  assert.deepEqual(new Set(stops), new Set(['<|file_sep|>', '<|repo_name|>', '<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>']));
  assert.deepEqual(layoutStops(detectPromptFormat(stories)), [], 'a plain layout has no markers');
  // The real tokenizer's ids for "x = 1\n<|file_sep|>b.py\n", streamed id by id as the generator does.
  const engineTokenizer = loadTokenizer(coderDir);
  const ids = engineTokenizer.encode('x = 1\n<|file_sep|>b.py\n');
  assert.ok(ids.includes(engineTokenizer.tokenToId('<|file_sep|>')!), 'the marker is one special token');
  const decoder = new StreamDecoder(engineTokenizer, []);
  const matcher = new StopMatcher(stops);
  let shown = '';
  for (const id of ids) { shown += matcher.push(decoder.push(id)); if (matcher.stopped) break; }
  assert.equal(shown, 'x = 1\n');
  assert.ok(matcher.stopped);
});
