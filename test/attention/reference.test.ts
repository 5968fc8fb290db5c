// The fast decode methods against engine/attention/reference/ (float64, written plainly): a real Sequence runs one
// decode step; the reference gets the same cache rows, k̄, W and ranges. MagicPIG: the same sampled set per query head
// and the same output within the log-weight table's 1e-4 (methods/log-weights.ts); dense, TopK and Quest: the same
// output within float32 rounding. float32 and bfloat16 caches; the WebAssembly path (d = 32) and the TypeScript one
// (d = 20).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sequence } from '../../engine/attention/sequence';
import { defaultAttentionConfig, type AttentionConfig, type KvDtype } from '../../engine/attention/types';
import { simhashFor } from '../../engine/attention/simhash';
import { fromBf16 } from '../../engine/attention/rows';
import type { HeadIndex } from '../../engine/attention/head-index';
import type { StepObserver } from '../../engine/attention/methods/index';
import { magicpig } from '../../engine/attention/reference/magicpig';
import { dense, quest, topk } from '../../engine/attention/reference/baselines';
import { gaussians, relErr, rng } from './data';

const H = 4, G = 2, n = 1500, K = 6, L = 30;

/** One decode step of `config` over n random context tokens (keys with a common offset, as real keys have). */
async function oneStep(d: number, kvDtype: KvDtype, config: Partial<AttentionConfig>) {
  const cfg = { ...defaultAttentionConfig(1), denseLayers: [], K, L, kvDtype, threads: 1, ...config };
  const seq = new Sequence({ numLayers: 1, numHeads: H, numKvHeads: G, headDim: d }, cfg);
  const rand = rng(21), offset = gaussians(G * d, rand, 1.5);
  seq.cache(0).append(gaussians(n * G * d, rand).map((x, i) => x + offset[i % (G * d)]), gaussians(n * G * d, rand), n);
  seq.endPrefill();
  await seq.prepare({ provider: 'cpu' });
  const sampled: number[][] = [];
  const observer: StepObserver = { time() {}, head(g, exact, walked, ids, from, to) { sampled.push(Array.from(ids.subarray(from, to))); } };
  seq.observe(observer);
  const q = gaussians(H * d, rand, 0.8), out = new Float32Array(H * d);
  seq.forward(0, q, gaussians(G * d, rand), gaussians(G * d, rand), 1, out);
  seq.observe(null);
  // The step's inputs as the reference takes them: every cached row (the new token's too), read back at its stored
  // precision; k̄ and I = [sinks, indexedEnd) from the layer's index (white box: the rules that set them are sequence.ts').
  const kv = seq.cache(0), layer = (seq as unknown as { layers: { indexedEnd: number; heads: HeadIndex[] }[] }).layers[0];
  const rows = (g: number, values: boolean) => Array.from({ length: kv.length }, (_, i) => {
    const src = values ? kv.values[g] : kv.keys[g], o = i * kv.heads[g].stride;
    return Array.from({ length: d }, (_, c) => (src instanceof Float32Array ? src[o + c] : fromBf16(src[o + c])));
  });
  const heads = Array.from({ length: H }, (_, h) => {
    const g = Math.floor(h / (H / G));
    return { q: Array.from(q.subarray(h * d, (h + 1) * d)), keys: rows(g, false), values: rows(g, true), kbar: layer.heads[g].kbar, out: out.subarray(h * d, (h + 1) * d) };
  });
  return { heads, sampled, sinks: cfg.sinks, indexedEnd: layer.indexedEnd, W: simhashFor(d, K, L, cfg.seed).W, count: layer.indexedEnd - cfg.sinks };
}

for (const d of [32, 20]) {
  for (const dtype of ['float32', 'bfloat16'] as const) {
    test(`magicpig d=${d} ${dtype}: the sampled set of every query head and its output equal the float64 reference`, async () => {
      const s = await oneStep(d, dtype, { method: 'magicpig' });
      assert.ok(s.count > 1000, `indexed ${s.count}`);
      for (const [h, x] of s.heads.entries()) {
        const ref = magicpig({ ...x, kbar: x.kbar!, sinks: s.sinks, indexedEnd: s.indexedEnd, W: s.W, K, L });
        assert.ok(ref.sampled.length > 10, `head ${h}: ${ref.sampled.length} sampled`);
        assert.deepEqual(s.sampled[h], ref.sampled, `head ${h}: the same sampled set`);
        const err = relErr(x.out, ref.out);
        assert.ok(err < 2e-4, `head ${h}: output vs reference ${err}`);
        // What the 1/u weight is worth here: without it (T ∪ S attended plainly) the output is far off.
        const T = Array.from({ length: x.keys.length }, (_, i) => i).filter((i) => i < s.sinks || i >= s.indexedEnd);
        const ids = [...T, ...ref.sampled], plain = dense(x.q, ids.map((i) => x.keys[i]), ids.map((i) => x.values[i]));
        assert.ok(relErr(plain, ref.out) > 20 * err, `head ${h}: unweighted ${relErr(plain, ref.out)} vs ${err}`);
      }
    });
  }
  test(`dense, topk and quest d=${d}: outputs equal the float64 references within float32 rounding`, async () => {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const exact = await oneStep(d, dtype, { method: 'dense' });
      for (const x of exact.heads) assert.ok(relErr(x.out, dense(x.q, x.keys, x.values)) < 1e-5, `dense ${dtype}`);
      const tk = await oneStep(d, dtype, { method: 'topk', budget: 0.05 });
      for (const x of tk.heads) {
        const ref = topk(x.q, x.keys, x.values, tk.sinks, tk.indexedEnd, Math.round(0.05 * tk.count));
        assert.ok(relErr(x.out, ref) < 1e-5, `topk ${dtype}: ${relErr(x.out, ref)}`);
      }
      const qu = await oneStep(d, dtype, { method: 'quest', budget: 0.1 });
      for (const x of qu.heads) {
        const ref = quest(x.q, x.keys, x.values, qu.sinks, qu.indexedEnd, Math.ceil(0.1 * Math.ceil(qu.count / 16)));
        assert.ok(relErr(x.out, ref) < 1e-5, `quest ${dtype}: ${relErr(x.out, ref)}`);
      }
    }
  });
}
