// LSH pieces against brute force: bucket tables (fold, truncate, retrieval at ≥ 2 collisions), the ONNX key-hash graph
// against the CPU hasher, and the sampling probability u_i against Monte Carlo over hash seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LshTables, NARROW_MAX_CAPACITY, capacityFor } from '../../engine/attention/lsh-tables';
import { SimHash } from '../../engine/attention/simhash';
import { samplingProbability } from '../../engine/attention/methods/log-weights';
import { KeyHashGraph } from '../../engine/attention/hash-graph';
import { gaussians, rng } from './data';

function bruteForce(codes: number[][], q: number[], base: number, end: number): number[] {
  const out: number[] = [];
  codes.forEach((c, j) => {
    if (base + j >= end) return;
    let hits = 0;
    for (let l = 0; l < q.length; l++) if (c[l] === q[l]) hits++;
    if (hits >= 2) out.push(base + j);
  });
  return out;
}

test('retrieval equals a brute-force collision count (after two folds and a truncate)', () => {
  const K = 3, L = 12, base = 5, n1 = 300, n2 = 170, rand = rng(3);
  const codes = Array.from({ length: n1 + n2 }, () => Array.from({ length: L }, () => Math.floor(rand() * (1 << K))));
  const t = new LshTables(K, L, base);
  const flat = (rows: number[][]) => Int32Array.from(rows.flat());
  t.fold(flat(codes.slice(0, n1)), n1);
  t.fold(flat(codes.slice(n1)), n2);
  const out = new Int32Array(n1 + n2);
  for (const end of [base + n1 + n2, base + 333, base + 1]) {
    t.truncate(end);
    // 150 queries per table set: the bitmaps of earlier queries must never leak into a later one.
    for (let trial = 0; trial < 150; trial++) {
      const q = Array.from({ length: L }, () => Math.floor(rand() * (1 << K)));
      const m = t.retrieve(Int32Array.from(q), 0, out);
      assert.deepEqual([...out.subarray(0, m)], bruteForce(codes, q, base, end)); // the same ids, ascending
    }
  }
});

test('retrieval equals brute force through a random history of folds and cuts (appends, table rebuilds, regrows)', () => {
  const K = 4, L = 10, base = 3, rand = rng(17);
  const codes: number[][] = [];
  const t = new LshTables(K, L, base);
  const out = new Int32Array(16384);
  let cuts = 0, shrinks = 0;
  for (let step = 0; step < 150; step++) {
    if (rand() < 0.3 && t.count > 0) {
      const cap = t.capacity, end = base + Math.floor(rand() * (t.count + 1));
      t.truncate(end);
      codes.length = Math.min(codes.length, end - base);
      if (t.capacity < cap) shrinks++; else cuts++;
    } else {
      // Codes skewed to a few buckets (as real keys are), so buckets run out of room before the table does: room is made
      // by moving neighbours (shifts) or, when no gap nearby is large enough, by rebuilding the table.
      const n = 1 + Math.floor(rand() * (rand() < 0.2 ? 1500 : 120));
      const add = Array.from({ length: n }, () => Array.from({ length: L }, () => Math.floor((1 << K) * rand() ** 3)));
      t.fold(Int32Array.from(add.flat()), n);
      codes.push(...add);
    }
    assert.equal(t.count, codes.length);
    assert.ok(t.count <= t.capacity);
    for (let trial = 0; trial < 5; trial++) {
      const q = Array.from({ length: L }, () => Math.floor((1 << K) * rand() ** 3));
      const m = t.retrieve(Int32Array.from(q), 0, out);
      assert.deepEqual([...out.subarray(0, m)], bruteForce(codes, q, base, base + codes.length), `step ${step}`);
    }
  }
  const f = t.foldStats, what = JSON.stringify({ ...f, cuts, shrinks });
  assert.ok(f.appends >= 20 && f.shifts >= 20 && f.tableRebuilds >= 3 && f.regrows >= 3 && cuts >= 5 && shrinks >= 1, `the history lacked a case: ${what}`);
});

test('retrieval at the bench scale (K 10, L 150, 20011 keys) equals brute force, ascending', () => {
  // Realistic sizes for the kernel's two passes and bitmaps: buckets of ~20 ids, a count that is not a multiple of 32,
  // a base that is not either, and keys that share 0-6 codes with each query (so many reach the ≥ 2 threshold).
  const K = 10, L = 150, B = 1 << K, base = 37, n = 20011, rand = rng(21);
  const queries = Array.from({ length: 6 }, () => Array.from({ length: L }, () => Math.floor(rand() * B)));
  const codes = Array.from({ length: n }, () => {
    const q = queries[Math.floor(rand() * queries.length)], share = Math.floor(rand() * 7);
    const c = Array.from({ length: L }, () => Math.floor(rand() * B));
    for (let s = 0; s < share; s++) { const l = Math.floor(rand() * L); c[l] = q[l]; }
    return c;
  });
  const t = new LshTables(K, L, base);
  t.fold(Int32Array.from(codes.flat()), n);
  const out = new Int32Array(n);
  let total = 0;
  for (const q of queries) {
    const m = t.retrieve(Int32Array.from(q), 0, out);
    const want = bruteForce(codes, q, base, base + n);
    assert.deepEqual([...out.subarray(0, m)], want);
    total += m;
  }
  assert.ok(total > 1000, `only ${total} keys sampled: the test would not exercise the bitmaps`);
});

test('retrieval equals brute force with 4-byte ids (room past 65536) and across the switch between widths', () => {
  // Few tables, many keys: regrowing past NARROW_MAX_CAPACITY stores ids in 4 bytes, a cut to under a quarter of the
  // room goes back to 2; every stage retrieves exactly the brute-force set (a wrong width or a high half dropped would
  // list other ids).
  const K = 3, L = 4, base = 11, rand = rng(29);
  const codes: number[][] = [];
  const t = new LshTables(K, L, base);
  const out = new Int32Array(200000);
  const check = (what: string) => {
    for (let trial = 0; trial < 20; trial++) {
      const q = Array.from({ length: L }, () => Math.floor(rand() * (1 << K)));
      const m = t.retrieve(Int32Array.from(q), 0, out);
      assert.deepEqual([...out.subarray(0, m)], bruteForce(codes, q, base, base + codes.length), what);
    }
  };
  const fold = (n: number) => {
    const add = Array.from({ length: n }, () => Array.from({ length: L }, () => Math.floor(rand() * (1 << K))));
    t.fold(Int32Array.from(add.flat()), n);
    codes.push(...add);
  };
  // a function, so that one assert's narrowing of t.ids does not carry to the next
  const width = (): number => t.ids.BYTES_PER_ELEMENT;
  fold(50000);
  assert.ok(t.capacity <= NARROW_MAX_CAPACITY && width() === 2, `capacity ${t.capacity}`);
  check('2-byte ids');
  fold(20000); // past the limit: regrows to room for ~78K
  assert.ok(t.capacity > NARROW_MAX_CAPACITY && width() === 4, `capacity ${t.capacity}`);
  check('4-byte ids after a regrow');
  fold(3000); // appended in place, ids past 65535
  check('4-byte ids after an append');
  t.truncate(base + 60000); // sizes cut in place, still wide
  codes.length = 60000;
  assert.equal(t.ids.BYTES_PER_ELEMENT, 4);
  check('4-byte ids after a cut');
  t.truncate(base + 9000); // under a quarter of the room: a smaller memory, narrow again
  codes.length = 9000;
  assert.equal(t.ids.BYTES_PER_ELEMENT, 2);
  check('2-byte ids after a shrink');
});

test('table memory: 2·L bytes of ids per key and per key of room + 8·L·2^K of buckets + 4¼ bytes of scratch per id of room, nothing else', () => {
  const K = 10, L = 150, n = 20000, rand = rng(5);
  const t = new LshTables(K, L, 4);
  t.fold(Int32Array.from({ length: n * L }, () => Math.floor(rand() * (1 << K))), n);
  const cap = capacityFor(n, 1 << K);
  assert.equal(t.capacity, cap);
  assert.equal(cap, n + 4 * (1 << K)); // room: the larger of n/8 and 4 a bucket
  const want = 2 * L * cap + 8 * L * (1 << K) + 4 * cap + 2 * 4 * Math.ceil(cap / 32) + 4 * L + 8 * L;
  // bytes() is the layout: a 64-byte header and 64-byte aligned regions (the WebAssembly memory holding it rounds up
  // to 64 KB pages, under 0.1% at this size).
  assert.ok(t.bytes() >= want && t.bytes() <= want + 64 + 7 * 63, `${t.bytes()} bytes for ${want} needed`);
  // Folds within the room take no memory; a cut to under a quarter of it gives memory back.
  const before = t.bytes();
  for (let i = 0; i < 8; i++) t.fold(Int32Array.from({ length: 256 * L }, () => Math.floor(rand() * (1 << K))), 256);
  assert.equal(t.bytes(), before);
  assert.equal(t.foldStats.regrows, 1);
  t.truncate(4 + 1000);
  assert.ok(t.bytes() < before / 3, `${t.bytes()} bytes after a cut to 1000 keys`);
});

test('ONNX key-hash graph gives the CPU hasher codes', async () => {
  const d = 32, h = new SimHash(d, 10, 20, 99), n = 300;
  const x = gaussians(n * d, rng(5));
  const graph = await KeyHashGraph.create(h, 'cpu');
  const onnx = await graph.hash(x, n);
  const cpu = new Int32Array(n * h.L);
  for (let j = 0; j < n; j++) h.hashInto(x, j * d, cpu, j * h.L);
  let same = 0;
  for (let i = 0; i < cpu.length; i++) if (cpu[i] === onnx[i]) same++;
  // Only a projection within float rounding of 0 may flip a bit between the two summation orders.
  assert.ok(same >= cpu.length - 2, `${cpu.length - same} codes differ`);
});

test('u_i matches the empirical sampling frequency over hash seeds', () => {
  const d = 16, K = 4, L = 12, seeds = 600, rand = rng(11);
  const q = gaussians(d, rand);
  // Keys at spread-out angles to q: q blended with noise.
  const keys = [0.95, 0.7, 0.4, 0.0, -0.3].map((a) => {
    const noise = gaussians(d, rand);
    return Float32Array.from(q, (x, c) => a * x + (1 - Math.abs(a)) * noise[c]);
  });
  const hits = new Array(keys.length).fill(0);
  const qc = new Int32Array(L), kc = new Int32Array(L);
  for (let s = 0; s < seeds; s++) {
    const h = new SimHash(d, K, L, 1000 + s);
    h.hashInto(q, 0, qc, 0);
    keys.forEach((k, i) => {
      h.hashInto(k, 0, kc, 0);
      let c = 0;
      for (let l = 0; l < L; l++) if (qc[l] === kc[l]) c++;
      if (c >= 2) hits[i]++;
    });
  }
  keys.forEach((k, i) => {
    let dot = 0, nq = 0, nk = 0;
    for (let c = 0; c < d; c++) { dot += q[c] * k[c]; nq += q[c] ** 2; nk += k[c] ** 2; }
    const u = samplingProbability(dot / Math.sqrt(nq * nk), K, L);
    const freq = hits[i] / seeds, sd = Math.sqrt(Math.max(u * (1 - u), 1e-3) / seeds);
    assert.ok(Math.abs(freq - u) < 4 * sd + 0.01, `key ${i}: u = ${u.toFixed(3)}, empirical ${freq.toFixed(3)}`);
  });
});
