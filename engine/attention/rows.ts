// One row of the cache at a time, in TypeScript: the storage types (float32, or bfloat16 as the top 16 bits of a
// float32) and the dot / axpy loops that the TypeScript fallbacks use where the WebAssembly kernels do not run (head
// dims not divisible by 8, SNOUT_NO_WASM=1). A leaf module: everything else in the room may import it.

export type KvArray = Float32Array | Uint16Array;

// Scratch views for bf16 <-> f32 bit casts (one shift; round-to-nearest-even on the way in).
const castF32 = new Float32Array(1);
const castU32 = new Uint32Array(castF32.buffer);

export function toBf16(x: number): number {
  castF32[0] = x;
  const bits = castU32[0];
  if ((bits & 0x7f800000) === 0x7f800000) return bits >>> 16; // inf/NaN: truncate
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fromBf16(h: number): number {
  castU32[0] = h << 16;
  return castF32[0];
}

/**
 * n pairs of bfloat16 values, read as 32-bit words src[s..s+n) (little-endian: value 2c in the low half, 2c + 1 in the
 * high), widened into float32 bits dst[t..t+2n): fromBf16's bits with half the loads and no scratch cast.
 */
export function widenBf16Pairs(src: Uint32Array, s: number, dst: Uint32Array, t: number, n: number): void {
  for (let c = 0; c < n; c++) {
    const x = src[s + c];
    dst[t + 2 * c] = x << 16;
    dst[t + 2 * c + 1] = x & 0xffff0000;
  }
}

/**
 * Rows [from, to) of a cache array (row i at src[i · stride], d values) into dst as float32 rows of d (row i at
 * dst[i · d]). A bfloat16 row is widened two values a 32-bit load (its bits are the float32's top 16: exact).
 */
export function widenRows(src: KvArray, stride: number, dst: Float32Array, d: number, from: number, to: number): void {
  if (src instanceof Float32Array) {
    if (stride === d) dst.set(src.subarray(from * d, to * d), from * d);
    else for (let i = from; i < to; i++) dst.set(src.subarray(i * stride, i * stride + d), i * d); // K and V interleaved
  } else if (d % 2 === 0 && stride % 2 === 0 && src.byteOffset % 4 === 0) {
    const pairs = new Uint32Array(src.buffer, src.byteOffset, src.length >> 1);
    const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    for (let i = from; i < to; i++) widenBf16Pairs(pairs, (i * stride) >> 1, bits, i * d, d >> 1);
  } else {
    const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    for (let i = from; i < to; i++) for (let c = 0; c < d; c++) bits[i * d + c] = src[i * stride + c] << 16;
  }
}

/**
 * Rows [from, to) of a cache array (row i at src[i · stride], d values) into dst as float32 columns: dst is [d, cols]
 * and row i becomes column i (dst[c · cols + i]). Widened as widenRows does (exact).
 */
export function widenRowsTransposed(src: KvArray, stride: number, dst: Float32Array, d: number, cols: number, from: number, to: number): void {
  const bits = src instanceof Float32Array ? null : new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  // 64 rows at a time, so the rows being read stay in cache across the d passes (a whole restored cache at once
  // would otherwise be read from memory d times).
  for (let b = from; b < to; b += 64) {
    const e = Math.min(to, b + 64);
    if (!bits) for (let c = 0; c < d; c++) for (let i = b; i < e; i++) dst[c * cols + i] = (src as Float32Array)[i * stride + c];
    else for (let c = 0; c < d; c++) for (let i = b; i < e; i++) bits[c * cols + i] = src[i * stride + c] << 16;
  }
}

/** q[qo..qo+d) · K[row i]. Float32 with four partial sums (V8 keeps them in registers: faster than a single sum). */
export function dotRow(q: Float32Array, qo: number, K: KvArray, i: number, d: number): number {
  return K instanceof Float32Array ? dotF32(q, qo, K, i * d, d) : dotBf16(q, qo, K, i * d, d);
}

export function dotF32(q: Float32Array, qo: number, K: Float32Array, ko: number, d: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, c = 0;
  for (; c + 3 < d; c += 4) {
    s0 += q[qo + c] * K[ko + c];
    s1 += q[qo + c + 1] * K[ko + c + 1];
    s2 += q[qo + c + 2] * K[ko + c + 2];
    s3 += q[qo + c + 3] * K[ko + c + 3];
  }
  for (; c < d; c++) s0 += q[qo + c] * K[ko + c];
  return s0 + s1 + s2 + s3;
}

function dotBf16(q: Float32Array, qo: number, K: Uint16Array, ko: number, d: number): number {
  let s = 0;
  for (let c = 0; c < d; c++) {
    castU32[0] = K[ko + c] << 16;
    s += q[qo + c] * castF32[0];
  }
  return s;
}

/** o += p · V[row i]. */
export function axpyRow(o: Float64Array, p: number, V: KvArray, i: number, d: number): void {
  const vo = i * d;
  if (V instanceof Float32Array) {
    let c = 0;
    for (; c + 3 < d; c += 4) {
      o[c] += p * V[vo + c];
      o[c + 1] += p * V[vo + c + 1];
      o[c + 2] += p * V[vo + c + 2];
      o[c + 3] += p * V[vo + c + 3];
    }
    for (; c < d; c++) o[c] += p * V[vo + c];
  } else {
    for (let c = 0; c < d; c++) {
      castU32[0] = V[vo + c] << 16;
      o[c] += p * castF32[0];
    }
  }
}
