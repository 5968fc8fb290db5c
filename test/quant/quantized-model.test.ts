// Quantized linear layers (MatMulNBits) end to end: random checkpoints loaded with --weights int8/int4 against the
// float64 reference forward run on the same weights, dequantized from the packed form (quant.ts's dequantRow64,
// itself checked element by element below against the definition of round-to-nearest).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../engine/index';
import { dequantRow64, quantizeRtn, type QuantBits } from '../../engine/model/quant';
import { makeCheckpoint, type Checkpoint, type CheckpointOptions } from '../fixtures/make-checkpoint';
import { referenceForward, type RefTensor } from '../reference/llama-f64';

const root = mkdtempSync(path.join(os.tmpdir(), 'snout-quant-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The checkpoint's tensors as the packed model holds them: each matrix quantized, then dequantized in float64. */
function packedTensors(ckpt: Checkpoint, bits: QuantBits): Map<string, RefTensor> {
  const out = new Map<string, RefTensor>();
  for (const [name, t] of ckpt.tensors) {
    if (t.shape.length !== 2 || t.shape[1] % 32 !== 0) { out.set(name, t); continue; }
    const [N, K] = t.shape;
    const isHead = name === 'model.embed_tokens.weight' || name === 'lm_head.weight';
    const m = quantizeRtn(Float32Array.from(t.values), N, K, isHead ? 8 : bits, 32);
    const values = new Float64Array(N * K);
    for (let n = 0; n < N; n++) values.set(dequantRow64(m, n), n * K);
    out.set(name, { shape: t.shape, values });
  }
  return out;
}

describe('quantizeRtn', () => {
  for (const bits of [4, 8] as const) {
    it(`${bits}-bit: every element within half a step of its value, scale = max|w| / (2^(bits-1) - 1)`, () => {
      const N = 5, K = 64;
      const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 13)) * 0.01);
      w[3] = 0; w.fill(0, 32, 64); // a zero block
      const m = quantizeRtn(w, N, K, bits, 32);
      const qmax = 2 ** (bits - 1) - 1;
      for (let n = 0; n < N; n++) {
        const row = dequantRow64(m, n);
        for (let b = 0; b < 2; b++) {
          let amax = 0;
          for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(w[n * K + b * 32 + i]));
          const step = amax / qmax;
          assert.ok(Math.abs(m.scales[n * 2 + b] - step) <= 1e-7 * Math.max(1, step));
          for (let i = 0; i < 32; i++) {
            const k = b * 32 + i;
            assert.ok(Math.abs(row[k] - w[n * K + k]) <= step / 2 + 1e-7, `row ${n} col ${k}: ${row[k]} vs ${w[n * K + k]}`);
          }
        }
      }
    });
  }
});

const shapes: [string, CheckpointOptions][] = [
  ['llama, tied, GQA', { hidden: 64, intermediate: 96, heads: 4, kvHeads: 2, layers: 2, vocab: 96, seed: 11 }],
  ['qwen2, untied, q/k/v biases', { modelType: 'qwen2', tie: false, hidden: 64, intermediate: 128, heads: 4, kvHeads: 2, layers: 2, vocab: 96, seed: 12 }],
];
const ids = Array.from({ length: 12 }, (_, i) => 3 + ((i * 7 + 5) % 90));

describe('packed models vs the float64 reference on the same (dequantized) weights', () => {
  for (const [name, options] of shapes) {
    for (const weights of ['int8', 'int4'] as const) {
      it(`${name}, ${weights}`, async () => {
        const ckpt = makeCheckpoint(path.join(root, `${name.replace(/\W+/g, '_')}_${weights}`), { scale: 0.05, ...options });
        const ref = referenceForward(ckpt.config, packedTensors(ckpt, weights === 'int8' ? 8 : 4), ids);
        // accuracy level 0 computes in float32: the packed weights must then give the reference's logits (1e-4).
        // Level 4 (the default) also rounds activations to int8 per block of 32, which alone moves logits by up to
        // a few percent of their scale on these random weights.
        for (const [accuracyLevel, bound] of [[0, 1e-4], [4, 0.04]] as const) {
          const model = await loadModel(ckpt.dir, { provider: 'cpu', weights, cacheDir: null, prefillChunk: 5, accuracyLevel });
          try {
            assert.equal(model.weights?.packed, true);
            for (const n of [1, 7, 12]) {
              const logits = await model.logits(ids.slice(0, n));
              let scale = 0, diff = 0;
              for (let v = 0; v < logits.length; v++) { scale = Math.max(scale, Math.abs(ref[n - 1][v])); diff = Math.max(diff, Math.abs(logits[v] - ref[n - 1][v])); }
              const limit = accuracyLevel === 0 ? bound : bound * Math.max(scale, 1);
              assert.ok(diff <= limit, `accuracy ${accuracyLevel}, prefix ${n}: max abs diff ${diff} (logit scale ${scale})`);
            }
          } finally {
            await model.dispose();
          }
        }
      });
    }
  }
});
