// Exact dense attention (KV cache + GQA + causal prefill chunks + decode steps) against a naive float64 reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSequenceAttention, defaultAttentionConfig, type AttentionShape, type KvDtype } from '../../engine/attention';
import { dense as attendNaive } from '../../engine/attention/reference/baselines';
import { gaussians, maxAbsDiff, rng, row } from './data';

const shape: AttentionShape = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8 };

/** Runs `chunks` (token counts; 1 = decode step) through the sequence and checks every output row. */
function check(chunks: number[], dtype: KvDtype, tol: number, truncateAt?: number) {
  const { numLayers, numHeads: H, numKvHeads: G, headDim: d } = shape;
  const rand = rng(7);
  const attn = createSequenceAttention(shape, { ...defaultAttentionConfig(numLayers), kvDtype: dtype });
  // Reference cache per layer: rows of k and v per KV head.
  const refK: number[][][][] = [], refV: number[][][][] = [];
  for (let l = 0; l < numLayers; l++) { refK.push(Array.from({ length: G }, () => [])); refV.push(Array.from({ length: G }, () => [])); }
  let worst = 0;
  // bf16 storage: the reference sees the same rounded k/v (round to nearest even on the top 16 bits).
  const dv = new DataView(new ArrayBuffer(4));
  const r = (x: number) => {
    if (dtype === 'float32') return x;
    dv.setFloat32(0, x);
    const b = dv.getUint32(0);
    dv.setUint32(0, ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16);
    return dv.getFloat32(0);
  };
  chunks.forEach((n, ci) => {
    if (truncateAt !== undefined && ci === 2) {
      attn.truncate(truncateAt);
      for (let l = 0; l < numLayers; l++) for (let g = 0; g < G; g++) { refK[l][g].length = truncateAt; refV[l][g].length = truncateAt; }
      assert.equal(attn.length, truncateAt);
    }
    for (let l = 0; l < numLayers; l++) {
      // Large offsets on keys stress the numerically stable softmax.
      const q = gaussians(n * H * d, rand, 3), k = gaussians(n * G * d, rand, 3), v = gaussians(n * G * d, rand);
      const out = new Float32Array(n * H * d);
      attn.forward(l, q, k, v, n, out);
      for (let j = 0; j < n; j++) {
        for (let g = 0; g < G; g++) { refK[l][g].push([...row(k, j, g, G, d)].map(r)); refV[l][g].push([...row(v, j, g, G, d)].map(r)); }
        if (n > 64 && j % 97 !== 0 && j !== n - 1) continue; // long chunks: check a sample of rows (keeps it fast)
        for (let h = 0; h < H; h++) {
          const g = Math.floor(h / (H / G));
          const visible = refK[l][g].length; // rows 0..past+j pushed so far
          const ref = attendNaive(row(q, j, h, H, d), refK[l][g].slice(0, visible), refV[l][g].slice(0, visible));
          worst = Math.max(worst, maxAbsDiff(row(out, j, h, H, d), ref));
        }
      }
    }
    if (ci === 1) attn.endPrefill();
  });
  assert.ok(worst < tol, `max |out − ref| = ${worst}`);
  assert.equal(attn.length, chunks.reduce((a, b) => a + b, 0) - (truncateAt !== undefined ? chunks[0] + chunks[1] - truncateAt : 0));
}

test('dense float32: prefill chunks then decode steps equal naive float64 attention', () => {
  check([37, 64, 1, 1, 1, 5, 1], 'float32', 1e-5);
});

test('dense float32: a chunk longer than one scan block (2048) stays exact', () => {
  check([2100, 3, 1], 'float32', 1e-5);
});

test('dense: truncate (prefix reuse) then more tokens equals attention over the kept prefix', () => {
  check([40, 30, 12, 1, 1], 'float32', 1e-5, 50);
});

test('dense bfloat16 storage: equals the float64 reference on bf16-rounded k/v', () => {
  check([30, 20, 1, 1], 'bfloat16', 1e-5);
});
