// The GGUF writer as a bench uses it: a model given as config + tokenizer + a value generator, streamed in bounded
// chunks of rows, opens with openGguf and holds the generator's values (quantized).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openGguf } from '../../engine/model/gguf';
import { dequantRow64, isQuant } from '../../engine/model/quant';
import { syntheticByteLevelTokenizer, writeModelAsGguf } from '../fixtures/gguf-writer';

const tmp = mkdtempSync(path.join(tmpdir(), 'snout-gguf-writer-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A value every (tensor, row, column) has, whoever asks: what a random-weight bench generator must provide. */
const valueAt = (name: string, r: number, c: number) => Math.sin(name.length * 7.1 + r * 0.37 + c * 1.3) * 0.05;

describe('writeModelAsGguf (bench use)', () => {
  it('streams each tensor in chunks of at most 4M values, and the file opens with those values', () => {
    const vocab = 17_000, hidden = 256;
    const config = {
      model_type: 'qwen2', hidden_size: hidden, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4,
      num_key_value_heads: 2, vocab_size: vocab, max_position_embeddings: 4096, rms_norm_eps: 1e-6, rope_theta: 1e6,
      tie_word_embeddings: true, eos_token_id: vocab - 1,
    };
    const tokenizer = syntheticByteLevelTokenizer(vocab);
    const calls: Array<{ name: string; row0: number; rows: number; cols: number }> = [];
    const file = path.join(tmp, 'random.gguf');
    writeModelAsGguf(file, { config, tokenizer, tokenizerConfig: { eos_token: '<|endoftext|>' } }, 'Q8_0', (name, shape, row0, rows) => {
      const cols = shape.length === 1 ? shape[0] : shape[1];
      calls.push({ name, row0, rows, cols });
      return Float32Array.from({ length: rows * cols }, (_, i) => valueAt(name, row0 + Math.floor(i / cols), i % cols));
    });
    const embedCalls = calls.filter((c) => c.name === 'model.embed_tokens.weight');
    assert.ok(embedCalls.length > 1, 'the embedding (4.35M values) comes in more than one chunk');
    assert.ok(calls.every((c) => c.rows * c.cols <= 1 << 22));
    assert.deepEqual(embedCalls.map((c) => c.row0), embedCalls.map((_, i) => i * embedCalls[0].rows));

    const s = openGguf(file);
    assert.equal(s.spec.vocabSize, vocab);
    assert.equal(s.spec.modelType, 'qwen2');
    assert.deepEqual(s.tokenizer.eosIds, [vocab - 1]);
    assert.ok(s.tokenizer.encode('def f(x): return x + 1  # any text tokenizes').length > 3);
    const embed = s.weight('model.embed_tokens.weight');
    assert.ok(isQuant(embed));
    for (const r of [0, 12_345, vocab - 1]) {
      const row = dequantRow64(embed, r);
      for (let c = 0; c < hidden; c++) assert.ok(Math.abs(row[c] - valueAt('model.embed_tokens.weight', r, c)) < 0.05 / 127, `row ${r} col ${c}`);
    }
    s.close();
  });
});
