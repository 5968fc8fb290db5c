// Random tiny checkpoints (written by test/fixtures/make-checkpoint.ts) covering the config/storage variants the engine
// supports, each compared with the naive float64 reference forward in test/reference/llama-f64.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel, type LoadOptions } from '../../engine/index';
import { makeCheckpoint, type CheckpointOptions } from '../fixtures/make-checkpoint';
import { referenceForward } from '../reference/llama-f64';
import { maxAbsDiff } from './paths';

const root = mkdtempSync(path.join(os.tmpdir(), 'snout-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));

const cases: [string, CheckpointOptions, LoadOptions?][] = [
  ['llama, tied, f32, GQA 4/2', { seed: 1 }],
  // The graph layouts a large model gets: separate embedding/head session, and (second) no layer fusion either.
  ['llama, tied, separate embed/head graph', { seed: 1 }, { fuseEmbedHead: false }],
  ['qwen2, untied, unfused layers and embed/head', { modelType: 'qwen2', tie: false, seed: 7 }, { fuseEmbedHead: false, fuseLayers: false }],
  ['qwen2 q/k/v biases, untied lm_head, bf16', { modelType: 'qwen2', tie: false, dtype: 'BF16', seed: 2 }],
  ['f16, sharded (3 files), explicit head_dim 16 != 32/4, 1 KV head', { dtype: 'F16', shards: 3, headDim: 16, kvHeads: 1, seed: 3 }],
  ['llama3 rope scaling, head_dim 16', {
    headDim: 16, seed: 4, ropeTheta: 500000,
    ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  }],
  ['linear rope scaling, llama attention_bias (o_proj too) and mlp_bias', {
    ropeScaling: { type: 'linear', factor: 4 }, attentionBias: true, mlpBias: true, seed: 5,
  }],
  ['mistral, 3 layers, MHA', { modelType: 'mistral', layers: 3, kvHeads: 4, seed: 6 }],
];

/** Deterministic token ids in 3..vocab-1 (skipping the special ids 0..2). */
const idsFor = (n: number, vocab: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7 + seed * 13) % (vocab - 3)));

describe('random checkpoints vs float64 reference', () => {
  for (const [name, options, load] of cases) {
    it(name, async () => {
      const ckpt = makeCheckpoint(path.join(root, name.replace(/\W+/g, '_')), options);
      // Small prefill chunks so prompts span several chunks and a 1-token (decode-shaped) remainder.
      const model = await loadModel(ckpt.dir, { provider: 'cpu', prefillChunk: 5, ...load });
      try {
        const ids = idsFor(16, 64, options.seed ?? 0);
        const ref = referenceForward(ckpt.config, ckpt.tensors, ids);
        for (const n of [1, 6, 16]) {
          const logits = await model.logits(ids.slice(0, n));
          const diff = maxAbsDiff(logits, ref[n - 1]);
          assert.ok(diff <= 1e-4, `prefix ${n}: max abs logit diff ${diff}`);
        }
        // Decode: the engine's greedy tokens match the reference's wherever the reference's choice is clear.
        const r = await model.generate(model.newSequence(), { ids, maxTokens: 4, sampling: { temperature: 0, topP: 1, seed: 0 } });
        const seq = [...ids];
        for (const got of r.ids) {
          const logits = referenceForward(ckpt.config, ckpt.tensors, seq).at(-1)!;
          const order = [...logits.keys()].sort((a, b) => logits[b] - logits[a]);
          if (logits[order[0]] - logits[order[1]] < 1e-3) break;
          assert.equal(got, order[0]);
          seq.push(got);
        }
        assert.ok(r.ids.length === 4 || r.finishReason === 'eos');
      } finally {
        await model.dispose();
      }
    });
  }
});

describe('generation_config.json', () => {
  it('its eos ids are added to the stop set', async () => {
    const ckpt = makeCheckpoint(path.join(root, 'gen_config'), { layers: 1, seed: 9 });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(ckpt.dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, 7] }));
    const model = await loadModel(ckpt.dir, { provider: 'cpu' });
    try {
      assert.deepEqual([...model.tokenizer.eosIds].sort((a, b) => a - b), [2, 7]);
    } finally {
      await model.dispose();
    }
  });
});
