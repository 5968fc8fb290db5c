// MagicPIG (and the TopK/Quest baselines) through the SequenceAttention interface, against float64 references.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSequenceAttention, defaultAttentionConfig, type AttentionConfig, type AttentionShape } from '../../engine/attention';
import { LogWeightTable, samplingProbability } from '../../engine/attention/methods/log-weights';
import { MagicPig } from '../../engine/attention/methods/magicpig';
import { stepOf } from './step';
import { KvStore } from '../../engine/attention/kv-store';
import { dense as attendNaive } from '../../engine/attention/reference/baselines';
import { gaussians, relErr, rng, row } from './data';

const shape: AttentionShape = { numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 16 };
const d = shape.headDim;

/** A synthetic head shaped like real keys: shared offset, a few heavy hitters aligned with q, a flat tail. */
function head(n: number, seed: number) {
  const rand = rng(seed);
  const offset = gaussians(d, rand, 2);
  const q = gaussians(shape.numHeads * d, rand);
  const k = new Float32Array(n * d), v = gaussians(n * d, rand);
  for (let i = 0; i < n; i++) {
    const noise = gaussians(d, rand);
    const heavy = i % 97 === 13 ? 2.5 : 0;
    for (let c = 0; c < d; c++) k[i * d + c] = offset[c] + noise[c] + heavy * q[c];
  }
  return { q, k, v };
}

function exactOut(h: ReturnType<typeof head>, n: number): number[][] {
  const keys = Array.from({ length: n }, (_, i) => h.k.subarray(i * d, (i + 1) * d));
  const vals = Array.from({ length: n }, (_, i) => h.v.subarray(i * d, (i + 1) * d));
  return Array.from({ length: shape.numHeads }, (_, hh) => attendNaive(row(h.q, 0, hh, shape.numHeads, d), keys, vals));
}

/** Prefill the first n−1 tokens as context, then one decode step with token n−1; returns the step's output. */
function run(h: ReturnType<typeof head>, n: number, cfg: Partial<AttentionConfig>, prepare = false) {
  const attn = createSequenceAttention(shape, { ...defaultAttentionConfig(1), denseLayers: [], sinks: 4, window: 8, tailThreshold: 0, ...cfg });
  const out = new Float32Array(shape.numHeads * d);
  attn.forward(0, new Float32Array((n - 1) * shape.numHeads * d), h.k.subarray(0, (n - 1) * d), h.v.subarray(0, (n - 1) * d), n - 1, new Float32Array((n - 1) * shape.numHeads * d));
  attn.endPrefill();
  const step = () => attn.forward(0, h.q, h.k.subarray((n - 1) * d, n * d), h.v.subarray((n - 1) * d, n * d), 1, out);
  return { attn, out, step, ready: prepare ? attn.prepare({ provider: 'cpu' }) : Promise.resolve() };
}

const errVsExact = (out: Float32Array, ref: number[][]) =>
  Math.max(...ref.map((r, hh) => relErr(row(out, 0, hh, shape.numHeads, d), r)));

test('below sinks + window (+ tail threshold), magicpig equals dense', () => {
  const n = 4 + 8 + 20, h = head(n, 1);
  const r = run(h, n, { method: 'magicpig', tailThreshold: 30 });
  r.step();
  assert.ok(errVsExact(r.out, exactOut(h, n)) < 1e-6);
  assert.equal(r.attn.stats().sampledFraction, 1, 'nothing indexed: no sampling recorded');
});

test('minIndexed: while the index would hold fewer keys the step is the dense method\'s, bit for bit, with no index; at the threshold it samples', async () => {
  const n = 400, h = head(n, 7);
  const denseRun = run(h, n, { method: 'dense' });
  denseRun.step();
  // The context (399 tokens, sinks 4, window 8, tail threshold 0) would index 387 keys.
  for (const [minIndexed, samples] of [[388, false], [387, true], [0, true]] as const) {
    const r = run(h, n, { method: 'magicpig', K: 6, L: 10, minIndexed }, true);
    await r.ready;
    r.step();
    const st = r.attn.stats();
    if (samples) {
      assert.ok(st.sampledFraction < 0.9, `minIndexed ${minIndexed}: samples (fraction ${st.sampledFraction})`);
      assert.ok(st.memory!.tables > 0);
    } else {
      assert.deepEqual(r.out, denseRun.out, `minIndexed ${minIndexed}: the dense step's output`);
      assert.equal(st.sampledFraction, 1);
      assert.equal(st.memory!.tables, 0, 'no tables built');
    }
  }
});

test('every key sampled with u = 1 (K = 1, L = 300): magicpig equals exact attention', () => {
  const n = 400, h = head(n, 2);
  const r = run(h, n, { method: 'magicpig', K: 1, L: 300 });
  r.step();
  assert.equal(r.attn.stats().sampledFraction, 1);
  // The reference's stabiliser log(u + 1e-4) scales sampled weights by 1/(1 + 1e-4) against the exact set.
  assert.ok(errVsExact(r.out, exactOut(h, n)) < 2e-4);
});

test('the estimator is (nearly) unbiased: outputs averaged over hash seeds converge to exact attention', () => {
  const n = 1000, seeds = 80, K = 5, L = 20, h = head(n, 3);
  const attn = createSequenceAttention(shape, { ...defaultAttentionConfig(1), method: 'magicpig', denseLayers: [], sinks: 4, window: 8, tailThreshold: 0, K, L });
  attn.forward(0, new Float32Array(n * shape.numHeads * d), h.k, h.v, n, new Float32Array(n * shape.numHeads * d));
  attn.endPrefill();
  const mean = new Float64Array(shape.numHeads * d), out = new Float32Array(shape.numHeads * d);
  let singleErr = 0;
  const ref = exactOut(h, n);
  for (let s = 0; s < seeds; s++) {
    attn.configure({ seed: 5000 + s }); // new W: the index is rebuilt at the next step
    attn.forward(0, h.q, h.k.subarray((n - 1) * d), h.v.subarray((n - 1) * d), 1, out); // token n−1 again, as a step
    attn.truncate(n);
    attn.endPrefill(); // truncate starts a new prompt; the next forward is a decode step again
    for (let i = 0; i < out.length; i++) mean[i] += out[i] / seeds;
    singleErr += errVsExact(out, ref.map((r) => r)) / seeds;
  }
  // Reference over the n+1 tokens the step saw (token n−1 twice).
  const keys = Array.from({ length: n + 1 }, (_, i) => h.k.subarray(Math.min(i, n - 1) * d, (Math.min(i, n - 1) + 1) * d));
  const vals = Array.from({ length: n + 1 }, (_, i) => h.v.subarray(Math.min(i, n - 1) * d, (Math.min(i, n - 1) + 1) * d));
  const exact = Array.from({ length: shape.numHeads }, (_, hh) => attendNaive(row(h.q, 0, hh, shape.numHeads, d), keys, vals));
  const avgErr = errVsExact(Float32Array.from(mean), exact);
  const frac = attn.stats().sampledFraction;
  assert.ok(frac > 0.02 && frac < 0.5, `sampled fraction ${frac}`);
  // Averaging over seeds shrinks the error (single-seed error is large on this flat head); what remains is Monte Carlo
  // noise plus the O(1/|S|) bias of self-normalisation (numerator and denominator are each unbiased: next test).
  assert.ok(avgErr < 0.3 * singleErr, `averaged error ${avgErr} vs single-seed ${singleErr}`);
});

test('Σ_S exp(s_i)/u_i and Σ_S exp(s_i)/u_i · v_i are unbiased for Σ_I (Monte Carlo over seeds)', async () => {
  const { SimHash } = await import('../../engine/attention/simhash');
  const { LshTables } = await import('../../engine/attention/lsh-tables');
  const { HeadIndex } = await import('../../engine/attention/head-index');
  const n = 500, K = 5, L = 20, seeds = 150, rand = rng(9);
  const q = gaussians(d, rand), keys = gaussians(n * d, rand), vals = Float32Array.from(gaussians(n * d, rand), (x) => x + 1);
  const ker = new MagicPig(d);
  const kv = new KvStore(1, d, 'float32');
  kv.append(keys, vals, n);
  const cache = kv.heads[0];
  const index = new HeadIndex(0, d);
  index.ensureNorms(n);
  for (let i = 0; i < n; i++) { let s = 0; for (let c = 0; c < d; c++) s += keys[i * d + c] ** 2; index.norms[i] = Math.sqrt(s); }
  let exactMass = 0;
  const exactNum = new Float64Array(d), estNum = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += q[c] * keys[i * d + c];
    const e = Math.exp(s / Math.sqrt(d));
    exactMass += e;
    for (let c = 0; c < d; c++) exactNum[c] += e * vals[i * d + c];
  }
  let est = 0;
  const qc = new Int32Array(L), codes = new Int32Array(n * L), out = new Float32Array(d);
  for (let s = 0; s < seeds; s++) {
    const h = new SimHash(d, K, L, 77 + s);
    h.hashInto(q, 0, qc, 0);
    for (let i = 0; i < n; i++) h.hashInto(keys, i * d, codes, i * L);
    index.tables = new LshTables(K, L, 0);
    index.tables.fold(codes, n);
    const step = stepOf(cache, index, q, 1, { sinks: 0, indexedEnd: n, length: n }, K, L, null, qc); // T empty: all in I
    ker.group(step, 0);
    const m = step.used[0];
    // Unnormalised sums: Σ_S w_i = e^max · Σ exp(logit − max), and Σ_S w_i v_i = e^max · o.
    const scale = m > 0 ? Math.exp(ker.lastMax) : 0;
    est += (ker.lastZ * scale) / seeds;
    for (let c = 0; c < d; c++) estNum[c] += (cache.o[c] * scale) / seeds;
  }
  // The 1e-4 stabiliser biases low by about 1e-4/u per key; well under the Monte Carlo tolerance here.
  assert.ok(Math.abs(est / exactMass - 1) < 0.05, `estimated/exact mass = ${est / exactMass}`);
  assert.ok(relErr(estNum, exactNum) < 0.08, `numerator Σ w_i v_i: relative error ${relErr(estNum, exactNum)}`);
});

test('TopK and Quest at budget 1 equal dense; TopK keeps exactly the top scores', () => {
  const n = 600, h = head(n, 4), ref = exactOut(h, n);
  for (const method of ['topk', 'quest'] as const) {
    const r = run(h, n, { method, budget: 1 });
    r.step();
    assert.ok(errVsExact(r.out, ref) < 1e-5, method);
  }
  // Budget 10%: the reference attends to T plus the top 10% of I by score.
  const sinks = 4, window = 8, budget = 0.1;
  const r = run(h, n, { method: 'topk', budget, sinks, window });
  r.step();
  const indexedEnd = n - 1 - window, count = indexedEnd - sinks, b = Math.round(budget * count);
  for (let hh = 0; hh < shape.numHeads; hh++) {
    const qh = row(h.q, 0, hh, shape.numHeads, d);
    const score = (i: number) => { let s = 0; for (let c = 0; c < d; c++) s += qh[c] * h.k[i * d + c]; return s; };
    const top = Array.from({ length: count }, (_, j) => sinks + j).sort((a, b2) => score(b2) - score(a)).slice(0, b);
    const kept = [...Array.from({ length: sinks }, (_, i) => i), ...top, ...Array.from({ length: n - indexedEnd }, (_, j) => indexedEnd + j)];
    const expect = attendNaive(qh, kept.map((i) => h.k.subarray(i * d, (i + 1) * d)), kept.map((i) => h.v.subarray(i * d, (i + 1) * d)));
    assert.ok(relErr(row(r.out, 0, hh, shape.numHeads, d), expect) < 1e-5);
  }
});

test('prepare() (ONNX key hashing) and forwardAsync (ONNX query hashing) give the CPU path\'s step; truncate below the index gives dense', async () => {
  const n = 700, h = head(n, 5);
  const a = run(h, n, { method: 'magicpig', K: 6, L: 30 }, true);
  await a.ready;
  a.step();
  const b = run(h, n, { method: 'magicpig', K: 6, L: 30 });
  b.step();
  assert.ok(relErr(a.out, b.out) < 1e-5, `ONNX vs CPU fold: ${relErr(a.out, b.out)}`);
  // forwardAsync: the query hash from the ONNX graph (forced: this shape is below the graph's threshold), same step.
  const c = run(h, n, { method: 'magicpig', K: 6, L: 30 }, true);
  (c.attn as unknown as { graphHashMinMacs: number }).graphHashMinMacs = 0;
  await c.ready;
  // prepare() made the graph and ran it once, so that the first decode step does not pay for that.
  assert.ok((c.attn as unknown as { queryGraph: unknown }).queryGraph, 'prepare() made the query hash graph');
  assert.ok((c.attn as unknown as { queryGraphWarm: boolean }).queryGraphWarm, 'prepare() ran the query hash graph');
  await c.attn.forwardAsync(0, h.q, h.k.subarray((n - 1) * d, n * d), h.v.subarray((n - 1) * d, n * d), 1, c.out);
  assert.ok(relErr(c.out, b.out) < 1e-5, `forwardAsync vs forward: ${relErr(c.out, b.out)}`);
  assert.ok((c.attn as unknown as { queryGraph: unknown }).queryGraph, 'the step hashed its query on the graph');
  // At the default threshold this small shape (2 heads × d 16 × K·L 180) hashes queries on the CPU: no graph made.
  const e = run(h, n, { method: 'magicpig', K: 6, L: 30 }, true);
  await e.ready;
  assert.equal((e.attn as unknown as { queryGraph: unknown }).queryGraph, null, 'no graph where queries hash on the CPU');
  await e.attn.forwardAsync(0, h.q, h.k.subarray((n - 1) * d, n * d), h.v.subarray((n - 1) * d, n * d), 1, e.out);
  assert.ok(relErr(e.out, b.out) < 1e-5);
  assert.equal((e.attn as unknown as { queryGraph: unknown }).queryGraph, null);
  assert.ok(a.attn.stats().memory!.tables > 0);
  // Cut back into the sinks: the index empties, keys are un-centred, and the next step is exact again.
  a.attn.truncate(3);
  a.attn.endPrefill();
  const out = new Float32Array(shape.numHeads * d);
  a.attn.forward(0, h.q, h.k.subarray(3 * d, 4 * d), h.v.subarray(3 * d, 4 * d), 1, out);
  assert.ok(errVsExact(out, exactOut(h, 4)) < 1e-5);
});

test('bfloat16 storage: magicpig with every key sampled (u = 1) equals dense over the same stored keys', () => {
  const n = 400, h = head(n, 6);
  const r = run(h, n, { method: 'magicpig', K: 1, L: 300, kvDtype: 'bfloat16' });
  r.step();
  assert.equal(r.attn.stats().sampledFraction, 1);
  const sampled = Float32Array.from(r.out);
  r.attn.truncate(n - 1);
  r.attn.configure({ method: 'dense' });
  r.step();
  assert.ok(relErr(sampled, r.out) < 2e-4, `bf16 magicpig vs dense: ${relErr(sampled, r.out)}`);
  assert.ok(errVsExact(r.out, exactOut(h, n)) < 2e-2, 'bf16 dense near the float64 reference');
});

test('the tabulated log-weight log(u + 1e-4) is within 1e-4 of the exact formula', () => {
  for (const [K, L] of [[10, 150], [8, 75], [11, 300], [1, 300], [5, 20]]) {
    const table = new LogWeightTable(K, L);
    let worst = 0;
    for (let i = 0; i <= 20000; i++) {
      const cos = -1 + i / 10000;
      worst = Math.max(worst, Math.abs(table.at(cos) - Math.log(samplingProbability(cos, K, L) + 1e-4)));
    }
    assert.ok(worst < 1e-4, `K=${K} L=${L}: max error ${worst}`);
  }
});

test('a NaN query flows through every method as NaN (no WebAssembly trap), f32 and bf16', () => {
  // A broken model's NaN must reach the logits, where the runner reports it clearly (forward.ts finiteLogits); a
  // float-to-int trap in the exp / log-weight kernels would surface as an opaque RuntimeError instead.
  const n = 400, h = head(n, 9);
  const bad = { ...h, q: Float32Array.from(h.q) };
  bad.q[3] = NaN;
  for (const kvDtype of ['float32', 'bfloat16'] as const) {
    for (const method of ['dense', 'magicpig', 'topk', 'quest'] as const) {
      const r = run(bad, n, { method, K: 6, L: 30, kvDtype });
      assert.doesNotThrow(() => r.step(), `${method} ${kvDtype}`);
      assert.ok(Number.isNaN(r.out[0]), `${method} ${kvDtype}: head 0 output is NaN`);
    }
  }
});
