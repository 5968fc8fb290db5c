// The bench's gather floor (bench/attention.ts gather_ms): collectRows (bench/attention-probe.ts, a StepObserver) lists
// exactly the distinct keys an observed MagicPIG step sampled per KV head, and HeadCache.touchRows reads every 64-byte
// line of those K|V rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sequence } from '../../engine/attention/sequence';
import { defaultAttentionConfig, type AttentionShape } from '../../engine/attention/types';
import { KvStore } from '../../engine/attention/kv-store';
import { collectRows } from '../../bench/attention-probe';
import { gaussians, rng } from './data';

const n = 3000;

/** A one-layer sequence of n context tokens, indexed; decode steps on one thread with profiling on. */
async function indexed(shape: AttentionShape) {
  const seq = new Sequence(shape, { ...defaultAttentionConfig(1), method: 'magicpig', denseLayers: [], K: 6, L: 40, threads: 1 });
  const rand = rng(3), G = shape.numKvHeads, d = shape.headDim;
  seq.cache(0).append(gaussians(n * G * d, rand), gaussians(n * G * d, rand), n);
  seq.endPrefill();
  await seq.prepare();
  const step = async (q: Float32Array) => {
    seq.resetStats();
    const rows = await collectRows(seq, G, () =>
      seq.forwardAsync(0, q, gaussians(G * d, rand), gaussians(G * d, rand), 1, new Float32Array(shape.numHeads * d)));
    seq.truncate(n);
    seq.endPrefill();
    return rows;
  };
  // I = [sinks, indexedEnd) (white-box: the grid rule of sequence.ts sets indexedEnd).
  const sinks = defaultAttentionConfig(1).sinks, indexedEnd = (seq as unknown as { layers: { indexedEnd: number }[] }).layers[0].indexedEnd;
  assert.ok(indexedEnd > sinks + 1000, `indexed ${indexedEnd}`);
  return { seq, step, rand, sinks, indexedEnd };
}

/** Every listed id in I = [sinks, indexedEnd) (none of the exact set T), ascending and distinct. */
function checkIds(rows: Int32Array[], sinks: number, indexedEnd: number): void {
  for (const r of rows) for (let j = 0; j < r.length; j++) {
    assert.ok(r[j] >= sinks && r[j] < indexedEnd, `id ${r[j]} in I`);
    if (j) assert.ok(r[j] > r[j - 1], 'ascending, distinct');
  }
}

test('collectRows: one query head per KV head — exactly the keys sampled (|S| from the step\'s own stats)', async () => {
  const { seq, step, rand, sinks, indexedEnd } = await indexed({ numLayers: 1, numHeads: 4, numKvHeads: 4, headDim: 32 });
  const rows = await step(gaussians(4 * 32, rand, 3));
  const indexedKeys = indexedEnd - sinks;
  checkIds(rows, sinks, indexedEnd);
  const listed = rows.reduce((a, r) => a + r.length, 0);
  assert.ok(listed > 0, 'something sampled');
  // sampledFraction = mean over heads of |S_h| / |I|.
  assert.ok(Math.abs(listed / (4 * indexedKeys) - seq.stats().sampledFraction) < 1e-12, `${listed} listed`);
  // Observing stops with the collection: a later step with an observer-less sequence lists nothing anywhere.
  const later = await collectRows(seq, 4, async () => {});
  assert.deepEqual(later.map((r) => r.length), [0, 0, 0, 0], 'only the steps run inside collectRows are collected');
  seq.dispose();
});

test('collectRows: a group whose heads share one query lists each sampled key once', async () => {
  const { seq, step, rand, sinks, indexedEnd } = await indexed({ numLayers: 1, numHeads: 4, numKvHeads: 1, headDim: 32 });
  const one = gaussians(32, rand, 3), q = new Float32Array(4 * 32);
  for (let h = 0; h < 4; h++) q.set(one, h * 32);
  const rows = await step(q);
  const indexedKeys = indexedEnd - sinks;
  checkIds(rows, sinks, indexedEnd);
  assert.ok(rows[0].length > 0);
  // Every head sampled the same set: the union is one head's |S|, not four.
  assert.ok(Math.abs(rows[0].length / indexedKeys - seq.stats().sampledFraction) < 1e-12, `${rows[0].length} listed`);
  seq.dispose();
});

test('touchRows reads one word of every 64-byte line of each K|V row (f32 and bf16, d = 128)', () => {
  const d = 128, rand = rng(9);
  for (const dtype of ['float32', 'bfloat16'] as const) {
    const kv = new KvStore(1, d, dtype);
    kv.append(gaussians(500 * d, rand), gaussians(500 * d, rand), 500);
    const c = kv.heads[0];
    assert.ok(c.simd, 'WebAssembly path');
    const rowBytes = c.stride * (dtype === 'float32' ? 4 : 2);
    const words = new Int32Array(c.keys.buffer, c.keys.byteOffset, (500 * rowBytes) / 4);
    const ids = Int32Array.from([0, 7, 8, 123, 124, 499]);
    let expected = 0;
    for (const i of ids) for (let b = 0; b < rowBytes; b += 64) expected = (expected + words[(i * rowBytes + b) / 4]) | 0;
    assert.equal(c.touchRows(ids), expected, dtype);
    assert.equal(c.touchRows(new Int32Array(0)), 0);
  }
});
