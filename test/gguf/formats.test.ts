// Each GGUF block format converts to a QuantMatrix that dequantizes (quant.ts dequantRow64) exactly like the float64
// reference written from ggml's definition: random bytes (every bit pattern of scales, mins and quants, negative Q6_K
// scales included) plus edge blocks (d = 0, extreme quants), and files written by test/fixtures/gguf-writer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkQuant, dequantRow, dequantRow64 } from '../../engine/model/quant';
import { ggmlTypes, toQuantMatrix, type GgmlType } from '../../engine/model/gguf/formats';
import { encodeRows } from '../fixtures/gguf-writer';
import { dequantize64 } from './reference';

type BlockType = Exclude<GgmlType, 'F32' | 'F16' | 'BF16'>;
const blockTypes: BlockType[] = ['Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_K', 'Q6_K'];

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

/** Random bytes, with every f16 field kept finite (exponent 31 is Inf/NaN, which no real file stores). */
function randomBlocks(type: BlockType, nBlocks: number, seed: number): Uint8Array {
  const { bytes } = ggmlTypes[type];
  const r = rng(seed);
  const raw = new Uint8Array(nBlocks * bytes);
  for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(r() * 256);
  const halves: Record<BlockType, number[]> = { Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };
  for (let b = 0; b < nBlocks; b++) {
    for (const h of halves[type]) if (((raw[b * bytes + h + 1] >> 2) & 31) === 31) raw[b * bytes + h + 1] &= ~0x40;
  }
  return raw;
}

function same(a: Float64Array, b: Float64Array, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
      assert.fail(`${what}: element ${i}: ${a[i]} (converted) vs ${b[i]} (reference)`);
    }
  }
}

function checkExact(type: BlockType, raw: Uint8Array, N: number, K: number, what: string): void {
  const m = toQuantMatrix(type, raw, N, K);
  checkQuant(m, what);
  const ref = dequantize64(type, raw);
  for (let n = 0; n < N; n++) same(dequantRow64(m, n), ref.subarray(n * K, (n + 1) * K), `${what} row ${n}`);
  // The float32 row lookup (embeddings) agrees to float32 rounding.
  const row = new Float32Array(K);
  dequantRow(m, N - 1, row);
  for (let k = 0; k < K; k++) {
    const want = Math.fround(ref[(N - 1) * K + k]);
    // == so that −0 (reference: 0·negative d) equals +0 (quant.ts adds the zero offset).
    assert.ok(row[k] == want || (Number.isNaN(row[k]) && Number.isNaN(want)), `${what} float32 row, element ${k}: ${row[k]} vs ${want}`);
  }
}

describe('GGUF block formats → QuantMatrix, exactly the float64 reference', () => {
  for (const type of blockTypes) {
    const { block } = ggmlTypes[type];
    it(`${type}: random blocks, several rows`, () => {
      const N = 5, K = block * 3;
      checkExact(type, randomBlocks(type, (N * K) / block, 7 + type.length), N, K, type);
    });
    it(`${type}: edge blocks (d = 0, all-zero and all-ones bits)`, () => {
      const { bytes } = ggmlTypes[type];
      const K = block * 3;
      const raw = new Uint8Array(3 * bytes);
      raw.fill(0xff, 0, bytes); // every quant at its top and the most negative-with-max-exponent scales...
      const h = { Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] }[type];
      for (const at of h) { raw[at] = 0xff; raw[at + 1] = 0x7b; } // ...but finite: 65504
      raw.fill(0x5a, 2 * bytes, 3 * bytes); // block 1 stays all zero (d = 0)
      checkExact(type, raw, 1, K, `${type} edges`);
    });
    it(`${type}: blocks the writer quantizes from real values`, () => {
      const K = Math.max(block, 256), N = 4;
      const r = rng(3);
      const v = Float32Array.from({ length: N * K }, (_, i) => (r() - 0.5) * (i % 7 === 0 ? 4 : 1));
      const raw = encodeRows(type, v, K);
      checkExact(type, raw, N, K, `${type} written`);
      // And the writer's quantization is close to the values (a loose sanity bound: these are valid files, not good ones).
      const ref = dequantize64(type, raw);
      let err = 0;
      for (let i = 0; i < v.length; i++) err = Math.max(err, Math.abs(ref[i] - v[i]));
      assert.ok(err < 0.35, `${type} writer error ${err}`);
    });
  }

  it('Q6_K keeps negative sub-block scales', () => {
    const raw = randomBlocks('Q6_K', 1, 99);
    for (let j = 0; j < 16; j++) raw[192 + j] = j % 2 ? 0x80 : 0x81; // −128 and −127
    const m = toQuantMatrix('Q6_K', raw, 1, 256);
    assert.ok(m.scales.every((s) => s <= 0));
    same(dequantRow64(m, 0), dequantize64('Q6_K', raw), 'Q6_K negative scales');
  });
});
