// The tokenizer rebuilt from GGUF metadata gives the same ids as the model's tokenizer.json: the shared models'
// golden tokenizer cases (stories260K: SentencePiece with a dummy prefix and BOS; tiny-coder: SentencePiece without
// either, Qwen2.5-Coder's FIM tokens) and a byte-level (gpt2-style) BPE with Qwen2's pre-tokenizer.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openGguf } from '../../engine/model/gguf';
import { HfTokenizer } from '../../engine/model/tokenizer';
import { makeCheckpoint } from '../fixtures/make-checkpoint';
import { qwen2Regex, writeHfAsGguf } from '../fixtures/gguf-writer';
import { hasModel, modelDir as modelPath, readGolden } from '../engine/paths';

const tmp = mkdtempSync(path.join(tmpdir(), 'snout-gguf-tok-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

for (const name of ['stories260K-hf', 'tiny-coder-hf']) {
  describe(`${name}: tokenizer from GGUF metadata`, { skip: !hasModel(name) && `${name} not found` }, () => {
    const golden = hasModel(name) ? readGolden(name) : { tokenizer_cases: [] };
    const file = path.join(tmp, `${name}.gguf`);
    const source = () => {
      writeHfAsGguf(modelPath(name), file, 'Q8_0');
      return openGguf(file);
    };

    it('encodes every golden tokenizer case to the same ids and decodes them back', () => {
      const s = source();
      const ref = HfTokenizer.load(modelPath(name));
      assert.ok(golden.tokenizer_cases.length > 5);
      for (const c of golden.tokenizer_cases) {
        assert.deepEqual(s.tokenizer.encode(c.text), c.ids, JSON.stringify(c.text));
        assert.equal(s.tokenizer.decode(c.ids, { skipSpecialTokens: true }), ref.decode(c.ids, { skipSpecialTokens: true }));
      }
      for (const c of golden.cases ?? []) assert.deepEqual(s.tokenizer.encode(c.text), c.input_ids, c.text.slice(0, 40));
      assert.equal(s.tokenizer.addBos, ref.addBos);
      assert.equal(s.tokenizer.bosId, ref.bosId);
      assert.deepEqual(s.tokenizer.eosIds, ref.eosIds);
      for (const t of ref.specialTokens) assert.ok(s.tokenizer.specialTokens.includes(t), t);
      s.close();
    });
  });
}

describe('tiny-coder-hf: FIM and repository markers', { skip: !hasModel('tiny-coder-hf') && 'tiny-coder-hf not found' }, () => {
  it('map to their ids inside text, as with tokenizer.json', () => {
    const file = path.join(tmp, 'fim.gguf');
    writeHfAsGguf(modelPath('tiny-coder-hf'), file, 'F32');
    const s = openGguf(file);
    const ref = HfTokenizer.load(modelPath('tiny-coder-hf'));
    const text = '<|repo_name|>snout\n<|file_sep|>a.py\n<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y<|fim_middle|>';
    assert.deepEqual(s.tokenizer.encode(text), ref.encode(text));
    for (const t of ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|file_sep|>', '<|repo_name|>', '<|endoftext|>']) {
      assert.equal(s.tokenizer.tokenToId(t), ref.tokenToId(t), t);
      assert.ok(s.tokenizer.specialTokens.includes(t), t);
    }
    s.close();
  });

  it('carries the chat template', () => {
    const dir = path.join(tmp, 'chat');
    cpSync(modelPath('tiny-coder-hf'), dir, { recursive: true });
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}";
    writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), chat_template: template }));
    const file = path.join(tmp, 'chat.gguf');
    writeHfAsGguf(dir, file, 'F32');
    const s = openGguf(file);
    assert.equal(s.tokenizer.chatTemplate, template);
    s.close();
  });
});

/** GPT-2's byte → printable character table (the ByteLevel pre-tokenizer's alphabet). */
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return out;
}

/** A small byte-level BPE trained on `text` (most frequent pair first, within Qwen2 pre-tokenizer words). */
function trainByteLevel(text: string, merges: number): { vocab: Record<string, number>; merges: string[] } {
  const alphabet = bytesToUnicode();
  const words = (text.match(new RegExp(qwen2Regex.replace('(?i:', '(?:'), 'gu')) ?? [])
    .map((w) => [...Buffer.from(w, 'utf8')].map((b) => alphabet[b]));
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, i) => { vocab[c] = i; });
  const out: string[] = [];
  for (let m = 0; m < merges; m++) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) counts.set(`${w[i]} ${w[i + 1]}`, (counts.get(`${w[i]} ${w[i + 1]}`) ?? 0) + 1);
    let best = '', bestN = 1;
    for (const [p, c] of counts) if (c > bestN) { best = p; bestN = c; }
    if (!best) break;
    const [a, b] = best.split(' ');
    out.push(best);
    vocab[a + b] = Object.keys(vocab).length;
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
    }
  }
  return { vocab, merges: out };
}

describe('gpt2-style byte-level BPE (Qwen2 pre-tokenizer) from GGUF metadata', () => {
  it('gives the same ids as its tokenizer.json', () => {
    const corpus = [
      'def main(argv):\n    return [x * 2 for x in argv if x]\n', 'const total = items.reduce((a, b) => a + b, 0);\n',
      "It's 2024 and we're writing   code\t\tagain. Ünïcödé — 日本語 😀\r\n", 'class Foo(Bar):\n    pass\n\n\n',
    ].join('');
    const bpe = trainByteLevel(corpus.repeat(3), 200);
    const specials = ['<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|im_start|>'];
    const base = Object.keys(bpe.vocab).length;
    const tokJson = {
      version: '1.0', truncation: null, padding: null,
      added_tokens: specials.map((content, i) => ({ id: base + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'NFC' },
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: qwen2Regex }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: bpe.vocab, merges: bpe.merges },
    };
    const dir = path.join(tmp, 'qwen-bpe');
    makeCheckpoint(dir, { modelType: 'qwen2', vocab: base + specials.length, hidden: 32, heads: 2, kvHeads: 1, intermediate: 64, layers: 1 });
    writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokJson));
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: false, bos_token: null, eos_token: '<|endoftext|>' }));
    const file = path.join(tmp, 'qwen-bpe.gguf');
    writeHfAsGguf(dir, file, 'F32');
    const s = openGguf(file);
    const ref = HfTokenizer.load(dir);
    const texts = [
      corpus, 'def  f(x):\n\treturn x+1  # done\n', "he's   here's\n\n\n  x", '<|fim_prefix|>a = 1<|fim_suffix|>\n<|fim_middle|>',
      'naïve café Ａ１２３ 12345 😀😀 \u00e9 e\u0301', '', ' ', '\n', 'x'.repeat(300),
    ];
    let multiByteTokens = 0;
    for (const t of texts) {
      const ids = s.tokenizer.encode(t);
      assert.deepEqual(ids, ref.encode(t), JSON.stringify(t));
      assert.equal(s.tokenizer.decode(ids), ref.decode(ids), JSON.stringify(t));
      multiByteTokens += ids.filter((id) => id >= 256 && id < base).length;
    }
    assert.ok(multiByteTokens > 20, 'the merges are exercised');
    assert.equal(s.tokenizer.addBos, false);
    assert.deepEqual(s.tokenizer.eosIds, [base]);
    s.close();
  });
});
