// The decode kernels (dotsAt / axpyAt: WebAssembly SIMD, several rows a pass plus leftovers; logWeightsAt
// and expAt: WebAssembly float32 loops) against float64 references, and MagicPIG's group step (the query heads of one KV head attending together, block by
// block) against the same heads attended one at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogWeightTable } from '../../engine/attention/methods/log-weights';
import { MagicPig } from '../../engine/attention/methods/magicpig';
import type { Ranges } from '../../engine/attention/methods/index';
import { stepOf } from './step';
import { HeadIndex } from '../../engine/attention/head-index';
import { LshTables } from '../../engine/attention/lsh-tables';
import { SimHash } from '../../engine/attention/simhash';
import { KvStore, fromBf16 } from '../../engine/attention/kv-store';
import { gaussians, rng } from './data';

const d = 32;

test('dotsAt / logWeightsAt / expAt / axpyAt equal float64 references (every leftover count, f32, bf16)', () => {
  const n = 200, rand = rng(5), table = new LogWeightTable(10, 150);
  for (const dtype of ['float32', 'bfloat16'] as const) {
    const kv = new KvStore(1, d, dtype), k = gaussians(n * d, rand), v = gaussians(n * d, rand);
    kv.append(k, v, n);
    const c = kv.heads[0], st = c.stride;
    assert.ok(c.simd, 'WebAssembly SIMD kernels in use');
    assert.equal(st, 2 * d, 'keys and values interleaved');
    const key = (i: number, ch: number) => (dtype === 'float32' ? k[i * d + ch] : fromBf16(c.keys[i * st + ch]));
    const val = (i: number, ch: number) => (dtype === 'float32' ? v[i * d + ch] : fromBf16(c.values[i * st + ch]));
    for (let i = 0; i < n; i += 37) assert.equal(Math.abs(key(i, 3) - k[i * d + 3]) < 1e-2, true, 'stored key');
    for (let m = 0; m <= 11; m++) {
      const slot = m % 3, at = 7 + m;
      c.qs[slot].set(gaussians(d, rand));
      for (let j = 0; j < m; j++) c.ids[at + j] = Math.floor(rand() * n);
      c.dotsAt(slot, at, m);
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let ch = 0; ch < d; ch++) s += c.qs[slot][ch] * key(c.ids[at + j], ch);
        assert.ok(Math.abs(c.logits[at + j] - s) < 1e-4, `${dtype} m=${m} dot ${j}: ${c.logits[at + j]} vs ${s}`);
      }
      // logWeightsAt: s_i − log(u_i + 1e-4) as LogWeightTable.at computes it (float64), from the scores above and the
      // norms |k̃_i| the index holds (here |k − k̄| of a random k̄), gathered into the workspace.
      const kbar = gaussians(d, rand);
      for (let j = 0; j < m; j++) {
        let n2 = 0;
        for (let ch = 0; ch < d; ch++) n2 += (key(c.ids[at + j], ch) - kbar[ch]) ** 2;
        c.norms![at + j] = Math.sqrt(n2);
      }
      const qn = 1.7, qk = 0.3, scale = 1 / Math.sqrt(d);
      const expected = Array.from({ length: m }, (_, j) => {
        const dot = c.logits[at + j], den = qn * c.norms![at + j];
        return dot * scale - table.at(den > 0 ? (dot - qk) / den : 0);
      });
      c.useLogWeights(table.t);
      const mx = c.logWeightsAt(at, m, qn, qk, scale);
      for (let j = 0; j < m; j++) assert.ok(Math.abs(c.logits[at + j] - expected[j]) < 1e-4, `${dtype} m=${m} logWeights ${j}`);
      assert.equal(mx, m ? Math.max(...c.logits.subarray(at, at + m)) : -Infinity);
      // expAt: exp(x − shift) in place, and the sum.
      const xs = Array.from(c.logits.subarray(at, at + m));
      const z = c.expAt(at, m, mx);
      let zRef = 0;
      for (let j = 0; j < m; j++) {
        const e = Math.exp(xs[j] - mx);
        zRef += e;
        assert.ok(Math.abs(c.logits[at + j] - e) <= 1e-6 * e, `${dtype} m=${m} exp ${j}`);
      }
      assert.ok(Math.abs(z - zRef) <= 1e-6 * zRef, `${dtype} m=${m} Σ exp`);
      for (let j = 0; j < m; j++) c.logits[at + j] = rand();
      c.os[slot].fill(0);
      c.axpyAt(slot, at, m);
      for (let ch = 0; ch < d; ch++) {
        let s = 0;
        for (let j = 0; j < m; j++) s += c.logits[at + j] * val(c.ids[at + j], ch);
        assert.ok(Math.abs(c.os[slot][ch] - s) < 1e-4, `${dtype} m=${m} axpy channel ${ch}`);
      }
    }
  }
});

test('expAt: its four-lane loop and its one-at-a-time tail give every element the same bits, down to the −87 clamp', () => {
  const kv = new KvStore(1, d, 'float32');
  kv.append(gaussians(64 * d, rng(3)), gaussians(64 * d, rng(4)), 64);
  const c = kv.heads[0], rand = rng(9);
  assert.ok(c.hasMath, 'WebAssembly math kernels in use');
  for (let m = 0; m <= 13; m++) {
    // Arguments over [−100, 2] after the shift: past the clamp at −87, through 0, and a little above.
    const xs = Array.from({ length: m }, () => -100 + 102 * rand());
    if (m > 2) { xs[1] = -87; xs[2] = 0; }
    const at = 5 + m, shift = 0.25;
    c.logits.set(xs, at);
    const z = c.expAt(at, m, shift); // lanes for the first 4·⌊m/4⌋, the scalar loop for the rest
    const lanes = Array.from(c.logits.subarray(at, at + m));
    let zOne = 0;
    for (let j = 0; j < m; j++) {
      c.logits[at + j] = xs[j];
      zOne += c.expAt(at + j, 1, shift); // one element: the scalar loop only
      assert.equal(lanes[j], c.logits[at + j], `m=${m} element ${j} (x − shift = ${xs[j] - shift}): lanes and tail differ`);
      const ref = Math.exp(Math.max(Math.fround(xs[j] - shift), -87));
      assert.ok(Math.abs(lanes[j] - ref) <= 1e-6 * ref, `m=${m} element ${j}: ${lanes[j]} vs exp ${ref}`);
    }
    assert.ok(Math.abs(z - zOne) <= 1e-12 * Math.max(zOne, 1e-300), `m=${m} Σ: ${z} vs ${zOne}`);
  }
});

test('logWeightsAt: its four-lane loop and its one-at-a-time tail give every key the same bits (zero norm, |cos| > 1, cos < 0)', () => {
  const kv = new KvStore(1, d, 'float32');
  kv.append(gaussians(64 * d, rng(3)), gaussians(64 * d, rng(4)), 64);
  const c = kv.heads[0], rand = rng(10), table = new LogWeightTable(10, 150);
  c.useLogWeights(table.t);
  const qn = 2.5, qk = 0.75, scale = 1 / Math.sqrt(d);
  for (let m = 0; m <= 13; m++) {
    const at = 3 + m;
    // cos = (dot − qk) / (qn·nrm): mostly inside [−1, 1], some a little outside (clamped), one zero norm (cos := 0).
    const nrm = Array.from({ length: m }, () => 0.7 + 1.5 * rand());
    const dot = nrm.map((norm) => qk + (2.2 * rand() - 1.1) * qn * norm);
    if (m > 3) { nrm[3] = 0; dot[0] = qk - 1.5 * qn * nrm[0]; }
    c.logits.set(dot, at);
    c.norms!.set(nrm, at);
    const mx = c.logWeightsAt(at, m, qn, qk, scale);
    const lanes = Array.from(c.logits.subarray(at, at + m));
    let mxOne = -Infinity;
    for (let j = 0; j < m; j++) {
      c.logits[at + j] = dot[j];
      mxOne = Math.max(mxOne, c.logWeightsAt(at + j, 1, qn, qk, scale)); // one key: the scalar loop only
      assert.equal(lanes[j], c.logits[at + j], `m=${m} key ${j}: lanes and tail differ`);
      const den = qn * Math.fround(nrm[j]);
      const expected = Math.fround(dot[j]) * scale - table.at(den > 0 ? (Math.fround(dot[j]) - qk) / den : 0);
      assert.ok(Math.abs(lanes[j] - expected) < 1e-4, `m=${m} key ${j}: ${lanes[j]} vs ${expected}`);
    }
    assert.equal(mx, mxOne, `m=${m}: the largest logit`);
  }
});

/** One KV head of n keys, indexed over [sinks, indexedEnd), with `group` query heads. */
function fixture(n: number, capacity: number, group: number) {
  const rand = rng(11), K = 6, L = 24, sinks = 4, indexedEnd = n - 40;
  const kv = new KvStore(1, d, 'float32');
  kv.reserve(capacity);
  const offset = gaussians(d, rand, 2);
  const k = gaussians(n * d, rand).map((x, i) => x + offset[i % d]);
  kv.append(k, gaussians(n * d, rand), n);
  const cache = kv.heads[0];
  const index = new HeadIndex(0, d);
  index.kbar = new Float32Array(offset);
  index.ensureNorms(n);
  const hash = new SimHash(d, K, L, 3), codes = new Int32Array((indexedEnd - sinks) * L), row = new Float32Array(d);
  for (let i = sinks; i < indexedEnd; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) { row[c] = k[i * d + c] - offset[c]; s += row[c] ** 2; }
    index.norms[i] = Math.sqrt(s);
    hash.hashInto(row, 0, codes, (i - sinks) * L);
  }
  index.tables = new LshTables(K, L, sinks);
  index.tables.fold(codes, indexedEnd - sinks);
  // Queries of one group: a shared direction plus noise (so their sampled sets overlap, as in GQA models).
  const base = gaussians(d, rand);
  const q = new Float32Array(group * d).map((_, i) => 0.3 * (base[i % d] + 0.5 * gaussians(1, rand)[0]));
  const r: Ranges = { sinks, indexedEnd, length: n };
  return { cache, index, hash, q, r, K, L };
}

test('magicpig group step equals the heads one at a time, bit for bit (and in batches when the workspace is short)', () => {
  const n = 3000, group = 5;
  for (const capacity of [n, 4 * n]) { // n: the workspace holds one head's worst-case list, so heads go one per batch
    const { cache, index, hash, q, r, K, L } = fixture(n, capacity, group);
    const mp = new MagicPig(d);
    const all = stepOf(cache, index, q, group, r, K, L, hash);
    mp.group(all, 0);
    const { out, used: sampled, codes } = all;
    assert.ok(sampled.every((m) => m > 0 && m < r.indexedEnd - r.sinks), `sampled ${sampled}`);
    for (let h = 0; h < group; h++) {
      const one = stepOf(cache, index, q.subarray(h * d, (h + 1) * d), 1, r, K, L, null, codes.slice(h * L, (h + 1) * L));
      mp.group(one, 0);
      assert.equal(one.used[0], sampled[h], `head ${h}: same sampled set size`);
      assert.deepEqual(out.subarray(h * d, (h + 1) * d), one.out, `capacity ${capacity}, head ${h}`);
    }
  }
});
