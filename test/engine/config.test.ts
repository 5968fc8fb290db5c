// config.json → ModelSpec: the fields transformers reads, their defaults, and clear errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../engine/model/config';
import { UserError } from '../../engine/errors';

const base = {
  model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 8,
  vocab_size: 100, max_position_embeddings: 512, rms_norm_eps: 1e-6,
};

describe('config.json', () => {
  it('llama defaults: KV heads = heads, head_dim = hidden/heads, untied, no bias, theta 10000', () => {
    const s = parseConfig(base);
    assert.equal(s.numKvHeads, 8);
    assert.equal(s.headDim, 8);
    assert.equal(s.tieWordEmbeddings, false);
    assert.equal(s.attentionBias, false);
    assert.equal(s.ropeTheta, 10000);
    assert.deepEqual(s.ropeScaling, { type: 'none' });
    assert.deepEqual(s.eosTokenIds, []);
  });

  it('explicit head_dim, eos list, qwen2 biases', () => {
    const s = parseConfig({ ...base, model_type: 'qwen2', head_dim: 32, num_key_value_heads: 2, eos_token_id: [5, 7], bos_token_id: 3 });
    assert.equal(s.headDim, 32);
    assert.deepEqual(s.eosTokenIds, [5, 7]);
    assert.equal(s.bosTokenId, 3);
    assert.equal(s.attentionBias, true);
    assert.equal(s.outputBias, false);
  });

  it('rope scaling: default, linear, llama3', () => {
    assert.deepEqual(parseConfig({ ...base, rope_scaling: { rope_type: 'default' } }).ropeScaling, { type: 'none' });
    assert.deepEqual(parseConfig({ ...base, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling, { type: 'linear', factor: 2 });
    assert.deepEqual(parseConfig({
      ...base, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    }).ropeScaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  });

  it('mistral sliding window caps the usable context (exact within one window)', () => {
    assert.equal(parseConfig({ ...base, model_type: 'mistral', max_position_embeddings: 32768, sliding_window: 4096 }).maxPositionEmbeddings, 4096);
    assert.equal(parseConfig({ ...base, model_type: 'mistral', sliding_window: null }).maxPositionEmbeddings, 512);
  });

  it('errors name the file and the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...base, hidden_size: undefined }, /cfg\.json: missing "hidden_size"/],
      [{ ...base, num_key_value_heads: 3 }, /not a multiple of num_key_value_heads 3/],
      [{ ...base, hidden_act: 'gelu' }, /unsupported hidden_act "gelu"/],
      [{ ...base, model_type: 'phi3' }, /unsupported model_type "phi3"/],
      [{ ...base, head_dim: 7 }, /head_dim 7 must be even/],
      [{ ...base, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /unsupported rope_scaling type "dynamic"/],
    ];
    for (const [cfg, re] of bad) {
      assert.throws(() => parseConfig(cfg, 'cfg.json'), (e: unknown) => e instanceof UserError && re.test((e as Error).message));
    }
  });
});

describe('model size limit', () => {
  it('a graph over 2 GiB of float32 weights is a clear user error before anything is built', async () => {
    const { ModelRunner } = await import('../../engine/generate/forward');
    // Qwen2-7B-like: 152K × 3584 embedding = 2.03 GiB in float32.
    const spec = parseConfig({ ...base, hidden_size: 3584, num_attention_heads: 28, num_key_value_heads: 4, intermediate_size: 18944, vocab_size: 152064, tie_word_embeddings: false });
    await assert.rejects(ModelRunner.create(spec, () => { throw new Error('must not read weights'); }), /embedding\/lm_head graph needs 4\.06 GiB .* over the 2 GiB limit/);
  });
});
