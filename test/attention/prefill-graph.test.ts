// The prefill attention graph (prefill-graph.ts, DenseKernel.causalAsync) against a naive float64 causal attention:
// several head shapes (GQA groups 1, 2, 8), chunk sequences (a 1-token chunk, chunks after a cache), a chunk split
// into query sub-chunks by a small score budget, the causalAsync dispatch (graph above the work threshold, the CPU
// loop below it), and bfloat16 caches (widened on the copy) against the CPU loop over the same rounded rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStore } from '../../engine/attention/kv-store';
import { DenseKernel } from '../../engine/attention/dense';
import { PrefillGraph } from '../../engine/attention/prefill-graph';
import type { KvDtype } from '../../engine/attention/types';
import { dense as attendNaive } from '../../engine/attention/reference/baselines';
import { gaussians, maxAbsDiff, rng, row } from './data';

interface Shape { H: number; G: number; d: number }

/**
 * Appends `chunks` (token counts) to a cache and attends each chunk with `attend`; every `stride`-th output row (and
 * each chunk's last) is compared to the float64 reference. Returns the worst absolute difference.
 */
async function worstDiff(s: Shape, chunks: number[], attend: (kv: KvStore, q: Float32Array, n: number, out: Float32Array) => Promise<void>,
  dtype: KvDtype = 'float32', stride = 1): Promise<number> {
  const { H, G, d } = s, group = H / G, rand = rng(11);
  const kv = new KvStore(G, d, dtype);
  const refK: Float32Array[][] = Array.from({ length: G }, () => []), refV: Float32Array[][] = Array.from({ length: G }, () => []);
  let worst = 0;
  for (const n of chunks) {
    // Offsets of scale 3 on q and k make the logits spread (stresses the max-shift of the softmax).
    const q = gaussians(n * H * d, rand, 3), k = gaussians(n * G * d, rand, 3), v = gaussians(n * G * d, rand);
    kv.append(k, v, n);
    for (let j = 0; j < n; j++) for (let g = 0; g < G; g++) { refK[g].push(row(k, j, g, G, d)); refV[g].push(row(v, j, g, G, d)); }
    const out = new Float32Array(n * H * d);
    await attend(kv, q, n, out);
    const past = kv.length - n;
    for (let j = 0; j < n; j++) {
      if (j % stride !== 0 && j !== n - 1) continue;
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / group), end = past + j + 1;
        const want = attendNaive(row(q, j, h, H, d), refK[g].slice(0, end), refV[g].slice(0, end));
        worst = Math.max(worst, maxAbsDiff(row(out, j, h, H, d), want));
      }
    }
  }
  return worst;
}

const shapes: Shape[] = [{ H: 4, G: 2, d: 8 }, { H: 4, G: 4, d: 16 }, { H: 8, G: 1, d: 8 }, { H: 4, G: 2, d: 64 }];

test('prefill graph: causal chunks equal float64 attention (GQA groups 1, 2, 8; 1-token chunks)', async () => {
  for (const s of shapes) {
    const graph = await PrefillGraph.create(s.H, s.G, s.d, 'cpu');
    const scale = 1 / Math.sqrt(s.d);
    const worst = await worstDiff(s, [1, 5, 37, 1, 64, 3], (kv, q, n, out) => graph.causal(kv, q, n, out, scale));
    assert.ok(worst < 2e-5, `H ${s.H} / G ${s.G} / d ${s.d}: max |diff| ${worst}`);
  }
});

test('prefill graph: a chunk split into query sub-chunks (small score budget) stays exact', async () => {
  const s = { H: 4, G: 2, d: 8 };
  const graph = await PrefillGraph.create(s.H, s.G, s.d, 'cpu');
  // 4 heads × ~100 keys: a budget of 2000 scores gives sub-chunks of 4-5 queries, then of 2 as the cache grows,
  // and a budget below one row's scores gives single-query sub-chunks.
  for (const budget of [2000, 100]) {
    graph.scoreBudget = budget;
    const worst = await worstDiff(s, [23, 41, 17], (kv, q, n, out) => graph.causal(kv, q, n, out, 1 / Math.sqrt(s.d)));
    assert.ok(worst < 2e-5, `budget ${budget}: max |diff| ${worst}`);
  }
  assert.equal(graph.subChunk(100), 1);
});

test('DenseKernel.causalAsync: graph above the work threshold, CPU loop below it', async () => {
  const s = { H: 4, G: 2, d: 64 };
  const dense = new DenseKernel(s.H, s.G, s.d);
  const probe = new KvStore(s.G, s.d, 'float32');
  probe.append(new Float32Array(300 * s.G * s.d), new Float32Array(300 * s.G * s.d), 300);
  assert.equal(dense.usesGraph(probe, 256), true); // 256 × 4 × 64 × 172 ≈ 11M products
  assert.equal(dense.usesGraph(probe, 1), false);
  const probe16 = new KvStore(s.G, s.d, 'bfloat16');
  probe16.append(new Float32Array(300 * s.G * s.d), new Float32Array(300 * s.G * s.d), 300);
  assert.equal(dense.usesGraph(probe16, 256), true);
  const async = (kv: KvStore, q: Float32Array, n: number, out: Float32Array) => dense.causalAsync(kv, q, n, out, 'cpu');
  const worst = await worstDiff(s, [44, 256, 1], async, 'float32', 7);
  assert.ok(worst < 2e-5, `float32: max |diff| ${worst}`);
  // bfloat16 cache: the reference sees unrounded k/v, so compare loosely here; the exact check is the next test.
  const worst16 = await worstDiff(s, [40, 256, 24], async, 'bfloat16', 5);
  assert.ok(worst16 < 0.1, `bfloat16: max |diff| ${worst16}`);
});

test('prefill graph on a bfloat16 cache equals the CPU loop over the same rounded rows (interleaved and plain layouts)', async () => {
  for (const s of [{ H: 4, G: 2, d: 64 }, { H: 6, G: 2, d: 8 }, { H: 8, G: 1, d: 16 }]) {
    const graph = await PrefillGraph.create(s.H, s.G, s.d, 'cpu');
    const dense = new DenseKernel(s.H, s.G, s.d);
    const rand = rng(5), kv = new KvStore(s.G, s.d, 'bfloat16');
    let worst = 0;
    for (const n of [33, 1, 70]) {
      kv.append(gaussians(n * s.G * s.d, rand, 3), gaussians(n * s.G * s.d, rand), n);
      const q = gaussians(n * s.H * s.d, rand, 3), a = new Float32Array(n * s.H * s.d), b = new Float32Array(n * s.H * s.d);
      await graph.causal(kv, q, n, a, dense.scale);
      dense.causal(kv, q, n, b);
      worst = Math.max(worst, maxAbsDiff(a, b));
    }
    assert.ok(kv.heads.every((h) => h.keys instanceof Uint16Array), 'the cache is bfloat16');
    assert.ok(worst < 2e-5, `H ${s.H} / G ${s.G} / d ${s.d}: graph vs loop max |diff| ${worst}`);
  }
});

test('prefill graph: over the cache\'s own float32 copy (decode attention in the layer graphs) it makes no copy and gives the same bits', async () => {
  const s = { H: 4, G: 2, d: 16 }, rand = rng(5);
  for (const dtype of ['float32', 'bfloat16'] as const) {
    const plain = await PrefillGraph.create(s.H, s.G, s.d, 'cpu'), mirrored = await PrefillGraph.create(s.H, s.G, s.d, 'cpu');
    const a = new KvStore(s.G, s.d, dtype), b = new KvStore(s.G, s.d, dtype);
    for (const n of [40, 1, 70]) {
      const q = gaussians(n * s.H * s.d, rand, 3), k = gaussians(n * s.G * s.d, rand, 3), v = gaussians(n * s.G * s.d, rand);
      a.append(k, v, n);
      b.append(k, v, n);
      b.mirrorRows(); // what Sequence.keepMirror does after each prompt chunk
      const outA = new Float32Array(n * s.H * s.d), outB = new Float32Array(n * s.H * s.d);
      await plain.causal(a, q, n, outA, 0.25);
      await mirrored.causal(b, q, n, outB, 0.25);
      assert.deepEqual(outB, outA, `${dtype}, chunk of ${n}`);
      assert.equal((mirrored as unknown as { kBufs: unknown[] }).kBufs.length, 0, 'no scratch copy was made');
    }
    // A copy that lags the cache (rows appended since) is not used.
    const n = 3, q = gaussians(n * s.H * s.d, rand), k = gaussians(n * s.G * s.d, rand), v = gaussians(n * s.G * s.d, rand);
    a.append(k, v, n);
    b.append(k, v, n);
    const outA = new Float32Array(n * s.H * s.d), outB = new Float32Array(n * s.H * s.d);
    await plain.causal(a, q, n, outA, 0.25);
    await mirrored.causal(b, q, n, outB, 0.25);
    assert.deepEqual(outB, outA);
    assert.equal((mirrored as unknown as { kBufs: unknown[] }).kBufs.length, s.G);
  }
});
