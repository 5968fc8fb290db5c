// KvStore's float32 copy for decode attention in the layer graphs (KvStore.mirrorRows): keys as rows, values
// transposed (token i in column i of [D, capacity]), checked value by value against the cache read one element at a
// time (fromBf16 for a bfloat16 cache), through appends, truncation and the capacity rules.
import assert from 'node:assert/strict';
import test from 'node:test';
import { KvStore, fromBf16, type KvMirror } from '../../engine/attention/kv-store';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** Every cached value of every head, as the copy must hold it. */
function assertCopy(kv: KvStore, m: KvMirror, label: string): void {
  const d = kv.headDim;
  assert.equal(m.length, kv.length, `${label}: length`);
  assert.ok(m.capacity >= m.length, `${label}: capacity ${m.capacity} < length ${m.length}`);
  for (let g = 0; g < kv.numKvHeads; g++) {
    const K = kv.keys[g], V = kv.values[g], stride = kv.heads[g].stride;
    assert.equal(m.keys[g].length, m.capacity * d);
    assert.equal(m.valuesT[g].length, d * m.capacity);
    const read = (a: Float32Array | Uint16Array, i: number) => (a instanceof Float32Array ? a[i] : fromBf16(a[i]));
    for (let i = 0; i < kv.length; i++) {
      for (let c = 0; c < d; c++) {
        const k = read(K, i * stride + c), v = read(V, i * stride + c);
        if (m.keys[g][i * d + c] !== k) assert.fail(`${label}: head ${g} key ${i}.${c}: ${m.keys[g][i * d + c]} vs ${k}`);
        if (m.valuesT[g][c * m.capacity + i] !== v) assert.fail(`${label}: head ${g} value ${i}.${c}: ${m.valuesT[g][c * m.capacity + i]} vs ${v}`);
      }
    }
  }
}

for (const dtype of ['float32', 'bfloat16'] as const) {
  test(`KvStore float32 copy (${dtype}): keys as rows, values transposed, kept in step through appends and truncation`, () => {
    const G = 2, d = 16, rand = rng(dtype === 'float32' ? 1 : 2);
    const kv = new KvStore(G, d, dtype);
    const append = (n: number) => {
      const k = Float32Array.from({ length: n * G * d }, rand), v = Float32Array.from({ length: n * G * d }, rand);
      kv.append(k, v, n);
    };
    // Chunks with the copy brought up to date after each (a prompt), then one token at a time (decode steps).
    append(40);
    assertCopy(kv, kv.mirrorRows(), 'first chunk');
    append(90);
    assertCopy(kv, kv.mirrorRows(), 'second chunk, grown');
    for (let i = 0; i < 30; i++) { append(1); assertCopy(kv, kv.mirrorRows(), `step ${i}`); }
    assert.equal(kv.currentMirror()?.length, kv.length);
    append(2);
    assert.equal(kv.currentMirror(), null, 'a copy that lags the cache is not current');
    // Truncated (a shorter prompt sharing a prefix), then other tokens appended: the copy follows.
    kv.truncate(50);
    assert.equal(kv.currentMirror()?.length, 50);
    append(25);
    assertCopy(kv, kv.mirrorRows(), 'after truncation');
    kv.dropMirror();
    assert.equal(kv.mirrorBytes(), 0);
    assertCopy(kv, kv.mirrorRows(), 'rebuilt from the cache');
  });
}

test('KvStore float32 copy: its capacity follows the request (the graph reads every transposed column)', () => {
  const G = 1, d = 8, rand = rng(3);
  const kv = new KvStore(G, d, 'bfloat16');
  const append = (n: number) => kv.append(Float32Array.from({ length: n * G * d }, rand), Float32Array.from({ length: n * G * d }, rand), n);
  // A request that reserved 1000 tokens: room for exactly those, no regrowth while it decodes.
  append(900);
  const first = kv.mirrorRows(1000);
  assert.equal(first.capacity, 1000);
  for (let i = 0; i < 100; i++) { append(1); assert.equal(kv.mirrorRows(1000), first, 'the same copy, not regrown'); }
  assertCopy(kv, first, 'at the reserved end');
  // Past what was reserved: grows by an eighth (amortized), keeping every value.
  append(1);
  const grown = kv.mirrorRows(1000);
  assert.ok(grown.capacity >= 1001 + 1001 / 8, `capacity ${grown.capacity}`);
  assertCopy(kv, grown, 'grown');
  // A short request on the same cache (truncated to its shared prefix): the long copy is rebuilt small.
  kv.truncate(60);
  append(10);
  const small = kv.mirrorRows(100);
  assert.equal(small.capacity, 100);
  assertCopy(kv, small, 'rebuilt small');
  // Without a reserved end the capacity still covers the cache.
  append(200);
  assertCopy(kv, kv.mirrorRows(), 'no end given');
  assert.equal(kv.mirrorBytes(), 8 * G * d * kv.currentMirror()!.capacity);
});
