// The WebAssembly dots / axpy kernels (kernels/kernels.c), the copies built for one head size (HEAD_DIMS: a known
// row length, unrolled with immediate offsets) and the any-length ones, against float64 sums, and against each other
// bit for bit: both add the same products in the same order, so a sized copy that reads a wrong offset or steps a
// pointer wrongly shows up as a different score or sum. Head sizes: every sized copy, and others (8, 24, 264) that
// get the any-length kernels either way. dotsMax (scaled scores and their max) against the dots' own scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEAD_DIMS, instantiate, kernelModule, type WasmKernels } from '../../engine/attention/kernels/kernels';
import { fromBf16, toBf16 } from '../../engine/attention/kv-store';
import { rng } from './data';

const ROWS = 40;

for (const d of [8, 24, 64, 80, 96, 128, 256, 264]) {
  for (const dtype of ['float32', 'bfloat16'] as const) {
    test(`wasm kernels d=${d} ${dtype}: head-size build equals the any-length build bit for bit, and float64 sums`, () => {
      const bf16 = dtype === 'bfloat16', bpe = bf16 ? 2 : 4, rowBytes = d * bpe, stride = 2 * rowBytes;
      // Layout: q, o, out/weights, ids, then ROWS tokens of [K | V].
      const qOff = 64, oOff = qOff + 4 * d, wOff = oOff + 4 * d, idsOff = wOff + 4 * ROWS, kOff = (idsOff + 4 * ROWS + 63) & ~63;
      const pages = Math.ceil((kOff + stride * ROWS) / 65536) + 1;
      const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const sized = instantiate(mem, d), any = instantiate(mem);
      assert.ok(sized && any, 'WebAssembly SIMD available');
      const f32 = new Float32Array(mem.buffer), u16 = new Uint16Array(mem.buffer), i32 = new Int32Array(mem.buffer);
      const rand = rng(d * 7 + bpe);
      const K = (t: number, c: number) => (bf16 ? fromBf16(u16[(kOff + t * stride) / 2 + c]) : f32[(kOff + t * stride) / 4 + c]);
      const V = (t: number, c: number) => (bf16 ? fromBf16(u16[(kOff + t * stride + rowBytes) / 2 + c]) : f32[(kOff + t * stride + rowBytes) / 4 + c]);
      for (let t = 0; t < ROWS; t++) for (let c = 0; c < 2 * d; c++) {
        const x = 2 * rand() - 1;
        if (bf16) u16[(kOff + t * stride) / 2 + c] = toBf16(x);
        else f32[(kOff + t * stride) / 4 + c] = x;
      }
      for (let c = 0; c < d; c++) f32[qOff / 4 + c] = 2 * rand() - 1;
      for (let j = 0; j < ROWS; j++) i32[idsOff / 4 + j] = Math.floor(rand() * ROWS);
      const sfx = bf16 ? '16' : '';
      const call = (k: WasmKernels, name: string, ...args: number[]): void => (k as unknown as Record<string, (...a: number[]) => void>)[name + sfx](...args);
      for (const m of [0, 1, 3, 4, 5, 9, 17]) {
        for (const byIds of [true, false]) {
          const start = 2, row = (j: number) => (byIds ? i32[idsOff / 4 + j] : start + j), rows = byIds ? idsOff : start;
          // dots: out[j] = q · K[row j]
          const scores: number[][] = [sized, any].map((k) => {
            f32.fill(NaN, wOff / 4, wOff / 4 + ROWS);
            call(k, byIds ? 'dotsIds' : 'dotsRange', qOff, kOff, rows, wOff, m, rowBytes, stride);
            return Array.from(f32.subarray(wOff / 4, wOff / 4 + m + 1));
          });
          assert.deepEqual(scores[0], scores[1], `dots m=${m} ${byIds ? 'ids' : 'range'}: same bits`);
          assert.ok(Number.isNaN(scores[0][m]), 'dots writes m scores, no more');
          for (let j = 0; j < m; j++) {
            let s = 0;
            for (let c = 0; c < d; c++) s += f32[qOff / 4 + c] * K(row(j), c);
            assert.ok(Math.abs(scores[0][j] - s) < 1e-5 * d, `dots m=${m} row ${j}: ${scores[0][j]} vs ${s}`);
          }
          // dotsMax: the dots' scores times scale in double, stored as float, and the largest double product (what
          // the JavaScript loop it replaced computed: logits[j] * scale, then the max), in both builds.
          const scale = 1 / Math.sqrt(d);
          for (const k of [sized, any] as WasmKernels[]) {
            f32.fill(NaN, wOff / 4, wOff / 4 + ROWS);
            const mx: number = (k as unknown as Record<string, (...a: number[]) => number>)[(byIds ? 'dotsIdsMax' : 'dotsRangeMax') + sfx](qOff, kOff, rows, wOff, m, rowBytes, stride, scale);
            let want = -Infinity;
            for (let j = 0; j < m; j++) {
              const x = scores[0][j] * scale;
              assert.equal(f32[wOff / 4 + j], Math.fround(x), `dotsMax m=${m} row ${j}`);
              if (x > want) want = x;
            }
            assert.equal(mx, want, `dotsMax m=${m} ${byIds ? 'ids' : 'range'}: the max`);
            assert.ok(Number.isNaN(f32[wOff / 4 + m]), 'dotsMax writes m scores, no more');
          }
          // axpy: o += Σ_j w[j] · V[row j], onto a nonzero o
          const w = Array.from({ length: m }, () => rand());
          const o0 = Array.from({ length: d }, () => rand());
          const sums: number[][] = [sized, any].map((k) => {
            f32.set(w, wOff / 4);
            f32.set(o0, oOff / 4);
            call(k, byIds ? 'axpyIds' : 'axpyRange', oOff, kOff + rowBytes, rows, wOff, m, rowBytes, stride);
            return Array.from(f32.subarray(oOff / 4, oOff / 4 + d));
          });
          assert.deepEqual(sums[0], sums[1], `axpy m=${m} ${byIds ? 'ids' : 'range'}: same bits`);
          for (let c = 0; c < d; c++) {
            let s = Math.fround(o0[c]);
            for (let j = 0; j < m; j++) s += Math.fround(w[j]) * V(row(j), c);
            assert.ok(Math.abs(sums[0][c] - s) < 1e-5 * (m + 1), `axpy m=${m} channel ${c}: ${sums[0][c]} vs ${s}`);
          }
        }
      }
    });
  }
}

test('touch (the dense step\'s prefetch) loads one word of every 64-byte line, in 8 parts side by side', () => {
  const mem = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  const k = instantiate(mem, 64)!;
  const i32 = new Int32Array(mem.buffer), rand = rng(3);
  for (let i = 0; i < i32.length; i++) i32[i] = Math.floor(rand() * 1000);
  for (const [p, bytes] of [[0, 0], [64, 512], [4096, 8 * 4096], [128, 8 * 700], [256, 4000]]) {
    // The words it should read: part = ⌊bytes / 8⌋; stream s reads p + s·part + 64·i while p + 64·i < p + part.
    const part = Math.floor(bytes / 8);
    let expected = 0;
    for (let s = 0; s < 8; s++) for (let off = 0; off < part; off += 64) expected = (expected + i32[(p + s * part + off) >> 2]) | 0;
    assert.equal(k.touch(p, bytes), expected, `touch(${p}, ${bytes})`);
  }
});

test('kernels.wasm: a sized copy for every HEAD_DIMS entry; a memory it cannot use is an error, not a fallback', () => {
  const names = WebAssembly.Module.exports(kernelModule()!).map((e) => e.name);
  for (const d of HEAD_DIMS) for (const k of ['dotsIds', 'dotsRange', 'axpyIds', 'axpyRange']) {
    assert.ok(names.includes(`${k}_${d}`) && names.includes(`${k}16_${d}`), `${k} for d = ${d}`);
  }
  // The module imports a shared memory: an unshared one fails to link, loudly.
  assert.throws(() => instantiate(new WebAssembly.Memory({ initial: 1, maximum: 1 })), WebAssembly.LinkError);
});
