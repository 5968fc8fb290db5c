// MagicPIG decode steps split over worker threads give exactly the single-thread output, also after the cache grows
// and the index folds new context (layout updates reach the workers). Layer 0 is a dense layer: its decode steps take
// the threaded exact path (methods/threads.ts with the dense method) against DenseKernel.causal on one thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSequenceAttention, defaultAttentionConfig, type AttentionShape } from '../../engine/attention';
import { attentionPoolSize } from '../../engine/attention/worker-pool';
import { gaussians, rng } from './data';

const shape: AttentionShape = { numLayers: 2, numHeads: 8, numKvHeads: 4, headDim: 16 };
const { numHeads: H, numKvHeads: G, headDim: d } = shape;

function session(threads: number, kvDtype: 'float32' | 'bfloat16' = 'float32') {
  const attn = createSequenceAttention(shape, { ...defaultAttentionConfig(2), method: 'magicpig', denseLayers: [0], K: 6, L: 20, window: 8, tailThreshold: 32, threads, kvDtype });
  const rand = rng(21);
  const outs: Float32Array[] = [];
  const prefill = (n: number) => {
    for (let l = 0; l < 2; l++) attn.forward(l, gaussians(n * H * d, rand), gaussians(n * G * d, rand, 2), gaussians(n * G * d, rand), n, new Float32Array(n * H * d));
    attn.endPrefill();
  };
  const steps = (n: number) => {
    for (let s = 0; s < n; s++) for (let l = 0; l < 2; l++) {
      const out = new Float32Array(H * d);
      attn.forward(l, gaussians(H * d, rand), gaussians(G * d, rand, 2), gaussians(G * d, rand), 1, out);
      outs.push(out);
    }
  };
  prefill(300); steps(3);
  prefill(200); steps(3); // grows the cache past its first capacity and folds the new context (appended in the tables' room)
  attn.truncate(470); attn.endPrefill(); steps(2); // a cut inside the room (same memory, new counts)
  prefill(40); steps(2); // a fold into the room again
  attn.truncate(250); attn.endPrefill(); steps(2); // tables cut back
  const frac = attn.stats().sampledFraction;
  attn.dispose();
  return { outs, frac };
}

test('magicpig with 2 and 3 threads equals 1 thread, through growth, folds and truncation', () => {
  const one = session(1);
  assert.ok(one.frac > 0 && one.frac < 1, `sampled fraction ${one.frac}`);
  for (const threads of [2, 3]) {
    const many = session(threads);
    assert.equal(many.outs.length, one.outs.length);
    many.outs.forEach((o, i) => assert.deepEqual(o, one.outs[i], `threads ${threads}, output ${i}`));
    assert.equal(many.frac, one.frac);
  }
  const bf1 = session(1, 'bfloat16'), bf2 = session(2, 'bfloat16');
  bf2.outs.forEach((o, i) => assert.deepEqual(o, bf1.outs[i], `bfloat16, output ${i}`));
});

test('reserve starts the worker threads that the decode steps will use (they boot during the prefill)', () => {
  // 4 threads: a pool size no other test here uses, so the check does not depend on test order.
  const attn = createSequenceAttention(shape, { ...defaultAttentionConfig(2), method: 'dense', threads: 4 });
  assert.notEqual(attentionPoolSize(), 3);
  attn.reserve!(1000);
  assert.equal(attentionPoolSize(), 3);
  attn.dispose();
});
